/**
 * Every statement that changes a follow-up's row, written out in full so each one can be
 * found by name or by grep. The functions that run them, and the lifecycle they implement,
 * are in ../transitions.ts.
 *
 * A transition is a conditional UPDATE (`WHERE status = <expected>`) that appends its audit
 * event in the same statement, so a transition either happens with its event or not at
 * all, and two processes racing for the same row can never both win.
 *
 * Parameters are listed above each statement, in order.
 */
import type { Statement } from '../../db/db.js';

/** A named statement that takes arrays, one element per row (src/worker/batch-transitions.ts). */
export type BatchedStatement = Statement & { batched?: boolean };

/**
 * The relay's claim: locks due pending rows (SKIP LOCKED, so relays never wait
 * on each other), stamps a short claim and returns them; the status stays
 * `pending` until the queue has really accepted the job (see markQueuedSql).
 * The same statement reports the next due time after `now`, so an idle relay
 * makes one query per wake-up.
 *
 * Rows that came due within the last `recentMs` are taken first, then the
 * oldest overdue ones fill the batch. After an outage the backlog is hours
 * overdue; without this, every follow-up coming due during the drain would wait
 * behind all of it (due order) instead of going out on time. Both parts are
 * range scans of the partial due index.
 *
 * $1 now, $2 limit, $3 claim ms, $4 recent ms, $5 include overdue rows.
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

/**
 * After the queue accepted the jobs: claimed pending → queued, with a lease. Returns the ids moved.
 * $1 ids, $2 now, $3 lease ms.
 */
export const markQueuedSql: Statement = {
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

/** Gives the relay's claims back. $1 ids. */
export const releaseClaimsSql = `UPDATE follow_ups SET claimed_until = NULL WHERE id = ANY($1::uuid[]) AND status = 'pending'`;

/**
 * The worker's claim, for many follow-ups in one statement: queued → sending (or a
 * relay-claimed pending row, when the worker is faster than the relay's markQueued), with a
 * re-check of every reason to stop. If the lead replied after the follow-up's anchor, opted
 * out, was handed to a person, converted, was erased or has no WhatsApp, the row is
 * cancelled with that reason instead.
 *
 * The follow-up is locked FOR UPDATE and the lead FOR SHARE. A reply recorded at the same
 * moment (which locks the lead's open follow-ups, then updates the lead) either commits
 * first — the claim then sees it and cancels — or waits for this claim, and the follow-up
 * was already on its way.
 *
 * A worker process coalesces the claims its concurrent jobs issue within a moment (see
 * src/worker/batch-transitions.ts). Each row keeps its own conditional transition, stop
 * re-check and event; only the round trip, the commit and the statement-level triggers are
 * shared. Rows are locked in id order so two batches can never wait on each other in a cycle.
 *
 * $1 ids, $2 nows, $3 lease ms (one element per row).
 */
export const claimForSendingBatchSql: BatchedStatement = {
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

/**
 * Right before a send: extends the lease of a `sending` row that this claim still holds,
 * fenced by the claim's `sending_started_at`, and only while the lease has not run out.
 * $1 id, $2 the claim's sending_started_at, $3 now, $4 lease ms.
 */
export const renewSendingLeaseSql: Statement = {
  name: 'followups_renew_sending_lease',
  text: `UPDATE follow_ups SET lease_until = $3::timestamptz + $4::int * interval '1 millisecond'
              WHERE id = $1::uuid AND status = 'sending' AND sending_started_at IS NOT DISTINCT FROM $2::timestamptz
                AND lease_until > $3::timestamptz`,
};

/** Stores the composed text before the send. $1 id, $2 text, $3 composer, $4 variant. */
export const recordComposedTextSql: Statement = {
  name: 'followups_record_text_variant',
  text: `UPDATE follow_ups SET sent_text = $2::text, composer = $3::text, variant = $4::int WHERE id = $1::uuid AND status = 'sending'`,
};

/**
 * sending → executed for many rows in one statement (see claimForSendingBatchSql), each
 * with its own condition and event. Also logs the message in the conversation, stamps the
 * lead's last outbound time and, with forwarding on, writes `followup.sent` for the agent
 * (src/forwarding/).
 *
 * $1 ids, $2 provider message ids, $3 texts, $4 composers, $5 nows, $6 event reasons.
 */
export const markExecutedBatchSql: BatchedStatement = {
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

/**
 * `from` (one or several statuses) → failed, with its event; the error is kept on the row.
 * $1 id, $2 from statuses, $3 now, $4 reason, $5 event detail, $6 error.
 */
export const markFailedSql = `
WITH target AS (
  SELECT id, status AS from_status FROM follow_ups WHERE id = $1::uuid AND status = ANY($2::text[]) FOR UPDATE
), moved AS (
  UPDATE follow_ups f
     SET status = 'failed', updated_at = $3::timestamptz, claimed_until = NULL,
         last_error = $6::text, lease_until = NULL
    FROM target t WHERE f.id = t.id
  RETURNING f.*, t.from_status
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
  SELECT id, $3::timestamptz, from_status, 'failed', $4::text, $5::jsonb FROM moved
)
SELECT * FROM moved`;

/**
 * `from` (one or several statuses) → cancelled, with its event; the reason is kept on the row.
 * $1 id, $2 from statuses, $3 now, $4 reason, $5 event detail.
 */
export const cancelFollowupSql = `
WITH target AS (
  SELECT id, status AS from_status FROM follow_ups WHERE id = $1::uuid AND status = ANY($2::text[]) FOR UPDATE
), moved AS (
  UPDATE follow_ups f
     SET status = 'cancelled', updated_at = $3::timestamptz, claimed_until = NULL,
         cancel_reason = $4::text, lease_until = NULL
    FROM target t WHERE f.id = t.id
  RETURNING f.*, t.from_status
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
  SELECT id, $3::timestamptz, from_status, 'cancelled', $4::text, $5::jsonb FROM moved
)
SELECT * FROM moved`;

/**
 * Back to pending at a later time, with a reason. A step is never sent earlier than
 * planned (GREATEST), and when one is pushed later the later steps of its enrollment move
 * by the same amount (no burst of catch-up messages); the enrollment remembers the total shift.
 *
 * $1 id, $2 from statuses, $3 now, $4 due at, $5 reason, $6 error (null: keep the last one),
 * $7 give back the claim's attempt, $8 event detail, $9 shift the later steps,
 * $10 only these campaigns (null: any).
 */
export const deferSql = `
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

/**
 * failed → pending (the operator's retry): due now, attempts reset, with an `operator_retry` event.
 * $1 id, $2 now, $3 event detail.
 */
export const retryFailedSql = `
WITH target AS (
  SELECT id, status AS from_status FROM follow_ups WHERE id = $1::uuid AND status = 'failed' FOR UPDATE
), moved AS (
  UPDATE follow_ups f
     SET status = 'pending', updated_at = $2::timestamptz, claimed_until = NULL,
         due_at = $2::timestamptz, attempts = 0, reconcile_attempts = 0, lease_until = NULL, sending_started_at = NULL
    FROM target t WHERE f.id = t.id
  RETURNING f.*, t.from_status
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
  SELECT id, $2::timestamptz, from_status, 'pending', 'operator_retry', $3::jsonb FROM moved
)
SELECT * FROM moved`;

/** Extends the lease of in-flight rows. $1 ids, $2 now, $3 lease ms. */
export const extendLeasesSql = `UPDATE follow_ups SET lease_until = $2::timestamptz + $3::int * interval '1 millisecond'
      WHERE id = ANY($1::uuid[]) AND status IN ('queued', 'sending')`;

/** In-flight rows past their lease, oldest first, for the sweeper. $1 now, $2 limit. */
export const findExpiredLeasesSql: Statement = {
  name: 'followups_expired_leases',
  text: `SELECT f.*, l.phone, l.whatsapp_number FROM follow_ups f JOIN leads l ON l.id = f.lead_id
          WHERE f.status IN ('queued', 'sending') AND f.lease_until < $1::timestamptz
          ORDER BY f.lease_until LIMIT $2::int`,
};

/**
 * Counts a failed reconciliation of a `sending` row and pushes its lease out.
 * $1 id, $2 now, $3 retry ms, $4 error.
 */
export const noteReconcileFailureSql = `UPDATE follow_ups SET reconcile_attempts = reconcile_attempts + 1, last_error = $4::text,
            lease_until = $2::timestamptz + $3::int * interval '1 millisecond'
      WHERE id = $1::uuid AND status = 'sending' RETURNING reconcile_attempts`;

/**
 * The operator's "send it now": a pending follow-up becomes due now (never later than it
 * already was), its deferral reason is cleared, and `ignore_window` may be set. pending →
 * pending, with an `operator` event; the update of due_at wakes the relays (migration 001's
 * NOTIFY trigger).
 * $1 id, $2 now, $3 ignore the sending window, $4 event detail.
 */
export const bringDueNowSql = `
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

/** Every `queued` row's lease ends now (Redis lost the queue's jobs). $1 now. */
export const expireQueuedLeasesSql = `WITH expired AS (
       UPDATE follow_ups SET lease_until = $1::timestamptz
        WHERE status = 'queued' AND lease_until > $1::timestamptz
        RETURNING 1)
     SELECT count(*)::int AS n FROM expired`;
