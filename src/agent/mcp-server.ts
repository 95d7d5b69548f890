/**
 * The MCP server (the official @modelcontextprotocol/sdk): the agent's tools
 * (tools.ts) over stdio (`followups mcp`) or streamable HTTP (`POST/GET /mcp` on
 * the API role, routes/mcp.ts). Built on the SDK's low-level `Server` rather
 * than `McpServer.registerTool`, because the latter validates arguments itself
 * and answers a bad one in zod's words; here every call goes through the
 * domain function's own validation, so a bad argument is the same error, naming
 * the field, as the HTTP API's 400 — returned as a tool error (isError), with
 * nothing written.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, type CallToolResult, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Context } from '../context.js';
import { toErrorResponse } from '../http/error-response.js';
import { AGENT_TOOLS, findAgentTool, listAgentTools } from './tools.js';

const VERSION = '0.1.0';

/**
 * Runs one tool call: its result as JSON text, or a tool error carrying the HTTP API's
 * error envelope ({error: {code, message, details?}}; a 400's names the field).
 */
export async function callAgentTool(ctx: Context, name: string, args: unknown): Promise<CallToolResult> {
  const tool = findAgentTool(name);
  if (!tool) {
    return toolError({ error: { code: 'unknown_tool', message: `name: no tool "${name}"; the tools are ${AGENT_TOOLS.map((t) => t.name).join(', ')}` } });
  }
  try {
    const result = await tool.run(ctx, args ?? {});
    return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result as Record<string, unknown> };
  } catch (error) {
    const response = toErrorResponse(error, { bodyLimit: Number.POSITIVE_INFINITY });
    if (response.internal) ctx.log.error({ err: error, tool: name }, 'agent tool failed');
    return toolError(response.body);
  }
}

function toolError(body: unknown): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(body) }], isError: true };
}

/** One MCP server over the context; connect it to a transport. */
export function makeMcpServer(ctx: Context): Server {
  const server = new Server(
    { name: 'nautico-followups', version: VERSION },
    {
      capabilities: { tools: {} },
      instructions:
        'Follow-ups and messages for the fans of Clube Náutico on WhatsApp. Look a fan up with get_lead before writing; answer with ' +
        'send_message; schedule_followup or enroll_lead when the conversation stalls; stop with opt_out_lead, handoff_to_human or mark_converted.',
    },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: listAgentTools() }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => callAgentTool(ctx, request.params.name, request.params.arguments));
  return server;
}
