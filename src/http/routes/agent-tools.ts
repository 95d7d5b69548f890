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
import { errorRef, json, queryParametersOf } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const agentToolRoutes: RouteModule = {
  name: 'agent-tools',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    app.get('/v1/agent/tools', async (request) => {
      const { format } = parseInput(toolsQuerySchema, request.query ?? {});
      return { format, tools: toolDefinitions(format) };
    });

    app.post<{ Params: { name: string } }>('/v1/agent/tools/:name', async (request) => {
      const tool = findAgentTool(request.params.name);
      if (!tool) throw new NotFoundError(`no tool "${request.params.name}"`);
      return { result: await tool.run(ctx, request.body ?? {}) };
    });
  },
  openapi: {
    paths: {
      '/v1/agent/tools': {
        get: {
          summary: "The agent's tools as function-calling definitions",
          description:
            'OpenAI Chat Completions `tools` ({type: function, function: {name, description, parameters}}) or Anthropic Messages `tools` ' +
            '({name, description, input_schema}); the same tools as the MCP server. Execute a call with POST /v1/agent/tools/{name}.',
          operationId: 'listAgentTools',
          parameters: queryParametersOf(toolsQuerySchema),
          responses: {
            '200': json({ type: 'object', required: ['format', 'tools'], properties: { format: { type: 'string' }, tools: { type: 'array', items: { type: 'object' } } } }, 'The definitions'),
            '400': errorRef('BadRequest'),
          },
        },
      },
      '/v1/agent/tools/{name}': {
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' }, description: 'the tool, e.g. schedule_followup' }],
        post: {
          summary: "Execute one of the agent's tool calls",
          description: "The body is the call's arguments (the model's JSON). Answers {result}; errors as the matching /v1 route answers them.",
          operationId: 'callAgentTool',
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
          responses: {
            '200': json({ type: 'object', required: ['result'], properties: { result: { type: 'object' } } }, 'The tool ran'),
            '400': errorRef('BadRequest'),
            '404': errorRef('NotFound'),
            '409': errorRef('Conflict'),
          },
        },
      },
    },
  },
};
