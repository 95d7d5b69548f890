/** /v1/followups: schedule, list, read, cancel and retry follow-ups. */
import { ValidationError } from '../../errors.js';
import { getFollowup, listFollowups } from '../../followups/find-followups.js';
import { cancelFollowupSchema, listFollowupsSchema, scheduleFollowupSchema } from '../../followups/followup-schemas.js';
import {
  type FollowupEventRow,
  type FollowupPage,
  type FollowupRow,
  type FollowupWithEvents,
  type ScheduledFollowup,
  STATUSES,
  toFollowup,
  toFollowupEvent,
} from '../../followups/followup.js';
import { cancelFollowup, retryFollowup } from '../../followups/operator-actions.js';
import { scheduleFollowup } from '../../followups/schedule-followup.js';
import { parseInput } from '../../validation.js';
import { errorRef, json, jsonSchemaOf, queryParametersOf, ref } from '../openapi.js';
import type { RouteModule } from '../route-module.js';


const MAX_IDEMPOTENCY_KEY = 200;

/** The `Idempotency-Key` header, checked like the body's `idempotencyKey`; both may be given only if equal. */
export function idempotencyKeyOf(header: string | string[] | undefined, body: unknown): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) throw new ValidationError('Idempotency-Key: give the header once', 'Idempotency-Key');
  if (header.length === 0 || header.length > MAX_IDEMPOTENCY_KEY) {
    throw new ValidationError(`Idempotency-Key: must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`, 'Idempotency-Key');
  }
  const fromBody = (body as { idempotencyKey?: unknown } | null | undefined)?.idempotencyKey;
  if (fromBody !== undefined && fromBody !== header) {
    throw new ValidationError('idempotencyKey: differs from the Idempotency-Key header; give one or make them equal', 'idempotencyKey');
  }
  return header;
}

const withEvents = (result: { followup: FollowupRow & { phone: string }; events: FollowupEventRow[] }): FollowupWithEvents => ({
  ...toFollowup(result.followup),
  events: result.events.map(toFollowupEvent),
});

export const followupRoutes: RouteModule = {
  name: 'followups',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    app.post('/v1/followups', async (request, reply) => {
      const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key'], request.body);
      const { followup, created } = await scheduleFollowup(ctx, request.body, { idempotencyKey });
      if (created) {
        ctx.log.info(
          { followupId: followup.id, leadId: followup.lead_id, phone: followup.phone, stage: 'scheduled', dueAt: followup.due_at },
          'follow-up scheduled',
        );
      }
      return reply
        .code(created ? 201 : 200)
        .header('location', `/v1/followups/${followup.id}`)
        .send({ id: followup.id, leadId: followup.lead_id, status: followup.status, dueAt: new Date(followup.due_at).toISOString() } satisfies ScheduledFollowup);
    });

    app.get('/v1/followups', async (request) => {
      const page = await listFollowups(ctx.db, request.query);
      return { items: page.items.map(toFollowup), nextCursor: page.nextCursor } satisfies FollowupPage;
    });

    app.get<{ Params: { id: string } }>('/v1/followups/:id', async (request) => withEvents(await getFollowup(ctx.db, request.params.id)));

    app.post<{ Params: { id: string } }>('/v1/followups/:id/cancel', async (request) => {
      const body = parseInput(cancelFollowupSchema, request.body);
      return withEvents(await cancelFollowup(ctx, request.params.id, body?.reason ?? 'operator'));
    });

    app.post<{ Params: { id: string } }>('/v1/followups/:id/retry', async (request) =>
      withEvents(await retryFollowup(ctx, request.params.id)),
    );
  },
  openapi: {
    schemas: {
      ScheduleFollowupRequest: {
        ...jsonSchemaOf(scheduleFollowupSchema),
        description:
          'Give at most one of delayHours, delayMinutes and dueAt (none = due now). `message` null or absent: composed at send time. ' +
          'Phone numbers are normalised (55 + area code, Brazilian 9th digit added).',
      },
      ScheduledFollowup: {
        type: 'object',
        required: ['id', 'leadId', 'status', 'dueAt'],
        properties: {
          id: { type: 'string', format: 'uuid' },
          leadId: { type: 'string', format: 'uuid' },
          status: { type: 'string', enum: [...STATUSES] },
          dueAt: { type: 'string', format: 'date-time' },
        },
      },
      Followup: {
        type: 'object',
        properties: {
          id: { type: 'string', format: 'uuid' },
          leadId: { type: 'string', format: 'uuid' },
          phone: { type: ['string', 'null'] },
          enrollmentId: { type: ['string', 'null'], format: 'uuid' },
          campaign: { type: ['string', 'null'] },
          step: { type: ['integer', 'null'] },
          intent: { type: ['string', 'null'] },
          status: { type: 'string', enum: [...STATUSES] },
          dueAt: { type: 'string', format: 'date-time' },
          plannedAt: { type: 'string', format: 'date-time' },
          message: { type: ['string', 'null'] },
          sentText: { type: ['string', 'null'] },
          composer: { type: ['string', 'null'] },
          attempts: { type: 'integer' },
          providerMessageId: { type: ['string', 'null'] },
          cancelReason: { type: ['string', 'null'] },
          deferReason: { type: ['string', 'null'] },
          lastError: { type: ['string', 'null'] },
          sentAt: { type: ['string', 'null'], format: 'date-time' },
          createdAt: { type: 'string', format: 'date-time' },
          updatedAt: { type: 'string', format: 'date-time' },
        },
      },
      FollowupEvent: {
        type: 'object',
        properties: {
          at: { type: 'string', format: 'date-time' },
          from: { type: ['string', 'null'], enum: [...STATUSES, null] },
          to: { type: 'string', enum: [...STATUSES] },
          reason: { type: ['string', 'null'] },
          detail: { type: ['object', 'null'] },
        },
      },
      FollowupWithEvents: {
        allOf: [ref('Followup'), { type: 'object', properties: { events: { type: 'array', items: ref('FollowupEvent') } } }],
      },
      FollowupPage: {
        type: 'object',
        required: ['items', 'nextCursor'],
        properties: {
          items: { type: 'array', items: ref('Followup') },
          nextCursor: { type: ['string', 'null'], description: 'pass as `cursor` for the next page; null on the last page' },
        },
      },
      CancelFollowupRequest: jsonSchemaOf(cancelFollowupSchema.unwrap()),
    },
    paths: {
      '/v1/followups': {
        post: {
          summary: 'Schedule a follow-up',
          operationId: 'scheduleFollowup',
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              schema: { type: 'string', minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY },
              description: 'same as the body field idempotencyKey; a repeat returns the first follow-up with 200',
            },
          ],
          requestBody: { required: true, content: { 'application/json': { schema: ref('ScheduleFollowupRequest') } } },
          responses: {
            '201': json(ref('ScheduledFollowup'), 'Scheduled'),
            '200': json(ref('ScheduledFollowup'), 'The idempotency key matched an earlier request: that follow-up'),
            '400': errorRef('BadRequest'),
            '409': errorRef('Conflict'),
            '413': errorRef('PayloadTooLarge'),
            '415': errorRef('UnsupportedMediaType'),
          },
        },
        get: {
          summary: 'List follow-ups, newest first',
          operationId: 'listFollowups',
          parameters: queryParametersOf(listFollowupsSchema),
          responses: { '200': json(ref('FollowupPage'), 'One page'), '400': errorRef('BadRequest') },
        },
      },
      '/v1/followups/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
        get: {
          summary: 'One follow-up with its audit trail',
          operationId: 'getFollowup',
          responses: { '200': json(ref('FollowupWithEvents'), 'The follow-up'), '400': errorRef('BadRequest'), '404': errorRef('NotFound') },
        },
      },
      '/v1/followups/{id}/cancel': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
        post: {
          summary: 'Cancel a pending or queued follow-up',
          operationId: 'cancelFollowup',
          requestBody: { required: false, content: { 'application/json': { schema: ref('CancelFollowupRequest') } } },
          responses: {
            '200': json(ref('FollowupWithEvents'), 'Cancelled (reason defaults to "operator")'),
            '400': errorRef('BadRequest'),
            '404': errorRef('NotFound'),
            '409': errorRef('Conflict'),
          },
        },
      },
      '/v1/followups/{id}/retry': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
        post: {
          summary: 'Put a failed follow-up back to pending, due now',
          operationId: 'retryFollowup',
          responses: {
            '200': json(ref('FollowupWithEvents'), 'Pending again'),
            '400': errorRef('BadRequest'),
            '404': errorRef('NotFound'),
            '409': errorRef('Conflict'),
          },
        },
      },
    },
  },
};
