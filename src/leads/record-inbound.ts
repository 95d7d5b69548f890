/**
 * A message from the lead: logged in the conversation, stamped on the lead as
 * `last_inbound_at`, and — because a reply stops the sequence — every pending or
 * queued follow-up planned before it is cancelled with `lead_replied` (the
 * trigger of migration 002 then stops the enrollment, and so does this, when
 * its last step is already in flight). The agent's
 * POST /v1/leads/:phone/messages and the Evolution webhook both call this.
 *
 * Only follow-ups whose anchor is before the message are cancelled: one the
 * agent scheduled *after* reading this message (a message recorded late) is an
 * answer to it and stays. That is the same rule the worker re-checks at claim,
 * so the two never disagree.
 *
 * Beyond the anchor, the respectful side wins when the order of reply and
 * planning (the follow-up's `created_at`) is in doubt. WhatsApp stamps whole
 * seconds, so a follow-up planned at 12:00:00.700 and a reply stamped 12:00:00
 * may have been planned before the reply was written: a reply counts until the
 * end of its second (here and in the claim's re-check). And a reply that reached
 * us (`receivedAt`, the webhook's arrival) after a follow-up was planned was not
 * read by whoever planned it: it cancels every follow-up planned before its
 * arrival — when it is the lead's newest message; an older message arriving
 * late adds nothing the agent had not seen in the newer one.
 *
 * Order matters. The follow-ups to cancel are locked first, then the lead is
 * updated — the order the worker's claim takes its locks in (follow-up FOR
 * UPDATE, lead FOR SHARE), so the two wait for each other instead of
 * deadlocking. Either this commits first and the claim finds the row cancelled
 * (or sees the reply), or the claim wins and that follow-up was already on its
 * way (it is `sending`, which a reply does not cancel).
 *
 * Idempotent on (chat, `providerMessageId`) — the lead is the chat; a WhatsApp
 * message id is only unique within its chat: a webhook delivered twice logs
 * once and cancels once (`duplicate: true` the second time), while another
 * lead's message that happens to carry the same id is still a reply.
 *
 * The agent hears it (src/forwarding/): `message.received` in the statement that logs it,
 * and `lead.replied` when it stopped the sequence, both in this transaction.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { cancelFollowupRow } from '../followups/transitions.js';
import { recordAgentEvent } from '../forwarding/record-agent-event.js';
import { normalizePhone } from '../whatsapp/phone.js';
import { upsertLead } from '../followups/lead.js';

export interface InboundMessage {
  /** Any spelling normalizePhone accepts (canonical digits, +55 ..., a WhatsApp JID). */
  phone: string;
  text: string | null;
  /** Evolution's messageType (conversation, extendedTextMessage, audioMessage, ...). */
  messageType?: string | null;
  providerMessageId?: string | null;
  at: Date;
  /** When it reached us (webhook arrival); unset for a message recorded with its own time by the agent. */
  receivedAt?: Date | null;
  source: 'lead';
  /** The Evolution instance it came through (forwarded to the agent). */
  instance?: string | null;
  /** Evolution's raw webhook payload, forwarded with AGENT_WEBHOOK_RAW=true. */
  raw?: unknown;
}

export interface InboundResult {
  leadId: string;
  /** The logged message (the earlier one when this is a duplicate). */
  messageId: string | null;
  /** True when providerMessageId was already logged: nothing else was done. */
  duplicate: boolean;
  /** Follow-ups cancelled by this reply. */
  cancelled: number;
  /** Follow-ups (and enrollments) anchored before this instant are stopped by the reply. */
  stopAt: Date;
}

// The lead's open follow-ups anchored before the message ($3) or planned before the reply's stop
// instant, locked (id order); a lead row even without any. The stop instant is the end of the
// message's second ($2), or its arrival ($4, or null) when later — the arrival counts only for the
// lead's newest message.
const lockSql = {
  name: 'inbound_lock_followups',
  text: `
WITH lead AS (
  SELECT l.id, GREATEST($2::timestamptz,
                        CASE WHEN l.last_inbound_at IS NULL OR $3::timestamptz >= l.last_inbound_at THEN $4::timestamptz END) AS stop_at
    FROM leads l WHERE l.phone = $1::text
)
SELECT lead.id AS lead_id, lead.stop_at, f.id, f.due_at
  FROM lead
  LEFT JOIN LATERAL (
    SELECT id, due_at FROM follow_ups
     WHERE lead_id = lead.id AND status IN ('pending', 'queued') AND (anchor_at < $3::timestamptz OR created_at < lead.stop_at)
       -- The opt-out confirmation answers the fan's messages: none of them cancels it (followups/opt-out-confirmation.ts).
       AND intent IS DISTINCT FROM 'opt_out_confirmation'
     ORDER BY id
       FOR UPDATE
  ) f ON true`,
};

/** The end of the second `at` falls in: a reply stamped 12:00:00 may have been written at 12:00:00.999. */
export function endOfSecond(at: Date): Date {
  return new Date(Math.floor(at.getTime() / 1000) * 1000 + 1000);
}

// Logs the message (once per provider id); only a new one stamps the lead and stops its active
// enrollment. Migration 002's trigger also stops an enrollment when one of its follow-ups is
// cancelled; this covers one with nothing left to cancel (its last step in flight). Enrollments
// made after the message (an answer to it) stay, as their follow-ups do.
const logSql = {
  name: 'inbound_log_message',
  text: `
WITH logged AS (
  INSERT INTO messages (lead_id, direction, source, text, message_type, provider_message_id, at)
  VALUES ($1::uuid, 'in', 'lead', $2::text, $3::text, $4::text, $5::timestamptz)
  ON CONFLICT (lead_id, provider_message_id) DO NOTHING
  RETURNING id
), stamped AS (
  UPDATE leads SET last_inbound_at = GREATEST(COALESCE(last_inbound_at, $5::timestamptz), $5::timestamptz), updated_at = $6::timestamptz
   WHERE id = $1::uuid AND EXISTS (SELECT 1 FROM logged)
  RETURNING id
), stopped AS (
  UPDATE enrollments SET status = 'stopped', stop_reason = 'lead_replied', updated_at = $6::timestamptz
   WHERE lead_id = $1::uuid AND status = 'active' AND created_at < $7::timestamptz AND EXISTS (SELECT 1 FROM logged)
  RETURNING id
), forwarded AS (
  -- message.received for the agent (src/forwarding/): read from stamped, so drawn once the lead is locked.
  INSERT INTO agent_outbox (lead_id, type, occurred_at, data, raw)
  SELECT stamped.id, 'message.received', $5::timestamptz,
         jsonb_build_object('messageId', logged.id, 'providerMessageId', $4::text, 'text', $2::text, 'messageType', $3::text,
                            'receivedAt', agent_iso(COALESCE($9::timestamptz, $6::timestamptz)), 'instance', $8::text),
         CASE WHEN s.raw THEN $10::jsonb END
    FROM stamped, logged, agent_forwarding s
   WHERE s.enabled
)
SELECT id, false AS duplicate, (SELECT count(*)::int FROM stopped) AS enrollments_stopped FROM logged
UNION ALL
SELECT id, true, 0 FROM messages WHERE lead_id = $1::uuid AND provider_message_id = $4::text AND NOT EXISTS (SELECT 1 FROM logged)`,
};

export async function recordInboundMessage(db: Db, input: InboundMessage, clock: Clock): Promise<InboundResult> {
  const phone = normalizePhone(input.phone, 'phone');
  const now = clock.now();
  // Few round trips on purpose: a burst of replies (a campaign's step going out to thousands)
  // holds a pooled connection per reply for the whole transaction.
  return db.transaction(async (tx) => {
    const first = endOfSecond(input.at);
    let { rows: locked } = await tx.query<{ lead_id: string; stop_at: Date; id: string | null; due_at: Date | null }>(lockSql, [
      phone,
      first,
      input.at,
      input.receivedAt ?? null,
    ]);
    if (!locked[0]) {
      const stopAt = input.receivedAt && input.receivedAt > first ? input.receivedAt : first;
      locked = [{ lead_id: (await upsertLead(tx, { phone, now })).id, stop_at: stopAt, id: null, due_at: null }];
    }
    const leadId = locked[0]!.lead_id;
    const stopAt = new Date(locked[0]!.stop_at);
    const { rows: logged } = await tx.query<{ id: string; duplicate: boolean; enrollments_stopped: number }>(logSql, [
      leadId,
      input.text,
      input.messageType ?? null,
      input.providerMessageId ?? null,
      input.at,
      now,
      stopAt,
      input.instance ?? null,
      input.receivedAt ?? null,
      input.raw === undefined ? null : JSON.stringify(input.raw),
    ]);
    const messageId = logged[0]?.id ?? null;
    if (!logged[0] || logged[0].duplicate) return { leadId, messageId, duplicate: true, cancelled: 0, stopAt };
    // Cancelled in step order (as the audit trail reads best), each through the one transition.
    const pending = locked.filter((r) => r.id !== null).sort((a, b) => new Date(a.due_at!).getTime() - new Date(b.due_at!).getTime());
    let cancelled = 0;
    for (const { id } of pending) {
      if (await cancelFollowupRow(tx, { id: id!, now, reason: 'lead_replied', detail: { messageId } })) cancelled++;
    }
    const enrollmentStopped = logged[0].enrollments_stopped > 0;
    if (cancelled > 0 || enrollmentStopped) {
      // The reply stopped the sequence: after message.received (the lead is locked since logSql).
      await recordAgentEvent(tx, { leadId, type: 'lead.replied', at: input.at, data: { messageId, followupsCancelled: cancelled, enrollmentStopped } });
    }
    return { leadId, messageId, duplicate: false, cancelled, stopAt };
  });
}
