/**
 * The dispatcher: delivers `agent_outbox` rows to AGENT_WEBHOOK_URL. Runs with the relay
 * (roles.ts), any number of relays at once.
 *
 * - At least once: a row is marked delivered only after a 2xx. A dispatcher that dies
 *   mid-delivery leaves a lease (`locked_until`) that expires, and the row is sent again
 *   (the agent de-duplicates on the event id). No session state: a claim is one statement
 *   (FOR UPDATE SKIP LOCKED inside it), so it works through a transaction pooler.
 * - Ordered per lead: only the head of a lead's queue (its lowest pending `seq`) is ever
 *   claimed, and at most one event per lead is in flight. Different leads go in parallel,
 *   up to AGENT_WEBHOOK_CONCURRENCY per dispatcher.
 * - Failures (non-2xx, timeout, connection refused) are retried with exponential backoff
 *   and jitter; the lead's later events wait behind it. After AGENT_WEBHOOK_MAX_ATTEMPTS the
 *   event is parked: it leaves the lead's queue, so the later events go on (one poison event
 *   must not silence a lead for good). The price: the agent may get events after a parked
 *   one that it never saw; a retried parked event arrives late, out of order.
 * - Polls every POLL_MS while idle (and at once when a delivery frees a slot). NOTIFY was
 *   left out: it needs a LISTEN connection per relay, which a transaction pooler cannot carry.
 */
import { request } from 'undici';
import { EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, signAgentWebhook } from './webhook-signature.js';
import type { Config } from '../config.js';
import type { Db } from '../db/db.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { maskPhone } from '../log.js';

export type AgentWebhookSettings = NonNullable<Config['agentWebhook']>;

const POLL_MS = 200;
/** A claim holds its row this much longer than a delivery may take. */
const LEASE_MARGIN_MS = 5_000;
const PRUNE_EVERY_MS = 60_000;
/** Delivered rows are kept this long (for inspection), then deleted. */
const KEEP_DELIVERED_HOURS = 24;

interface ClaimedEvent {
  id: string;
  seq: number;
  lead_id: string;
  type: string;
  occurred_at: Date;
  data: Record<string, unknown>;
  raw: unknown;
  attempts: number;
  created_at: Date;
  phone: string;
  name: string | null;
}

const claimSql = {
  name: 'agent_outbox_claim',
  text: `
WITH heads AS (
  SELECT DISTINCT ON (lead_id) id, next_attempt_at, locked_until
    FROM agent_outbox WHERE status = 'pending'
   ORDER BY lead_id, seq
), due AS (
  SELECT id FROM heads
   WHERE next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
   ORDER BY next_attempt_at
   LIMIT $1::int
), claimed AS (
  SELECT o.id FROM agent_outbox o JOIN due ON due.id = o.id
   WHERE o.status = 'pending'
     FOR UPDATE OF o SKIP LOCKED
)
UPDATE agent_outbox o SET locked_until = now() + $2::int * interval '1 millisecond'
  FROM claimed c, leads l
 WHERE o.id = c.id AND l.id = o.lead_id AND o.status = 'pending' AND (o.locked_until IS NULL OR o.locked_until < now())
RETURNING o.id, o.seq, o.lead_id, o.type, o.occurred_at, o.data, o.raw, o.attempts, o.created_at, l.phone, l.name`,
};

const deliveredSql = {
  name: 'agent_outbox_delivered',
  text: `UPDATE agent_outbox SET status = 'delivered', delivered_at = now(), attempts = attempts + 1, locked_until = NULL, last_error = NULL
          WHERE id = $1::uuid AND status = 'pending'`,
};

const failedSql = {
  name: 'agent_outbox_failed',
  text: `
UPDATE agent_outbox
   SET attempts = attempts + 1, last_error = $2::text, locked_until = NULL,
       next_attempt_at = now() + $3::int * interval '1 millisecond',
       status = CASE WHEN attempts + 1 >= $4::int THEN 'parked' ELSE 'pending' END,
       parked_at = CASE WHEN attempts + 1 >= $4::int THEN now() END
 WHERE id = $1::uuid AND status = 'pending'
RETURNING status`,
};

/** The JSON body the agent receives (the contract in the README, "Forwarding to the agent"). */
export function agentEventBody(row: Pick<ClaimedEvent, 'id' | 'type' | 'occurred_at' | 'lead_id' | 'phone' | 'name' | 'data' | 'raw'>): string {
  const data = row.raw === null || row.raw === undefined ? row.data : { ...row.data, raw: row.raw };
  return JSON.stringify({
    id: row.id,
    type: row.type,
    occurredAt: new Date(row.occurred_at).toISOString(),
    lead: { id: row.lead_id, phone: row.phone, name: row.name },
    data,
  });
}

/** Exponential backoff with jitter: base · 2^(failures−1), capped, then a random 50–100 % of it. */
export function backoffMs(failures: number, settings: { retryBaseMs: number; retryMaxMs: number }, random = Math.random): number {
  const exponential = Math.min(settings.retryMaxMs, settings.retryBaseMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.round(exponential * (0.5 + random() * 0.5));
}

export interface AgentDispatcher {
  /** Stops claiming, waits (up to timeoutMs) for deliveries in flight. */
  stop(timeoutMs: number): Promise<void>;
}

export function startAgentDispatcher(deps: { db: Db; log: Logger; metrics: Metrics; settings: AgentWebhookSettings }): AgentDispatcher {
  const { db, log, metrics, settings } = deps;
  let stopping = false;
  let inFlight = 0;
  let wakeUp: (() => void) | null = null;
  const aborts = new Set<AbortController>();
  const wake = () => {
    wakeUp?.();
    wakeUp = null;
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wakeUp = null;
        resolve();
      }, ms);
      wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function deliver(row: ClaimedEvent): Promise<void> {
    const body = agentEventBody(row);
    const abort = new AbortController();
    aborts.add(abort);
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${settings.timeoutMs} ms`)), settings.timeoutMs);
    let failure: string | null = null;
    let kind = 'error';
    try {
      const response = await request(settings.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [EVENT_ID_HEADER.toLowerCase()]: row.id,
          [EVENT_TYPE_HEADER.toLowerCase()]: row.type,
          [SIGNATURE_HEADER.toLowerCase()]: signAgentWebhook({ secret: settings.secret, body }),
          'user-agent': 'nautico-followups',
        },
        body,
        signal: abort.signal,
        headersTimeout: settings.timeoutMs,
        bodyTimeout: settings.timeoutMs,
      });
      await response.body.dump().catch(() => undefined);
      if (response.statusCode < 200 || response.statusCode >= 300) {
        failure = `HTTP ${response.statusCode}`;
        kind = `http_${Math.floor(response.statusCode / 100)}xx`;
      }
    } catch (error) {
      if (stopping && abort.signal.aborted && !aborts.has(abort)) return;
      const e = error as { code?: string; message?: string };
      kind = abort.signal.aborted || /timeout/i.test(e.code ?? '') ? 'timeout' : 'network';
      failure = kind === 'timeout' ? `timeout after ${settings.timeoutMs} ms` : `${e.code ?? 'error'}: ${e.message ?? String(error)}`;
    } finally {
      clearTimeout(timer);
      aborts.delete(abort);
    }
    const eventLog = { eventId: row.id, type: row.type, leadId: row.lead_id, phone: maskPhone(row.phone), attempt: row.attempts + 1 };
    if (failure === null) {
      await db.query(deliveredSql, [row.id]);
      metrics.agentEventsDelivered.inc({ type: row.type });
      metrics.agentEventLag.observe(Math.max(0, Date.now() - new Date(row.created_at).getTime()) / 1000);
      log.debug(eventLog, 'event delivered to the agent');
      return;
    }
    metrics.agentDeliveryFailures.inc({ kind });
    const delay = backoffMs(row.attempts + 1, settings);
    const { rows } = await db.query<{ status: string }>(failedSql, [row.id, failure.slice(0, 500), delay, settings.maxAttempts]);
    if (rows[0]?.status === 'parked') {
      metrics.agentEventsParked.inc();
      log.error({ ...eventLog, error: failure }, 'event parked after its last attempt (GET /v1/agent/outbox?status=parked)');
    } else {
      log.warn({ ...eventLog, error: failure, retryInMs: delay }, 'event not delivered to the agent; will retry');
    }
  }

  async function prune(): Promise<void> {
    await db.query(
      `DELETE FROM agent_outbox WHERE id IN (
         SELECT id FROM agent_outbox WHERE status = 'delivered' AND delivered_at < now() - $1::int * interval '1 hour' LIMIT 5000)`,
      [KEEP_DELIVERED_HOURS],
    );
  }

  const loop = (async () => {
    let lastPrune = 0;
    let failures = 0;
    while (!stopping) {
      const free = settings.concurrency - inFlight;
      let claimed: ClaimedEvent[] = [];
      try {
        if (Date.now() - lastPrune > PRUNE_EVERY_MS) {
          lastPrune = Date.now();
          await prune();
        }
        if (free > 0) claimed = (await db.query<ClaimedEvent>(claimSql, [free, settings.timeoutMs + LEASE_MARGIN_MS])).rows;
        failures = 0;
      } catch (error) {
        failures++;
        if (failures === 1 || failures % 50 === 0) log.warn({ err: error, failures }, 'agent outbox: claim failed; retrying');
        await sleep(Math.min(5_000, POLL_MS * 2 ** Math.min(failures, 5)));
        continue;
      }
      if (stopping && claimed.length > 0) {
        // Claimed while stopping: handed back at once rather than left to their lease.
        await db.query('UPDATE agent_outbox SET locked_until = NULL WHERE id = ANY($1::uuid[]) AND status = $2::text', [claimed.map((r) => r.id), 'pending']).catch(() => undefined);
        break;
      }
      for (const row of claimed.sort((a, b) => a.seq - b.seq)) {
        inFlight++;
        void deliver(row)
          .catch((error) => log.warn({ err: error, eventId: row.id }, 'agent outbox: could not record a delivery; the lease will expire and it is sent again'))
          .finally(() => {
            inFlight--;
            wake();
          });
      }
      if (free > 0 && claimed.length === free) continue;
      await sleep(POLL_MS);
    }
  })();

  return {
    async stop(timeoutMs: number) {
      stopping = true;
      wake();
      await loop;
      const deadline = Date.now() + timeoutMs;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // Still in flight: abandoned; their leases expire and another dispatcher sends them again.
      for (const abort of aborts) {
        aborts.delete(abort);
        abort.abort(new Error('shutting down'));
      }
    },
  };
}
