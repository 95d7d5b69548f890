/**
 * Is the lead's number on WhatsApp? Asked once per lead, lazily — at its first
 * send — with Evolution's /chat/whatsappNumbers, and the answer cached on the
 * lead (number_checked_at, number_valid, whatsapp_jid). Checking many numbers
 * at once is itself a ban risk, so it is never done in bulk.
 *
 * If the provider cannot answer, the send goes ahead unchecked: sendText itself
 * reports a number that is not on WhatsApp (400 exists:false), so nothing is
 * lost, and the check is tried again at the next send.
 */
import type { Queryable } from '../db/db.js';
import type { Logger } from '../log.js';
import type { Transport } from '../whatsapp/transport.js';

export type NumberStatus = 'valid' | 'invalid' | 'unknown';

export async function checkNumberOnce(
  deps: { db: Queryable; transport: Transport; log: Logger },
  lead: { id: string; phone: string; numberCheckedAt?: Date | null },
  now: Date,
): Promise<NumberStatus> {
  // The worker's claim already read the lead (and cancels a number known to be invalid):
  // a checked number is valid, with no query on the hot path.
  if (lead.numberCheckedAt) return 'valid';
  if (lead.numberCheckedAt === undefined) {
    const { rows } = await deps.db.query<{ number_checked_at: Date | null; number_valid: boolean | null }>(
      { name: 'policy_number_checked', text: 'SELECT number_checked_at, number_valid FROM leads WHERE id = $1::uuid' },
      [lead.id],
    );
    const cached = rows[0];
    if (cached?.number_checked_at) return cached.number_valid === false ? 'invalid' : 'valid';
  }
  let exists: boolean;
  let jid: string | null = null;
  try {
    const answer = await deps.transport.checkNumber(lead.phone);
    exists = answer.exists;
    jid = answer.jid ?? null;
  } catch (error) {
    deps.log.warn({ err: error, leadId: lead.id }, 'number check failed; sending unchecked');
    return 'unknown';
  }
  await deps.db.query(
    `UPDATE leads SET number_checked_at = $2::timestamptz, number_valid = $3::boolean,
            whatsapp_jid = COALESCE($4::text, whatsapp_jid), updated_at = $2::timestamptz
      WHERE id = $1::uuid AND erased_at IS NULL`,
    [lead.id, now, exists, exists ? jid : null],
  );
  return exists ? 'valid' : 'invalid';
}
