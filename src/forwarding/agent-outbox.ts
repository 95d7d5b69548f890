/**
 * Looking into the agent outbox and putting parked events back in line:
 * GET /v1/agent/outbox, POST /v1/agent/outbox/:id/retry, POST /v1/agent/outbox/retry,
 * /metrics and `followups status`.
 */
import { z } from 'zod';
import type { Queryable } from '../db/db.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { AgentEventsRetried, AgentEventRetried, AgentOutboxEvent, AgentOutboxPage, outboxQuerySchema } from './outbox-schemas.js';

export { type AgentOutboxEvent, type AgentOutboxPage, outboxQuerySchema } from './outbox-schemas.js';

interface OutboxRow {
  id: string;
  type: string;
  status: AgentOutboxEvent['status'];
  occurred_at: Date;
  lead_id: string;
  phone: string;
  name: string | null;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date;
  parked_at: Date | null;
  created_at: Date;
}

const iso = (at: Date | null) => (at ? new Date(at).toISOString() : null);

function toEvent(row: OutboxRow): AgentOutboxEvent {
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    occurredAt: iso(row.occurred_at)!,
    lead: { id: row.lead_id, phone: row.phone, name: row.name },
    attempts: row.attempts,
    lastError: row.last_error,
    nextAttemptAt: row.status === 'pending' ? iso(row.next_attempt_at) : null,
    parkedAt: iso(row.parked_at),
    createdAt: iso(row.created_at)!,
  };
}

export async function countAgentOutbox(db: Queryable): Promise<{ pending: number; parked: number }> {
  const { rows } = await db.query<{ pending: number; parked: number }>(
    // Each count on its own partial index (delivered rows, kept for a day, are never read).
    `SELECT (SELECT count(*) FROM agent_outbox WHERE status = 'pending')::int AS pending,
            (SELECT count(*) FROM agent_outbox WHERE status = 'parked')::int AS parked`,
  );
  return rows[0] ?? { pending: 0, parked: 0 };
}

/**
 * The counts for /metrics, served from memory as the follow-up counts are (cached-stats.ts):
 * the first scrape waits for the first count; later ones get the last count at once and start
 * a new one in the background when it is older than `refreshMs` (one in flight at most). A
 * scrape never waits on a slow or unreachable database.
 */
export function makeCachedOutboxCounts(options: { db: Queryable; refreshMs: number }): () => Promise<{ pending: number; parked: number } | undefined> {
  let last: { pending: number; parked: number } | undefined;
  let readAt = -Infinity;
  let inFlight: Promise<void> | null = null;
  const refresh = () =>
    (inFlight ??= countAgentOutbox(options.db)
      .then((counts) => {
        last = counts;
      })
      .catch(() => {
        last = undefined; // stale counts would mislead: the gauges keep their last value
      })
      .finally(() => {
        readAt = performance.now();
        inFlight = null;
      }));
  return async () => {
    if (readAt === -Infinity) {
      await refresh();
      return last;
    }
    if (performance.now() - readAt >= options.refreshMs) void refresh();
    return last;
  };
}

export async function listAgentOutbox(db: Queryable, query: z.infer<typeof outboxQuerySchema>): Promise<AgentOutboxPage> {
  const { rows } = await db.query<OutboxRow>(
    `SELECT o.id, o.type, o.status, o.occurred_at, o.lead_id, l.phone, l.name, o.attempts, o.last_error, o.next_attempt_at, o.parked_at, o.created_at
       FROM agent_outbox o JOIN leads l ON l.id = o.lead_id
      WHERE o.status = $1::text
      ORDER BY o.seq
      LIMIT $2::int`,
    [query.status, query.limit],
  );
  return { events: rows.map(toEvent), counts: await countAgentOutbox(db) };
}

const retrySql = `
UPDATE agent_outbox SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL, parked_at = NULL
 WHERE status = 'parked' AND ($1::uuid IS NULL OR id = $1::uuid)
RETURNING id`;

/**
 * A parked event goes back to its lead's queue with fresh attempts. It is the oldest there,
 * so it goes out before the lead's pending events (after those already delivered).
 */
export async function retryAgentEvent(db: Queryable, id: string): Promise<AgentEventRetried> {
  if (!z.uuid().safeParse(id).success) throw new NotFoundError(`no event ${id}`);
  const { rows } = await db.query<{ id: string }>(retrySql, [id]);
  if (rows[0]) return { id, status: 'pending' };
  const found = await db.query<{ status: string }>('SELECT status FROM agent_outbox WHERE id = $1::uuid', [id]);
  if (!found.rows[0]) throw new NotFoundError(`no event ${id}`);
  throw new ConflictError(`event ${id} is ${found.rows[0].status}, not parked`, 'event_not_parked');
}

/** Every parked event back in line. */
export async function retryParkedAgentEvents(db: Queryable): Promise<AgentEventsRetried> {
  const { rowCount } = await db.query(retrySql, [null]);
  return { retried: rowCount };
}
