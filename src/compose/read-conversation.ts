/** What the composer reads from the conversation log (`messages`) before writing. */
import type { Queryable } from '../db/db.js';

export interface ConversationMessage {
  direction: 'in' | 'out';
  source: string;
  text: string;
  at: Date;
}

/** The last `limit` messages with text, oldest first. */
export async function readConversation(db: Queryable, leadId: string, limit: number): Promise<ConversationMessage[]> {
  if (limit <= 0) return [];
  const { rows } = await db.query<ConversationMessage>(
    {
      name: 'compose_read_conversation',
      text: `SELECT direction, source, text, at FROM messages
              WHERE lead_id = $1::uuid AND text IS NOT NULL AND btrim(text) <> ''
              ORDER BY at DESC, created_at DESC LIMIT $2::int`,
    },
    [leadId, limit],
  );
  return rows.reverse();
}

/** Every text this lead has been sent (newest first, bounded): nothing may be sent twice. */
export async function readSentTexts(db: Queryable, leadId: string, limit = 500): Promise<string[]> {
  const { rows } = await db.query<{ text: string }>(
    {
      name: 'compose_read_sent_texts',
      text: `SELECT text FROM messages
              WHERE lead_id = $1::uuid AND direction = 'out' AND text IS NOT NULL
              ORDER BY at DESC LIMIT $2::int`,
    },
    [leadId, limit],
  );
  return rows.map((r) => r.text);
}
