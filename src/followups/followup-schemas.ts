/**
 * What the follow-up routes take (POST /v1/followups, GET /v1/followups, POST
 * /v1/followups/:id/cancel), as zod schemas. Validation and the typed client's types
 * come from here; only zod and pure helpers are imported, so the client can take its
 * types from this file without pulling in the server.
 */
import { z } from 'zod';
import { isTimeZone } from '../time/zoned-time.js';
import { STATUSES } from './followup.js';

export const MAX_MESSAGE_LENGTH = 4096;
export const MAX_DELAY_HOURS = 24 * 90;
/** A lead's metadata (everything in `lead` but name and timeZone), as JSON, in bytes; also the cap of the merged whole. */
export const MAX_LEAD_METADATA_BYTES = 16 * 1024;

/** A phone as a string: a JSON number has lost any + or leading zero. */
export const phoneField = z.string({ error: 'must be a phone number string such as "5581999998888" (not a JSON number)' });

export const leadInputSchema = z
  .object({
    name: z.string().trim().max(120, 'must be at most 120 characters').nullish(),
    timeZone: z.string().refine(isTimeZone, 'must be an IANA time zone such as America/Recife').nullish(),
  })
  .catchall(z.unknown())
  .refine(
    ({ name: _name, timeZone: _timeZone, ...metadata }) => Buffer.byteLength(JSON.stringify(metadata)) <= MAX_LEAD_METADATA_BYTES,
    `metadata (every field but name and timeZone) must be at most ${MAX_LEAD_METADATA_BYTES / 1024} KB of JSON`,
  );

export const scheduleFollowupSchema = z
  .object({
    phone: phoneField,
    message: z
      .string()
      .max(MAX_MESSAGE_LENGTH, `must be at most ${MAX_MESSAGE_LENGTH} characters`)
      .refine((s) => s.trim().length > 0, 'must not be blank')
      .nullish(),
    intent: z
      .string()
      .trim()
      .min(1)
      .max(64, 'must be at most 64 characters')
      .regex(/^[a-z0-9_.-]+$/i, 'letters, digits, _ . - only')
      // Ours alone: the confirmation of an opt-out, exempt from the window and the caps (opt-out-confirmation.ts).
      .refine((intent) => intent.toLowerCase() !== 'opt_out_confirmation', 'opt_out_confirmation is reserved for the opt-out confirmation this service sends itself')
      .nullish(),
    delayHours: z.number().finite().min(0, 'must not be negative').max(MAX_DELAY_HOURS, `must be at most ${MAX_DELAY_HOURS}`).optional(),
    delayMinutes: z.number().finite().min(0, 'must not be negative').max(MAX_DELAY_HOURS * 60, `must be at most ${MAX_DELAY_HOURS * 60}`).optional(),
    dueAt: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with time zone' }).optional(),
    lead: leadInputSchema.optional(),
    idempotencyKey: z.string().min(1).max(200, 'must be at most 200 characters').optional(),
  })
  .strict();

export type ScheduleFollowupInput = z.input<typeof scheduleFollowupSchema>;

export const listFollowupsSchema = z
  .object({
    status: z.enum(STATUSES).optional(),
    phone: z.string().optional(),
    campaign: z.string().max(64).optional(),
    limit: z.coerce.number().int().min(1, 'must be at least 1').max(500, 'must be at most 500').default(50),
    cursor: z.string().max(200).optional(),
  })
  .strict();

/** POST /v1/followups/:id/cancel (the body is optional). */
export const cancelFollowupSchema = z
  .object({
    reason: z.string().trim().min(1, 'must not be blank').max(64, 'must be at most 64 characters').optional(),
  })
  .strict()
  .optional();
