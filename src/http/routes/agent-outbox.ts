/**
 * The events forwarded to the agent that have not arrived (src/forwarding/):
 *   GET  /v1/agent/outbox?status=parked|pending&limit=   oldest first, with the counts
 *   POST /v1/agent/outbox/:id/retry                     a parked event back in line
 *   POST /v1/agent/outbox/retry                         every parked event back in line
 */
import { listAgentOutbox, outboxQuerySchema, retryAgentEvent, retryParkedAgentEvents } from '../../forwarding/agent-outbox.js';
import { parseInput } from '../../validation.js';
import { errorRef, json, queryParametersOf } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

const iso = { type: 'string', format: 'date-time' };
const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: 'null' }] });

export const agentOutboxRoutes: RouteModule = {
  name: 'agent-outbox',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    app.get('/v1/agent/outbox', async (request) => listAgentOutbox(ctx.db, parseInput(outboxQuerySchema, request.query ?? {})));

    app.post('/v1/agent/outbox/retry', async () => retryParkedAgentEvents(ctx.db));

    app.post<{ Params: { id: string } }>('/v1/agent/outbox/:id/retry', async (request) => retryAgentEvent(ctx.db, request.params.id));
  },
  openapi: {
    paths: {
      '/v1/agent/outbox': {
        get: {
          summary: 'Events for the agent that have not been delivered (pending) or were given up on (parked)',
          description:
            'Every fan message and lifecycle event is POSTed to AGENT_WEBHOOK_URL; after AGENT_WEBHOOK_MAX_ATTEMPTS failed deliveries ' +
            'an event is parked. Oldest first; `counts` covers every pending and parked event.',
          operationId: 'listAgentOutbox',
          parameters: queryParametersOf(outboxQuerySchema),
          responses: {
            '200': json(
              {
                type: 'object',
                required: ['events', 'counts'],
                properties: {
                  events: { type: 'array', items: { $ref: '#/components/schemas/AgentOutboxEvent' } },
                  counts: { type: 'object', required: ['pending', 'parked'], properties: { pending: { type: 'integer' }, parked: { type: 'integer' } } },
                },
              },
              'The events',
            ),
            '400': errorRef('BadRequest'),
          },
        },
      },
      '/v1/agent/outbox/retry': {
        post: {
          summary: 'Put every parked event back in line',
          description: 'Each goes back to its lead\'s queue with fresh attempts, ahead of that lead\'s pending events.',
          operationId: 'retryParkedAgentEvents',
          responses: {
            '200': json({ type: 'object', required: ['retried'], properties: { retried: { type: 'integer' } } }, 'How many went back in line'),
          },
        },
      },
      '/v1/agent/outbox/{id}/retry': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' }, description: "the event's id" }],
        post: {
          summary: 'Put one parked event back in line',
          operationId: 'retryAgentEvent',
          responses: {
            '200': json({ type: 'object', required: ['id', 'status'], properties: { id: { type: 'string' }, status: { const: 'pending' } } }, 'Back in line'),
            '404': errorRef('NotFound'),
            '409': errorRef('Conflict'),
          },
        },
      },
    },
    schemas: {
      AgentOutboxEvent: {
        type: 'object',
        required: ['id', 'type', 'status', 'occurredAt', 'lead', 'attempts', 'lastError', 'nextAttemptAt', 'parkedAt', 'createdAt'],
        properties: {
          id: { type: 'string', format: 'uuid', description: 'the event id the agent de-duplicates on (X-Followups-Event-Id)' },
          type: { type: 'string', description: 'message.received, followup.sent, lead.replied, lead.opted_out, lead.handed_off, lead.converted, lead.number_invalid' },
          status: { type: 'string', enum: ['pending', 'parked', 'delivered'] },
          occurredAt: iso,
          lead: {
            type: 'object',
            required: ['id', 'phone', 'name'],
            properties: { id: { type: 'string', format: 'uuid' }, phone: { type: 'string' }, name: nullable({ type: 'string' }) },
          },
          attempts: { type: 'integer' },
          lastError: nullable({ type: 'string' }),
          nextAttemptAt: nullable(iso),
          parkedAt: nullable(iso),
          createdAt: iso,
        },
      },
    },
  },
};
