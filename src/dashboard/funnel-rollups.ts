/**
 * The funnel from daily roll-ups (migration 016), exactly what the raw query (funnelSql in
 * read-dashboard.ts) gives, at any period, in a few index ranges:
 *
 *   funnel(period) = Σ roll-ups of the clean days wholly inside the period
 *                  + the six counts read live for the follow-ups planned in the rest
 *                    (the start of the first day, the last days, and any day marked since it was rolled).
 *
 * A roll-up holds, per UTC day of planned_at and (campaign, step, variant, composer), the
 * follow-ups planned, sent, answered within 24 h of that send, and the opt-outs, hand-offs and
 * conversions counted for them. Only days that ended at least 2 days before the refresh are
 * rolled; a later change to a rolled day (a late send, a reply recorded late, a backdated
 * enrollment, a fan stopped weeks after the send it counts for, a send to a fan already stopped)
 * appends a mark through migration 016's triggers, in the same transaction, and a marked day is
 * read live until it is rolled again.
 *
 * Refreshing is safe with any number of processes, on PostgreSQL, PGlite and through a
 * transaction pooler: each day is rolled in one transaction that holds its row
 * (FOR UPDATE SKIP LOCKED; another refresher skips it), deletes the marks it sees and rewrites
 * the day's counts; a mark committed meanwhile stays and the day is rolled again next time.
 */
import type { Db, Queryable } from '../db/db.js';
import type { FunnelRow } from './funnel-rows.js';

const DAY_MS = 86_400_000;
/** Days kept rolled up: the longest period the page offers (90 days) and the day it starts in. */
export const ROLLUP_HORIZON_DAYS = 91;

type Counts = Pick<FunnelRow, 'planned' | 'sent' | 'replied' | 'optedOut' | 'handedOff' | 'converted'>;
type GroupKey = Pick<FunnelRow, 'campaign' | 'step' | 'variant' | 'composer'>;

/**
 * The six counts for the campaign follow-ups planned in [$1, $2) ($2 null: no end), of campaign $3
 * (null: all), as funnelSql counts them: one index range on planned_at for planned and sent; the
 * replies from the inbound messages between the range's first send and 24 h after its last (an
 * index-only range, hashed); the stops from the leads stamped since the range's first send (three
 * partial indexes), each counted for the lead's last send before it (the next send looked up by lead).
 */
export const rangeSql = `
WITH f AS MATERIALIZED (
  SELECT f.lead_id, f.campaign, f.step, f.variant, f.composer, f.sent_at FROM follow_ups f
   WHERE f.campaign IS NOT NULL AND f.planned_at >= $1::timestamptz AND ($2::timestamptz IS NULL OR f.planned_at < $2::timestamptz)
     AND ($3::text IS NULL OR f.campaign = $3::text)
), base AS (
  SELECT campaign, step, variant, composer, count(*)::int AS planned, count(sent_at)::int AS sent FROM f GROUP BY 1, 2, 3, 4
), inbound AS MATERIALIZED (
  SELECT lead_id, at FROM messages
   WHERE direction = 'in' AND at > (SELECT min(sent_at) FROM f) AND at <= (SELECT max(sent_at) FROM f) + interval '24 hours'
), replied AS (
  SELECT campaign, step, variant, composer, count(*)::int AS replied FROM f
   WHERE f.sent_at IS NOT NULL
     AND EXISTS (SELECT 1 FROM inbound i WHERE i.lead_id = f.lead_id AND i.at > f.sent_at AND i.at <= f.sent_at + interval '24 hours')
   GROUP BY 1, 2, 3, 4
), flagged AS MATERIALIZED (
  SELECT id, opted_out_at, handoff_at, converted_at FROM leads
   WHERE opted_out_at >= (SELECT min(sent_at) FROM f) OR handoff_at >= (SELECT min(sent_at) FROM f) OR converted_at >= (SELECT min(sent_at) FROM f)
), flagged_sent AS MATERIALIZED (
  SELECT f.campaign, f.step, f.variant, f.composer, f.sent_at, fl.opted_out_at, fl.handoff_at, fl.converted_at,
         (SELECT min(n.sent_at) FROM follow_ups n WHERE n.lead_id = f.lead_id AND n.sent_at > f.sent_at) AS next_sent_at
    FROM f JOIN flagged fl ON fl.id = f.lead_id WHERE f.sent_at IS NOT NULL
), stops AS (
  SELECT campaign, step, variant, composer,
         count(*) FILTER (WHERE opted_out_at >= sent_at AND (next_sent_at IS NULL OR opted_out_at < next_sent_at))::int AS opted_out,
         count(*) FILTER (WHERE handoff_at >= sent_at AND (next_sent_at IS NULL OR handoff_at < next_sent_at))::int AS handed_off,
         count(*) FILTER (WHERE converted_at >= sent_at AND (next_sent_at IS NULL OR converted_at < next_sent_at))::int AS converted
    FROM flagged_sent GROUP BY 1, 2, 3, 4
)
SELECT b.campaign, b.step, b.variant, b.composer, b.planned, b.sent, COALESCE(r.replied, 0) AS replied,
       COALESCE(s.opted_out, 0) AS "optedOut", COALESCE(s.handed_off, 0) AS "handedOff", COALESCE(s.converted, 0) AS converted
  FROM base b
  LEFT JOIN replied r ON (r.campaign, r.step, r.variant, r.composer) IS NOT DISTINCT FROM (b.campaign, b.step, b.variant, b.composer)
  LEFT JOIN stops s ON (s.campaign, s.step, s.variant, s.composer) IS NOT DISTINCT FROM (b.campaign, b.step, b.variant, b.composer)`;

/** The clean rolled days from $1 on (rolled, no mark since), and the sum of their roll-ups (of campaign $2). */
const cleanDaysSql = `
SELECT to_char(d.day, 'YYYY-MM-DD') AS day FROM funnel_rollup_days d
 WHERE d.day >= $1::date AND d.rolled_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM funnel_rollup_marks m WHERE m.day = d.day)
 ORDER BY d.day`;
const rolledSql = `
SELECT campaign, step, variant, composer, sum(planned)::int AS planned, sum(sent)::int AS sent, sum(replied)::int AS replied,
       sum(opted_out)::int AS "optedOut", sum(handed_off)::int AS "handedOff", sum(converted)::int AS converted
  FROM funnel_rollups WHERE day = ANY($1::date[]) AND ($2::text IS NULL OR campaign = $2::text)
 GROUP BY 1, 2, 3, 4`;

const COUNTS = ['planned', 'sent', 'replied', 'optedOut', 'handedOff', 'converted'] as const;
const keyOf = (r: GroupKey) => JSON.stringify([r.campaign, r.step, r.variant, r.composer]);
const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const dayStart = (day: string) => Date.parse(`${day}T00:00:00Z`);

/** [from, to) ranges (ms; to null: no end) of [since, ∞) that the clean days do not cover. */
export function liveRanges(sinceMs: number, cleanDays: readonly string[]): Array<[number, number | null]> {
  const ranges: Array<[number, number | null]> = [];
  let from = sinceMs;
  for (const day of [...cleanDays].sort()) {
    const start = dayStart(day);
    if (start < sinceMs) continue;
    if (start > from) ranges.push([from, start]);
    from = start + DAY_MS;
  }
  ranges.push([from, null]);
  return ranges;
}

/** Database settings for the funnel's statements (PostgreSQL; in a transaction). */
async function funnelSettings(db: Db, tx: Queryable) {
  if (db.kind !== 'pg') return;
  // Compiling these plans costs more than running them; hashing beats sorting (row estimates are far off).
  await tx.query('SET LOCAL jit = off');
  await tx.query("SET LOCAL work_mem = '32MB'");
  await tx.query('SET LOCAL enable_sort = off');
}

export interface FunnelRead {
  rows: FunnelRow[];
  /** How the period was read: clean rolled days, and the live ranges. */
  rolledDays: number;
  liveRanges: Array<[string, string | null]>;
}

/** The funnel of the campaign follow-ups planned since `since` (of `campaign`), from roll-ups and live reads, in one snapshot. */
export async function readFunnelRows(db: Db, options: { since: Date; campaign?: string | null }): Promise<FunnelRead> {
  const sinceMs = options.since.getTime();
  const campaign = options.campaign ?? null;
  const firstWholeDay = utcDay(Math.ceil(sinceMs / DAY_MS) * DAY_MS);
  return db.transaction(async (tx) => {
    // One snapshot for every statement: the roll-ups, their marks and the live rows agree.
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await funnelSettings(db, tx);
    const clean = (await tx.query<{ day: string }>(cleanDaysSql, [firstWholeDay])).rows.map((r) => r.day);
    const ranges = liveRanges(sinceMs, clean);
    const parts: Array<Array<GroupKey & Partial<Counts>>> = [];
    if (clean.length > 0) parts.push((await tx.query<GroupKey & Counts>(rolledSql, [clean, campaign])).rows);
    for (const [from, to] of ranges) {
      parts.push((await tx.query<GroupKey & Counts>(rangeSql, [new Date(from), to === null ? null : new Date(to), campaign])).rows);
    }
    const byKey = new Map<string, FunnelRow>();
    for (const part of parts) {
      for (const r of part) {
        const key = keyOf(r);
        const row = byKey.get(key) ?? { campaign: r.campaign, step: r.step, variant: r.variant, composer: r.composer, planned: 0, sent: 0, replied: 0, optedOut: 0, handedOff: 0, converted: 0 };
        for (const k of COUNTS) row[k] += r[k] ?? 0;
        byKey.set(key, row);
      }
    }
    return {
      rows: [...byKey.values()].filter((r) => r.planned > 0).sort(compareRows),
      rolledDays: clean.length,
      liveRanges: ranges.map(([from, to]) => [new Date(from).toISOString(), to === null ? null : new Date(to).toISOString()]),
    };
  });
}

/** The raw query's order: campaign, then step, variant, composer with nulls last. */
export function compareRows(a: GroupKey, b: GroupKey): number {
  const cmp = (x: string | number | null, y: string | number | null) => (x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? -1 : 1);
  return cmp(a.campaign, b.campaign) || cmp(a.step, b.step) || cmp(a.variant, b.variant) || cmp(a.composer, b.composer);
}

export interface RefreshResult {
  /** Days (re)rolled by this call. */
  rolled: number;
  tookMs: number;
}

/**
 * Rolls up the closed days of the horizon that are new or marked since they were rolled (any
 * number of processes at once: each day by one of them), and forgets the days past the horizon.
 * `maxDays` bounds one call's work.
 */
export async function refreshFunnelRollups(db: Db, options: { horizonDays?: number; maxDays?: number } = {}): Promise<RefreshResult> {
  const started = Date.now();
  const horizon = options.horizonDays ?? ROLLUP_HORIZON_DAYS;
  const maxDays = options.maxDays ?? Number.POSITIVE_INFINITY;
  // The closed days: from the horizon (or the first campaign follow-up) to the day that ended 2 days ago.
  await db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO funnel_rollup_days (day)
       SELECT d::date FROM generate_series(
                GREATEST(((now() - $1::int * interval '1 day') AT TIME ZONE 'UTC')::date,
                         COALESCE((SELECT (min(planned_at) AT TIME ZONE 'UTC')::date FROM follow_ups WHERE campaign IS NOT NULL),
                                  (now() AT TIME ZONE 'UTC')::date)),
                ((now() - interval '2 days') AT TIME ZONE 'UTC')::date - 1, interval '1 day') d
       ON CONFLICT (day) DO NOTHING`,
      [horizon],
    );
    const first = `((now() - $1::int * interval '1 day') AT TIME ZONE 'UTC')::date`;
    await tx.query(`DELETE FROM funnel_rollup_marks WHERE day < ${first}`, [horizon]);
    await tx.query(`DELETE FROM funnel_rollups WHERE day < ${first}`, [horizon]);
    await tx.query(`DELETE FROM funnel_rollup_days WHERE day < ${first}`, [horizon]);
  });
  let rolled = 0;
  while (rolled < maxDays) {
    const done = await db.transaction(async (tx) => {
      await funnelSettings(db, tx);
      const { rows } = await tx.query<{ day: string }>(
        `SELECT to_char(day, 'YYYY-MM-DD') AS day FROM funnel_rollup_days d
          WHERE d.rolled_at IS NULL OR EXISTS (SELECT 1 FROM funnel_rollup_marks m WHERE m.day = d.day)
          ORDER BY d.day DESC LIMIT 1 FOR UPDATE SKIP LOCKED`,
      );
      const day = rows[0]?.day;
      if (!day) return 'none';
      // Another refresher may have rolled it between this statement's snapshot and the lock: look again.
      const still = await tx.query(
        `SELECT 1 FROM funnel_rollup_days d WHERE d.day = $1::date
            AND (d.rolled_at IS NULL OR EXISTS (SELECT 1 FROM funnel_rollup_marks m WHERE m.day = d.day))`,
        [day],
      );
      if (still.rows.length === 0) return 'skipped';
      // The marks this transaction sees are for changes committed before it: the INSERT below
      // (a later snapshot) reads them. A mark committed after stays for the next refresh.
      await tx.query('DELETE FROM funnel_rollup_marks WHERE day = $1::date', [day]);
      await tx.query('DELETE FROM funnel_rollups WHERE day = $1::date', [day]);
      await tx.query(
        `INSERT INTO funnel_rollups (day, campaign, step, variant, composer, planned, sent, replied, opted_out, handed_off, converted)
         SELECT $4::date, campaign, step, variant, composer, planned, sent, replied, "optedOut", "handedOff", converted FROM (${rangeSql}) x`,
        [new Date(dayStart(day)), new Date(dayStart(day) + DAY_MS), null, day],
      );
      await tx.query('UPDATE funnel_rollup_days SET rolled_at = now() WHERE day = $1::date', [day]);
      return 'rolled';
    });
    if (done === 'none') break;
    if (done === 'rolled') rolled++;
  }
  return { rolled, tookMs: Date.now() - started };
}

/**
 * Refreshes the roll-ups in the background: `kick()` starts one refresh unless one is running or
 * the last one started less than `minIntervalMs` ago; `start()` also kicks every `everyMs`.
 */
export function makeRollupRefresher(options: { db: Db; minIntervalMs: number; everyMs?: number; onError?: (error: unknown) => void }) {
  let running: Promise<RefreshResult | null> | null = null;
  let lastStart = 0;
  let timer: NodeJS.Timeout | null = null;
  const kick = (): Promise<RefreshResult | null> => {
    if (running) return running;
    if (Date.now() - lastStart < options.minIntervalMs) return Promise.resolve(null);
    lastStart = Date.now();
    running = refreshFunnelRollups(options.db)
      .catch((error) => {
        options.onError?.(error);
        return null;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  return {
    kick,
    start(firstAfterMs: number) {
      if (timer || !options.everyMs) return;
      const every = options.everyMs;
      timer = setTimeout(function tick() {
        void kick();
        timer = setTimeout(tick, every);
        timer.unref();
      }, firstAfterMs);
      timer.unref();
    },
    /** Stops the timer and waits for a refresh in flight. */
    async stop() {
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
