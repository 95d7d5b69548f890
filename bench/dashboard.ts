/**
 * 9. The dashboard at `size` follow-ups: 90 days of campaign history (10 follow-ups
 * per lead, 85 % sent, replies, opt-outs, hand-offs, conversions, failures with their events, the
 * conversation log both ways), then each page rendered through the API's own app (in-process
 * `inject`, so the time is the server's: queries + rendering, no network) `iterations` times
 * after two warm-ups. Every SQL statement a page runs is recorded and its `EXPLAIN (ANALYZE,
 * BUFFERS)` saved in `dashboard.plans`, like the scale scenario's hot queries. The funnel page is
 * served from memory after its first view (recomputed in the background after a minute), so one
 * computation of it is timed on its own too (`funnelComputeMs`, 7 / 30 / 90 days): from the daily
 * roll-ups (migration 016) and the live ranges, after the roll-ups were refreshed (`rollupRefreshMs`:
 * every closed day at once, nothing to do, and 3 days marked by late sends), next to the raw query
 * over the whole period (`funnelRawMs`, once per period, for comparison).
 */
import type { Db, Queryable, Statement } from '../src/db/db.js';
import { loadConfig } from '../src/config.js';
import { createContext } from '../src/context.js';
import { rangeSql, refreshFunnelRollups } from '../src/dashboard/funnel-rollups.js';
import { readFunnelPage, readFunnelRaw } from '../src/dashboard/read-dashboard.js';
import { buildApp } from '../src/http/build-app.js';
import { createLogger } from '../src/log.js';
import { API_TOKEN, freshDatabase, percentiles, ROOT } from './lib.js';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import type { ScenarioContext } from './scenarios.js';

const TARGET_MS = 200;

export async function dashboardPages(ctx: ScenarioContext, size: number, iterations: number) {
  const tdb = await freshDatabase(4);
  try {
    const t = Date.now();
    const shape = await seedDashboardHistory(tdb.db, size);
    const seedSeconds = Math.round((Date.now() - t) / 100) / 10;
    ctx.log(`  dashboard: ${size} follow-ups seeded in ${seedSeconds} s (${JSON.stringify(shape)})`);

    // The funnel's daily roll-ups: every closed day of the 90 (what a new deployment's first refresh does),
    // then a refresh with nothing to do, then one after late sends on 3 days (what the API role does every 5 minutes).
    const rollupRefreshMs: Record<string, number> = {};
    const timed = async (name: string, fn: () => Promise<{ rolled: number }>) => {
      const started = process.hrtime.bigint();
      const { rolled } = await fn();
      rollupRefreshMs[name] = Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10;
      ctx.log(`  dashboard funnel roll-ups, ${name}: ${rolled} days rolled in ${rollupRefreshMs[name]} ms`);
    };
    await timed('all', () => refreshFunnelRollups(tdb.db));
    await timed('none', () => refreshFunnelRollups(tdb.db));
    await tdb.db.query(
      `UPDATE follow_ups SET status = 'executed', sent_at = now(), composer = 'template'
        WHERE id IN (SELECT DISTINCT ON ((planned_at AT TIME ZONE 'UTC')::date) id FROM follow_ups
                      WHERE campaign IS NOT NULL AND status = 'cancelled' AND planned_at < now() - interval '10 days'
                      ORDER BY (planned_at AT TIME ZONE 'UTC')::date DESC, id LIMIT 3)`,
    );
    await timed('three_days_marked', () => refreshFunnelRollups(tdb.db));
    // What rolling one day reads (the INSERT's SELECT, with the refresh's settings), 45 days back.
    const dayStart = new Date(Math.floor(Date.now() / 86_400_000 - 45) * 86_400_000);
    const rollupDayPlan = await tdb.db.transaction(async (tx) => {
      for (const setting of ['SET LOCAL jit = off', "SET LOCAL work_mem = '32MB'", 'SET LOCAL enable_sort = off']) await tx.query(setting);
      const { rows } = await tx.query<Record<string, string>>(`EXPLAIN (ANALYZE, BUFFERS) ${rangeSql}`, [dayStart, new Date(dayStart.getTime() + 86_400_000), null]);
      return `${rangeSql.replace(/\s+/g, ' ').trim()}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`;
    });

    // Every statement the pages run, with its values, for the plans.
    // A statement run inside a transaction is explained in one too, after that transaction's SET LOCALs.
    let recording: Array<{ text: string; values: unknown[]; settings: string[] }> | null = null;
    const recordingQuery = (target: Queryable, settings: string[] | null) =>
      (async (statement: string | Statement, values?: unknown[]) => {
        const text = typeof statement === 'string' ? statement : statement.text;
        if (settings && /^SET LOCAL /i.test(text)) settings.push(text);
        else recording?.push({ text, values: values ?? [], settings: settings ? [...settings] : [] });
        return target.query(statement as Statement, values);
      }) as Db['query'];
    const recorded: Db = {
      ...tdb.db,
      query: recordingQuery(tdb.db, null),
      transaction: (fn, options) => tdb.db.transaction((tx) => fn({ ...tx, query: recordingQuery(tx, []) }), options),
    };
    const config = loadConfig({
      DATABASE_URL: tdb.url,
      FOLLOWUPS_API_TOKEN: API_TOKEN,
      ERASURE_KEY: 'bench-erasure-key-0123456789abcdef-0123456789',
      MIGRATE_ON_START: 'false',
      LOG_LEVEL: 'warn',
    });
    const appCtx = await createContext(config, createLogger({ level: 'warn' }), { db: recorded, queue: null, skipMigrations: true });
    const app = await buildApp(appCtx);
    try {
      const login = await app.inject({
        method: 'POST',
        url: '/dashboard/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `secret=${encodeURIComponent(API_TOKEN)}`,
      });
      const cookie = String(login.headers['set-cookie']).split(';')[0]!;
      const pages: Array<[string, string]> = [
        ['now', '/dashboard/now'],
        ['activity', '/dashboard/activity'],
        ['funnel_7d', '/dashboard/funnel?days=7'],
        ['funnel_30d', '/dashboard/funnel?days=30'],
        ['funnel_90d', '/dashboard/funnel?days=90'],
        ['fans_by_phone', `/dashboard/fans?q=${encodeURIComponent('+55 (81) 92000-0077')}`],
        ['fans_by_name', '/dashboard/fans?q=mar'],
        ['fan_timeline', '/dashboard/fans/5581920000077'],
        ['failures', '/dashboard/failures'],
      ];
      const timings: Record<string, ReturnType<typeof percentiles> & { bytes: number; met: boolean }> = {};
      const plans: Record<string, string> = { funnel_rollup_day: rollupDayPlan };
      for (const [name, url] of pages) {
        const times: number[] = [];
        let bytes = 0;
        for (let i = 0; i < iterations + 2; i++) {
          recording = i === 0 ? [] : null;
          const started = process.hrtime.bigint();
          const res = await app.inject({ method: 'GET', url, headers: { cookie } });
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${res.body.slice(0, 300)}`);
          bytes = res.body.length;
          if (i >= 2) times.push(ms);
          if (i === 0) {
            const statements = recording ?? [];
            recording = null;
            let n = 0;
            for (const s of statements) {
              if (!/follow_ups|messages|leads|sending_pauses|follow_up_events|funnel_rollup/.test(s.text)) continue;
              // Reads only (EXPLAIN ANALYZE runs the statement): not a roll-up refresh the page started in the background.
              if (/^\s*(INSERT|UPDATE|DELETE)\b|FOR UPDATE/i.test(s.text)) continue;
              const { rows } = await tdb.db.transaction(async (tx) => {
                for (const setting of s.settings) await tx.query(setting);
                return tx.query<Record<string, string>>(`EXPLAIN (ANALYZE, BUFFERS) ${s.text}`, s.values);
              });
              plans[`${name}#${++n}`] = `${s.text.replace(/\s+/g, ' ').trim()}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`;
            }
          }
        }
        const p = percentiles(times);
        timings[name] = { ...p, bytes, met: p.p50 <= TARGET_MS };
        ctx.log(`  dashboard ${name}: p50 ${p.p50} ms, p95 ${p.p95} ms, max ${p.max} ms (${bytes} bytes)`);
      }
      // The funnel page is served from memory (recomputed in the background after a minute): what one computation costs.
      const funnelComputeMs: Record<string, ReturnType<typeof percentiles>> = {};
      for (const days of [7, 30, 90]) {
        const times: number[] = [];
        for (let i = 0; i < Math.max(3, Math.ceil(iterations / 3)) + 1; i++) {
          const started = process.hrtime.bigint();
          await readFunnelPage(appCtx, { days });
          if (i > 0) times.push(Number(process.hrtime.bigint() - started) / 1e6);
        }
        funnelComputeMs[`${days}d`] = percentiles(times);
        ctx.log(`  dashboard funnel computation, ${days} days: p50 ${funnelComputeMs[`${days}d`]!.p50} ms, max ${funnelComputeMs[`${days}d`]!.max} ms`);
      }
      // The raw query over the whole period, once per period (what the page computed before the roll-ups).
      const funnelRawMs: Record<string, number> = {};
      for (const days of [7, 30, 90]) {
        const started = process.hrtime.bigint();
        await readFunnelRaw(tdb.db, { since: new Date(Date.now() - days * 86_400_000) });
        funnelRawMs[`${days}d`] = Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10;
        ctx.log(`  dashboard funnel by the raw query, ${days} days: ${funnelRawMs[`${days}d`]} ms`);
      }
      // What the counts by status cost when they are not served from memory (the first view of a process).
      const c = process.hrtime.bigint();
      await tdb.db.query('SELECT status, count(*)::int FROM follow_ups GROUP BY status');
      const countMs = Math.round(Number(process.hrtime.bigint() - c) / 1e5) / 10;
      const result = { rows: size, seedSeconds, shape, iterations, targetMs: TARGET_MS, pagesMs: timings, funnelComputeMs, funnelRawMs, rollupRefreshMs, countByStatusMs: countMs, plans };
      // Kept apart from results.json too (bench/results.dashboard.json), with the date, the machine's load and the plans.
      writeFileSync(
        `${ROOT}bench/results.dashboard${ctx.settings.quick ? '.quick' : ''}.json`,
        `${JSON.stringify({ measuredAt: new Date().toISOString(), loadAverage: os.loadavg(), ...result }, null, 2)}\n`,
      );
      return result;
    } finally {
      await app.close();
      await appCtx.close();
    }
  } finally {
    await tdb.drop();
  }
}

/** `size` follow-ups over 90 days for size/10 leads, with what the pages read. */
export async function seedDashboardHistory(db: Db, size: number) {
  const leads = Math.max(1_000, Math.floor(size / 10));
  const DAYS = 90;
  await db.query(
    `INSERT INTO leads (phone, name, opted_out_at, handoff_at, converted_at, last_inbound_at)
     SELECT '55819' || lpad((20000000 + g)::text, 8, '0'),
            (ARRAY['Maria','João','Ana','Pedro','Mariana','Carlos','Fernanda','José','Juliana','Marcos'])[1 + g % 10] || ' ' ||
            (ARRAY['Silva','Souza','Lima','Costa','Alves','Barros','Dias','Ramos','Melo','Rocha'])[1 + (g / 10) % 10],
            CASE WHEN g % 50 = 0 THEN now() - (g % ${DAYS}) * interval '1 day' END,
            CASE WHEN g % 100 = 1 THEN now() - (g % ${DAYS}) * interval '1 day' END,
            CASE WHEN g % 100 = 2 THEN now() - (g % ${DAYS}) * interval '1 day' END,
            now() - (g % ${DAYS}) * interval '1 day'
       FROM generate_series(1, $1::int) g`,
    [leads],
  );
  // History loaded at once: without migration 016's triggers (they mark days changed after their roll-up;
  // nothing is rolled up yet, and the first refresh rolls every day). As superuser, for these statements only.
  const bulk = (sql: string, values?: unknown[]) =>
    db.transaction(
      async (tx) => {
        await tx.query('SET LOCAL session_replication_role = replica');
        await tx.query(sql, values);
      },
      { statementTimeoutMs: 0 },
    );
  const chunk = 250_000;
  for (let start = 1; start <= size; start += chunk) {
    const end = Math.min(size, start + chunk - 1);
    await bulk(
      `INSERT INTO follow_ups (lead_id, campaign, step, variant, composer, message, due_at, planned_at, anchor_at, status,
                               sent_at, sending_started_at, sent_text, provider_message_id, cancel_reason, last_error, attempts, updated_at)
       SELECT l.id, CASE WHEN g % 10 < 9 THEN 'nautico' END, CASE WHEN g % 10 < 9 THEN 1 + g % 3 END,
              CASE WHEN g % 10 < 9 AND g % 2 = 0 THEN (g / 3) % 3 END,
              CASE WHEN s.status = 'executed' THEN CASE WHEN g % 10 >= 9 THEN 'explicit' WHEN g % 2 = 0 THEN 'template' ELSE 'llm' END END,
              CASE WHEN g % 10 >= 9 THEN 'hist:' || g END,
              p.at, p.at, p.at - interval '4 hours', s.status,
              CASE WHEN s.status = 'executed' THEN p.at + interval '30 seconds' END,
              CASE WHEN s.status IN ('executed', 'failed') THEN p.at + interval '1 second' END,
              CASE WHEN s.status = 'executed' THEN 'hist:' || g END,
              CASE WHEN s.status = 'executed' THEN 'P' || g END,
              CASE WHEN s.status = 'cancelled' THEN 'lead_replied' END,
              CASE WHEN s.status = 'failed' THEN 'Evolution 500: Connection Closed' END,
              CASE WHEN s.status = 'pending' THEN 0 ELSE 1 END,
              p.at + interval '1 minute'
         FROM generate_series($1::int, $2::int) g
         JOIN leads l ON l.phone = '55819' || lpad((20000000 + 1 + g % $3::int)::text, 8, '0')
         CROSS JOIN LATERAL (SELECT CASE WHEN g % 100 < 85 THEN 'executed' WHEN g % 100 < 93 THEN 'cancelled'
                                         WHEN g % 100 = 93 THEN 'failed' ELSE 'pending' END AS status) s
         CROSS JOIN LATERAL (SELECT CASE WHEN s.status = 'pending' THEN now() + (1 + g % 72) * interval '1 hour'
                                         ELSE now() - ((g::bigint * 7919) % (${DAYS} * 86400)) * interval '1 second' END AS at) p`,
      [start, end, leads],
    );
  }
  // The conversation: every send (out), a reply from the fan to one send in five (some within 24 h, some later).
  await bulk(
    `INSERT INTO messages (lead_id, direction, source, text, provider_message_id, follow_up_id, at)
     SELECT lead_id, 'out', 'followup', sent_text, provider_message_id, id, sent_at FROM follow_ups WHERE status = 'executed'`,
  );
  await bulk(
    `INSERT INTO messages (lead_id, direction, source, text, at)
     SELECT lead_id, 'in', 'lead', 'Opa, quero saber mais', sent_at + (abs(hashtext(id::text)) % 48) * interval '1 hour'
       FROM follow_ups WHERE status = 'executed' AND abs(hashtext(id::text)) % 5 = 0 AND sent_at + interval '48 hours' < now()`,
  );
  // Each failed follow-up's last event, with the reason it failed.
  await db.query(
    `INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
     SELECT id, updated_at, 'sending', 'failed', (ARRAY['retries_exhausted', 'ambiguous_send', 'rejected'])[1 + abs(hashtext(id::text)) % 3],
            jsonb_build_object('error', last_error)
       FROM follow_ups WHERE status = 'failed'`,
  );
  for (const table of ['follow_ups', 'leads', 'messages', 'follow_up_events']) await db.query(`VACUUM ANALYZE ${table}`);
  const { rows } = await db.query<{ followups: number; messages: number; leads: number; failed: number; last7d: number }>(
    `SELECT (SELECT count(*)::int FROM follow_ups) AS followups, (SELECT count(*)::int FROM messages) AS messages,
            (SELECT count(*)::int FROM leads) AS leads, (SELECT count(*)::int FROM follow_ups WHERE status = 'failed') AS failed,
            (SELECT count(*)::int FROM follow_ups WHERE campaign IS NOT NULL AND planned_at >= now() - interval '7 days') AS last7d`,
  );
  return rows[0]!;
}
