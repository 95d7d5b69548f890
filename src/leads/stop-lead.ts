/**
 * Stopping every contact with a lead, for good, with a reason: the lead opted
 * out, a person took the conversation over (handoff), or the lead became a
 * member (converted). The lead is stamped (the first time only: a repeat keeps
 * when and through which message it first happened) and every pending or queued
 * follow-up is cancelled with that reason; the active enrollment stops. The
 * worker's claim re-checks the stamp, so a follow-up already queued in Redis is
 * cancelled when it comes out.
 *
 * Lock order, as in recordInboundMessage and the worker's claim: the lead's open
 * follow-ups first (FOR UPDATE, in id order), then the lead row. Either this
 * commits first and the claim finds the row cancelled or sees the stamp, or the
 * claim wins and that one follow-up was already on its way (`sending`).
 */
import type { Clock } from '../clock.js';
import type { Db, Queryable } from '../db/db.js';
import { cancelFollowupRow } from '../followups/transitions.js';
import { type AgentEventType, recordAgentEvent } from '../forwarding/record-agent-event.js';
import { phoneHmac } from '../privacy/erasure-key.js';
import type { LeadRow } from '../followups/lead.js';
import { leadByPhoneSql } from './sql/leads.js';

export type StopReason = 'opted_out' | 'handoff' | 'converted';

const AGENT_EVENT_OF = { opted_out: 'lead.opted_out', handoff: 'lead.handed_off', converted: 'lead.converted' } as const satisfies Record<StopReason, AgentEventType>;

export interface StopLeadInput {
  /** Canonical phone (normalizePhone). */
  phone: string;
  reason: StopReason;
  /** When it happened (the message's time); default now. */
  at?: Date;
  /** The WhatsApp message that carried it (opt-out: kept as opt_out_message_id). */
  messageId?: string | null;
  /** Through what: 'whatsapp' (webhook), 'api', ... (opt-out: kept as opt_out_source). */
  source: string;
  /** Create the lead if the number is unknown (an opt-out must hold even for a number never seen). */
  createIfMissing?: boolean;
  /**
   * Runs in the same transaction, after the stamp and the cancellations (the lead locked): the
   * webhook schedules the opt-out confirmation here, so it exists exactly when the opt-out does.
   */
  inTransaction?: (tx: Queryable, stopped: { leadId: string; changed: boolean }) => Promise<void>;
}

export interface StopLeadResult {
  lead: LeadRow;
  /** False when the lead was already stopped for this reason (nothing new was stamped). */
  changed: boolean;
  created: boolean;
  cancelled: number;
}

/**
 * Locks the lead's pending and queued follow-ups (the claim's lock order: follow-ups before the
 * lead). `keepOptOutConfirmation`: not the opt-out confirmation (a repeated opt-out must not
 * cancel the answer to the first; followups/opt-out-confirmation.ts).
 */
export async function lockOpenFollowups(tx: Queryable, leadId: string, anchoredBefore?: Date, keepOptOutConfirmation = false): Promise<string[]> {
  const { rows } = await tx.query<{ id: string }>(
    `SELECT id FROM follow_ups
      WHERE lead_id = $1::uuid AND status IN ('pending', 'queued')
        AND ($2::timestamptz IS NULL OR anchor_at < $2::timestamptz)
        AND NOT ($3::boolean AND intent IS NOT DISTINCT FROM 'opt_out_confirmation')
      ORDER BY id
      FOR UPDATE`,
    [leadId, anchoredBefore ?? null, keepOptOutConfirmation],
  );
  return rows.map((r) => r.id);
}

/** Cancels locked follow-ups one by one through the one transition, then stops the lead's active enrollment. */
export async function cancelLocked(
  tx: Queryable,
  options: { leadId: string; ids: string[]; reason: string; now: Date; detail?: Record<string, unknown>; anchoredBefore?: Date },
): Promise<number> {
  let cancelled = 0;
  for (const id of options.ids) {
    if (await cancelFollowupRow(tx, { id, now: options.now, reason: options.reason, detail: options.detail })) cancelled++;
  }
  // Migration 002's trigger stops the enrollment when one of its follow-ups is cancelled;
  // this covers an enrollment with nothing left to cancel (its last step in flight).
  await tx.query(
    `UPDATE enrollments SET status = 'stopped', stop_reason = $2::text, updated_at = $3::timestamptz
      WHERE lead_id = $1::uuid AND status = 'active' AND ($4::timestamptz IS NULL OR anchor_at < $4::timestamptz)`,
    [options.leadId, options.reason, options.now, options.anchoredBefore ?? null],
  );
  return cancelled;
}

const stampSql = `
WITH before AS (
  SELECT id, opted_out_at, handoff_at, converted_at FROM leads WHERE id = $1::uuid FOR UPDATE
)
UPDATE leads l SET
  opted_out_at       = CASE WHEN $2::text = 'opted_out' THEN COALESCE(l.opted_out_at, $3::timestamptz) ELSE l.opted_out_at END,
  opt_out_message_id = CASE WHEN $2::text = 'opted_out' AND l.opted_out_at IS NULL THEN $4::text ELSE l.opt_out_message_id END,
  opt_out_source     = CASE WHEN $2::text = 'opted_out' AND l.opted_out_at IS NULL THEN $5::text ELSE l.opt_out_source END,
  handoff_at         = CASE WHEN $2::text = 'handoff' THEN COALESCE(l.handoff_at, $3::timestamptz) ELSE l.handoff_at END,
  converted_at       = CASE WHEN $2::text = 'converted' THEN COALESCE(l.converted_at, $3::timestamptz) ELSE l.converted_at END,
  updated_at = $6::timestamptz
  FROM before b
 WHERE l.id = b.id
RETURNING l.*, CASE $2::text WHEN 'opted_out' THEN b.opted_out_at IS NULL
                             WHEN 'handoff' THEN b.handoff_at IS NULL
                             ELSE b.converted_at IS NULL END AS changed`;

/** Null when the number is unknown (and createIfMissing is not set) or the lead was erased. */
export async function stopLead(db: Db, input: StopLeadInput, clock: Clock): Promise<StopLeadResult | null> {
  const now = clock.now();
  const at = input.at ?? now;
  return db.transaction(async (tx) => {
    let created = false;
    let found = await tx.query<{ id: string; erased_at: Date | null }>(leadByPhoneSql, [input.phone]);
    if (!found.rows[0]) {
      if (!input.createIfMissing) return null;
      found = await tx.query<{ id: string; erased_at: Date | null }>(
        `INSERT INTO leads (phone, created_at, updated_at, phone_hmac) VALUES ($1::text, $2::timestamptz, $2::timestamptz, $3::text)
         ON CONFLICT (phone) DO UPDATE SET updated_at = EXCLUDED.updated_at RETURNING id, erased_at`,
        [input.phone, now, phoneHmac(input.phone)],
      );
      created = true;
    }
    const leadId = found.rows[0]!.id;
    const ids = await lockOpenFollowups(tx, leadId, undefined, input.reason === 'opted_out');
    const { rows } = await tx.query<LeadRow & { changed: boolean }>(stampSql, [
      leadId,
      input.reason,
      at,
      input.messageId ?? null,
      input.source,
      now,
    ]);
    const { changed, ...lead } = rows[0]!;
    const cancelled = await cancelLocked(tx, { leadId, ids, reason: input.reason, now, detail: { source: input.source } });
    // Only the first time: a repeat changes nothing the agent does not already know (the lead is locked by stampSql).
    if (changed) {
      await recordAgentEvent(tx, {
        leadId,
        type: AGENT_EVENT_OF[input.reason],
        at,
        data: { source: input.source, messageId: input.messageId ?? null, followupsCancelled: cancelled },
      });
    }
    await input.inTransaction?.(tx, { leadId, changed });
    return { lead, changed, created, cancelled };
  });
}
