/**
 * WhatsApp says the lead's number does not exist: the lead is marked (number_valid =
 * false, which stops every later follow-up and agent message), and, the first time, the
 * agent hears `lead.number_invalid` in the same statement (src/forwarding/). The worker's
 * send, the agent's send and the number check all mark it through here.
 */
import type { Queryable } from '../db/db.js';

const markNumberInvalidSql = {
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

/** True when the number was not already known to be invalid. `detail` goes to the agent as the event's data. */
export async function markNumberInvalid(
  tx: Queryable,
  options: { leadId: string; now: Date; detail: Record<string, unknown> },
): Promise<boolean> {
  const { rows } = await tx.query<{ changed: boolean }>(markNumberInvalidSql, [options.leadId, options.now, JSON.stringify(options.detail)]);
  return rows[0]?.changed ?? false;
}
