/**
 * Every status change of a follow-up, in one place. Each is a conditional UPDATE
 * (`WHERE status = <expected>`) that appends its audit event in the same
 * statement, so a transition either happens with its event or not at all, and
 * two processes racing for the same row can never both win. The statements
 * themselves are written out in ./sql/ (one constant per statement).
 *
 * Lifecycle (DESIGN.md): pending → queued → sending → executed | failed;
 * deferred back to pending with a reason; any non-terminal → cancelled.
 */
import type { Queryable } from '../db/db.js';
import type { FollowupRow, FollowupStatus } from './followup.js';
import { appendEventSql } from './sql/follow-up-events.js';
import {
  bringDueNowSql,
  cancelFollowupSql,
  claimDueSql,
  claimForSendingBatchSql,
  deferSql,
  expireQueuedLeasesSql,
  extendLeasesSql,
  findExpiredLeasesSql,
  markExecutedBatchSql,
  markFailedSql,
  markQueuedSql,
  noteReconcileFailureSql,
  recordComposedTextSql,
  releaseClaimsSql,
  renewSendingLeaseSql,
  retryFailedSql,
} from './sql/follow-ups.js';

export interface ClaimedDue {
  id: string;
  due_at: Date;
}

/** How far back "came due just now" reaches for the claim's first pick (see claimDueSql). */
export const RECENT_DUE_MS = 10_000;

/**
 * The relay's claim (claimDueSql): locks due pending rows, stamps a short claim and
 * returns them with the next due time after `now`. Rows that came due within the last
 * `recentMs` are taken first, then the oldest overdue ones fill the batch.
 */
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
export async function markQueued(db: Queryable, ids: string[], now: Date, leaseMs: number): Promise<string[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(markQueuedSql, [ids, now, leaseMs]);
  return rows.map((r) => r.id);
}

/** Gives claims back (the publish failed and the relay will not run them itself). */
export async function releaseClaims(db: Queryable, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(releaseClaimsSql, [ids]);
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
 * re-checks every reason to stop; a row with a reason to stop is cancelled with
 * it instead (the opt-out confirmation is not stopped by the opt-out or a reply:
 * opt-out-confirmation.ts; claimForSendingBatchSql says how the locks keep a reply recorded
 * at the same moment safe). One row claims through the batched statement, so
 * the rule is written once.
 */
export async function claimForSending(
  db: Queryable,
  options: { id: string; now: Date; leaseMs: number },
): Promise<ClaimedFollowup | null> {
  const [claimed] = await claimForSendingBatch(db, [options]);
  return claimed ?? null;
}

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
  const { rowCount } = await db.query(renewSendingLeaseSql, [options.id, options.startedAt, options.now, options.leaseMs]);
  return rowCount > 0;
}

/** Stores the composed text before the send, so an ambiguous send can be reconciled by text. */
export async function recordComposedText(
  db: Queryable,
  options: { id: string; text: string; composer: string; variant?: number | null },
): Promise<boolean> {
  const { rowCount } = await db.query(recordComposedTextSql, [options.id, options.text, options.composer, options.variant ?? null]);
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

/** sending → failed: permanent error, retries spent, or an ambiguous send that could not be reconciled. */
export async function markFailed(
  db: Queryable,
  options: { id: string; now: Date; reason: string; error?: string; from?: FollowupStatus[] },
): Promise<FollowupRow | null> {
  const { rows } = await db.query<FollowupRow>(markFailedSql, [
    options.id,
    options.from ?? ['sending'],
    options.now,
    options.reason,
    options.error ? { error: options.error } : null,
    options.error ?? options.reason,
  ]);
  return rows[0] ?? null;
}

/** Any non-terminal → cancelled with a reason (operator, lead_replied, opted_out, invalid_number, ...). */
export async function cancelFollowupRow(
  db: Queryable,
  options: { id: string; now: Date; reason: string; from?: FollowupStatus[]; detail?: Record<string, unknown> },
): Promise<FollowupRow | null> {
  const { rows } = await db.query<FollowupRow>(cancelFollowupSql, [
    options.id,
    options.from ?? ['pending', 'queued'],
    options.now,
    options.reason,
    options.detail ?? null,
  ]);
  return rows[0] ?? null;
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
export async function retryFailed(
  db: Queryable,
  options: { id: string; now: Date; detail?: Record<string, unknown> },
): Promise<FollowupRow | null> {
  const { rows } = await db.query<FollowupRow>(retryFailedSql, [options.id, options.now, options.detail ?? null]);
  return rows[0] ?? null;
}

/** Extends the lease of in-flight rows (a long backlog in Redis is not a lost job). */
export async function extendLeases(db: Queryable, ids: string[], now: Date, leaseMs: number): Promise<void> {
  if (ids.length === 0) return;
  await db.query(extendLeasesSql, [ids, now, leaseMs]);
}

/** In-flight rows past their lease, oldest first, for the sweeper. */
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
  const { rows } = await db.query<{ reconcile_attempts: number }>(noteReconcileFailureSql, [
    options.id,
    options.now,
    options.retryMs,
    options.error,
  ]);
  return rows[0]?.reconcile_attempts ?? 0;
}

/** An audit event without a status change (e.g. why the LLM text was rejected). */
export async function appendEvent(
  db: Queryable,
  options: { id: string; at: Date; status: FollowupStatus; reason: string; detail?: Record<string, unknown> },
): Promise<void> {
  await db.query(appendEventSql, [options.id, options.at, options.status, options.reason, options.detail ?? null]);
}

/**
 * The operator's "send it now" (`followups send-now`): a pending follow-up becomes due
 * now (never later than it already was), its deferral reason is cleared, and with
 * `ignoreWindow` the row is marked so the send policy skips the sending window for it.
 * pending → pending, with an `operator` event; the update of due_at wakes the relays
 * (migration 001's NOTIFY trigger). Null when the follow-up is not pending.
 */
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
  const { rows } = await db.query<{ n: number }>(expireQueuedLeasesSql, [now]);
  return rows[0]?.n ?? 0;
}
