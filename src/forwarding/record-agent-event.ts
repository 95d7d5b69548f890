/**
 * Writing an event for the agent (forwarding, src/forwarding/): a row in `agent_outbox`, in the same
 * transaction as what it describes, so an event is forwarded if and only if the change
 * committed. The relay's dispatcher (dispatch-agent-events.ts) delivers it.
 *
 * Ordering. Events are delivered per lead in `seq` order, and `seq` is drawn when the row
 * is inserted. For that to be the lead's commit order, every writer must already hold the
 * lead's row lock (an UPDATE of the lead, or FOR UPDATE) when the row is inserted: two
 * transactions of one lead then insert one after the other commits, never interleaved.
 * So the insert is either a statement after the one that locked the lead, or a CTE that
 * reads the RETURNING of the lead's UPDATE (its rows exist only once the lock is held).
 *
 * Every insert reads `agent_forwarding`: with forwarding off (no AGENT_WEBHOOK_URL) it
 * inserts nothing, and the writers need no setting of their own.
 */
import type { AgentEventType } from './agent-events.js';
import type { Db, Queryable } from '../db/db.js';

export type { AgentEventType };


/**
 * One event for one lead whose row this transaction has already locked. `raw` is kept only
 * when AGENT_WEBHOOK_RAW is on. Dates inside `data` should be ISO strings.
 */
export async function recordAgentEvent(
  tx: Queryable,
  event: { leadId: string; type: AgentEventType; at: Date; data: Record<string, unknown>; raw?: unknown },
): Promise<void> {
  await tx.query(
    {
      name: 'agent_outbox_record',
      text: `
INSERT INTO agent_outbox (lead_id, type, occurred_at, data, raw)
SELECT $1::uuid, $2::text, $3::timestamptz, $4::jsonb, CASE WHEN s.raw THEN $5::jsonb END
  FROM agent_forwarding s WHERE s.enabled`,
    },
    [event.leadId, event.type, event.at, JSON.stringify(event.data), event.raw === undefined ? null : JSON.stringify(event.raw)],
  );
}

/**
 * Turns forwarding on or off for every writer (the `agent_forwarding` row). A process
 * configured with AGENT_WEBHOOK_URL turns it on; a relay started without it turns it off
 * (the relay is where the dispatcher runs: with no dispatcher, nothing must pile up).
 */
export async function setAgentForwarding(db: Db | Queryable, settings: { enabled: boolean; raw: boolean }): Promise<void> {
  await db.query(
    `INSERT INTO agent_forwarding (singleton, enabled, raw, updated_at) VALUES (true, $1::boolean, $2::boolean, now())
     ON CONFLICT (singleton) DO UPDATE SET enabled = EXCLUDED.enabled, raw = EXCLUDED.raw, updated_at = EXCLUDED.updated_at
      WHERE agent_forwarding.enabled IS DISTINCT FROM EXCLUDED.enabled OR agent_forwarding.raw IS DISTINCT FROM EXCLUDED.raw`,
    [settings.enabled, settings.raw],
  );
}
