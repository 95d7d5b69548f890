/**
 * Follow-up counts by status for /metrics, served from memory. Counting the
 * table costs time in proportion to its size (0.6 s at 2 M rows), and a public
 * scrape that counts it on every call is a denial of service: 30 concurrent
 * scrapes starved the pool and /health/ready answered 503. Here:
 *   - a scrape never waits for a count once one has been read (the first scrape
 *     of a process waits for the first count, shared by everyone who asks then);
 *   - at most one count is in flight per process, whatever the number of scrapes;
 *   - a count starts only when a scrape finds the last one older than `refreshMs`,
 *     and never sooner than ten times the last count's duration after it, so a
 *     huge table costs the database at most a tenth of one connection;
 *   - no scrapes, no queries (an idle process stays idle).
 */
import type { Queryable } from '../db/db.js';
import type { Logger } from '../log.js';
import { readStats, type Stats } from './read-stats.js';

export interface CachedStats {
  /** The last counts (null when the last count failed: stale counts would mislead), and their age. */
  read(): Promise<{ stats: Stats | null; ageMs: number }>;
}

export function makeCachedStats(options: { db: Queryable; refreshMs: number; log: Logger; now?: () => number }): CachedStats {
  const now = options.now ?? (() => performance.now());
  let stats: Stats | null = null;
  let readAt = -Infinity;
  let nextAllowedAt = -Infinity;
  let inFlight: Promise<void> | null = null;

  function refresh(): Promise<void> {
    inFlight ??= (async () => {
      const started = now();
      try {
        stats = await readStats(options.db);
      } catch (error) {
        stats = null;
        options.log.warn({ err: error }, 'metrics: could not count follow-ups by status');
      } finally {
        const finished = now();
        readAt = finished;
        nextAllowedAt = finished + Math.max(options.refreshMs, 10 * (finished - started));
        inFlight = null;
      }
    })();
    return inFlight;
  }

  return {
    async read() {
      if (readAt === -Infinity) await refresh();
      else if (now() >= nextAllowedAt) void refresh();
      return { stats, ageMs: Math.max(0, now() - readAt) };
    },
  };
}
