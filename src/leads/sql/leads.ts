/**
 * Statements on the `leads` table that several modules run, written once here so each can
 * be found by name or by grep.
 */
import type { Statement } from '../../db/db.js';

/**
 * The lead with this canonical phone (or this erased phone's hash: src/privacy/erasure-key.ts).
 * `phone` is unique, so at most one row. $1 phone.
 */
export const leadByPhoneSql = 'SELECT * FROM leads WHERE phone = $1::text';

/**
 * WhatsApp says the number exists: the answer is cached on the lead with the JID WhatsApp
 * answered with (kept when it gave none). An erased lead is left alone.
 * $1 lead id, $2 now, $3 JID.
 */
export const markNumberValidSql = `UPDATE leads SET number_checked_at = $2::timestamptz, number_valid = true,
            whatsapp_jid = COALESCE($3::text, whatsapp_jid), updated_at = $2::timestamptz
      WHERE id = $1::uuid AND erased_at IS NULL`;

/**
 * WhatsApp says the number does not exist: the lead is marked (number_valid = false, which
 * stops every later follow-up and agent message) and, the first time, the agent hears
 * `lead.number_invalid` in the same statement (src/forwarding/). Returns whether the number
 * was not already known to be invalid.
 * $1 lead id, $2 now, $3 the event's data (JSON text).
 */
export const markNumberInvalidSql: Statement = {
  name: 'leads_mark_number_invalid',
  text: `
WITH before AS (
  SELECT id, number_valid FROM leads WHERE id = $1::uuid FOR UPDATE
), marked AS (
  UPDATE leads l SET number_valid = false, number_checked_at = $2::timestamptz, updated_at = $2::timestamptz
    FROM before b WHERE l.id = b.id
  RETURNING l.id, l.erased_at, b.number_valid IS DISTINCT FROM false AS changed
), forwarded AS (
  INSERT INTO agent_outbox (lead_id, type, occurred_at, data)
  SELECT m.id, 'lead.number_invalid', $2::timestamptz, $3::jsonb
    FROM marked m, agent_forwarding s
   WHERE s.enabled AND m.changed AND m.erased_at IS NULL
)
SELECT changed FROM marked`,
};
