/** /v1/followups: schedule, list, read, cancel and retry follow-ups. */
import { ValidationError } from '../../errors.js';
import { getFollowup, listFollowups } from '../../followups/find-followups.js';
import { cancelFollowupSchema, listFollowupsSchema, scheduleFollowupSchema } from '../../followups/followup-schemas.js';
import {
  type Followup,
  type FollowupEvent,
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
import { z } from 'zod';
import { answer, component, idParams } from '../openapi.js';
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

// The answers, typed against the interfaces the handlers return (so they cannot drift either).
const iso = z.iso.datetime();
const status = z.enum(STATUSES);
const scheduledFollowup: z.ZodType<ScheduledFollowup> = component(
  'ScheduledFollowup',
  z.object({ id: z.uuid(), leadId: z.uuid(), status, dueAt: iso }),
);
const followup: z.ZodType<Followup> = component(
  'Followup',
  z.object({
    id: z.uuid(),
    leadId: z.uuid(),
    phone: z.string().nullable(),
    enrollmentId: z.uuid().nullable(),
    campaign: z.string().nullable(),
    step: z.int().nullable(),
    intent: z.string().nullable(),
    status,
    dueAt: iso,
    plannedAt: iso,
    message: z.string().nullable(),
    sentText: z.string().nullable(),
    composer: z.string().nullable(),
    attempts: z.int(),
    providerMessageId: z.string().nullable(),
    cancelReason: z.string().nullable(),
    deferReason: z.string().nullable(),
    lastError: z.string().nullable(),
    sentAt: iso.nullable(),
    createdAt: iso,
    updatedAt: iso,
  }),
);
const followupEvent: z.ZodType<FollowupEvent> = component(
  'FollowupEvent',
  z.object({ at: iso, from: status.nullable(), to: status, reason: z.string().nullable(), detail: z.record(z.string(), z.unknown()).nullable() }),
);
const followupWithEvents: z.ZodType<FollowupWithEvents> = component(
  'FollowupWithEvents',
  z.intersection(followup, z.object({ events: z.array(followupEvent) })),
);
const followupPage: z.ZodType<FollowupPage> = component(
  'FollowupPage',
  z.object({
    items: z.array(followup),
    nextCursor: z.string().nullable().describe('pass as `cursor` for the next page; null on the last page'),
  }),
);
component('ScheduleFollowupRequest', scheduleFollowupSchema);
component('CancelFollowupRequest', cancelFollowupSchema);

const idempotencyHeader = z.object({
  'Idempotency-Key': z
    .string()
    .min(1)
    .max(MAX_IDEMPOTENCY_KEY)
    .optional()
    .describe('same as the body field idempotencyKey; a repeat returns the first follow-up with 200'),
});

const withEvents = (result: { followup: FollowupRow & { phone: string }; events: FollowupEventRow[] }): FollowupWithEvents => ({
  ...toFollowup(result.followup),
  events: result.events.map(toFollowupEvent),
});

export const followupRoutes: RouteModule = {
  name: 'followups',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    const schedule = {
      summary: 'Schedule a follow-up',
      description:
        'Give at most one of delayHours, delayMinutes and dueAt (none = due now). `message` null or absent: composed at send time. ' +
        'Phone numbers are normalised (55 + area code, Brazilian 9th digit added).',
      operationId: 'scheduleFollowup',
      headers: idempotencyHeader,
      body: scheduleFollowupSchema,
      answers: {
        201: answer('Scheduled', scheduledFollowup),
        200: answer('The idempotency key matched an earlier request: that follow-up', scheduledFollowup),
        400: 'BadRequest',
        409: 'Conflict',
        413: 'PayloadTooLarge',
        415: 'UnsupportedMediaType',
      },
    } as const;
    app.post('/v1/followups', { schema: schedule }, async (request, reply) => {
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

    const list = {
      summary: 'List follow-ups, newest first',
      operationId: 'listFollowups',
      querystring: listFollowupsSchema,
      answers: { 200: answer('One page', followupPage), 400: 'BadRequest' },
    } as const;
    app.get('/v1/followups', { schema: list }, async (request) => {
      const page = await listFollowups(ctx.db, request.query);
      return { items: page.items.map(toFollowup), nextCursor: page.nextCursor } satisfies FollowupPage;
    });

    const get = {
      summary: 'One follow-up with its audit trail',
      operationId: 'getFollowup',
      params: idParams,
      answers: { 200: answer('The follow-up', followupWithEvents), 400: 'BadRequest', 404: 'NotFound' },
    } as const;
    app.get<{ Params: { id: string } }>('/v1/followups/:id', { schema: get }, async (request) => withEvents(await getFollowup(ctx.db, request.params.id)));

    const cancel = {
      summary: 'Cancel a pending or queued follow-up',
      operationId: 'cancelFollowup',
      params: idParams,
      body: cancelFollowupSchema,
      answers: { 200: answer('Cancelled (reason defaults to "operator")', followupWithEvents), 400: 'BadRequest', 404: 'NotFound', 409: 'Conflict' },
    } as const;
    app.post<{ Params: { id: string } }>('/v1/followups/:id/cancel', { schema: cancel }, async (request) => {
      const body = parseInput(cancelFollowupSchema, request.body);
      return withEvents(await cancelFollowup(ctx, request.params.id, body?.reason ?? 'operator'));
    });

    const retry = {
      summary: 'Put a failed follow-up back to pending, due now',
      operationId: 'retryFollowup',
      params: idParams,
      answers: { 200: answer('Pending again', followupWithEvents), 400: 'BadRequest', 404: 'NotFound', 409: 'Conflict' },
    } as const;
    app.post<{ Params: { id: string } }>('/v1/followups/:id/retry', { schema: retry }, async (request) =>
      withEvents(await retryFollowup(ctx, request.params.id)),
    );
  },
};
