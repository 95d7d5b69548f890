/**
 * The events forwarded to the agent that have not arrived (src/forwarding/):
 *   GET  /v1/agent/outbox?status=parked|pending&limit=   oldest first, with the counts
 *   POST /v1/agent/outbox/:id/retry                     a parked event back in line
 *   POST /v1/agent/outbox/retry                         every parked event back in line
 */
import { listAgentOutbox, outboxQuerySchema, retryAgentEvent, retryParkedAgentEvents } from '../../forwarding/agent-outbox.js';
import { parseInput } from '../../validation.js';
import { answer, idParams } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const agentOutboxRoutes: RouteModule = {
  name: 'agent-outbox',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    const list = {
      summary: 'Events for the agent that have not been delivered (pending) or were given up on (parked)',
      description:
        'Every fan message and lifecycle event is POSTed to AGENT_WEBHOOK_URL; after AGENT_WEBHOOK_MAX_ATTEMPTS failed deliveries ' +
        'an event is parked. Oldest first; `counts` covers every pending and parked event.',
      operationId: 'listAgentOutbox',
      querystring: outboxQuerySchema,
      answers: {
        200: answer('The events: {events: [{id, type, status, occurredAt, lead, attempts, lastError, nextAttemptAt, parkedAt, createdAt}], counts: {pending, parked}}'),
        400: 'BadRequest',
      },
    } as const;
    app.get('/v1/agent/outbox', { schema: list }, async (request) => listAgentOutbox(ctx.db, parseInput(outboxQuerySchema, request.query ?? {})));

    const retryAll = {
      summary: 'Put every parked event back in line',
      description: "Each goes back to its lead's queue with fresh attempts, ahead of that lead's pending events.",
      operationId: 'retryParkedAgentEvents',
      answers: { 200: answer('How many went back in line: {retried}') },
    } as const;
    app.post('/v1/agent/outbox/retry', { schema: retryAll }, async () => retryParkedAgentEvents(ctx.db));

    const retry = {
      summary: 'Put one parked event back in line',
      operationId: 'retryAgentEvent',
      params: idParams,
      answers: { 200: answer('Back in line: {id, status: pending}'), 404: 'NotFound', 409: 'Conflict' },
    } as const;
    app.post<{ Params: { id: string } }>('/v1/agent/outbox/:id/retry', { schema: retry }, async (request) => retryAgentEvent(ctx.db, request.params.id));
  },
};
