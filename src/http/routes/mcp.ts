/**
 * The MCP server over streamable HTTP, on the API role: `POST /mcp` (JSON-RPC:
 * initialize, tools/list, tools/call), same Bearer token as /v1. Stateless: each
 * request gets its own server and transport (the SDK's stateless mode), so any
 * API process behind a load balancer can answer any call, and no session lives
 * in memory. This server sends nothing on its own, so `GET /mcp` (the optional
 * server-to-client SSE stream) answers 405, as the MCP specification says a
 * server without that stream does; clients carry on over POST.
 */
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { makeMcpServer } from '../../agent/mcp-server.js';
import { z } from 'zod';
import { answer, errorSchema } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const mcpRoutes: RouteModule = {
  name: 'mcp',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    const mcp = {
      summary: 'MCP server (streamable HTTP, stateless): the agent tools',
      description:
        'Model Context Protocol JSON-RPC messages (initialize, tools/list, tools/call). Tools: schedule_followup, enroll_lead, ' +
        'cancel_followups, get_lead, send_message, mark_converted, handoff_to_human, opt_out_lead. A bad argument is a tool error ' +
        '(isError) whose text is the API error envelope naming the field. Send `Accept: application/json, text/event-stream`. ' +
        'The body is a JSON-RPC 2.0 message or batch.',
      operationId: 'mcp',
      body: z.union([z.looseObject({}), z.array(z.looseObject({}))]).describe('a JSON-RPC 2.0 message or batch'),
      answers: { 200: answer('JSON-RPC response'), 202: answer('notification accepted') },
    } as const;
    app.post('/mcp', { schema: mcp }, async (request, reply) => {
      const server = makeMcpServer(ctx);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      reply.hijack();
      reply.raw.on('close', () => {
        void transport.close();
        void server.close();
      });
      try {
        await server.connect(transport);
        await transport.handleRequest(request.raw, reply.raw, request.body);
      } catch (error) {
        // Hijacked: fastify's error handler no longer answers for this request.
        ctx.log.error({ err: error, reqId: request.id }, 'MCP request failed');
        if (!reply.raw.headersSent) {
          reply.raw.writeHead(500, { 'content-type': 'application/json' });
          reply.raw.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null }));
        }
      }
    });

    const noStream = async (_request: unknown, reply: import('fastify').FastifyReply) =>
      reply
        .code(405)
        .header('allow', 'POST')
        .send({ error: { code: 'method_not_allowed', message: 'this MCP server is stateless and sends nothing on its own: no SSE stream; use POST /mcp' } });
    const stream = (operationId: string) => ({
      summary: 'MCP server-to-client stream: not offered (405)',
      operationId,
      answers: { 405: answer('No SSE stream: the server is stateless and sends nothing on its own', errorSchema) },
    });
    app.get('/mcp', { schema: stream('mcpStream') }, noStream);
    app.delete('/mcp', { schema: stream('mcpDelete') }, noStream);
  },
};
