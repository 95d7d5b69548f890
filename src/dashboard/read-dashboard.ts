/**
 * What the dashboard's pages show, one reader per page. Each stays within index
 * ranges as history grows (migration 014 adds the indexes; bench/ measures each page
 * at 1,000,000 follow-ups): counts by status come from memory (cached-stats.ts), the
 * rest reads recent rows only (the last hour, day, week, or the period asked for).
 */
import type { Campaigns } from '../campaigns/campaign.js';
import type { Context } from '../context.js';
import type { Db, Queryable } from '../db/db.js';
import { listActivePauses, listRecentPauses, type SendingPause } from '../followups/operator-pause.js';
import type { Stats } from '../followups/read-stats.js';
import { readStatus, type StatusReport } from '../operator/read-status.js';
import { tryNormalizePhone } from '../whatsapp/phone.js';
import { readFunnelRows } from './funnel-rollups.js';
import type { FunnelCounts, FunnelRow } from './funnel-rows.js';
import { type NumberState, readNumberStates } from './read-number-states.js';

export interface NowPage {
  status: StatusReport;
  /** Age of the counts by status (served from memory). */
  countsAgeMs: number;
  lateness: { p50Ms: number | null; p99Ms: number | null; executed: number };
  failures24h: Array<{ reason: string; count: number }>;
  numbers: NumberState[];
  pauses: SendingPause[];
  recentPauses: SendingPause[];
}

export async function readNowPage(ctx: Context, counts: () => Promise<{ stats: Stats | null; ageMs: number }>): Promise<NowPage> {
  const now = ctx.clock.now();
  let countsAgeMs = 0;
  const readCounts = async () => {
    const { stats, ageMs } = await counts();
    countsAgeMs = ageMs;
    if (!stats) throw new Error('follow-up counts unavailable');
    return stats;
  };
  const [status, lateness, failures, numbers, pauses, recentPauses] = await Promise.all([
    readStatus(ctx, { readCounts }),
    // Lateness: from the due time to the claim that sent it (sending_started_at), over the last hour's sends.
    ctx.db.query<{ p50: number | null; p99: number | null; n: number }>(
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99, count(*)::int AS n
         FROM (SELECT GREATEST(0, extract(epoch FROM (COALESCE(sending_started_at, sent_at) - due_at)) * 1000) AS ms
                 FROM follow_ups WHERE sent_at > $1::timestamptz - interval '1 hour' AND sent_at <= $1::timestamptz AND status = 'executed') x`,
      [now],
    ),
    ctx.db.query<{ reason: string | null; count: number }>(
      `SELECT reason, count(DISTINCT follow_up_id)::int AS count FROM follow_up_events
        WHERE to_status = 'failed' AND at > $1::timestamptz - interval '24 hours' GROUP BY reason ORDER BY count DESC`,
      [now],
    ),
    readNumberStates(ctx),
    listActivePauses(ctx.db),
    listRecentPauses(ctx.db, 10),
  ]);
  const l = lateness.rows[0];
  return {
    status,
    countsAgeMs,
    lateness: { p50Ms: l?.p50 == null ? null : Math.round(Number(l.p50)), p99Ms: l?.p99 == null ? null : Math.round(Number(l.p99)), executed: l?.n ?? 0 },
    failures24h: failures.rows.map((r) => ({ reason: r.reason ?? '—', count: r.count })),
    numbers,
    pauses,
    recentPauses,
  };
}

export interface ActivityPage {
  /** Start of each hour (epoch seconds), oldest first, 7 × 24 of them ending with the current hour. */
  hours: number[];
  sends: number[];
  replies: number[];
  optOuts: number[];
  totals: { sends: number; replies: number; optOuts: number };
}

/** Sends (follow-ups that went out), replies (messages from fans) and opt-outs per hour over the last 7 days. */
export async function readActivityPage(db: Queryable, now: Date): Promise<ActivityPage> {
  const HOUR = 3_600_000;
  const last = Math.floor(now.getTime() / HOUR) * HOUR;
  const first = last - (7 * 24 - 1) * HOUR;
  const since = new Date(first);
  const perHour = (sql: string) => db.query<{ h: number; n: number }>(sql, [since, now]);
  const [sends, replies, optOuts] = await Promise.all([
    perHour(`SELECT (extract(epoch FROM date_trunc('hour', sent_at)))::bigint * 1000 AS h, count(*)::int AS n FROM follow_ups
              WHERE sent_at >= $1::timestamptz AND sent_at <= $2::timestamptz GROUP BY 1`),
    perHour(`SELECT (extract(epoch FROM date_trunc('hour', at)))::bigint * 1000 AS h, count(*)::int AS n FROM messages
              WHERE direction = 'in' AND at >= $1::timestamptz AND at <= $2::timestamptz GROUP BY 1`),
    perHour(`SELECT (extract(epoch FROM date_trunc('hour', opted_out_at)))::bigint * 1000 AS h, count(*)::int AS n FROM leads
              WHERE opted_out_at >= $1::timestamptz AND opted_out_at <= $2::timestamptz GROUP BY 1`),
  ]);
  const hours: number[] = [];
  for (let t = first; t <= last; t += HOUR) hours.push(t);
  const series = (rows: Array<{ h: number; n: number }>) => {
    const byHour = new Map(rows.map((r) => [Number(r.h), r.n]));
    return hours.map((h) => byHour.get(h) ?? 0);
  };
  const s = series(sends.rows);
  const r = series(replies.rows);
  const o = series(optOuts.rows);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return { hours: hours.map((h) => h / 1000), sends: s, replies: r, optOuts: o, totals: { sends: sum(s), replies: sum(r), optOuts: sum(o) } };
}

export type { FunnelCounts, FunnelRow } from './funnel-rows.js';

export interface FunnelPage {
  days: number;
  since: string;
  /** When these numbers were computed (the page may be served from memory). */
  computedAt: string;
  campaigns: string[];
  campaign: string | null;
  /** The finest grouping (campaign, step, variant, composer); the page sums it per step, variant, composer. */
  rows: FunnelRow[];
  /** Step number → its delay in hours, from the campaign definitions. */
  stepDelays: Record<string, Record<number, number>>;
}

export const FUNNEL_PERIODS = [1, 7, 30, 90] as const;

/**
 * The funnel of campaign follow-ups planned in the last `days`: planned → sent → the fan wrote within
 * 24 h of that send → opted out → handed off → converted. A stop (opt-out, hand-off, conversion) counts
 * for the last follow-up the fan was sent before it (and not for earlier ones), so steps do not share it.
 *
 * The page reads it from daily roll-ups and a few live ranges (funnel-rollups.ts), which give exactly
 * what this raw query gives: it is the reference (the tests compare both), read over the whole period.
 * One pass over the period's follow-ups (an index range on planned_at) for planned/sent; the replies
 * from the inbound messages after the period's first send (an index-only range, hashed), the stops
 * from the few leads stamped since the period's first send (three small partial indexes); each part
 * is grouped on its own and the groups joined. (A follow-up's counts depend on it and the fan's
 * messages and stamps only, not on the period asked: what lets daily roll-ups add up to it.)
 */
export const funnelSql = `
WITH f AS MATERIALIZED (
  SELECT f.lead_id, f.campaign, f.step, f.variant, f.composer, f.sent_at
    FROM follow_ups f
   WHERE f.campaign IS NOT NULL AND f.planned_at >= $1::timestamptz AND ($2::text IS NULL OR f.campaign = $2::text)
), base AS (
  SELECT campaign, step, variant, composer, count(*)::int AS planned, count(sent_at)::int AS sent FROM f GROUP BY 1, 2, 3, 4
), inbound AS MATERIALIZED (
  SELECT lead_id, at FROM messages WHERE direction = 'in' AND at > (SELECT min(sent_at) FROM f)
), replied AS (
  SELECT campaign, step, variant, composer, count(*)::int AS replied FROM f
   WHERE f.sent_at IS NOT NULL
     AND EXISTS (SELECT 1 FROM inbound i WHERE i.lead_id = f.lead_id AND i.at > f.sent_at AND i.at <= f.sent_at + interval '24 hours')
   GROUP BY 1, 2, 3, 4
), flagged AS MATERIALIZED (
  SELECT id, opted_out_at, handoff_at, converted_at FROM leads
   WHERE opted_out_at >= (SELECT min(sent_at) FROM f) OR handoff_at >= (SELECT min(sent_at) FROM f) OR converted_at >= (SELECT min(sent_at) FROM f)
), flagged_sent AS MATERIALIZED (
  SELECT f.*, fl.opted_out_at, fl.handoff_at, fl.converted_at FROM f JOIN flagged fl ON fl.id = f.lead_id WHERE f.sent_at IS NOT NULL
), stops AS (
  SELECT campaign, step, variant, composer,
         count(*) FILTER (WHERE opted_out_at >= sent_at AND (next_sent_at IS NULL OR opted_out_at < next_sent_at))::int AS opted_out,
         count(*) FILTER (WHERE handoff_at >= sent_at AND (next_sent_at IS NULL OR handoff_at < next_sent_at))::int AS handed_off,
         count(*) FILTER (WHERE converted_at >= sent_at AND (next_sent_at IS NULL OR converted_at < next_sent_at))::int AS converted
    FROM (SELECT s.*, (SELECT min(n.sent_at) FROM follow_ups n WHERE n.lead_id = s.lead_id AND n.sent_at > s.sent_at) AS next_sent_at
            FROM flagged_sent s) x
   GROUP BY 1, 2, 3, 4
)
SELECT b.campaign, b.step, b.variant, b.composer, b.planned, b.sent, COALESCE(r.replied, 0) AS replied,
       COALESCE(s.opted_out, 0) AS "optedOut", COALESCE(s.handed_off, 0) AS "handedOff", COALESCE(s.converted, 0) AS converted
  FROM base b
  LEFT JOIN replied r ON (r.campaign, r.step, r.variant, r.composer) IS NOT DISTINCT FROM (b.campaign, b.step, b.variant, b.composer)
  LEFT JOIN stops s ON (s.campaign, s.step, s.variant, s.composer) IS NOT DISTINCT FROM (b.campaign, b.step, b.variant, b.composer)
 ORDER BY b.campaign, b.step NULLS LAST, b.variant NULLS LAST, b.composer NULLS LAST`;

/** The funnel by the raw query alone (the reference; the page reads roll-ups). */
export async function readFunnelRaw(db: Db, options: { since: Date; campaign?: string | null }): Promise<FunnelRow[]> {
  return db.transaction(async (tx) => {
    // JIT compiling this plan costs more than running it; its row estimates are far off (a few dozen
    // groups for up to a million rows): hashing beats sorting.
    if (db.kind === 'pg') {
      await tx.query('SET LOCAL jit = off');
      await tx.query("SET LOCAL work_mem = '32MB'");
      await tx.query('SET LOCAL enable_sort = off');
    }
    return (await tx.query<FunnelRow>(funnelSql, [options.since, options.campaign ?? null])).rows;
  });
}

export async function readFunnelPage(
  ctx: { db: Db; clock: { now(): Date }; campaigns: Campaigns },
  options: { days: number; campaign?: string | null },
): Promise<FunnelPage> {
  const now = ctx.clock.now();
  const since = new Date(now.getTime() - options.days * 86_400_000);
  const { rows } = await readFunnelRows(ctx.db, { since, campaign: options.campaign ?? null });
  const stepDelays: FunnelPage['stepDelays'] = {};
  for (const c of ctx.campaigns.values()) stepDelays[c.name] = Object.fromEntries(c.steps.map((s) => [s.step, s.delayHours]));
  return {
    days: options.days,
    since: since.toISOString(),
    computedAt: now.toISOString(),
    campaigns: [...ctx.campaigns.keys()],
    campaign: options.campaign ?? null,
    rows,
    stepDelays,
  };
}

/**
 * The funnel served from memory, per (days, campaign): the first view of a process computes it;
 * later views get the last result at once and, when it is older than `maxAgeMs` (and than ten
 * times the last computation took), start one computation in the background (one in flight per
 * key), as /metrics does with its counts.
 */
export function makeFunnelCache(options: { maxAgeMs: number; maxKeys?: number }) {
  const entries = new Map<string, { value?: FunnelPage; at: number; tookMs: number; inFlight?: Promise<FunnelPage> }>();
  return {
    async read(key: string, compute: () => Promise<FunnelPage>): Promise<{ page: FunnelPage; ageMs: number }> {
      let entry = entries.get(key);
      if (!entry) {
        if (entries.size >= (options.maxKeys ?? 50)) entries.delete(entries.keys().next().value!);
        entry = { at: 0, tookMs: 0 };
        entries.set(key, entry);
      }
      const e = entry;
      const refresh = () => {
        const started = Date.now();
        return (e.inFlight ??= compute()
          .then((value) => {
            e.value = value;
            e.at = Date.now();
            e.tookMs = e.at - started;
            return value;
          })
          .finally(() => {
            e.inFlight = undefined;
          }));
      };
      if (!e.value) return { page: await refresh(), ageMs: 0 };
      // A long period costs the database seconds: never more than a tenth of its time on one key.
      if (Date.now() - e.at > Math.max(options.maxAgeMs, 10 * e.tookMs)) void refresh().catch(() => undefined);
      return { page: e.value, ageMs: Date.now() - e.at };
    },
    clear() {
      entries.clear();
    },
  };
}

export interface FanMatch {
  phone: string;
  name: string | null;
  optedOut: boolean;
  handoff: boolean;
  converted: boolean;
  lastInboundAt: string | null;
}

/**
 * Fans by phone (any spelling the API accepts: +55 (81) 9 9999-8888, without the 9th digit, …)
 * or by the start of their name (case-insensitive).
 */
export async function findFans(db: Queryable, query: string): Promise<{ byPhone: string | null; fans: FanMatch[] }> {
  const q = query.trim();
  if (!q) return { byPhone: null, fans: [] };
  const phone = /\d{8,}/.test(q.replace(/\D/g, '')) ? tryNormalizePhone(q) : null;
  const { rows } = phone
    ? await db.query<{ phone: string; name: string | null; opted_out_at: Date | null; handoff_at: Date | null; converted_at: Date | null; last_inbound_at: Date | null }>(
        'SELECT phone, name, opted_out_at, handoff_at, converted_at, last_inbound_at FROM leads WHERE phone = $1::text',
        [phone],
      )
    : await db.query<{ phone: string; name: string | null; opted_out_at: Date | null; handoff_at: Date | null; converted_at: Date | null; last_inbound_at: Date | null }>(
        `SELECT phone, name, opted_out_at, handoff_at, converted_at, last_inbound_at FROM leads
          WHERE name IS NOT NULL AND lower(name) COLLATE "C" LIKE $1::text ESCAPE '\\' AND erased_at IS NULL
          ORDER BY lower(name) COLLATE "C" LIMIT 50`,
        [`${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`],
      );
  return {
    byPhone: phone,
    fans: rows.map((r) => ({
      phone: r.phone,
      name: r.name,
      optedOut: Boolean(r.opted_out_at),
      handoff: Boolean(r.handoff_at),
      converted: Boolean(r.converted_at),
      lastInboundAt: r.last_inbound_at ? new Date(r.last_inbound_at).toISOString() : null,
    })),
  };
}

export interface FailureRow {
  id: string;
  phone: string;
  campaign: string | null;
  step: number | null;
  status: string;
  reason: string | null;
  lastError: string | null;
  at: string;
  attempts: number;
}

export interface FailuresPage {
  byReason: Array<{ reason: string; count: number }>;
  failed: FailureRow[];
  /** Sends whose outcome is not known yet: being reconciled with WhatsApp before any retry. */
  ambiguous: FailureRow[];
}

export async function readFailuresPage(db: Queryable, options: { limit?: number } = {}): Promise<FailuresPage> {
  const limit = options.limit ?? 100;
  type Row = { id: string; phone: string; campaign: string | null; step: number | null; status: string; reason: string | null; last_error: string | null; at: Date; attempts: number };
  const [byReason, failed, ambiguous] = await Promise.all([
    db.query<{ reason: string | null; count: number }>(
      `SELECT e.reason, count(*)::int AS count FROM follow_ups f
         JOIN LATERAL (SELECT reason FROM follow_up_events WHERE follow_up_id = f.id AND to_status = 'failed' ORDER BY id DESC LIMIT 1) e ON true
        WHERE f.status = 'failed' GROUP BY e.reason ORDER BY count DESC`,
    ),
    db.query<Row>(
      `SELECT f.id, l.phone, f.campaign, f.step, f.status, e.reason, f.last_error, f.updated_at AS at, f.attempts
         FROM follow_ups f JOIN leads l ON l.id = f.lead_id
         LEFT JOIN LATERAL (SELECT reason FROM follow_up_events WHERE follow_up_id = f.id AND to_status = 'failed' ORDER BY id DESC LIMIT 1) e ON true
        WHERE f.status = 'failed' ORDER BY f.updated_at DESC LIMIT $1::int`,
      [limit],
    ),
    db.query<Row>(
      `SELECT f.id, l.phone, f.campaign, f.step, f.status, 'ambiguous_send' AS reason, f.last_error, f.updated_at AS at, f.attempts
         FROM follow_ups f JOIN leads l ON l.id = f.lead_id
        WHERE f.status IN ('queued', 'sending') AND f.lease_until IS NOT NULL AND f.status = 'sending' AND f.reconcile_attempts > 0
        ORDER BY f.updated_at DESC LIMIT $1::int`,
      [limit],
    ),
  ]);
  const toRow = (r: Row): FailureRow => ({
    id: r.id,
    phone: r.phone,
    campaign: r.campaign,
    step: r.step,
    status: r.status,
    reason: r.reason,
    lastError: r.last_error,
    at: new Date(r.at).toISOString(),
    attempts: r.attempts,
  });
  return {
    byReason: byReason.rows.map((r) => ({ reason: r.reason ?? '—', count: r.count })),
    failed: failed.rows.map(toRow),
    ambiguous: ambiguous.rows.map(toRow),
  };
}
