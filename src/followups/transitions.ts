/**
 * Every status change of a follow-up, in one place. Each is a conditional UPDATE
 * (`WHERE status = <expected>`) that appends its audit event in the same
 * statement, so a transition either happens with its event or not at all, and
 * two processes racing for the same row can never both win.
 *
 * Lifecycle (DESIGN.md): pending → queued → sending → executed | failed;
 * deferred back to pending with a reason; any non-terminal → cancelled.
 */
import type { Queryable, Statement } from '../db/db.js';
import type { FollowupRow, FollowupStatus } from './followup.js';

export interface ClaimedDue {
  id: string;
  due_at: Date;
}

/**
 * The relay's claim: locks due pending rows (SKIP LOCKED, so relays never wait
 * on each other), stamps a short claim and returns them; the status stays
 * `pending` until the queue has really accepted the job (see markQueued).
 * The same statement reports the next due time after `now`, so an idle relay
 * makes one query per wake-up.
 *
 * Rows that came due within the last `recentMs` are taken first, then the
 * oldest overdue ones fill the batch. After an outage the backlog is hours
 * overdue; without this, every follow-up coming due during the drain would wait
 * behind all of it (due order) instead of going out on time. Both parts are
 * range scans of the partial due index.
 */
export const claimDueSql: Statement = {
  name: 'followups_claim_due',
  // A claim lost in a database crash is made again: the rows are still pending, and a job
  // already published for them is skipped by the worker's claim until they are queued again.
  relaxedDurability: true,
  text: `
WITH recent AS (
  SELECT id FROM follow_ups
   WHERE status = 'pending' AND due_at <= $1::timestamptz
     AND due_at > $1::timestamptz - $4::int * interval '1 millisecond'
     AND (claimed_until IS NULL OR claimed_until < $1::timestamptz)
   ORDER BY due_at
   LIMIT $2::int
   FOR UPDATE SKIP LOCKED
), older AS (
  SELECT id FROM follow_ups
   WHERE status = 'pending' AND due_at <= $1::timestamptz - $4::int * interval '1 millisecond'
     AND (claimed_until IS NULL OR claimed_until < $1::timestamptz)
   ORDER BY due_at
   LIMIT (CASE WHEN $5::boolean THEN $2::int - (SELECT count(*) FROM recent) ELSE 0 END)
   FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE follow_ups f
     SET claimed_until = $1::timestamptz + $3::int * interval '1 millisecond'
    FROM (SELECT id FROM recent UNION ALL SELECT id FROM older) due WHERE f.id = due.id
  RETURNING f.id, f.due_at
)
SELECT id, due_at, NULL::timestamptz AS next_due_at FROM claimed
UNION ALL
SELECT NULL, NULL, (SELECT min(due_at) FROM follow_ups WHERE status = 'pending' AND due_at > $1::timestamptz)`,
};

/** How far back "came due just now" reaches for the claim's first pick (see claimDueSql). */
export const RECENT_DUE_MS = 10_000;

export async function claimDueFollowups(
  db: Queryable,
  options: {
    now: Date;
    limit: number;
    claimMs: number;
    recentMs?: number;
    /** False: only rows that came due within `recentMs` (the relay holds a backlog back). */
    includeOverdue?: boolean;
  },
): Promise<{ claimed: ClaimedDue[]; nextDueAt: Date | null }> {
  const { rows } = await db.query<{ id: string | null; due_at: Date | null; next_due_at: Date | null }>(claimDueSql, [
    options.now,
    options.limit,
    options.claimMs,
    options.recentMs ?? RECENT_DUE_MS,
    options.includeOverdue ?? true,
  ]);
  const claimed: ClaimedDue[] = [];
  let nextDueAt: Date | null = null;
  for (const row of rows) {
    if (row.id) claimed.push({ id: row.id, due_at: row.due_at! });
    else nextDueAt = row.next_due_at;
  }
  return { claimed, nextDueAt };
}

/** After the queue accepted the jobs: claimed pending → queued, with a lease. Returns the ids moved. */
const markQueuedSql: Statement = {
  name: 'followups_mark_queued',
  // Lost in a crash: the rows are pending with a claim, which the worker's claim accepts.
  relaxedDurability: true,
  text: `
WITH target AS (
  -- Locked in id order, as the worker's batched claim locks them: the two never wait on each other in a cycle.
  SELECT id FROM follow_ups
   WHERE id = ANY($1::uuid[]) AND status = 'pending' AND claimed_until IS NOT NULL
   ORDER BY id
     FOR UPDATE
), moved AS (
  UPDATE follow_ups f
     SET status = 'queued', claimed_until = NULL, defer_reason = NULL,
         lease_until = $2::timestamptz + $3::int * interval '1 millisecond', updated_at = $2::timestamptz
    FROM target t WHERE f.id = t.id
  RETURNING f.id
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason)
  SELECT id, $2::timestamptz, 'pending', 'queued', 'published' FROM moved
)
SELECT id FROM moved`,
};

export async function markQueued(db: Queryable, ids: string[], now: Date, leaseMs: number): Promise<string[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(markQueuedSql, [ids, now, leaseMs]);
  return rows.map((r) => r.id);
}

/** Gives claims back (the publish failed and the relay will not run them itself). */
export async function releaseClaims(db: Queryable, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `UPDATE follow_ups SET claimed_until = NULL WHERE id = ANY($1::uuid[]) AND status = 'pending'`,
    [ids],
  );
}

export type ClaimedFollowup = FollowupRow & {
  from_status: FollowupStatus;
  stop_reason: string | null;
  phone: string;
  lead_name: string | null;
  lead_time_zone: string | null;
  lead_metadata: Record<string, unknown>;
  lead_number_checked_at: Date | null;
  /** The fan's @lid, when a webhook showed one (the pre-send check asks under it too). */
  lead_whatsapp_lid: string | null;
  /** The JID WhatsApp answered /chat/whatsappNumbers with: the one spelling its chat is filed under. */
  lead_whatsapp_jid: string | null;
  /** The number the lead is bound to (leads.whatsapp_number); null: not bound yet. */
  lead_whatsapp_number: string | null;
};

/**
 * The worker's claim: queued → sending (or a relay-claimed pending row, when the
 * worker is faster than the relay's markQueued), in one statement that also
 * re-checks every reason to stop. If the lead replied after the follow-up's
 * anchor, opted out, was handed to a person, converted, was erased or has no
 * WhatsApp, the row is cancelled with that reason instead (the opt-out
 * confirmation is not stopped by the opt-out or a reply: opt-out-confirmation.ts).
 *
 * The follow-up is locked FOR UPDATE and the lead FOR SHARE. A reply recorded at
 * the same moment (which locks the lead's open follow-ups, then updates the lead)
 * either commits first — the claim then sees it and cancels — or waits for this
 * claim, and the follow-up was already on its way. One row claims through the
 * batched statement below, so the rule is written once.
 */
export async function claimForSending(
  db: Queryable,
  options: { id: string; now: Date; leaseMs: number },
): Promise<ClaimedFollowup | null> {
  const [claimed] = await claimForSendingBatch(db, [options]);
  return claimed ?? null;
}

/**
 * The same claim for many follow-ups in one statement: a worker process
 * coalesces the claims its concurrent jobs issue within a moment (see
 * src/worker/batch-transitions.ts). Each row keeps its own conditional
 * transition, stop re-check and event; only the round trip, the commit and the
 * statement-level triggers are shared. Rows are locked in id order so two
 * batches can never wait on each other in a cycle.
 */
export const claimForSendingBatchSql: Statement & { batched?: boolean } = {
  name: 'followups_claim_for_sending_batch',
  batched: true,
  genericPlan: true,
  text: `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::int[]) AS v(id, now, lease_ms)
), target AS (
  SELECT f.id, f.status AS from_status, i.now, i.lease_ms,
         CASE
           -- The opt-out confirmation answers the opt-out and the fan's messages: neither stops it
           -- (followups/opt-out-confirmation.ts); everything else does.
           WHEN l.opted_out_at IS NOT NULL AND f.intent IS DISTINCT FROM 'opt_out_confirmation' THEN 'opted_out'
           WHEN l.handoff_at IS NOT NULL THEN 'handoff'
           WHEN l.converted_at IS NOT NULL THEN 'converted'
           WHEN l.erased_at IS NOT NULL THEN 'erased'
           WHEN l.number_valid = false THEN 'invalid_number'
           WHEN f.intent = 'opt_out_confirmation' THEN NULL
           WHEN l.last_inbound_at > f.anchor_at THEN 'lead_replied'
           -- Planned in the same second as the reply: WhatsApp stamps whole seconds, so we cannot
           -- tell which came first, and the respectful side wins (record-inbound.ts).
           WHEN date_trunc('second', l.last_inbound_at) + interval '1 second' > f.created_at THEN 'lead_replied'
         END AS stop_reason
    FROM input i JOIN follow_ups f ON f.id = i.id JOIN leads l ON l.id = f.lead_id
   WHERE f.status = 'queued'
      OR (f.status = 'pending' AND f.claimed_until IS NOT NULL AND f.due_at <= i.now)
   ORDER BY f.id
     FOR UPDATE OF f FOR SHARE OF l
), moved AS (
  UPDATE follow_ups f
     SET status = CASE WHEN t.stop_reason IS NULL THEN 'sending' ELSE 'cancelled' END,
         cancel_reason = t.stop_reason,
         attempts = f.attempts + CASE WHEN t.stop_reason IS NULL THEN 1 ELSE 0 END,
         sending_started_at = CASE WHEN t.stop_reason IS NULL THEN t.now END,
         lease_until = CASE WHEN t.stop_reason IS NULL THEN t.now + t.lease_ms * interval '1 millisecond' END,
         claimed_until = NULL, defer_reason = NULL, updated_at = t.now
    FROM target t WHERE f.id = t.id
  RETURNING f.*, t.from_status, t.stop_reason, t.now AS claimed_at
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason)
  SELECT id, claimed_at, from_status, status, COALESCE(stop_reason, 'claimed') FROM moved
)
SELECT m.*, l.phone, l.name AS lead_name, l.time_zone AS lead_time_zone, l.metadata AS lead_metadata,
       l.number_checked_at AS lead_number_checked_at, l.whatsapp_lid AS lead_whatsapp_lid, l.whatsapp_jid AS lead_whatsapp_jid,
       l.whatsapp_number AS lead_whatsapp_number
  FROM moved m JOIN leads l ON l.id = m.lead_id`,
};

/** Claims many rows at once; the result has one entry per input, null where the row was not claimable. Ids must be distinct. */
export async function claimForSendingBatch(
  db: Queryable,
  items: Array<{ id: string; now: Date; leaseMs: number }>,
): Promise<Array<ClaimedFollowup | null>> {
  const { rows } = await db.query<ClaimedFollowup & { claimed_at?: Date }>(claimForSendingBatchSql, [
    items.map((i) => i.id),
    items.map((i) => i.now),
    items.map((i) => i.leaseMs),
  ]);
  const byId = new Map<string, ClaimedFollowup>();
  for (const row of rows) {
    delete row.claimed_at;
    byId.set(row.id, row);
  }
  return items.map((i) => byId.get(i.id) ?? null);
}

/**
 * Right before a send: extends the lease of a `sending` row that this claim still holds —
 * fenced by the claim's `sending_started_at`, and only while the lease has not run out. False
 * means the sweeper may already own the row (the executor was frozen past its lease): don't send.
 */
export async function renewSendingLease(
  db: Queryable,
  options: { id: string; startedAt: Date | null; now: Date; leaseMs: number },
): Promise<boolean> {
  const { rowCount } = await db.query(
    {
      name: 'followups_renew_sending_lease',
      text: `UPDATE follow_ups SET lease_until = $3::timestamptz + $4::int * interval '1 millisecond'
              WHERE id = $1::uuid AND status = 'sending' AND sending_started_at IS NOT DISTINCT FROM $2::timestamptz
                AND lease_until > $3::timestamptz`,
    },
    [options.id, options.startedAt, options.now, options.leaseMs],
  );
  return rowCount > 0;
}

/** Stores the composed text before the send, so an ambiguous send can be reconciled by text. */
export async function recordComposedText(
  db: Queryable,
  options: { id: string; text: string; composer: string; variant?: number | null },
): Promise<boolean> {
  const { rowCount } = await db.query(
    {
      name: 'followups_record_text_variant',
      text: `UPDATE follow_ups SET sent_text = $2::text, composer = $3::text, variant = $4::int WHERE id = $1::uuid AND status = 'sending'`,
    },
    [options.id, options.text, options.composer, options.variant ?? null],
  );
  return rowCount > 0;
}

/**
 * sending → executed, with the provider's message id; also logs the message in
 * the conversation, stamps the lead's last outbound time and, with forwarding on,
 * writes `followup.sent` for the agent (src/forwarding/), in one statement.
 */
export async function markExecuted(
  db: Queryable,
  options: { id: string; providerMessageId: string; text: string; composer: string; now: Date; reason?: string },
): Promise<boolean> {
  const [done] = await markExecutedBatch(db, [options]);
  return done ?? false;
}

/** markExecuted for many rows in one statement (see claimForSendingBatchSql); each row keeps its own condition and event. */
export const markExecutedBatchSql: Statement & { batched?: boolean } = {
  name: 'followups_mark_executed_batch',
  batched: true,
  genericPlan: true,
  // Lost in a crash, the row stays `sending`: the sweeper asks the provider and finds the
  // message (reconciled), so nothing is sent twice. The claim before the send stays durable.
  relaxedDurability: true,
  text: `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
           AS v(id, provider_message_id, text, composer, now, reason)
), target AS (
  SELECT f.id, i.provider_message_id, i.text, i.composer, i.now, i.reason
    FROM input i JOIN follow_ups f ON f.id = i.id
   WHERE f.status = 'sending'
   ORDER BY f.id
     FOR UPDATE OF f
), done AS (
  UPDATE follow_ups f
     SET status = 'executed', provider_message_id = t.provider_message_id, sent_text = t.text, composer = t.composer,
         sent_at = t.now, lease_until = NULL, last_error = NULL, updated_at = t.now
    FROM target t WHERE f.id = t.id
  RETURNING f.id, f.lead_id, f.campaign, f.step, t.provider_message_id, t.text, t.now, t.reason
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
  SELECT id, now, 'sending', 'executed', reason, jsonb_build_object('providerMessageId', provider_message_id) FROM done
), logged AS (
  INSERT INTO messages (lead_id, direction, source, text, provider_message_id, follow_up_id, at)
  SELECT lead_id, 'out', 'followup', text, provider_message_id, id, now FROM done
  ON CONFLICT (lead_id, provider_message_id) DO NOTHING
), lead AS (
  UPDATE leads l SET last_outbound_at = d.at, updated_at = d.at
    FROM (SELECT lead_id, max(now) AS at FROM done GROUP BY lead_id ORDER BY lead_id) d
   WHERE l.id = d.lead_id
  RETURNING l.id
), forwarded AS (
  -- followup.sent for the agent (src/forwarding/): read from lead, so drawn once the lead is locked.
  INSERT INTO agent_outbox (lead_id, type, occurred_at, data)
  SELECT d.lead_id, 'followup.sent', d.now,
         jsonb_build_object('followupId', d.id, 'text', d.text, 'providerMessageId', d.provider_message_id, 'sentAt', agent_iso(d.now),
                            'campaign', d.campaign, 'step', d.step)
    FROM lead JOIN done d ON d.lead_id = lead.id, agent_forwarding s
   WHERE s.enabled
   ORDER BY d.now, d.id
)
SELECT id FROM done`,
};

/** Marks many rows executed; one boolean per input (false: the row was no longer `sending`). Ids must be distinct. */
export async function markExecutedBatch(
  db: Queryable,
  items: Array<{ id: string; providerMessageId: string; text: string; composer: string; now: Date; reason?: string }>,
): Promise<boolean[]> {
  const { rows } = await db.query<{ id: string }>(markExecutedBatchSql, [
    items.map((i) => i.id),
    items.map((i) => i.providerMessageId),
    items.map((i) => i.text),
    items.map((i) => i.composer),
    items.map((i) => i.now),
    items.map((i) => i.reason ?? 'sent'),
  ]);
  const done = new Set(rows.map((r) => r.id));
  return items.map((i) => done.has(i.id));
}

/** A generic conditional transition with its event: `from` (one or several) → `to`. */
async function transition(
  db: Queryable,
  options: {
    id: string;
    from: FollowupStatus[];
    to: FollowupStatus;
    now: Date;
    reason: string;
    detail?: Record<string, unknown>;
    set?: string;
    values?: unknown[];
  },
): Promise<FollowupRow | null> {
  const extra = options.set ? `, ${options.set}` : '';
  const { rows } = await db.query<FollowupRow>(
    `
WITH target AS (
  SELECT id, status AS from_status FROM follow_ups WHERE id = $1::uuid AND status = ANY($2::text[]) FOR UPDATE
), moved AS (
  UPDATE follow_ups f SET status = $3::text, updated_at = $4::timestamptz, claimed_until = NULL${extra}
    FROM target t WHERE f.id = t.id
  RETURNING f.*, t.from_status
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
  SELECT id, $4::timestamptz, from_status, $3::text, $5::text, $6::jsonb FROM moved
)
SELECT * FROM moved`,
    [options.id, options.from, options.to, options.now, options.reason, options.detail ?? null, ...(options.values ?? [])],
  );
  return rows[0] ?? null;
}

/** sending → failed: permanent error, retries spent, or an ambiguous send that could not be reconciled. */
export function markFailed(
  db: Queryable,
  options: { id: string; now: Date; reason: string; error?: string; from?: FollowupStatus[] },
) {
  return transition(db, {
    id: options.id,
    from: options.from ?? ['sending'],
    to: 'failed',
    now: options.now,
    reason: options.reason,
    detail: options.error ? { error: options.error } : undefined,
    set: 'last_error = $7::text, lease_until = NULL',
    values: [options.error ?? options.reason],
  });
}

/** Any non-terminal → cancelled with a reason (operator, lead_replied, opted_out, invalid_number, ...). */
export function cancelFollowupRow(
  db: Queryable,
  options: { id: string; now: Date; reason: string; from?: FollowupStatus[]; detail?: Record<string, unknown> },
) {
  return transition(db, {
    id: options.id,
    from: options.from ?? ['pending', 'queued'],
    to: 'cancelled',
    now: options.now,
    reason: options.reason,
    detail: options.detail,
    set: 'cancel_reason = $7::text, lease_until = NULL',
    values: [options.reason],
  });
}

/**
 * Back to pending at a later time, with a reason: a transient error, a paused
 * transport, the sending window, the pace or the cap. `giveBackAttempt` undoes
 * the attempt the claim counted (the follow-up was not really tried).
 *
 * A step is never sent earlier than planned, and when one is pushed later the
 * later steps of its enrollment move by the same amount (no burst of catch-up
 * messages); the enrollment remembers the total shift.
 */
const deferSql = `
WITH target AS (
  SELECT id, status AS from_status, due_at AS old_due_at, enrollment_id, step
    FROM follow_ups WHERE id = $1::uuid AND status = ANY($2::text[])
     AND ($10::text[] IS NULL OR campaign = ANY($10::text[])) FOR UPDATE
), moved AS (
  UPDATE follow_ups f
     SET status = 'pending', updated_at = $3::timestamptz, claimed_until = NULL,
         due_at = GREATEST(f.due_at, $4::timestamptz), defer_reason = $5::text, lease_until = NULL,
         sending_started_at = NULL, last_error = COALESCE($6::text, f.last_error),
         attempts = GREATEST(0, f.attempts - CASE WHEN $7::boolean THEN 1 ELSE 0 END)
    FROM target t WHERE f.id = t.id
  RETURNING f.*, t.from_status, t.old_due_at
), shifted AS (
  UPDATE follow_ups later
     SET due_at = later.due_at + (m.due_at - m.old_due_at), updated_at = $3::timestamptz
    FROM moved m
   WHERE $9::boolean AND m.enrollment_id IS NOT NULL AND later.enrollment_id = m.enrollment_id
     AND later.step > m.step AND later.status = 'pending' AND m.due_at > m.old_due_at
  RETURNING later.id
), enrollment AS (
  UPDATE enrollments e
     SET shift_ms = e.shift_ms + (extract(epoch FROM (m.due_at - m.old_due_at)) * 1000)::bigint, updated_at = $3::timestamptz
    FROM moved m
   WHERE $9::boolean AND e.id = m.enrollment_id AND m.due_at > m.old_due_at
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
  SELECT id, $3::timestamptz, from_status, 'pending', $5::text,
         $8::jsonb || jsonb_build_object('dueAt', due_at, 'laterStepsMoved', (SELECT count(*) FROM shifted)) FROM moved
)
SELECT * FROM moved`;

export async function deferFollowup(
  db: Queryable,
  options: {
    id: string;
    now: Date;
    dueAt: Date;
    reason: string;
    error?: string;
    from?: FollowupStatus[];
    giveBackAttempt?: boolean;
    detail?: Record<string, unknown>;
    /** Move the later steps of the enrollment too (default true). */
    shiftLaterSteps?: boolean;
    /** Only when the follow-up belongs to one of these campaigns (an operator's pause per campaign). */
    campaigns?: string[];
  },
): Promise<FollowupRow | null> {
  const { rows } = await db.query<FollowupRow>(deferSql, [
    options.id,
    options.from ?? ['sending'],
    options.now,
    options.dueAt,
    options.reason,
    options.error ?? null,
    options.giveBackAttempt ?? false,
    { ...options.detail, ...(options.error ? { error: options.error } : {}) },
    options.shiftLaterSteps ?? true,
    options.campaigns ?? null,
  ]);
  return rows[0] ?? null;
}

/** failed → pending (operator retry): due now, attempts reset. */
export function retryFailed(db: Queryable, options: { id: string; now: Date; detail?: Record<string, unknown> }) {
  return transition(db, {
    id: options.id,
    from: ['failed'],
    to: 'pending',
    now: options.now,
    reason: 'operator_retry',
    detail: options.detail,
    set: 'due_at = $4::timestamptz, attempts = 0, reconcile_attempts = 0, lease_until = NULL, sending_started_at = NULL',
  });
}

/** Extends the lease of in-flight rows (a long backlog in Redis is not a lost job). */
export async function extendLeases(db: Queryable, ids: string[], now: Date, leaseMs: number): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `UPDATE follow_ups SET lease_until = $2::timestamptz + $3::int * interval '1 millisecond'
      WHERE id = ANY($1::uuid[]) AND status IN ('queued', 'sending')`,
    [ids, now, leaseMs],
  );
}

/** In-flight rows past their lease, oldest first, for the sweeper. */
export const findExpiredLeasesSql: Statement = {
  name: 'followups_expired_leases',
  text: `SELECT f.*, l.phone, l.whatsapp_number FROM follow_ups f JOIN leads l ON l.id = f.lead_id
          WHERE f.status IN ('queued', 'sending') AND f.lease_until < $1::timestamptz
          ORDER BY f.lease_until LIMIT $2::int`,
};

export async function findExpiredLeases(
  db: Queryable,
  options: { now: Date; limit: number },
): Promise<Array<FollowupRow & { phone: string; whatsapp_number?: string | null }>> {
  const { rows } = await db.query<FollowupRow & { phone: string; whatsapp_number?: string | null }>(
    findExpiredLeasesSql,
    [options.now, options.limit],
  );
  return rows;
}

/** Counts a failed reconciliation and pushes the lease out; returns the new count. */
export async function noteReconcileFailure(
  db: Queryable,
  options: { id: string; now: Date; retryMs: number; error: string },
): Promise<number> {
  const { rows } = await db.query<{ reconcile_attempts: number }>(
    `UPDATE follow_ups SET reconcile_attempts = reconcile_attempts + 1, last_error = $4::text,
            lease_until = $2::timestamptz + $3::int * interval '1 millisecond'
      WHERE id = $1::uuid AND status = 'sending' RETURNING reconcile_attempts`,
    [options.id, options.now, options.retryMs, options.error],
  );
  return rows[0]?.reconcile_attempts ?? 0;
}

/** An audit event without a status change (e.g. why the LLM text was rejected). */
export async function appendEvent(
  db: Queryable,
  options: { id: string; at: Date; status: FollowupStatus; reason: string; detail?: Record<string, unknown> },
): Promise<void> {
  await db.query(
    `INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
     VALUES ($1::uuid, $2::timestamptz, $3::text, $3::text, $4::text, $5::jsonb)`,
    [options.id, options.at, options.status, options.reason, options.detail ?? null],
  );
}

/**
 * The operator's "send it now" (`followups send-now`): a pending follow-up becomes due
 * now (never later than it already was), its deferral reason is cleared, and with
 * `ignoreWindow` the row is marked so the send policy skips the sending window for it.
 * pending → pending, with an `operator` event; the update of due_at wakes the relays
 * (migration 001's NOTIFY trigger). Null when the follow-up is not pending.
 */
const bringDueNowSql = `
WITH target AS (
  SELECT id, due_at AS old_due_at FROM follow_ups WHERE id = $1::uuid AND status = 'pending' FOR UPDATE
), moved AS (
  UPDATE follow_ups f
     SET due_at = LEAST(f.due_at, $2::timestamptz), defer_reason = NULL,
         ignore_window = f.ignore_window OR $3::boolean, updated_at = $2::timestamptz
    FROM target t WHERE f.id = t.id
  RETURNING f.*, t.old_due_at
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
  SELECT id, $2::timestamptz, 'pending', 'pending', 'operator',
         $4::jsonb || jsonb_build_object('action', 'send_now', 'ignoreWindow', $3::boolean, 'previousDueAt', old_due_at) FROM moved
)
SELECT * FROM moved`;

export async function bringDueNow(
  db: Queryable,
  options: { id: string; now: Date; ignoreWindow: boolean; detail?: Record<string, unknown> },
): Promise<FollowupRow | null> {
  const { rows } = await db.query<FollowupRow>(bringDueNowSql, [options.id, options.now, options.ignoreWindow, options.detail ?? {}]);
  return rows[0] ?? null;
}

/**
 * Redis lost the queue's jobs (restarted empty, flushed, evicted): every `queued` row's lease
 * ends now, so the next sweep publishes them again at once instead of a lease later. Job ids
 * and the worker's conditional claim make a publish of a job that still exists harmless.
 */
export async function expireQueuedLeases(db: Queryable, now: Date): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `WITH expired AS (
       UPDATE follow_ups SET lease_until = $1::timestamptz
        WHERE status = 'queued' AND lease_until > $1::timestamptz
        RETURNING 1)
     SELECT count(*)::int AS n FROM expired`,
    [now],
  );
  return rows[0]?.n ?? 0;
}
