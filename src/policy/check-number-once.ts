/**
 * Is the lead's number on WhatsApp? Asked once per lead, lazily — at its first
 * send — with Evolution's /chat/whatsappNumbers, and the answer cached on the
 * lead (number_checked_at, number_valid, whatsapp_jid). The lookups of leads
 * coming due together go out batched, within the number's sending budget
 * (number-checks.ts): without budget now, the send is deferred like a paced one.
 *
 * If the provider cannot answer, the send goes ahead unchecked: sendText itself
 * reports a number that is not on WhatsApp (400 exists:false), so nothing is
 * lost, and the check is tried again at the next send.
 */
import type { Queryable } from '../db/db.js';
import { markNumberInvalid } from '../followups/mark-number-invalid.js';
import { markNumberValidSql } from '../leads/sql/leads.js';
import type { Logger } from '../log.js';
import type { NumberChecks } from './number-checks.js';
import type { Reservation } from './send-limits.js';

export type NumberStatus = 'valid' | 'invalid' | 'unknown' | { deferred: Extract<Reservation, { ok: false }> };

export async function checkNumberOnce(
  deps: { db: Queryable; checks: NumberChecks; log: Logger },
  lead: { id: string; phone: string; numberCheckedAt?: Date | null },
  now: Date,
  /** The number that asks (the lead's); unset: the default. */
  instance?: string,
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
  const answer = await deps.checks.check(lead.phone, now, instance);
  if (answer.kind === 'deferred') return { deferred: answer.reservation };
  if (answer.kind === 'unknown') return 'unknown';
  if (!answer.check.exists) {
    // The follow-up it was checked for is cancelled next (invalid_number) by the policy's caller.
    await markNumberInvalid(deps.db, { leadId: lead.id, now, detail: { source: 'number_check' } });
    return 'invalid';
  }
  await deps.db.query(markNumberValidSql, [lead.id, now, answer.check.jid ?? null]);
  return 'valid';
}
