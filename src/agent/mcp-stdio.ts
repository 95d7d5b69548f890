/**
 * `followups mcp`: the MCP server on stdin/stdout, for agents that spawn their tools
 * (Claude Desktop, Claude Code, Cursor, ...). stdout carries the protocol only, so
 * the log goes to stderr. It opens the database like any role; with the embedded
 * PGlite (one process only) use POST /mcp of the running server instead.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import pino from 'pino';
import type { Config } from '../config.js';
import { createContext } from '../context.js';
import { createLogger } from '../log.js';
import { makeMcpServer } from './mcp-server.js';

export async function runMcpStdio(config: Config): Promise<void> {
  const log = createLogger({ level: config.logLevel, destination: pino.destination({ dest: 2, sync: true }) });
  // Nothing here publishes to the queue: the relay picks up what the tools write.
  const ctx = await createContext(config, log.child({ role: 'mcp' }), { queue: null });
  const server = makeMcpServer(ctx);
  const transport = new StdioServerTransport();
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    await server.close().catch(() => undefined);
    await ctx.close().catch(() => undefined);
    process.exit(0);
  };
  transport.onclose = () => void shutdown();
  process.stdin.on('end', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  await server.connect(transport);
  log.info({ tools: 8 }, 'MCP server on stdio');
}
