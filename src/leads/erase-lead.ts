/**
 * LGPD erasure (`DELETE /v1/leads/:phone`): the lead's personal data goes, the
 * counts stay.
 *
 * What goes: name, metadata, time zone, WhatsApp JID; every message text; every
 * follow-up's text, composed text, lead_info, last error and idempotency key;
 * the free-form detail of its audit events (only dueAt-style facts are kept);
 * the dry-run transport's record of texts to the number; stored idempotent
 * responses that mention the number or the lead. The phone becomes
 * 'erased:' || sha256(phone) — see `erasedPhone`.
 *
 * What stays: the rows themselves (so statistics still count sends, replies and
 * opt-outs), statuses, reasons, timestamps, provider message ids, and the opt-out's
 * when and through which message (opted_out_at, opt_out_message_id): proof that
 * the opt-out was honoured.
 *
 * Everything still open is cancelled with `erased` (the claim re-checks erased_at).
 * A follow-up already `sending` completes, but migration 004's triggers keep its
 * text from being written back.
 *
 * Why a hash of the number: a later contact from the same number is then
 * recognised without the number being stored (migration 004 carries an opt-out
 * over to the new lead, since an opt-out is for good). A phone number has few
 * enough possibilities that the hash is pseudonymisation, not anonymity: anyone
 * with database access and a guess can confirm it. That is the trade the spec
 * makes; keyed hashing (HMAC with a secret) would close it.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { phoneVariants } from '../whatsapp/phone.js';
import { cancelLocked, lockOpenFollowups } from './stop-lead.js';

export function erasedPhone(phone: string): string {
  return `erased:${createHash('sha256').update(phone, 'utf8').digest('hex')}`;
}

export interface EraseResult {
  leadId: string;
  erasedAt: Date;
  /** True when the lead had been erased before (the call is idempotent). */
  alreadyErased: boolean;
  cancelled: number;
}

// Facts in audit-event details that say nothing about the person.
const KEPT_DETAIL_KEYS = ['dueAt', 'laterStepsMoved', 'pause', 'providerMessageId', 'timeZone', 'maxPerWeek', 'slotMs', 'waiting', 'dailyCap', 'source'];

/** Null when no lead, erased or not, has this (canonical) phone. */
export async function eraseLead(db: Db, phone: string, clock: Clock): Promise<EraseResult | null> {
  const now = clock.now();
  const hashed = erasedPhone(phone);
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{ id: string; erased_at: Date | null }>(
      'SELECT id, erased_at FROM leads WHERE phone = $1::text',
      [phone],
    );
    const lead = rows[0];
    if (!lead) {
      const before = await tx.query<{ id: string; erased_at: Date }>('SELECT id, erased_at FROM leads WHERE phone = $1::text', [hashed]);
      const erased = before.rows[0];
      return erased ? { leadId: erased.id, erasedAt: erased.erased_at, alreadyErased: true, cancelled: 0 } : null;
    }
    const leadId = lead.id;
    const ids = await lockOpenFollowups(tx, leadId);
    // The same number erased before (it came back as a new lead): the older row steps aside,
    // so the plain hash always names the latest one, which carries any opt-out forward.
    await tx.query(`UPDATE leads SET phone = phone || ':' || id::text WHERE phone = $1::text`, [hashed]);
    await tx.query(
      `UPDATE leads SET phone = $2::text, name = NULL, metadata = '{}'::jsonb, time_zone = NULL, whatsapp_jid = NULL, whatsapp_lid = NULL,
              erased_at = $3::timestamptz, updated_at = $3::timestamptz
        WHERE id = $1::uuid`,
      [leadId, hashed, now],
    );
    const cancelled = await cancelLocked(tx, { leadId, ids, reason: 'erased', now });
    await tx.query(
      `UPDATE follow_ups SET message = NULL, sent_text = NULL, lead_info = NULL, last_error = NULL, idempotency_key = NULL
        WHERE lead_id = $1::uuid`,
      [leadId],
    );
    await tx.query(
      `UPDATE follow_up_events e
          SET detail = (SELECT jsonb_object_agg(k, v) FROM jsonb_each(e.detail) AS d(k, v) WHERE k = ANY($2::text[]))
        WHERE e.follow_up_id IN (SELECT id FROM follow_ups WHERE lead_id = $1::uuid) AND e.detail IS NOT NULL`,
      [leadId, KEPT_DETAIL_KEYS],
    );
    await tx.query('UPDATE messages SET text = NULL WHERE lead_id = $1::uuid', [leadId]);
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
