/**
 * The relay's sweeper: every few seconds it recovers in-flight rows past their lease.
 *   - `queued` ones are published again (the job id makes that a no-op when the job still
 *     exists), or run directly while Redis is away;
 *   - `sending` ones (their executor vanished) are reconciled with the provider
 *     (worker/reconcile-send.ts): delivered → executed; not delivered → retried a lease later;
 *     never composed → retried at once.
 * When Redis lost the queue's jobs (new run_id, data gone, evicted keys), the `queued` rows'
 * leases end at once and the next turn sweeps, instead of a lease later.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { deferFollowup, expireQueuedLeases, extendLeases, findExpiredLeases } from '../followups/transitions.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { QueueLink } from '../queue/queue-link.js';
import { reconcileSend } from '../worker/reconcile-send.js';
import type { Transport } from '../whatsapp/transport.js';
import type { RelayMode } from './direct-mode.js';

export interface LeaseSweeper {
  /** Sweeps when one is due (every `intervalMs`, or at once after `soon()`). */
  sweepIfDue(nowMs: number): Promise<void>;
  /** One sweep now. */
  sweep(): Promise<void>;
  /** The next turn sweeps (Redis came back, or lost its jobs). */
  soon(): void;
  /** Stops watching the queue for lost jobs. */
  stop(): void;
}

export interface SweepDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  queue: QueueLink | null;
  transport: Pick<Transport, 'findSent'>;
  metrics?: Metrics;
  relay: RelayMode;
  leaseMs: number;
  intervalMs: number;
  /** Wakes the relay's loop (after lost jobs, so it sweeps now). */
  wake: () => void;
}

type ExpiredRow = Awaited<ReturnType<typeof findExpiredLeases>>[number];

export function makeLeaseSweeper(deps: SweepDeps): LeaseSweeper {
  const { db, clock, log, queue, metrics, relay } = deps;
  let nextSweepAt = 0;

  async function sweep() {
    const expired = await findExpiredLeases(db, { now: clock.now(), limit: 500 });
    if (expired.length === 0) return;
    const queued = expired.filter((r) => r.status === 'queued').map((r) => r.id);
    if (queued.length > 0) await republish(queued);
    for (const row of expired.filter((r) => r.status === 'sending')) await recoverSending(row);
  }

  async function republish(queued: string[]) {
    if (relay.mode === 'queue' && queue) {
      try {
        await queue.publish(queued);
        await extendLeases(db, queued, clock.now(), deps.leaseMs);
        metrics?.swept.inc({ kind: 'queued_republished' }, queued.length);
        log.info({ count: queued.length }, 'queued follow-ups past their lease published again');
      } catch (error) {
        relay.enterDirect((error as Error).message);
      }
    }
    if (relay.mode === 'direct') {
      // The executor's claim takes `queued` rows too; a job that resurfaces later finds them taken.
      const room = relay.room();
      const take = queued.slice(0, room);
      await extendLeases(db, queued.slice(room), clock.now(), deps.leaseMs);
      metrics?.swept.inc({ kind: 'queued_run_directly' }, take.length);
      relay.runDirect(take);
    }
  }

  /** A `sending` row whose executor vanished: did the text go out? Ask the provider, never guess. */
  async function recoverSending(row: ExpiredRow) {
    const rlog = log.child({ followupId: row.id, leadId: row.lead_id, phone: row.phone });
    const text = row.sent_text ?? row.message;
    const now = clock.now();
    if (!text) {
      // Never composed, so never sent.
      await deferFollowup(db, { id: row.id, now, dueAt: now, reason: 'lease_expired', giveBackAttempt: true });
      metrics?.swept.inc({ kind: 'sending_not_started' });
      rlog.warn({ stage: 'deferred' }, 'in-flight follow-up lost before sending; rescheduled');
      return;
    }
    const since = row.sending_started_at ?? new Date(now.getTime() - 2 * deps.leaseMs);
    const outcome = await reconcileSend(
      { db, clock, transport: deps.transport, log: rlog, leaseMs: deps.leaseMs },
      // Asked on the lead's number, the one that sent it.
      { id: row.id, phone: row.phone, text, since, composer: row.composer, instance: row.whatsapp_number },
      async () => {
        // Not found is not proof (a send the provider got late may still land): the retry waits a
        // lease, and the executor looks again before sending (findLateDelivery).
        await deferFollowup(db, { id: row.id, now: clock.now(), dueAt: new Date(clock.now().getTime() + deps.leaseMs), reason: 'lease_expired_not_sent' });
        metrics?.swept.inc({ kind: 'sending_reconciled_not_sent' });
        rlog.warn({ stage: 'deferred' }, 'in-flight follow-up was not delivered; rescheduled');
        return 'deferred';
      },
    );
    if (outcome === 'executed') metrics?.swept.inc({ kind: 'sending_reconciled_sent' });
  }

  // Redis lost the queue's jobs: publish the `queued` rows again now rather than after their lease.
  const stopWatchingLoss = queue?.onJobsLost(() => {
    void expireQueuedLeases(db, clock.now())
      .then((count) => {
        if (count > 0) log.info({ count }, 'queued follow-ups will be published again (Redis lost its jobs)');
        nextSweepAt = 0;
        deps.wake();
      })
      .catch((error) => log.warn({ err: error }, 'could not expire queued leases; the sweeper recovers them after the lease'));
  });

  return {
    async sweepIfDue(nowMs) {
      if (nowMs < nextSweepAt) return;
      nextSweepAt = nowMs + deps.intervalMs;
      await sweep();
    },
    sweep,
    soon() {
      nextSweepAt = 0;
    },
    stop() {
      stopWatchingLoss?.();
    },
  };
}
