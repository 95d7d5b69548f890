/**
 * How the relay sleeps and is woken: until the next due time (capped), or earlier by
 * LISTEN/NOTIFY when a follow-up due sooner is written (migration 001's trigger notifies with
 * the due time), or by `wake()` (a direct run finished, Redis came back, tests).
 *
 * NOTIFY is checked, not trusted: at start and every few minutes the relay notifies itself on
 * its own LISTEN connection. While that does not come back (a transaction pooler carries LISTEN
 * but never delivers; a LISTEN connection that broke silently), the longest sleep is `pollMs`
 * (200 ms) instead of `maxSleepMs`; it says so once, and once more when NOTIFY arrives again.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { makeNotifyProbe } from '../db/notify-probe.js';
import type { Logger } from '../log.js';

export const NOTIFY_CHANNEL = 'followups_pending';

export interface Waker {
  /** Sleeps until `at` (ms since the epoch), or less when woken; at once if a wake-up came meanwhile. */
  sleepUntil(at: number): Promise<void>;
  /** Ends the sleep now, or the next one at once when the loop is not sleeping (never lost). */
  wake(): void;
  /** The longest the loop sleeps without being woken: `maxSleepMs` while NOTIFY arrives, `pollMs` otherwise. */
  sleepCap(): number;
  /** Whether the last probe came back: false while polling instead (and until the first probe answers). */
  readonly notifyArrives: boolean;
  /** Stops probing and listening. */
  stop(): Promise<void>;
}

export interface WakeSettings {
  maxSleepMs: number;
  /** The longest sleep while NOTIFY is not known to arrive (default 200 ms). */
  pollMs?: number;
  /** How often NOTIFY is probed (default 5 minutes). */
  probeIntervalMs?: number;
  /** How long a probe waits for its notification (default 2 s). */
  probeTimeoutMs?: number;
}

export async function wakeOnNotify(deps: { db: Db; clock: Clock; log: Logger }, settings: WakeSettings): Promise<Waker> {
  const { db, clock, log } = deps;
  const pollMs = Math.min(settings.pollMs ?? 200, settings.maxSleepMs);
  const probeIntervalMs = settings.probeIntervalMs ?? 5 * 60_000;
  const probeTimeoutMs = settings.probeTimeoutMs ?? 2_000;
  const probe = makeNotifyProbe(db, NOTIFY_CHANNEL);

  // The sleep in progress: how to end it, and until when it runs.
  const sleep: { end?: () => void; until: number; timer?: NodeJS.Timeout } = { until: Infinity };
  // A wake-up that arrives while the loop is busy must not be lost: the next sleep returns at once.
  let wakePending = false;
  // Polling until the first probe says NOTIFY arrives: never a long sleep on an unproven LISTEN.
  const notify: { arrives: boolean; probed: boolean; timer?: NodeJS.Timeout; stopped: boolean } = { arrives: false, probed: false, stopped: false };

  const wake = () => {
    if (sleep.end) sleep.end();
    else wakePending = true;
  };

  const unlisten = await db
    .listen(NOTIFY_CHANNEL, (payload) => {
      if (probe.received(payload)) return;
      // Only an earlier due time than the one we sleep until is worth waking for.
      const dueMs = Number(payload);
      if (!Number.isFinite(dueMs)) return;
      if (!sleep.end) {
        wakePending = true;
        return;
      }
      if (dueMs >= sleep.until) return;
      const delay = dueMs - clock.now().getTime();
      if (delay <= 5) return wake();
      sleep.until = dueMs;
      if (sleep.timer) clearTimeout(sleep.timer);
      sleep.timer = setTimeout(() => sleep.end?.(), delay);
    })
    .catch((error) => {
      log.warn({ err: error }, 'LISTEN failed; relying on the capped sleep');
      return async () => undefined;
    });

  async function checkNotify() {
    notify.timer = undefined;
    if (notify.stopped) return;
    try {
      const arrives = await probe.probe(probeTimeoutMs);
      if (notify.stopped) return;
      if (!arrives && (notify.arrives || !notify.probed)) {
        log.warn(
          { pollMs, probeTimeoutMs },
          'NOTIFY does not arrive (a transaction pooler, or a broken LISTEN connection); polling for due follow-ups instead',
        );
      } else if (arrives && !notify.arrives && notify.probed) {
        log.info('NOTIFY arrives again; sleeping until woken');
      }
      notify.arrives = arrives;
      notify.probed = true;
    } catch (error) {
      // The database is unreachable: the turns fail and say so; keep the current mode.
      log.debug({ err: error }, 'NOTIFY probe failed');
    }
    if (!notify.stopped) {
      notify.timer = setTimeout(() => void checkNotify(), probeIntervalMs);
      notify.timer.unref();
    }
  }
  void checkNotify();

  return {
    sleepUntil(at) {
      if (wakePending) {
        wakePending = false;
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        sleep.until = at;
        sleep.end = () => {
          if (sleep.timer) clearTimeout(sleep.timer);
          sleep.timer = undefined;
          sleep.end = undefined;
          sleep.until = Infinity;
          resolve();
        };
        sleep.timer = setTimeout(() => sleep.end?.(), Math.max(0, at - clock.now().getTime()));
      });
    },
    wake,
    sleepCap: () => (notify.arrives ? settings.maxSleepMs : pollMs),
    get notifyArrives() {
      return notify.arrives;
    },
    async stop() {
      notify.stopped = true;
      if (notify.timer) clearTimeout(notify.timer);
      await unlisten();
    },
  };
}
