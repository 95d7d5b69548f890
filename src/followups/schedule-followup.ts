/**
 * Scheduling one follow-up: the seed's `schedule_followup(phone_number, message,
 * delay_hours, lead_info)`, made safe: validated, normalised, idempotent, and
 * written with its first event in one transaction.
 */
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { UNIQUE_VIOLATION } from '../db/db.js';
import { ConflictError, ValidationError } from '../errors.js';
import { stopReasonOf, upsertLead } from '../leads/lead.js';
import { parseInput } from '../validation.js';
import { normalizePhone } from '../whatsapp/phone.js';
import type { FollowupRow } from './followup.js';
import { isTimeZone } from '../policy/zoned-time.js';

export const MAX_MESSAGE_LENGTH = 4096;
const MAX_DELAY_HOURS = 24 * 90;
/** A dueAt up to this far in the past is treated as "now" (client clock skew). */
const PAST_TOLERANCE_MS = 60_000;

export const leadInputSchema = z
  .object({
    name: z.string().trim().max(120, 'must be at most 120 characters').nullish(),
    timeZone: z.string().refine(isTimeZone, 'must be an IANA time zone such as America/Recife').nullish(),
  })
  .catchall(z.unknown());

export const scheduleFollowupSchema = z
  .object({
    phone: z.union([z.string(), z.number()]),
    message: z
      .string()
      .max(MAX_MESSAGE_LENGTH, `must be at most ${MAX_MESSAGE_LENGTH} characters`)
      .refine((s) => s.trim().length > 0, 'must not be blank')
      .nullish(),
    intent: z.string().trim().min(1).max(64, 'must be at most 64 characters').regex(/^[a-z0-9_.-]+$/i, 'letters, digits, _ . - only').nullish(),
    delayHours: z.number().finite().min(0, 'must not be negative').max(MAX_DELAY_HOURS, `must be at most ${MAX_DELAY_HOURS}`).optional(),
    delayMinutes: z.number().finite().min(0, 'must not be negative').max(MAX_DELAY_HOURS * 60, `must be at most ${MAX_DELAY_HOURS * 60}`).optional(),
    dueAt: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with time zone' }).optional(),
    lead: leadInputSchema.optional(),
    idempotencyKey: z.string().min(1).max(200, 'must be at most 200 characters').optional(),
  })
  .strict();

export type ScheduleFollowupInput = z.input<typeof scheduleFollowupSchema>;

export interface ScheduleResult {
  followup: FollowupRow & { phone: string };
  /** False when the idempotency key matched an earlier request. */
  created: boolean;
}

export async function scheduleFollowup(
  ctx: { db: Db; clock: Clock },
  rawInput: unknown,
  options: { idempotencyKey?: string } = {},
): Promise<ScheduleResult> {
  // validate
  const input = parseInput(scheduleFollowupSchema, rawInput);
  const phone = normalizePhone(input.phone, 'phone');
  const timing = [input.delayHours, input.delayMinutes, input.dueAt].filter((v) => v !== undefined);
  if (timing.length > 1) {
    throw new ValidationError('delayHours, delayMinutes and dueAt: give at most one of them', 'dueAt');
  }
  const now = ctx.clock.now();
  // plan
  let dueAt = now;
  if (input.delayHours !== undefined) dueAt = new Date(now.getTime() + input.delayHours * 3_600_000);
  if (input.delayMinutes !== undefined) dueAt = new Date(now.getTime() + input.delayMinutes * 60_000);
  if (input.dueAt !== undefined) {
    dueAt = new Date(input.dueAt);
    if (dueAt.getTime() < now.getTime() - PAST_TOLERANCE_MS) {
      throw new ValidationError(`dueAt: is in the past (${input.dueAt}); give a future time or a delay`, 'dueAt');
    }
    if (dueAt < now) dueAt = now;
  }
  const idempotencyKey = options.idempotencyKey ?? input.idempotencyKey ?? null;
  const { name, timeZone, ...metadata } = input.lead ?? {};

  // execute
  try {
    return await ctx.db.transaction(async (tx) => {
      if (idempotencyKey) {
        const existing = await findByIdempotencyKey(tx, idempotencyKey);
        if (existing) return { followup: existing, created: false };
      }
      const lead = await upsertLead(tx, { phone, name: name ?? null, timeZone: timeZone ?? null, metadata, now });
      const stop = stopReasonOf(lead);
      if (stop === 'opted_out' || stop === 'erased' || stop === 'invalid_number') {
        throw new ConflictError(`the lead ${stop === 'opted_out' ? 'opted out' : stop === 'erased' ? 'was erased' : 'is not on WhatsApp'}; follow-ups are refused`, `lead_${stop}`);
      }
      const { rows } = await tx.query<FollowupRow>(
        `INSERT INTO follow_ups (lead_id, intent, message, due_at, planned_at, anchor_at, idempotency_key, lead_info,
                                 created_at, updated_at)
         VALUES ($1::uuid, $2::text, $3::text, $4::timestamptz, $4::timestamptz, $5::timestamptz, $6::text, $7::jsonb,
                 $5::timestamptz, $5::timestamptz)
         RETURNING *`,
        [lead.id, input.intent ?? null, input.message ?? null, dueAt, now, idempotencyKey, input.lead ?? null],
      );
      const followup = rows[0]!;
      await tx.query(
        `INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
         VALUES ($1::uuid, $2::timestamptz, NULL, 'pending', 'scheduled', $3::jsonb)`,
        [followup.id, now, { dueAt: dueAt.toISOString() }],
      );
      return { followup: { ...followup, phone }, created: true };
    });
  } catch (error) {
    // Two identical requests raced: the loser returns what the winner wrote.
    if ((error as { code?: string }).code === UNIQUE_VIOLATION && idempotencyKey) {
      const existing = await findByIdempotencyKey(ctx.db, idempotencyKey);
      if (existing) return { followup: existing, created: false };
    }
    throw error;
  }
}

async function findByIdempotencyKey(db: Pick<Db, 'query'>, key: string) {
  const { rows } = await db.query<FollowupRow & { phone: string }>(
    `SELECT f.*, l.phone FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE f.idempotency_key = $1::text`,
    [key],
  );
  return rows[0] ?? null;
}
