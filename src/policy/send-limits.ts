/**
 * Pace and daily cap per WhatsApp instance (keys name the instance, not the
 * queue: two deployments or queues sending from one number share its budget),
 * shared by every worker through rate-limiter-flexible: RateLimiterRedis when
 * REDIS_URL is set (its own ioredis connection with a short command timeout),
 * RateLimiterMemory in direct mode without Redis. While Redis fails, the same
 * points are taken in PostgreSQL (`send_limit_points`, migration 006: one
 * upsert per point), which every process shares — a per-process stand-in would
 * let N workers send N times the pace. On the embedded PGlite (one process)
 * the memory limiter is that stand-in.
 *
 * Pace — "at most N per window (a minute), with random gaps". A fixed window of
 * N points allows 2N in a minute that straddles two windows, and a burst of N at
 * the start of each. Instead time is cut into slots of W / (N − 1); a send must
 * book its slot (one point per slot key, taken atomically in Redis) and may only
 * go out in the first third of it, at a random moment. So two sends are always
 * more than ⅔ of a slot apart, any N + 1 consecutive sends span more than W plus
 * ⅔ of a slot (N slots minus a third) — a margin for the send itself taking a
 * little longer one time than the next — and the gaps vary. The price: a full
 * backlog drains at N − 1 per window, never N + 1. A follow-up that finds its slot
 * taken either books one of the next few slots and waits for it (maxWaitMs at
 * most), or is deferred behind those already waiting: the slot's counter says
 * how many lost it before, so the k-th loser goes k slots later and a backlog
 * drains at the pace instead of stampeding at every slot.
 *
 * Daily cap — points per calendar day in the business time zone; a follow-up
 * over it waits for the next day (the window then moves it to the opening).
 *
 * 0 means unlimited for either (the benchmarks turn both off).
 */
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Queryable } from '../db/db.js';
import type { RedisConnectionConfig } from '../config.js';
import type { Logger } from '../log.js';
import { makeRedisClient, makeRedisErrorLog, type RedisClient } from '../queue/redis-connection.js';
import { instantOf, wallTimeIn } from '../time/zoned-time.js';

export interface SendLimitsOptions {
  /** Sends allowed per `windowMs`; 0 = unlimited. */
  ratePerWindow: number;
  windowMs: number;
  /** Sends allowed per calendar day in `timeZone`; 0 = unlimited. */
  dailyCap: number;
  timeZone: string;
  /** The WhatsApp instance the limits belong to. */
  instance: string;
  keyPrefix: string;
  /** Unset: in memory (direct mode). */
  redis?: { connection: RedisConnectionConfig; commandTimeoutMs: number };
  /** Where the points are taken while Redis is down (PostgreSQL); unset: in memory. */
  fallbackDb?: Queryable;
  /** Longest a send may wait in-process for a booked slot; beyond, it is deferred. */
  maxWaitMs: number;
  log: Logger;
  /** Real time in production; the policy's clock, so a test's fake clock drives the slots too. */
  clock?: () => Date;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type Reservation =
  | { ok: true }
  | { ok: false; reason: 'pace' | 'daily_cap'; retryAt: Date; detail: Record<string, unknown> };

export interface SendLimits {
  /**
   * Takes a send's share of the pace and the daily cap, or says when to come back.
   * A 'lookup' (a /chat/whatsappNumbers call, number-checks.ts) takes a share of
   * the pace only: it is traffic from the number, but no message to count.
   */
  reserve(now: Date, kind?: 'send' | 'lookup', instance?: string): Promise<Reservation>;
  /** Messages counted against the number's daily cap today (null: unknown, e.g. Redis away, or no cap). */
  sentToday?(now: Date, instance?: string): Promise<number | null>;
  close(): Promise<void>;
}

const MAX_SLOT_TRIES = 3;

interface Spec {
  keyPrefix: string;
  points: number;
  /** Seconds. */
  duration: number;
}
interface Limiter {
  spec: Spec;
  limiter: RateLimiterAbstract;
}

const takeInDatabaseSql = {
  name: 'send_limits_take_point',
  text: `
INSERT INTO send_limit_points AS p (key, points, expires_at)
VALUES ($1::text, 1, $2::timestamptz + $3::int * interval '1 millisecond')
ON CONFLICT (key) DO UPDATE
   SET points = CASE WHEN p.expires_at <= $2::timestamptz THEN 1 ELSE p.points + 1 END,
       expires_at = CASE WHEN p.expires_at <= $2::timestamptz THEN EXCLUDED.expires_at ELSE p.expires_at END
RETURNING points`,
};

/** One point of `key` in PostgreSQL (atomic upsert); how many were taken in the key's life, this one included. */
async function takeInDatabase(db: Queryable, key: string, durationMs: number, now: Date): Promise<number> {
  const { rows } = await db.query<{ points: number }>(takeInDatabaseSql, [key, now, durationMs]);
  // Housekeeping now and then: expired keys go (a slot key lives seconds, a day key two days).
  if (Math.random() < 0.01) await db.query(`DELETE FROM send_limit_points WHERE expires_at < $1::timestamptz`, [now]).catch(() => undefined);
  return rows[0]!.points;
}

export function makeSendLimits(options: SendLimitsOptions): SendLimits {
  const random = options.random ?? Math.random;
  const clock = options.clock ?? (() => new Date());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const { log } = options;
  const paceOn = options.ratePerWindow > 0;
  const dailyOn = options.dailyCap > 0;
  const slotMs = paceOn ? options.windowMs / Math.max(options.ratePerWindow - 1, 0.5) : 0;
  const usableMs = slotMs / 3;
  let client: RedisClient | undefined;
  let firstConnect: Promise<void> | undefined;
  let limiters: { pace?: Limiter; daily?: Limiter } | undefined;

  function build() {
    if (limiters) return limiters;
    const specs = {
      // A slot key must outlive its slot, which may be booked up to maxWaitMs ahead; after that it is housekeeping.
      pace: paceOn
        ? { keyPrefix: `${options.keyPrefix}:pace`, points: 1, duration: Math.ceil((options.maxWaitMs + MAX_SLOT_TRIES * slotMs) / 1000) + 1 }
        : null,
      daily: dailyOn ? { keyPrefix: `${options.keyPrefix}:daily`, points: options.dailyCap, duration: 2 * 86_400 } : null,
    };
    if (options.redis && (paceOn || dailyOn)) {
      let warned = false;
      // Built like every other Redis connection (one server, Sentinel or Cluster).
      client = makeRedisClient(options.redis.connection, {
        use: 'commands',
        commandTimeoutMs: Math.min(options.redis.commandTimeoutMs, 1_000),
        connectTimeoutMs: 2_000,
        maxRetriesPerRequest: 0,
        name: 'rate-limit',
        errors: makeRedisErrorLog(log),
      });
      client.on('error', (error: Error) => {
        // Logged once per outage; the memory limiter carries on meanwhile.
        if (!warned) log.warn({ err: { message: error.message } }, 'rate-limit Redis unavailable; limiting in memory');
        warned = true;
      });
      client.on('ready', () => {
        if (warned) log.info('rate-limit Redis is back');
        warned = false;
      });
      // The first sends wait (briefly) for the connection: limited in memory, each worker would
      // have a pace of its own, and a fleet starting together would burst.
      const connecting = client;
      firstConnect = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2_000);
        timer.unref();
        connecting.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const redis = (spec: Spec): Limiter => ({
        spec,
        limiter: new RateLimiterRedis({
          ...spec,
          storeClient: client,
          rejectIfRedisNotReady: true,
          // Without a shared database the memory limiter stands in; with one, take() falls back to it.
          ...(options.fallbackDb ? {} : { insuranceLimiter: new RateLimiterMemory(spec) }),
        }),
      });
      limiters = { pace: specs.pace ? redis(specs.pace) : undefined, daily: specs.daily ? redis(specs.daily) : undefined };
    } else {
      limiters = {
        pace: specs.pace ? { spec: specs.pace, limiter: new RateLimiterMemory(specs.pace) } : undefined,
        daily: specs.daily ? { spec: specs.daily, limiter: new RateLimiterMemory(specs.daily) } : undefined,
      };
    }
    return limiters;
  }

  /** Consumes one point; `consumed` counts everyone who asked in this key's life (winners and losers). */
  async function take(limiter: Limiter, key: string): Promise<{ ok: boolean; consumed: number }> {
    try {
      const res = await limiter.limiter.consume(key);
      return { ok: true, consumed: res.consumedPoints };
    } catch (error) {
      if (error instanceof RateLimiterRes) return { ok: false, consumed: error.consumedPoints };
      if (!options.fallbackDb) throw error;
      const consumed = await takeInDatabase(options.fallbackDb, `${limiter.spec.keyPrefix}:${key}`, limiter.spec.duration * 1000, clock());
      return { ok: consumed <= limiter.spec.points, consumed };
    }
  }

  /** Gives a point back (a day's point a deferred send did not use), wherever it was taken. */
  async function giveBack(limiter: Limiter, key: string): Promise<void> {
    try {
      await limiter.limiter.reward(key, 1);
    } catch {
      if (options.fallbackDb) {
        await options.fallbackDb.query(`UPDATE send_limit_points SET points = points - 1 WHERE key = $1::text AND points > 0`, [
          `${limiter.spec.keyPrefix}:${key}`,
        ]);
      }
    }
  }

  /** One try at the slot for `t` or one of the next few; the booked slot, or when to come back. */
  async function tryBook(pace: Limiter, t: number): Promise<{ ok: true; slot: number; target: number } | Reservation> {
    const current = Math.floor(t / slotMs);
    let slot = t - current * slotMs < usableMs ? current : current + 1;
    let lastTried: number | null = null;
    let losers = 0;
    for (let attempt = 0; attempt < MAX_SLOT_TRIES; attempt++, slot++) {
      const target = slot === current ? t : slot * slotMs + random() * usableMs;
      if (target - t > options.maxWaitMs) break;
      const got = await take(pace, `${options.instance}:${slot}`);
      if (got.ok) return { ok: true, slot, target };
      lastTried = slot;
      losers = got.consumed - 1;
    }
    const queued = lastTried === null ? slot : lastTried + Math.max(1, losers);
    return {
      ok: false,
      reason: 'pace',
      retryAt: new Date(Math.ceil(queued * slotMs + random() * usableMs)),
      detail: { slotMs: Math.round(slotMs), waiting: losers },
    };
  }

  /**
   * Books a slot and waits for it. A busy process can wake late from that wait;
   * past the slot's first third the send would crowd the next slot's, so it books
   * again rather than go.
   */
  async function bookSlot(pace: Limiter, now: Date): Promise<Reservation> {
    let t = now.getTime();
    for (let round = 0; round < MAX_SLOT_TRIES; round++) {
      const booked = await tryBook(pace, t);
      if (!booked.ok) return booked;
      if (!('slot' in booked)) return booked;
      if (booked.target <= t) return { ok: true };
      await sleep(booked.target - t);
      const woke = clock().getTime();
      if (woke < booked.slot * slotMs + usableMs) return { ok: true };
      t = woke;
    }
    return { ok: false, reason: 'pace', retryAt: new Date(t + slotMs), detail: { slotMs: Math.round(slotMs), late: true } };
  }

  function dayKey(now: Date): { key: string; nextDay: Date } {
    const w = wallTimeIn(now, options.timeZone);
    const key = `${options.instance}:${w.year}-${String(w.month).padStart(2, '0')}-${String(w.day).padStart(2, '0')}`;
    return { key, nextDay: instantOf({ year: w.year, month: w.month, day: w.day + 1 }, options.timeZone) };
  }

  return {
    async reserve(now, kind = 'send') {
      if (!paceOn && !dailyOn) return { ok: true };
      const built = build();
      const pace = built.pace;
      const daily = kind === 'send' ? built.daily : undefined;
      if (firstConnect) await firstConnect;
      try {
        let day: { key: string; nextDay: Date } | undefined;
        if (daily) {
          day = dayKey(now);
          const got = await take(daily, day.key);
          if (!got.ok) {
            return { ok: false, reason: 'daily_cap', retryAt: day.nextDay, detail: { dailyCap: options.dailyCap } };
          }
        }
        if (!pace) return { ok: true };
        const booking = await bookSlot(pace, now);
        // Deferred by the pace: the day's point was not used after all.
        if (!booking.ok && daily && day) await giveBack(daily, day.key).catch(() => undefined);
        return booking;
      } catch (error) {
        // Neither Redis nor the memory stand-in answered: hold the send briefly rather than risk a burst.
        log.warn({ err: error }, 'rate limiter failed; deferring the send briefly');
        return { ok: false, reason: 'pace', retryAt: new Date(now.getTime() + 5_000), detail: { error: 'rate_limiter_failed' } };
      }
    },
    async sentToday(now) {
      if (!dailyOn) return null;
      const daily = build().daily;
      if (!daily) return null;
      try {
        const res = await daily.limiter.get(dayKey(now).key);
        return res?.consumedPoints ?? 0;
      } catch {
        return null;
      }
    },
    async close() {
      client?.disconnect();
      client = undefined;
    },
  };
}

/**
 * Several WhatsApp numbers: one SendLimits per number (its own pace and daily cap, keys named by
 * the instance, shared by every worker in Redis); `reserve(now, kind, instance)` takes from the
 * named number's, the default (first) number's when none is named.
 */
export function makeNumberLimits(
  numbers: ReadonlyArray<{ name: string; ratePerMinute: number; dailyCap: number }>,
  base: Omit<SendLimitsOptions, 'instance' | 'ratePerWindow' | 'dailyCap'>,
): SendLimits {
  const byName = new Map(
    numbers.map((n) => [n.name, makeSendLimits({ ...base, instance: n.name, ratePerWindow: n.ratePerMinute, dailyCap: n.dailyCap })] as const),
  );
  const fallback = byName.get(numbers[0]!.name)!;
  const pick = (instance?: string) => (instance ? byName.get(instance) : undefined) ?? fallback;
  return {
    reserve: (now, kind, instance) => pick(instance).reserve(now, kind),
    sentToday: (now, instance) => pick(instance).sentToday!(now),
    async close() {
      await Promise.all([...byName.values()].map((l) => l.close()));
    },
  };
}
