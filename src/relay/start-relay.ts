/**
 * The relay (scheduler): moves due follow-ups from PostgreSQL into the queue.
 *
 * Each turn: claim a batch of due rows (SKIP LOCKED, short transaction, no
 * network call inside) → publish them with one `addBulk` → mark them `queued`.
 * Nothing is marked queued that the queue did not accept. Then sleep until the
 * next due time (capped at RELAY_MAX_SLEEP_MS), woken early by LISTEN/NOTIFY
 * when an earlier follow-up is written.
 *
 * The parts, each with its own state:
 *   - wake-on-notify.ts: the sleep, and LISTEN/NOTIFY waking it early (checked, not trusted:
 *     polling every `pollMs` while NOTIFY does not arrive);
 *   - direct-mode.ts: with no queue configured, or while Redis does not answer, the relay
 *     runs claimed follow-ups itself through the same executor, with bounded concurrency,
 *     and probes Redis to go back to publishing when it returns;
 *   - sweep-leases.ts: every few seconds, in-flight rows past their lease are published
 *     again (`queued`) or reconciled with the provider (`sending`).
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { claimDueFollowups, RECENT_DUE_MS } from '../followups/transitions.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { QueueLink } from '../queue/queue-link.js';
import type { RoleHealth } from '../role-health.js';
import type { Outcome } from '../worker/reconcile-send.js';
import type { Transport } from '../whatsapp/transport.js';
import { makeRelayMode } from './direct-mode.js';
import { makeLeaseSweeper } from './sweep-leases.js';
import { wakeOnNotify } from './wake-on-notify.js';

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
  const maxWaitingFollowups = s.maxWaitingFollowups ?? 2 * s.batchSize;

  const waker = await wakeOnNotify(
    { db, clock, log },
    { maxSleepMs: s.maxSleepMs, pollMs: s.pollMs, probeIntervalMs: s.notifyProbeIntervalMs, probeTimeoutMs: s.notifyProbeTimeoutMs },
  );
  const relay = makeRelayMode({
    db,
    clock,
    queue,
    log,
    metrics,
    execute: deps.execute,
    concurrency: s.directConcurrency,
    leaseMs: s.leaseMs,
    probeIntervalMs: s.probeIntervalMs ?? 2_000,
    // Rows queued while Redis was away may have lost their jobs: look at them now.
    onQueueBack: () => {
      sweeper.soon();
      waker.wake();
    },
    onRunDone: () => waker.wake(),
  });
  const sweeper = makeLeaseSweeper({
    db,
    clock,
    log,
    queue,
    transport: deps.transport,
    metrics,
    relay,
    leaseMs: s.leaseMs,
    intervalMs: s.sweepIntervalMs ?? Math.max(1_000, Math.min(10_000, Math.floor(s.leaseMs / 4))),
    wake: () => waker.wake(),
  });

  // Through a backlog: set after a full batch, the next turn checks the queue depth before
  // claiming more; `heldBack` counts the turns in a row held back by a full queue.
  const backlog = { draining: false, heldBack: 0 };
  let stopping = false;

  async function loop() {
    while (!stopping) {
      try {
        await sweeper.sweepIfDue(clock.now().getTime());
        const room = relay.mode === 'direct' ? relay.room() : s.batchSize;
        if (room <= 0) {
          await waker.sleepUntil(clock.now().getTime() + waker.sleepCap());
          continue;
        }
        // Working through a backlog: more of it is claimed only once the workers have room for it;
        // follow-ups coming due meanwhile are claimed anyway and go to the head of the queue.
        let includeOverdue = true;
        if (backlog.draining && relay.mode === 'queue' && queue) {
          const waiting = await queue.waiting();
          // Jobs carry up to jobSize follow-ups each: an upper bound of what is waiting.
          includeOverdue = waiting === null || waiting * queue.jobSize <= maxWaitingFollowups;
        }
        // Through a backlog, in smaller bites: a follow-up coming due waits for the turn in progress.
        const limit = Math.min(backlog.draining ? Math.max(1, Math.ceil(s.batchSize / 4)) : s.batchSize, room);
        const now = clock.now();
        const { claimed, nextDueAt } = await claimDueFollowups(db, { now, limit, claimMs, includeOverdue });
        if (claimed.length > 0) await relay.dispatch(claimed.map((c) => c.id), backlog.draining ? recentAmong(claimed, now) : undefined);
        deps.roleHealth?.succeeded('relay');
        if (!includeOverdue) {
          // Workers slow or gone: look again soon, less often the longer it lasts (at most every maxSleepMs)
          // — but never past the next follow-up coming due, which must not wait behind the backlog.
          backlog.heldBack++;
          const backoff = clock.now().getTime() + Math.min(waker.sleepCap(), BACKPRESSURE_POLL_MS * 2 ** Math.min(6, backlog.heldBack - 1));
          await waker.sleepUntil(nextDueAt ? Math.min(nextDueAt.getTime(), backoff) : backoff);
          continue;
        }
        backlog.heldBack = 0;
        backlog.draining = claimed.length === limit;
        if (backlog.draining) continue; // more may be due right now
        const cap = clock.now().getTime() + waker.sleepCap();
        await waker.sleepUntil(nextDueAt ? Math.min(nextDueAt.getTime(), cap) : cap);
      } catch (error) {
        deps.roleHealth?.failed('relay', error);
        log.error({ err: error }, 'relay turn failed; retrying');
        await waker.sleepUntil(clock.now().getTime() + Math.min(1_000, s.maxSleepMs));
      }
    }
  }

  const looping = loop();

  return {
    get mode() {
      return relay.mode;
    },
    get inFlight() {
      return relay.inFlight;
    },
    get notifyArrives() {
      return waker.notifyArrives;
    },
    wake: () => waker.wake(),
    sweep: () => sweeper.sweep(),
    async stop(timeoutMs = 10_000) {
      stopping = true;
      sweeper.stop();
      waker.wake();
      await looping;
      await waker.stop();
      await relay.stop(timeoutMs);
    },
  };
}
