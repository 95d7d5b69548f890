/**
 * How the relay hands claimed follow-ups on, in one of two modes: 'queue' while it publishes
 * them to Redis (then marks them `queued`), 'direct' while it runs them itself through the same
 * executor, with bounded concurrency — with no queue configured, or while Redis does not
 * answer. In direct mode Redis is probed every `probeIntervalMs`; when it answers (and takes
 * writes) the relay publishes again.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { markQueued, releaseClaims } from '../followups/transitions.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { QueueLink } from '../queue/queue-link.js';
import type { Outcome } from '../worker/reconcile-send.js';

export interface RelayMode {
  /** 'queue' while publishing to Redis, 'direct' while running follow-ups itself. */
  readonly mode: 'queue' | 'direct';
  /** Direct runs in flight. */
  readonly inFlight: number;
  /** How many more direct runs fit now. */
  room(): number;
  /** Redis failed: run follow-ups directly, and probe Redis until it answers again. */
  enterDirect(reason: string): void;
  /**
   * Publishes or runs the claimed `ids`; returns normally even if Redis is down (falls back to
   * direct mode). `urgent`: follow-ups that just came due, claimed together with an overdue
   * backlog — they go to the head of the queue so the backlog does not delay them.
   */
  dispatch(ids: string[], urgent?: ReadonlySet<string>): Promise<void>;
  /** Runs these follow-ups now, each in the background (an error is left to the sweeper). */
  runDirect(ids: string[]): void;
  /** Stops probing; waits up to `timeoutMs` for the direct runs in flight. */
  stop(timeoutMs: number): Promise<void>;
}

export function makeRelayMode(deps: {
  db: Db;
  clock: Clock;
  queue: QueueLink | null;
  log: Logger;
  metrics?: Metrics;
  execute: (followupId: string) => Promise<Outcome>;
  concurrency: number;
  /** The lease of a row marked `queued`. */
  leaseMs: number;
  probeIntervalMs: number;
  /** Redis answers again (rows queued meanwhile may have lost their jobs). */
  onQueueBack: () => void;
  /** A direct run finished: room for another. */
  onRunDone: () => void;
}): RelayMode {
  const { queue, log, metrics } = deps;
  let mode: 'queue' | 'direct' = queue ? 'queue' : 'direct';
  let stopped = false;
  let probeTimer: NodeJS.Timeout | undefined;
  const running = new Set<Promise<void>>();
  metrics?.relayMode.set(mode === 'direct' && queue ? 1 : 0);

  const probe = async () => {
    probeTimer = undefined;
    if (stopped || !queue) return;
    if (await queue.ping()) {
      mode = 'queue';
      metrics?.relayMode.set(0);
      log.info('queue is back; publishing again');
      deps.onQueueBack();
      return;
    }
    probeTimer = setTimeout(probe, deps.probeIntervalMs);
  };

  const room = () => Math.max(0, deps.concurrency - running.size);

  const enterDirect = (reason: string) => {
    if (mode === 'direct') return;
    mode = 'direct';
    metrics?.relayMode.set(1);
    log.warn({ reason }, 'queue unavailable; running follow-ups directly');
    probeTimer = setTimeout(probe, deps.probeIntervalMs);
  };

  const runDirect = (ids: string[]) => {
    for (const id of ids) {
      metrics?.directRuns.inc();
      const run: Promise<void> = deps
        .execute(id)
        .catch((error) => log.error({ err: error, followupId: id }, 'direct run failed; the sweeper will recover it'))
        .then(() => undefined)
        .finally(() => {
          running.delete(run);
          deps.onRunDone();
        });
      running.add(run);
    }
  };

  return {
    get mode() {
      return mode;
    },
    get inFlight() {
      return running.size;
    },
    room,
    enterDirect,
    runDirect,
    async dispatch(ids, urgent) {
      if (mode === 'queue' && queue) {
        try {
          await queue.publish(ids, { urgent });
        } catch (error) {
          enterDirect((error as Error).message);
          // No more at once than direct mode runs (a whole batch would hold hundreds of rows in
          // `sending` past their lease); the rest go back to be claimed as room frees up.
          const take = room();
          runDirect(ids.slice(0, take));
          await releaseClaims(deps.db, ids.slice(take));
          return;
        }
        // Counted as published even when a fast worker claimed a row before markQueued moved it.
        metrics?.published.inc(ids.length);
        const moved = await markQueued(deps.db, ids, deps.clock.now(), deps.leaseMs);
        for (const id of moved) log.info({ followupId: id, stage: 'queued' }, 'follow-up queued');
        return;
      }
      runDirect(ids);
    },
    async stop(timeoutMs) {
      stopped = true;
      if (probeTimer) clearTimeout(probeTimer);
      // Direct runs in flight finish (or are recovered later by the sweeper from their lease).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(running), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    },
  };
}
