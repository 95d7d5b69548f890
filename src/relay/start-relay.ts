/**
 * The relay (scheduler): moves due follow-ups from PostgreSQL into the queue.
 *
 * Each turn: claim a batch of due rows (SKIP LOCKED, short transaction, no
 * network call inside) → publish them with one `addBulk` → mark them `queued`.
 * Nothing is marked queued that the queue did not accept. Then sleep until the
 * next due time (capped at RELAY_MAX_SLEEP_MS), woken early by LISTEN/NOTIFY
 * when an earlier follow-up is written.
 *
 * Direct mode: with no queue configured, or while Redis does not answer, the
 * relay runs claimed follow-ups itself through the same executor, with bounded
 * concurrency, and probes Redis to go back to publishing when it returns.
 *
 * NOTIFY is checked, not trusted: at start and every few minutes the relay notifies
 * itself on its own LISTEN connection. While that does not come back (a transaction
 * pooler carries LISTEN but never delivers; a LISTEN connection that broke silently),
 * the relay polls every `pollMs` (200 ms) instead of sleeping until woken; it says so
 * once, and once more when NOTIFY arrives again.
 *
 * The sweeper, every few seconds, recovers in-flight rows past their lease:
 * `queued` ones are published again (the job id makes that a no-op when the job
 * still exists), `sending` ones are reconciled with the provider.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { makeNotifyProbe } from '../db/notify-probe.js';
import { claimDueFollowups, RECENT_DUE_MS, expireQueuedLeases, extendLeases, findExpiredLeases, markQueued, deferFollowup, releaseClaims } from '../followups/transitions.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { QueueLink } from '../queue/queue-link.js';
import type { RoleHealth } from '../role-health.js';
import { type Outcome, reconcileSend } from '../worker/reconcile-send.js';
import type { Transport } from '../whatsapp/transport.js';

export interface RelayDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  queue: QueueLink | null;
  transport: Transport;
  metrics?: Metrics;
  /** Told of each turn's success or failure (for /health/ready). */
  roleHealth?: RoleHealth;
  /** Runs one follow-up in direct mode. */
  execute: (followupId: string) => Promise<Outcome>;
  settings: {
    batchSize: number;
    maxSleepMs: number;
    leaseMs: number;
    /** How long a relay's claim on a pending row lasts while it publishes. */
    claimMs?: number;
    directConcurrency: number;
    sweepIntervalMs?: number;
    /** How often to probe Redis while in direct mode. */
    probeIntervalMs?: number;
    /**
     * Back-pressure: while more follow-ups than this wait in Redis, the relay does not
     * claim more (default 2 × batchSize). A backlog stays in PostgreSQL, where
     * follow-ups coming due meanwhile can overtake it, instead of piling up in
     * Redis memory in front of them.
     */
    maxWaitingFollowups?: number;
    /** How often NOTIFY is probed (default 5 minutes). */
    notifyProbeIntervalMs?: number;
    /** How long a probe waits for its notification (default 2 s). */
    notifyProbeTimeoutMs?: number;
    /** The longest sleep while NOTIFY is not known to arrive (default 200 ms). */
    pollMs?: number;
  };
}

export interface Relay {
  /** 'queue' while publishing to Redis, 'direct' while running follow-ups itself. */
  readonly mode: 'queue' | 'direct';
  readonly inFlight: number;
  /** Whether the last NOTIFY probe came back: false while polling instead (and until the first probe answers). */
  readonly notifyArrives: boolean;
  /** Wake the loop now (tests with a fake clock; new work). */
  wake(): void;
  /** One sweep now; resolves when done (tests). */
  sweep(): Promise<void>;
  /** Stop claiming, wait for direct runs in flight (up to `timeoutMs`), stop listening. */
  stop(timeoutMs?: number): Promise<void>;
}

/** How often a relay held back by a full queue looks again. */
const BACKPRESSURE_POLL_MS = 20;

const NOTIFY_CHANNEL = 'followups_pending';

/** The rows of a batch that came due just now (the claim takes them first). */
function recentAmong(claimed: Array<{ id: string; due_at: Date }>, now: Date): ReadonlySet<string> | undefined {
  const cutoff = now.getTime() - RECENT_DUE_MS;
  const recent = claimed.filter((c) => c.due_at.getTime() > cutoff);
  return recent.length > 0 ? new Set(recent.map((c) => c.id)) : undefined;
}

export async function startRelay(deps: RelayDeps): Promise<Relay> {
  const { db, clock, log, queue, metrics } = deps;
  const s = deps.settings;
  const claimMs = s.claimMs ?? 30_000;
  const sweepIntervalMs = s.sweepIntervalMs ?? Math.max(1_000, Math.min(10_000, Math.floor(s.leaseMs / 4)));
  const probeIntervalMs = s.probeIntervalMs ?? 2_000;
  const maxWaitingFollowups = s.maxWaitingFollowups ?? 2 * s.batchSize;
  // Set after a full batch: the next turn checks the queue depth before claiming more.
  let draining = false;
  // Consecutive turns held back by a full queue.
  let heldBack = 0;

  let mode: 'queue' | 'direct' = queue ? 'queue' : 'direct';
  let stopping = false;
  let inFlight = 0;
  const running = new Set<Promise<void>>();
  let wakeUp: (() => void) | undefined;
  let plannedWake = Infinity;
  // A wake-up that arrives while the loop is busy must not be lost: the next sleep returns at once.
  let wakePending = false;
  let sleepTimer: NodeJS.Timeout | undefined;
  let nextSweepAt = 0;
  let probeTimer: NodeJS.Timeout | undefined;
  metrics?.relayMode.set(mode === 'direct' && queue ? 1 : 0);
  const pollMs = Math.min(s.pollMs ?? 200, s.maxSleepMs);
  const notifyProbeIntervalMs = s.notifyProbeIntervalMs ?? 5 * 60_000;
  const notifyProbeTimeoutMs = s.notifyProbeTimeoutMs ?? 2_000;
  // Polling until the first probe says NOTIFY arrives: never a long sleep on an unproven LISTEN.
  let notifyArrives = false;
  let notifyProbed = false;
  let notifyTimer: NodeJS.Timeout | undefined;
  const notifyProbe = makeNotifyProbe(db, NOTIFY_CHANNEL);
  /** The longest the loop sleeps without being woken. */
  const sleepCap = () => (notifyArrives ? s.maxSleepMs : pollMs);

  const wake = () => {
    if (wakeUp) wakeUp();
    else wakePending = true;
  };

  const unlisten = await db
    .listen(NOTIFY_CHANNEL, (payload) => {
      if (notifyProbe.received(payload)) return;
      // Only an earlier due time than the one we sleep until is worth waking for.
      const dueMs = Number(payload);
      if (!Number.isFinite(dueMs)) return;
      if (!wakeUp) {
        wakePending = true;
        return;
      }
      if (dueMs >= plannedWake) return;
      const delay = dueMs - clock.now().getTime();
      if (delay <= 5) return wake();
      plannedWake = dueMs;
      if (sleepTimer) clearTimeout(sleepTimer);
      sleepTimer = setTimeout(() => wakeUp?.(), delay);
    })
    .catch((error) => {
      log.warn({ err: error }, 'LISTEN failed; relying on the capped sleep');
      return async () => undefined;
    });

  async function checkNotify() {
    notifyTimer = undefined;
    if (stopping) return;
    try {
      const arrives = await notifyProbe.probe(notifyProbeTimeoutMs);
      if (stopping) return;
      if (!arrives && (notifyArrives || !notifyProbed)) {
        log.warn(
          { pollMs, probeTimeoutMs: notifyProbeTimeoutMs },
          'NOTIFY does not arrive (a transaction pooler, or a broken LISTEN connection); polling for due follow-ups instead',
        );
      } else if (arrives && !notifyArrives && notifyProbed) {
        log.info('NOTIFY arrives again; sleeping until woken');
      }
      notifyArrives = arrives;
      notifyProbed = true;
    } catch (error) {
      // The database is unreachable: the turns fail and say so; keep the current mode.
      log.debug({ err: error }, 'NOTIFY probe failed');
    }
    if (!stopping) {
      notifyTimer = setTimeout(() => void checkNotify(), notifyProbeIntervalMs);
      notifyTimer.unref();
    }
  }
  void checkNotify();

  function sleepUntil(at: number): Promise<void> {
    if (wakePending) {
      wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const delay = Math.max(0, at - clock.now().getTime());
      plannedWake = at;
      wakeUp = () => {
        if (sleepTimer) clearTimeout(sleepTimer);
        sleepTimer = undefined;
        wakeUp = undefined;
        plannedWake = Infinity;
        resolve();
      };
      sleepTimer = setTimeout(() => wakeUp?.(), delay);
    });
  }

  function enterDirectMode(reason: string) {
    if (mode === 'direct') return;
    mode = 'direct';
    metrics?.relayMode.set(1);
    log.warn({ reason }, 'queue unavailable; running follow-ups directly');
    const probe = async () => {
      probeTimer = undefined;
      if (stopping || !queue) return;
      if (await queue.ping()) {
        mode = 'queue';
        metrics?.relayMode.set(0);
        log.info('queue is back; publishing again');
        // Rows queued while Redis was away may have lost their jobs: look at them now.
        nextSweepAt = 0;
        wake();
        return;
      }
      probeTimer = setTimeout(probe, probeIntervalMs);
    };
    probeTimer = setTimeout(probe, probeIntervalMs);
  }

  function runDirect(ids: string[]) {
    for (const id of ids) {
      inFlight++;
      metrics?.directRuns.inc();
      const p = deps
        .execute(id)
        .catch((error) => log.error({ err: error, followupId: id }, 'direct run failed; the sweeper will recover it'))
        .then(() => undefined)
        .finally(() => {
          inFlight--;
          running.delete(p);
          wake();
        });
      running.add(p);
    }
  }

  /**
   * Publishes or runs `ids`; returns normally even if Redis is down (falls back to direct mode).
   * `urgent`: follow-ups that just came due, claimed together with an overdue backlog — they go
   * to the head of the queue so the backlog does not delay them.
   */
  async function dispatch(ids: string[], urgent?: ReadonlySet<string>) {
    if (mode === 'queue' && queue) {
      try {
        await queue.publish(ids, { urgent });
      } catch (error) {
        enterDirectMode((error as Error).message);
        // No more at once than direct mode runs (a whole batch would hold hundreds of rows in
        // `sending` past their lease); the rest go back to be claimed as room frees up.
        const room = Math.max(0, s.directConcurrency - inFlight);
        runDirect(ids.slice(0, room));
        await releaseClaims(db, ids.slice(room));
        return;
      }
      // Counted as published even when a fast worker claimed a row before markQueued moved it.
      metrics?.published.inc(ids.length);
      const moved = await markQueued(db, ids, clock.now(), s.leaseMs);
      for (const id of moved) log.info({ followupId: id, stage: 'queued' }, 'follow-up queued');
      return;
    }
    runDirect(ids);
  }

  async function sweep() {
    const now = clock.now();
    const expired = await findExpiredLeases(db, { now, limit: 500 });
    if (expired.length === 0) return;
    const queued = expired.filter((r) => r.status === 'queued').map((r) => r.id);
    if (queued.length > 0) {
      if (mode === 'queue' && queue) {
        try {
          await queue.publish(queued);
          await extendLeases(db, queued, clock.now(), s.leaseMs);
          metrics?.swept.inc({ kind: 'queued_republished' }, queued.length);
          log.info({ count: queued.length }, 'queued follow-ups past their lease published again');
        } catch (error) {
          enterDirectMode((error as Error).message);
        }
      }
      if (mode === 'direct') {
        // The executor's claim takes `queued` rows too; a job that resurfaces later finds them taken.
        const room = Math.max(0, s.directConcurrency - inFlight);
        const take = queued.slice(0, room);
        await extendLeases(db, queued.slice(room), clock.now(), s.leaseMs);
        metrics?.swept.inc({ kind: 'queued_run_directly' }, take.length);
        runDirect(take);
      }
    }
    for (const row of expired.filter((r) => r.status === 'sending')) {
      await recoverSending(row);
    }
  }

  /** A `sending` row whose executor vanished: did the text go out? Ask the provider, never guess. */
  async function recoverSending(row: Awaited<ReturnType<typeof findExpiredLeases>>[number]) {
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
    const since = row.sending_started_at ?? new Date(now.getTime() - 2 * s.leaseMs);
    const outcome = await reconcileSend(
      { db, clock, transport: deps.transport, log: rlog, leaseMs: s.leaseMs },
      // Asked on the lead's number, the one that sent it.
      { id: row.id, phone: row.phone, text, since, composer: row.composer, instance: row.whatsapp_number },
      async () => {
        // Not found is not proof (a send the provider got late may still land): the retry waits a
        // lease, and the executor looks again before sending (findLateDelivery).
        await deferFollowup(db, { id: row.id, now: clock.now(), dueAt: new Date(clock.now().getTime() + s.leaseMs), reason: 'lease_expired_not_sent' });
        metrics?.swept.inc({ kind: 'sending_reconciled_not_sent' });
        rlog.warn({ stage: 'deferred' }, 'in-flight follow-up was not delivered; rescheduled');
        return 'deferred';
      },
    );
    if (outcome === 'executed') metrics?.swept.inc({ kind: 'sending_reconciled_sent' });
  }

  async function loop() {
    while (!stopping) {
      try {
        const nowMs = clock.now().getTime();
        if (nowMs >= nextSweepAt) {
          nextSweepAt = nowMs + sweepIntervalMs;
          await sweep();
        }
        const room = mode === 'direct' ? s.directConcurrency - inFlight : s.batchSize;
        if (room <= 0) {
          await sleepUntil(clock.now().getTime() + sleepCap());
          continue;
        }
        // Working through a backlog: more of it is claimed only once the workers have room for it;
        // follow-ups coming due meanwhile are claimed anyway and go to the head of the queue.
        let includeOverdue = true;
        if (draining && mode === 'queue' && queue) {
          const waiting = await queue.waiting();
          // Jobs carry up to jobSize follow-ups each: an upper bound of what is waiting.
          includeOverdue = waiting === null || waiting * queue.jobSize <= maxWaitingFollowups;
        }
        // Through a backlog, in smaller bites: a follow-up coming due waits for the turn in progress.
        const limit = Math.min(draining ? Math.max(1, Math.ceil(s.batchSize / 4)) : s.batchSize, room);
        const now = clock.now();
        const { claimed, nextDueAt } = await claimDueFollowups(db, { now, limit, claimMs, includeOverdue });
        if (claimed.length > 0) await dispatch(claimed.map((c) => c.id), draining ? recentAmong(claimed, now) : undefined);
        deps.roleHealth?.succeeded('relay');
        if (!includeOverdue) {
          // Workers slow or gone: look again soon, less often the longer it lasts (at most every maxSleepMs)
          // — but never past the next follow-up coming due, which must not wait behind the backlog.
          heldBack++;
          const backoff = clock.now().getTime() + Math.min(sleepCap(), BACKPRESSURE_POLL_MS * 2 ** Math.min(6, heldBack - 1));
          await sleepUntil(nextDueAt ? Math.min(nextDueAt.getTime(), backoff) : backoff);
          continue;
        }
        heldBack = 0;
        draining = claimed.length === limit;
        if (draining) continue; // more may be due right now
        const cap = clock.now().getTime() + sleepCap();
        await sleepUntil(nextDueAt ? Math.min(nextDueAt.getTime(), cap) : cap);
      } catch (error) {
        deps.roleHealth?.failed('relay', error);
        log.error({ err: error }, 'relay turn failed; retrying');
        await sleepUntil(clock.now().getTime() + Math.min(1_000, s.maxSleepMs));
      }
    }
  }

  // Redis lost the queue's jobs (new run_id, data gone, keys evicted): publish the `queued` rows
  // again now rather than after their lease.
  const stopWatchingLoss = queue?.onJobsLost(() => {
    void expireQueuedLeases(db, clock.now())
      .then((count) => {
        if (count > 0) log.info({ count }, 'queued follow-ups will be published again (Redis lost its jobs)');
        nextSweepAt = 0;
        wake();
      })
      .catch((error) => log.warn({ err: error }, 'could not expire queued leases; the sweeper recovers them after the lease'));
  });

  const looping = loop();

  return {
    get mode() {
      return mode;
    },
    get inFlight() {
      return inFlight;
    },
    get notifyArrives() {
      return notifyArrives;
    },
    wake,
    sweep,
    async stop(timeoutMs = 10_000) {
      stopping = true;
      stopWatchingLoss?.();
      if (probeTimer) clearTimeout(probeTimer);
      if (notifyTimer) clearTimeout(notifyTimer);
      wake();
      await looping;
      // Direct runs in flight finish (or are recovered later by the sweeper from their lease).
      await Promise.race([Promise.all(running), new Promise((r) => setTimeout(r, timeoutMs))]);
      await unlisten();
    },
  };
}
