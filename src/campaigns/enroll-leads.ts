/**
 * Enrolling many leads in a campaign at once — the HTTP bulk route and the CSV
 * import both come here, and so does the single enrollment, so there is one
 * implementation of "who may be enrolled" and "when are the steps due".
 *
 * Set-based: per batch, one statement upserts the leads and one creates the
 * enrollments, their follow-ups and the follow-ups' first events (unnest over
 * arrays, no per-lead round trip). Rows that cannot be enrolled come back with
 * their index and a reason; nothing about one bad row fails the others.
 *
 * One active enrollment per lead is enforced by the partial unique index
 * `enrollments_one_active_per_lead`: the insert says ON CONFLICT DO NOTHING, so
 * two requests racing for the same lead make one enrollment, and the loser
 * reports the lead as already active.
 */
import { phoneHmac } from '../privacy/erasure-key.js';
import type { z } from 'zod';
import type { Clock } from '../clock.js';
import type { Queryable } from '../db/db.js';
import { ValidationError } from '../errors.js';
import { parseInput } from '../validation.js';
import { tryNormalizePhone } from '../whatsapp/phone.js';
import type { Campaign, Campaigns } from './campaign.js';
import { bulkEnrollSchema, type BulkEnrollResult, MAX_BULK_LEADS, MAX_NAME_LENGTH, type RejectReason, type Rejection } from './enrollment-schemas.js';
import { sequenceShiftMs } from './plan-sequence.js';

/** An anchor up to this far in the future is client clock skew and counts as now. */
const FUTURE_TOLERANCE_MS = 60_000;




export interface EnrollRow {
  phone: unknown;
  name?: unknown;
  /** ISO-8601 string or Date; null/absent = now. */
  anchorAt?: unknown;
}



export interface RowOutcome {
  index: number;
  leadId: string | null;
  outcome: 'enrolled' | 'already_active' | 'rejected';
  reason?: RejectReason;
  /** The new enrollment, or the active one found (null when a racing request made it unseen). */
  enrollmentId: string | null;
}

export interface PreparedRow {
  index: number;
  phone: string;
  name: string | null;
  anchorAt: Date;
}

export function findCampaign(campaigns: Campaigns, name: string, field = 'campaign'): Campaign {
  const campaign = campaigns.get(name);
  if (!campaign) {
    throw new ValidationError(`${field}: unknown campaign "${name}" (known: ${[...campaigns.keys()].join(', ') || 'none'})`, field);
  }
  return campaign;
}

export function parseAnchor(value: unknown, now: Date): Date | 'bad_anchor' | 'anchor_in_future' {
  if (value === undefined || value === null || value === '') return now;
  const at = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : new Date(NaN);
  if (Number.isNaN(at.getTime())) return 'bad_anchor';
  if (at.getTime() > now.getTime() + FUTURE_TOLERANCE_MS) return 'anchor_in_future';
  return at.getTime() > now.getTime() ? now : at;
}

/**
 * Checks each row on its own (phone, name, anchor) and against the others
 * (the same lead twice: later rows are duplicates).
 */
export function prepareRows(
  rows: readonly EnrollRow[],
  now: Date,
  options: { requireName?: boolean } = {},
): { prepared: PreparedRow[]; rejected: Rejection[] } {
  const prepared: PreparedRow[] = [];
  const rejected: Rejection[] = [];
  const seen = new Set<string>();
  rows.forEach((row, index) => {
    const shown = typeof row.phone === 'string' || typeof row.phone === 'number' ? String(row.phone) : '';
    const reject = (reason: RejectReason) => rejected.push({ index, phone: shown, reason });
    const phone = tryNormalizePhone(row.phone);
    if (!phone) return reject('bad_phone');
    let name: string | null = null;
    if (row.name !== undefined && row.name !== null) {
      if (typeof row.name !== 'string') return reject('bad_name');
      name = row.name.trim().replace(/\s+/g, ' ') || null;
      if (name && name.length > MAX_NAME_LENGTH) return reject('bad_name');
    }
    if (!name && options.requireName) return reject('empty_name');
    const anchorAt = parseAnchor(row.anchorAt, now);
    if (typeof anchorAt === 'string') return reject(anchorAt);
    if (seen.has(phone)) return reject('duplicate');
    seen.add(phone);
    prepared.push({ index, phone, name, anchorAt });
  });
  return { prepared, rejected };
}

// New leads are inserted; a name given now fills or replaces the stored one, as upsertLead
// does. Leads that are already there and unchanged are neither rewritten nor locked, so
// re-importing a list (the second run) costs index look-ups, not writes (nor the leads'
// BEFORE INSERT trigger, which fires even for a row that then conflicts). Sorted by phone,
// so concurrent batches lock lead rows in the same order (no deadlock).
const upsertLeadsSql = {
  name: 'enroll_upsert_leads',
  text: `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $4::text[]) AS i(phone, name, phone_hmac)
), renamed AS (
  UPDATE leads l SET name = i.name, updated_at = $3::timestamptz
    FROM (SELECT * FROM input ORDER BY phone) i
   WHERE l.phone = i.phone AND i.name IS NOT NULL AND l.name IS DISTINCT FROM i.name
)
INSERT INTO leads (phone, name, phone_hmac, created_at, updated_at)
SELECT i.phone, i.name, i.phone_hmac, $3::timestamptz, $3::timestamptz FROM input i
 WHERE NOT EXISTS (SELECT 1 FROM leads l WHERE l.phone = i.phone)
 ORDER BY i.phone
ON CONFLICT (phone) DO NOTHING`,
};

/**
 * The enrollment itself, in one statement. Leads that must not be written to
 * (stopReasonOf in followups/lead.ts, the same order) and leads with an active
 * enrollment are reported, not enrolled. Each step is due at
 * anchor + delay + shift (plan-sequence.ts computes the shift).
 */
const enrollSql = {
  name: 'enroll_leads',
  text: `
WITH input AS (
  SELECT * FROM unnest($1::int[], $2::text[], $3::timestamptz[], $4::bigint[]) AS i(idx, phone, anchor_at, shift_ms)
), target AS (
  SELECT i.idx, i.anchor_at, i.shift_ms, l.id AS lead_id,
         CASE WHEN l.erased_at IS NOT NULL THEN 'erased'
              WHEN l.opted_out_at IS NOT NULL THEN 'opted_out'
              WHEN l.handoff_at IS NOT NULL THEN 'handoff'
              WHEN l.converted_at IS NOT NULL THEN 'converted'
              WHEN l.number_valid = false THEN 'invalid_number'
         END AS stop_reason,
         a.id AS active_id, a.campaign AS active_campaign
    FROM input i
    JOIN leads l ON l.phone = i.phone
    LEFT JOIN enrollments a ON a.lead_id = l.id AND a.status = 'active'
), enrolled AS (
  INSERT INTO enrollments (lead_id, campaign, anchor_at, shift_ms, created_at, updated_at)
  SELECT lead_id, $5::text, anchor_at, shift_ms, $6::timestamptz, $6::timestamptz
    FROM target WHERE stop_reason IS NULL AND active_id IS NULL
   ORDER BY lead_id
  ON CONFLICT (lead_id) WHERE status = 'active' DO NOTHING
  RETURNING id, lead_id, anchor_at, shift_ms
), planned AS (
  INSERT INTO follow_ups (lead_id, enrollment_id, campaign, step, intent, due_at, planned_at, anchor_at, created_at, updated_at)
  SELECT e.lead_id, e.id, $5::text, s.step, s.intent, d.due_at, d.due_at, $6::timestamptz, $6::timestamptz, $6::timestamptz
    FROM enrolled e
   CROSS JOIN unnest($7::int[], $8::bigint[], $9::text[]) AS s(step, delay_ms, intent)
   CROSS JOIN LATERAL (SELECT e.anchor_at + (s.delay_ms + e.shift_ms) * interval '1 millisecond' AS due_at) d
  RETURNING id, enrollment_id, step, due_at
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
  SELECT id, $6::timestamptz, NULL, 'pending', 'enrolled',
         jsonb_build_object('campaign', $5::text, 'enrollmentId', enrollment_id, 'step', step, 'dueAt', due_at)
    FROM planned
)
SELECT t.idx, t.lead_id, t.stop_reason, t.active_id, t.active_campaign, e.id AS enrollment_id
  FROM target t LEFT JOIN enrolled e ON e.lead_id = t.lead_id`,
};

/**
 * Enrolls rows already checked by prepareRows. `upsertLeads: false` when the
 * caller has written the lead itself (the single enrollment, which also takes a
 * time zone and metadata).
 */
export async function enrollPrepared(
  db: Queryable,
  options: { campaign: Campaign; rows: readonly PreparedRow[]; now: Date; upsertLeads?: boolean },
): Promise<RowOutcome[]> {
  const { campaign, rows, now } = options;
  if (rows.length === 0) return [];
  if (options.upsertLeads !== false) {
    // The keyed hash lets migration 006's trigger carry an erased number's opt-out over to the new lead.
    await db.query(upsertLeadsSql, [rows.map((r) => r.phone), rows.map((r) => r.name), now.toISOString(), rows.map((r) => phoneHmac(r.phone))]);
  }
  const firstDelayMs = campaign.steps[0]!.delayMs;
  const { rows: found } = await db.query<{
    idx: number;
    lead_id: string;
    stop_reason: RejectReason | null;
    active_id: string | null;
    active_campaign: string | null;
    enrollment_id: string | null;
  }>(enrollSql, [
    rows.map((r) => r.index),
    rows.map((r) => r.phone),
    rows.map((r) => r.anchorAt.toISOString()),
    rows.map((r) => sequenceShiftMs(firstDelayMs, r.anchorAt, now)),
    campaign.name,
    now.toISOString(),
    campaign.steps.map((s) => s.step),
    campaign.steps.map((s) => s.delayMs),
    campaign.steps.map((s) => s.intent),
  ]);
  const byIndex = new Map(found.map((r) => [r.idx, r]));
  return rows.map((row): RowOutcome => {
    const r = byIndex.get(row.index);
    // The lead vanished between the two statements (erased meanwhile): nothing to enroll.
    if (!r) return { index: row.index, leadId: null, outcome: 'rejected', reason: 'erased', enrollmentId: null };
    if (r.stop_reason) return { index: row.index, leadId: r.lead_id, outcome: 'rejected', reason: r.stop_reason, enrollmentId: null };
    if (r.enrollment_id) return { index: row.index, leadId: r.lead_id, outcome: 'enrolled', enrollmentId: r.enrollment_id };
    if (r.active_id && r.active_campaign !== campaign.name) {
      return { index: row.index, leadId: r.lead_id, outcome: 'rejected', reason: 'enrolled_in_other_campaign', enrollmentId: r.active_id };
    }
    return { index: row.index, leadId: r.lead_id, outcome: 'already_active', enrollmentId: r.active_id };
  });
}

export async function enrollLeads(
  ctx: { db: Queryable; clock: Clock; campaigns: Campaigns },
  input: { campaign: string; leads: readonly EnrollRow[] },
  options: { requireName?: boolean } = {},
): Promise<BulkEnrollResult> {
  const campaign = findCampaign(ctx.campaigns, input.campaign);
  if (input.leads.length > MAX_BULK_LEADS) {
    throw new ValidationError(`leads: must hold at most ${MAX_BULK_LEADS} leads`, 'leads');
  }
  const now = ctx.clock.now();
  const { prepared, rejected } = prepareRows(input.leads, now, options);
  const outcomes = await enrollPrepared(ctx.db, { campaign, rows: prepared, now });
  let enrolled = 0;
  let alreadyActive = 0;
  for (const o of outcomes) {
    if (o.outcome === 'enrolled') enrolled++;
    else if (o.outcome === 'already_active') alreadyActive++;
    else rejected.push({ index: o.index, phone: String(input.leads[o.index]!.phone), reason: o.reason! });
  }
  rejected.sort((a, b) => a.index - b.index);
  return { enrolled, alreadyActive, rejected };
}

/** The HTTP body of POST /v1/enrollments/bulk, validated. */
export function parseBulkEnrollBody(body: unknown): z.infer<typeof bulkEnrollSchema> {
  return parseInput(bulkEnrollSchema, body);
}
