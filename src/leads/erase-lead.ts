/**
 * LGPD erasure (`DELETE /v1/leads/:phone`): the lead's personal data goes, the
 * counts stay.
 *
 * What goes: name, metadata, time zone, WhatsApp JID; every message text and
 * every WhatsApp message id (client-supplied or Evolution's: an id can be
 * looked up in the club's phone); every follow-up's text, composed text,
 * lead_info, last error, idempotency key and provider message id; the opt-out's
 * message id and free-text source; the free-form detail of its audit events
 * (only scheduling facts such as dueAt are kept); a cancel reason an operator
 * typed (it becomes 'operator'); the dry-run transport's record of texts to the
 * number; stored idempotent responses that mention the number or the lead. The
 * phone becomes 'erased:' || HMAC-SHA256(phone) under ERASURE_KEY (privacy/erasure-key.ts).
 *
 * What stays, and why: the rows themselves, statuses, system reasons (lead_replied,
 * opted_out, ...) and timestamps, so statistics still count sends, replies and
 * opt-outs over time; and when the lead opted out (opted_out_at), the proof that
 * the opt-out was honoured — with the keyed hash, it is also what makes a later
 * contact from the same number start opted out (migration 006), since an
 * opt-out is for good.
 *
 * Everything still open is cancelled with `erased` (the claim re-checks erased_at).
 * A follow-up already `sending` completes, but migration 004/005's triggers keep its
 * text from being written back.
 *
 * Why a keyed hash: an unkeyed hash of a phone number is pseudonymisation in name
 * only (the ~10^9 Brazilian mobile numbers are hashed through in minutes); without
 * ERASURE_KEY, the database holds nothing that leads back to the number.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { phoneVariants } from '../whatsapp/phone.js';
import { erasedPhone } from '../privacy/erasure-key.js';
import { findLeadByPhone } from '../followups/lead.js';
import { cancelLocked, lockOpenFollowups } from './stop-lead.js';

export { erasedPhone } from '../privacy/erasure-key.js';

export interface EraseResult {
  leadId: string;
  erasedAt: Date;
  /** True when the lead had been erased before (the call is idempotent). */
  alreadyErased: boolean;
  cancelled: number;
}

// Facts in audit-event details that say nothing about the person.
const KEPT_DETAIL_KEYS = ['dueAt', 'laterStepsMoved', 'pause', 'timeZone', 'maxPerWeek', 'slotMs', 'waiting', 'dailyCap'];

// Reasons the system writes when it cancels; anything else on a cancellation was typed by an operator.
const SYSTEM_CANCEL_REASONS = [
  'operator', 'lead_replied', 'opted_out', 'handoff', 'converted', 'erased', 'invalid_number', 'retries_exhausted',
  'campaign_unknown', 'enrolled_in_other_campaign', 'ambiguous_send', 'ambiguous_not_delivered', 'lease_expired',
];

/** Null when no lead, erased or not, has this (canonical) phone. */
export async function eraseLead(db: Db, phone: string, clock: Clock): Promise<EraseResult | null> {
  const now = clock.now();
  const hashed = erasedPhone(phone);
  return db.transaction(async (tx) => {
    const lead = await findLeadByPhone(tx, phone);
    if (!lead) {
      const erased = await findLeadByPhone(tx, hashed);
      return erased ? { leadId: erased.id, erasedAt: erased.erased_at!, alreadyErased: true, cancelled: 0 } : null;
    }
    const leadId = lead.id;
    const ids = await lockOpenFollowups(tx, leadId);
    // The same number erased before (it came back as a new lead): the older row steps aside,
    // so the plain hash always names the latest one, which carries any opt-out forward.
    await tx.query(`UPDATE leads SET phone = phone || ':' || id::text WHERE phone = $1::text`, [hashed]);
    await tx.query(
      `UPDATE leads SET phone = $2::text, name = NULL, metadata = '{}'::jsonb, time_zone = NULL, whatsapp_jid = NULL, whatsapp_lid = NULL,
              opt_out_message_id = NULL, opt_out_source = CASE WHEN opt_out_source IS NULL THEN NULL ELSE 'erased' END,
              erased_at = $3::timestamptz, updated_at = $3::timestamptz
        WHERE id = $1::uuid`,
      [leadId, hashed, now],
    );
    const cancelled = await cancelLocked(tx, { leadId, ids, reason: 'erased', now });
    await tx.query(
      `UPDATE follow_ups SET message = NULL, sent_text = NULL, lead_info = NULL, last_error = NULL, idempotency_key = NULL, idempotency_hash = NULL,
              provider_message_id = NULL,
              cancel_reason = CASE WHEN cancel_reason = ANY($2::text[]) THEN cancel_reason ELSE 'operator' END
        WHERE lead_id = $1::uuid`,
      [leadId, SYSTEM_CANCEL_REASONS],
    );
    await tx.query(
      `UPDATE follow_up_events e
          SET detail = (SELECT jsonb_object_agg(k, v) FROM jsonb_each(e.detail) AS d(k, v) WHERE k = ANY($2::text[])),
              reason = CASE WHEN e.to_status <> 'cancelled' OR e.reason = ANY($3::text[]) THEN e.reason ELSE 'operator' END
        WHERE e.follow_up_id IN (SELECT id FROM follow_ups WHERE lead_id = $1::uuid)
          AND (e.detail IS NOT NULL OR (e.to_status = 'cancelled' AND NOT e.reason = ANY($3::text[])))`,
      [leadId, KEPT_DETAIL_KEYS, SYSTEM_CANCEL_REASONS],
    );
    await tx.query('UPDATE messages SET text = NULL, provider_message_id = NULL, idempotency_key = NULL, idempotency_hash = NULL WHERE lead_id = $1::uuid', [leadId]);
    // Events for the agent carry the phone, the name and the texts: undelivered ones are not sent any more.
    await tx.query('DELETE FROM agent_outbox WHERE lead_id = $1::uuid', [leadId]);
    const spellings = phoneVariants(phone);
    await tx.query(`UPDATE dry_run_messages SET number = $2::text, text = '' WHERE number = ANY($1::text[])`, [spellings, hashed]);
    // Stored answers to earlier requests (enrollments, imports) that name the number or the lead.
    const needles = [...spellings, leadId];
    await tx.query(
      `DELETE FROM idempotency_keys k
        WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) AS n(needle)
                       WHERE strpos(k.key, n.needle) > 0 OR strpos(k.response::text, n.needle) > 0)`,
      [needles],
    );
    return { leadId, erasedAt: now, alreadyErased: false, cancelled };
  });
}
