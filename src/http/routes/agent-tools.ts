/**
 * The agent's tools for function calling (no MCP needed):
 *   GET  /v1/agent/tools?format=openai|anthropic   the definitions, ready for a model's `tools`
 *   POST /v1/agent/tools/:name                     execute one tool call: body = the call's arguments
 * The same tools, schemas and domain functions as the MCP server (agent/tools.ts);
 * a failed call answers as the API does (400 naming the field, 409 with the reason, ...).
 */
import { toolsQuerySchema } from '../../agent/tool-schemas.js';
import { findAgentTool, toolDefinitions } from '../../agent/tools.js';
import { NotFoundError } from '../../errors.js';
import { parseInput } from '../../validation.js';
import { z } from 'zod';
import { answer } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const agentToolRoutes: RouteModule = {
  name: 'agent-tools',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    const list = {
      summary: "The agent's tools as function-calling definitions",
      description:
        'OpenAI Chat Completions `tools` ({type: function, function: {name, description, parameters}}) or Anthropic Messages `tools` ' +
        '({name, description, input_schema}); the same tools as the MCP server. Execute a call with POST /v1/agent/tools/{name}.',
      operationId: 'listAgentTools',
      querystring: toolsQuerySchema,
      answers: { 200: answer('The definitions: {format, tools}'), 400: 'BadRequest' },
    } as const;
    app.get('/v1/agent/tools', { schema: list }, async (request) => {
      const { format } = parseInput(toolsQuerySchema, request.query ?? {});
      return { format, tools: toolDefinitions(format) };
    });

    const call = {
      summary: "Execute one of the agent's tool calls",
      description: "The body is the call's arguments (the model's JSON). Answers {result}; errors as the matching /v1 route answers them.",
      operationId: 'callAgentTool',
      params: z.object({ name: z.string().describe('the tool, e.g. schedule_followup') }),
      body: z.looseObject({}).describe("the call's arguments; each tool's parameters are in GET /v1/agent/tools"),
      answers: { 200: answer('The tool ran: {result}'), 400: 'BadRequest', 404: 'NotFound', 409: 'Conflict' },
    } as const;
    app.post<{ Params: { name: string } }>('/v1/agent/tools/:name', { schema: call }, async (request) => {
      const tool = findAgentTool(request.params.name);
      if (!tool) throw new NotFoundError(`no tool "${request.params.name}"`);
      return { result: await tool.run(ctx, request.body ?? {}) };
    });
  },
};
