/**
 * WhatsApp says the lead's number does not exist: the lead is marked (number_valid =
 * false, which stops every later follow-up and agent message), and, the first time, the
 * agent hears `lead.number_invalid` in the same statement (src/forwarding/). The worker's
 * send, the agent's send and the number check all mark it through here.
 */
import type { Queryable } from '../db/db.js';
import { markNumberInvalidSql } from '../leads/sql/leads.js';

/** True when the number was not already known to be invalid. `detail` goes to the agent as the event's data. */
export async function markNumberInvalid(
  tx: Queryable,
  options: { leadId: string; now: Date; detail: Record<string, unknown> },
): Promise<boolean> {
  const { rows } = await tx.query<{ changed: boolean }>(markNumberInvalidSql, [options.leadId, options.now, JSON.stringify(options.detail)]);
  return rows[0]?.changed ?? false;
}
