/**
 * Scheduling one follow-up: the seed's `schedule_followup(phone_number, message,
 * delay_hours, lead_info)`, made safe: validated, normalised, idempotent, and
 * written with its first event in one transaction.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { readDbError } from '../db/db-errors.js';
import { ConflictError, ValidationError } from '../errors.js';
import { stopReasonOf, upsertLead } from './lead.js';
import { parseInput } from '../validation.js';
import { normalizePhone } from '../whatsapp/phone.js';
import type { FollowupRow } from './followup.js';
import { MAX_DELAY_HOURS, scheduleFollowupSchema } from './followup-schemas.js';

/** A dueAt up to this far in the past is treated as "now" (client clock skew). */
const PAST_TOLERANCE_MS = 60_000;


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
    if (dueAt.getTime() > now.getTime() + MAX_DELAY_HOURS * 3_600_000) {
      throw new ValidationError(`dueAt: must be at most ${MAX_DELAY_HOURS / 24} days ahead (as delayHours)`, 'dueAt');
    }
  }
  const idempotencyKey = options.idempotencyKey ?? input.idempotencyKey ?? null;
  const requestHash = idempotencyKey ? hashRequest({ ...input, phone, idempotencyKey: undefined }) : null;
  const { name, timeZone, ...metadata } = input.lead ?? {};
  const repeat = (existing: FollowupRow & { phone: string; idempotency_hash?: string | null }) => {
    assertSameRequest(existing, { phone, message: input.message ?? null, intent: input.intent ?? null, hash: requestHash! }, idempotencyKey!);
    return { followup: existing, created: false };
  };

  // execute
  try {
    return await ctx.db.transaction(async (tx) => {
      if (idempotencyKey) {
        const existing = await findByIdempotencyKey(tx, idempotencyKey);
        if (existing) return repeat(existing);
      }
      const lead = await upsertLead(tx, { phone, name: name ?? null, timeZone: timeZone ?? null, metadata, now });
      const stop = stopReasonOf(lead);
      if (stop === 'opted_out' || stop === 'erased' || stop === 'invalid_number') {
        throw new ConflictError(`the lead ${stop === 'opted_out' ? 'opted out' : stop === 'erased' ? 'was erased' : 'is not on WhatsApp'}; follow-ups are refused`, `lead_${stop}`);
      }
      const { rows } = await tx.query<FollowupRow>(
        `INSERT INTO follow_ups (lead_id, intent, message, due_at, planned_at, anchor_at, idempotency_key, idempotency_hash,
                                 lead_info, created_at, updated_at)
         VALUES ($1::uuid, $2::text, $3::text, $4::timestamptz, $4::timestamptz, $5::timestamptz, $6::text, $8::text,
                 $7::jsonb, $5::timestamptz, $5::timestamptz)
         RETURNING *`,
        [lead.id, input.intent ?? null, input.message ?? null, dueAt, now, idempotencyKey, input.lead ?? null, requestHash],
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
    if (readDbError(error).uniqueViolation && idempotencyKey) {
      const existing = await findByIdempotencyKey(ctx.db, idempotencyKey);
      if (existing) return repeat(existing);
    }
    throw error;
  }
}

/** A stable digest of a request: keys sorted at every level, so `{a, b}` and `{b, a}` are the same request. */
function hashRequest(value: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
        : v;
  return createHash('sha256').update(JSON.stringify(canonical(value))).digest('hex');
}

/**
 * A repeated idempotency key must come with the same request, as payment APIs
 * require: another phone or text under a key already used is a client bug that
 * would otherwise be answered, silently, with someone else's follow-up.
 */
function assertSameRequest(
  existing: FollowupRow & { phone: string; idempotency_hash?: string | null },
  request: { phone: string; message: string | null; intent: string | null; hash: string },
  key: string,
): void {
  const differs: string[] = [];
  if (existing.phone !== request.phone) differs.push('phone');
  if ((existing.message ?? null) !== request.message) differs.push('message');
  if ((existing.intent ?? null) !== request.intent) differs.push('intent');
  if (differs.length === 0 && existing.idempotency_hash && existing.idempotency_hash !== request.hash) differs.push('delay/dueAt or lead');
  if (differs.length > 0) {
    throw new ConflictError(
      `idempotencyKey: "${key}" was already used for follow-up ${existing.id} with a different request (${differs.join(', ')} differ); use a new key for a new request`,
      'idempotency_key_reused',
    );
  }
}

async function findByIdempotencyKey(db: Pick<Db, 'query'>, key: string) {
  const { rows } = await db.query<FollowupRow & { phone: string }>(
    `SELECT f.*, l.phone FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE f.idempotency_key = $1::text`,
    [key],
  );
  return rows[0] ?? null;
}
