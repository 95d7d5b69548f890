/**
 * A message the agent (or a person at the club) sent to the lead outside the
 * follow-up pipeline, logged so the conversation — and so the composer's
 * history and its "never the same text twice" check — is complete. Stamps
 * `last_outbound_at`. Idempotent on `providerMessageId`.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { normalizePhone } from '../whatsapp/phone.js';
import { upsertLead } from '../followups/lead.js';
import { insertMessageSql } from './sql/messages.js';

export interface OutboundMessage {
  phone: string;
  text: string;
  source: 'agent' | 'human';
  messageType?: string | null;
  providerMessageId?: string | null;
  at: Date;
}

export async function recordOutboundMessage(
  db: Db,
  input: OutboundMessage,
  clock: Clock,
): Promise<{ leadId: string; messageId: string | null; duplicate: boolean }> {
  const phone = normalizePhone(input.phone, 'phone');
  const now = clock.now();
  return db.transaction(async (tx) => {
    const lead = await upsertLead(tx, { phone, now });
    const inserted = await tx.query<{ id: string }>(insertMessageSql, [
      lead.id,
      'out',
      input.source,
      input.text,
      input.messageType ?? null,
      input.providerMessageId ?? null,
      input.at,
      null,
      null,
    ]);
    if (!inserted.rows[0]) {
      const { rows } = await tx.query<{ id: string }>('SELECT id FROM messages WHERE lead_id = $1::uuid AND provider_message_id = $2::text', [
        lead.id,
        input.providerMessageId,
      ]);
      return { leadId: lead.id, messageId: rows[0]?.id ?? null, duplicate: true };
    }
    await tx.query(
      `UPDATE leads SET last_outbound_at = GREATEST(COALESCE(last_outbound_at, $2::timestamptz), $2::timestamptz), updated_at = $3::timestamptz
        WHERE id = $1::uuid`,
      [lead.id, input.at, now],
    );
    return { leadId: lead.id, messageId: inserted.rows[0].id, duplicate: false };
  });
}
