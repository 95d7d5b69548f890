/**
 * `npm run bench` / `npm run bench:quick`: the performance benchmark (bench/README.md).
 * Runs every scenario on the real PostgreSQL and Redis with a fake Evolution
 * server that answers at once, prints a table and writes bench/results.json.
 *
 *   --quick            the same scenarios, smaller (under two minutes)
 *   --only=a,b         run some scenarios only (throughput,lateness,drain,ingest,scale,idle,metrics,dashboard)
 *   --workers=N        worker processes (default 1)
 *   BENCH_PROFILE=1    write CPU profiles of the roles to bench/profiles/
 *   BENCH_PGBOUNCER=transaction|session  the roles go through a PgBouncer of its own (BENCH_PGBOUNCER_POOL, default 30)
 *   BENCH_BASELINES=0  skip bare BullMQ and Graphile Worker (comparing settings of ours)
 *   BENCH_LATENESS_RATE=N, BENCH_LATENESS_SECONDS=N  the lateness scenario's rate and length
 *   BENCH_NUMBERS=N    send from N WhatsApp numbers (EVOLUTION_INSTANCES; instances of the one fake)
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import pg from 'pg';
import { startFakeEvolution } from '../test/helpers/fake-evolution.js';
import { PG_ADMIN_URL } from '../test/helpers/db.js';
import { startOwnPgBouncer } from '../test/helpers/pgbouncer.js';
import { benchInstanceNames, benchNumbers, type BenchSettings, ensureBuilt, redisInfo, ROOT, routeRolesThrough, RUN_FROM_SOURCES } from './lib.js';
import {
  bullmqBaseline,
  drain,
  graphileBaseline,
  idle,
  metricsScrape,
  ingest,
  lateness,
  round,
  type ScenarioContext,
  scale,
  throughput,
} from './scenarios.js';
import { dashboardPages } from './dashboard.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const workers = Number(args.find((a) => a.startsWith('--workers='))?.slice(10) ?? 1);
const wants = (name: string) => !only || only.includes(name);

const sizes = quick
  ? { throughput: 5_000, latenessRate: 500, latenessSeconds: 5, drain: 10_000, freshPerSecond: 50, ingest: 1_000, bulk: 20_000, scale: [10_000, 200_000], idleSeconds: 4, metrics: 1_000_000, metricsBursts: 5, dashboard: 200_000, dashboardIterations: 5 }
  : { throughput: 50_000, latenessRate: 500, latenessSeconds: 60, drain: 100_000, freshPerSecond: 50, ingest: 5_000, bulk: 100_000, scale: [10_000, 2_000_000], idleSeconds: 20, metrics: 2_000_000, metricsBursts: 20, dashboard: 1_000_000, dashboardIterations: 15 };

// BENCH_LATENESS_RATE / BENCH_LATENESS_SECONDS: the lateness scenario at another rate or length (e.g. a modest 50/s).
if (process.env.BENCH_LATENESS_RATE) sizes.latenessRate = Number(process.env.BENCH_LATENESS_RATE);
if (process.env.BENCH_LATENESS_SECONDS) sizes.latenessSeconds = Number(process.env.BENCH_LATENESS_SECONDS);

const settings: BenchSettings = {
  quick,
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 50),
  relayBatch: Number(process.env.BENCH_RELAY_BATCH ?? 500),
};

const TARGETS = {
  throughputPerSecond: 5_000,
  ratioToBullmq: 0.35,
  latenessP50Ms: 50,
  latenessP99Ms: 250,
  drainPerSecond: 5_000,
  ingestLeadsPerSecond: 20_000,
  scaleRatio: 1.5,
  workerRssMb: 200,
  relayIdleQueriesPerSecond: 2,
};

async function machine() {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  const { rows } = await admin.query<{ version: string }>('SELECT version() AS version');
  const { rows: ext } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'pg_stat_statements'`,
  );
  const { rows: preload } = await admin.query<{ v: string }>(`SELECT current_setting('shared_preload_libraries') AS v`);
  await admin.end();
  const redis = await redisInfo();
  let commit = '';
  try {
    commit = execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim();
    if (execSync('git status --porcelain src', { cwd: ROOT }).toString().trim()) commit += '+dirty';
  } catch {
    // not a git checkout
  }
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGb: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: rows[0]!.version,
    pgStatStatements: ext[0]!.n > 0 ? (preload[0]!.v.includes('pg_stat_statements') ? 'loaded' : 'available, not preloaded') : 'absent',
    redis: redis.version,
    redisMaxmemoryPolicy: redis.maxmemoryPolicy,
    commit,
  };
}

async function main() {
  const started = Date.now();
  const lines: string[] = [];
  const log = (line: string) => {
    lines.push(line);
    process.stdout.write(`${line}\n`);
  };
  ensureBuilt(log);
  const fake = await startFakeEvolution({ delayScale: 0, recordRequests: false, moreInstances: benchInstanceNames('nautico').slice(1) });
  // BENCH_PGBOUNCER=transaction|session: the roles go through a real PgBouncer (BENCH_PGBOUNCER_POOL server connections).
  const poolerMode = process.env.BENCH_PGBOUNCER as 'transaction' | 'session' | undefined;
  const bouncer = poolerMode
    ? await startOwnPgBouncer({ mode: poolerMode, poolSize: Number(process.env.BENCH_PGBOUNCER_POOL ?? 30) })
    : undefined;
  if (bouncer) {
    routeRolesThrough((direct) => `${bouncer.url(new URL(direct).pathname.slice(1))}${poolerMode === 'transaction' ? '?pgbouncer=true' : ''}`);
  }
  // BENCH_BASELINES=0: our figures only (comparing settings of ours; the baselines do not change).
  const baselines = process.env.BENCH_BASELINES !== '0';
  const ctx: ScenarioContext = { fake, settings, rss: { relay: [], worker: [], api: [] }, leftoverKeys: {}, log, workers };
  const redisBefore = await redisInfo();
  const results: Record<string, unknown> = {
    mode: quick ? 'quick' : 'full',
    startedAt: new Date(started).toISOString(),
    machine: await machine(),
    settings: { ...settings, workers, sizes, pgbouncer: poolerMode ?? 'none', numbers: benchNumbers(), benchEnv: process.env.BENCH_ENV ?? '', sendingPolicies: 'off (typing delay, window, rate, daily cap, weekly cap)', logLevel: process.env.BENCH_LOG_LEVEL ?? 'warn' },
    targets: TARGETS,
  };
  log(`bench ${quick ? 'quick' : 'full'}: ${JSON.stringify(results.machine)}`);
  const run = async (name: string, fn: () => Promise<unknown>) => {
    if (!wants(name)) return;
    const t = Date.now();
    log(`· ${name} ...`);
    try {
      results[name] = await fn();
    } catch (error) {
      results[name] = { error: (error as Error).message };
      log(`  ${name} failed: ${(error as Error).message}`);
    }
    log(`  ${name} done in ${round((Date.now() - t) / 1000, 1)} s`);
  };
  const baselineOptions = { concurrency: settings.concurrency, chunk: settings.relayBatch };

  try {
    await run('throughput', async () => {
      const ours = await throughput(ctx, sizes.throughput);
      log(`  ours: ${ours.perSecond}/s`);
      if (!baselines) return { ours };
      const bullmq = await bullmqBaseline('throughput', { ...baselineOptions, count: sizes.throughput });
      log(`  bare BullMQ: ${round(bullmq.perSecond as number, 0)}/s`);
      const graphile = await graphileBaseline('throughput', { ...baselineOptions, count: sizes.throughput });
      return {
        ours,
        bullmq,
        graphile,
        ratioToBullmq: round(ours.perSecond / (bullmq.perSecond as number), 3),
        ratioToGraphile: round(ours.perSecond / (graphile.perSecond as number), 3),
      };
    });
    await run('lateness', async () => {
      const ours = await lateness(ctx, sizes.latenessRate, sizes.latenessSeconds);
      if (!baselines) return { ours };
      const opts = { ...baselineOptions, count: sizes.latenessRate * sizes.latenessSeconds, ratePerSecond: sizes.latenessRate, leadMs: 4_000 };
      const summarize = async (p: Promise<Record<string, unknown>>) => {
        const r = await p;
        const { percentiles } = await import('./lib.js');
        return { count: r.completed, latenessMs: percentiles(r.lateness as number[]) };
      };
      return {
        ours,
        bullmq: await summarize(bullmqBaseline('lateness', opts)),
        graphile: { ...(await summarize(graphileBaseline('lateness', { ...opts, pollIntervalMs: 2_000 }))), pollIntervalMs: 2_000 },
      };
    });
    await run('drain', () => drain(ctx, sizes.drain, sizes.freshPerSecond));
    await run('ingest', () => ingest(ctx, sizes.ingest, 64, sizes.bulk));
    await run('scale', () => scale(ctx, sizes.scale));
    await run('idle', () => idle(ctx, sizes.idleSeconds));
    await run('metrics', () => metricsScrape(ctx, sizes.metrics, sizes.metricsBursts));
    await run('dashboard', () => dashboardPages(ctx, sizes.dashboard, sizes.dashboardIterations));
  } finally {
    await fake.close();
    await bouncer?.stop();
  }
  const redisAfter = await redisInfo();
  results.memory = {
    peakRssMb: {
      relay: ctx.rss.relay.length ? Math.max(...ctx.rss.relay) : null,
      worker: ctx.rss.worker.length ? Math.max(...ctx.rss.worker) : null,
      api: ctx.rss.api.length ? Math.max(...ctx.rss.api) : null,
    },
    runner: RUN_FROM_SOURCES ? 'node --import tsx src/cli.ts (BENCH_TSX=1; tsx adds its loader to RSS)' : 'node dist/cli.js',
    redisUsedMemoryBefore: redisBefore.usedMemory,
    redisUsedMemoryAfter: redisAfter.usedMemory,
    redisUsedMemoryDeltaBytes: redisAfter.usedMemory - redisBefore.usedMemory,
    keysLeftUnderPrefixAfterEachScenario: ctx.leftoverKeys,
  };
  results.finishedAt = new Date().toISOString();
  results.totalSeconds = round((Date.now() - started) / 1000, 1);
  const file = `${ROOT}bench/${quick ? 'results.quick.json' : 'results.json'}`;
  if (only && existsSync(file)) {
    // A partial run (--only) updates its scenarios in the last full file and keeps the others, each with its own date.
    const previous = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
    const merged: Record<string, any> = { ...previous, machine: results.machine, settings: results.settings, targets: results.targets };
    merged.runs = [...(previous.runs ?? [{ startedAt: previous.startedAt, scenarios: 'all' }]), { startedAt: results.startedAt, scenarios: only }];
    for (const name of only) if (results[name] !== undefined) merged[name] = { ...(results[name] as object), measuredAt: results.startedAt };
    const memory = results.memory as Record<string, any>;
    const before = (previous.memory ?? {}) as Record<string, any>;
    merged.memory = {
      ...memory,
      peakRssMb: Object.fromEntries(
        ['relay', 'worker', 'api'].map((role) => [role, maxOf(before.peakRssMb?.[role], memory.peakRssMb[role])]),
      ),
      keysLeftUnderPrefixAfterEachScenario: { ...(before.keysLeftUnderPrefixAfterEachScenario ?? {}), ...memory.keysLeftUnderPrefixAfterEachScenario },
    };
    for (const key of Object.keys(results)) delete results[key];
    Object.assign(results, merged);
  }
  const table = renderTable(results);
  process.stdout.write(`\n${table}\n`);
  results.table = table.split('\n');
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`written ${file} (${results.totalSeconds} s)\n`);
}

function maxOf(a: number | null | undefined, b: number | null | undefined): number | null {
  const values = [a, b].filter((v): v is number => typeof v === 'number');
  return values.length ? Math.max(...values) : null;
}

function renderTable(r: Record<string, any>): string {
  const rows: Array<[string, string, string, string]> = [];
  const ok = (pass: boolean | undefined) => (pass === undefined ? '' : pass ? 'met' : 'MISSED');
  const t = r.throughput;
  if (t && !t.error) {
    rows.push(['1 end-to-end follow-ups/s', `${t.ours.perSecond} (${t.ours.count} in ${t.ours.seconds} s)`, '≥ 5,000', ok(t.ours.perSecond >= 5000)]);
    if (t.ours.cpuSeconds) {
      const c = t.ours.cpuSeconds as Record<string, number>;
      rows.push(['  CPU s: worker / relay / postgres / redis / fake', `${c.worker ?? '?'} / ${c.relay ?? '?'} / ${c.postgres} / ${c.redis} / ${c.bench}`, '', '']);
    }
    rows.push(['  exactly once (fake record)', t.ours.exactlyOnce.ok ? `yes (${t.ours.exactlyOnce.distinct})` : JSON.stringify(t.ours.exactlyOnce), 'yes', ok(t.ours.exactlyOnce.ok)]);
    if (t.bullmq) {
      rows.push(['  bare BullMQ jobs/s', `${round(t.bullmq.perSecond, 0)}`, '', '']);
      rows.push(['  Graphile Worker 0.17 jobs/s', `${round(t.graphile.perSecond, 0)}`, '', '']);
      rows.push(['  ratio to BullMQ / Graphile', `${t.ratioToBullmq} / ${t.ratioToGraphile}`, '≥ 0.35 ×', ok(t.ratioToBullmq >= 0.35)]);
    }
  } else if (t) rows.push(['1 end-to-end', `error: ${t.error}`, '', 'MISSED']);
  const l = r.lateness;
  if (l && !l.error) {
    const f = (x: any) => `${x.p50} / ${x.p95} / ${x.p99} / ${x.max}`;
    rows.push([`2 lateness ms p50/p95/p99/max (${l.ours.ratePerSecond}/s × ${l.ours.seconds} s)`, f(l.ours.latenessMs), '≤ 50 / – / ≤ 250', ok(l.ours.latenessMs.p50 <= 50 && l.ours.latenessMs.p99 <= 250)]);
    rows.push(['  exactly once', l.ours.exactlyOnce.ok ? 'yes' : JSON.stringify(l.ours.exactlyOnce), 'yes', ok(l.ours.exactlyOnce.ok)]);
    if (l.bullmq) {
      rows.push(['  bare BullMQ delayed jobs', f(l.bullmq.latenessMs), '', '']);
      rows.push(['  Graphile Worker runAt (poll 2 s)', f(l.graphile.latenessMs), '', '']);
    }
  } else if (l) rows.push(['2 lateness', `error: ${l.error}`, '', 'MISSED']);
  const d = r.drain;
  if (d && !d.error) {
    rows.push([`3 drain follow-ups/s (${d.backlog} overdue)`, `${d.perSecond} (${d.seconds} s)`, '≥ 5,000', ok(d.perSecond >= 5000)]);
    const fl = d.fresh.latenessMs;
    rows.push([`  fresh meanwhile (${d.fresh.perSecond}/s) ms p50/p99/max`, `${fl.p50} / ${fl.p99} / ${fl.max}`, 'on time (p99 ≤ 250)', ok(fl.p99 <= 250)]);
    rows.push(['  exactly once', d.exactlyOnce.backlog.ok && d.exactlyOnce.fresh.ok ? 'yes' : JSON.stringify(d.exactlyOnce), 'yes', ok(d.exactlyOnce.backlog.ok && d.exactlyOnce.fresh.ok)]);
  } else if (d) rows.push(['3 drain', `error: ${d.error}`, '', 'MISSED']);
  const i = r.ingest;
  if (i && !i.error) {
    rows.push(['4 ingest POST /v1/followups leads/s', `${i.followupsApi.leadsPerSecond} (${i.followupsApi.failures} failed)`, '(≥ 20,000 for bulk)', '']);
    if (typeof i.enrollmentsBulk === 'string') rows.push(['  POST /v1/enrollments/bulk, CSV import', `${i.enrollmentsBulk} (route ${i.enrollmentsBulkRoute})`, '≥ 20,000', 'pending']);
    else {
      rows.push([`  POST /v1/enrollments/bulk leads/s (${i.enrollmentsBulk.count})`, `${i.enrollmentsBulk.leadsPerSecond} (${i.enrollmentsBulk.failedRequests} failed requests)`, '≥ 20,000', ok(i.enrollmentsBulk.leadsPerSecond >= 20000)]);
      rows.push(['  CSV import leads/s (without / with start-up)', `${i.csvImport.leadsPerSecond ?? '?'} / ${i.csvImport.leadsPerSecondWithStartup}`, '≥ 20,000', ok((i.csvImport.leadsPerSecond ?? i.csvImport.leadsPerSecondWithStartup) >= 20000)]);
    }
  } else if (i) rows.push(['4 ingest', `error: ${i.error}`, '', 'MISSED']);
  const s = r.scale;
  if (s && !s.error) {
    const [small, large] = [Math.min(...s.sizes), Math.max(...s.sizes)];
    rows.push([`5 claim ms p50 at ${small} / ${large} rows`, `${s.claim[small].claimBatch.p50} / ${s.claim[large].claimBatch.p50} → ${s.ratio}×`, '≤ 1.5 ×', ok(s.ratio <= 1.5)]);
    rows.push(['  idle claim ms p50', `${s.claim[small].claimIdle.p50} / ${s.claim[large].claimIdle.p50} → ${s.idleRatio}×`, '', '']);
  } else if (s) rows.push(['5 scale', `error: ${s.error}`, '', 'MISSED']);
  const m = r.memory;
  if (m) {
    rows.push(['6 peak RSS MB relay / worker / api', `${m.peakRssMb.relay} / ${m.peakRssMb.worker} / ${m.peakRssMb.api}`, 'worker ≤ 200', ok(m.peakRssMb.worker === null ? undefined : m.peakRssMb.worker <= 200)]);
    const left = Object.values(m.keysLeftUnderPrefixAfterEachScenario as Record<string, number>).reduce((a, b) => a + b, 0);
    rows.push(['  Redis used_memory after − before', `${round(m.redisUsedMemoryDeltaBytes / 1024, 0)} KiB; keys left ${left}`, 'no pile-up', ok(left < 50)]);
  }
  const id = r.idle;
  if (id && !id.error) rows.push(['7 relay idle queries/s', `${id.perSecond} (${id.transactions} in ${id.seconds} s)`, '≤ 2', ok(id.perSecond <= 2)]);
  else if (id) rows.push(['7 idle', `error: ${id.error}`, '', 'MISSED']);
  const mx = r.metrics;
  if (mx && !mx.error) {
    rows.push([`8 /metrics scrape ms p50/p99 at ${mx.rows} rows (one count: ${mx.countMs} ms)`, `${mx.scrapeMs.p50} / ${mx.scrapeMs.p99}`, 'independent of rows', ok(mx.scrapeMs.p50 < mx.countMs / 3)]);
    rows.push(['  50 concurrent scrapes ms p50; /health/ready meanwhile', `${mx.fiftyConcurrentScrapesMs.p50}; ${mx.readyStatuses.join('/')} (max ${mx.readyDuringBurstsMs.max} ms)`, 'ready 200', ok(mx.readyStatuses.length === 1 && mx.readyStatuses[0] === 200)]);
    rows.push(['  POST /v1/followups meanwhile ms p50/max', `${mx.scheduleDuringBurstsMs.p50} / ${mx.scheduleDuringBurstsMs.max}`, '', '']);
  } else if (mx) rows.push(['8 metrics', `error: ${mx.error}`, '', 'MISSED']);
  const db = r.dashboard;
  if (db && !db.error) {
    for (const [page, t] of Object.entries(db.pagesMs as Record<string, { p50: number; p95: number; max: number }>)) {
      rows.push([`9 dashboard ${page} ms p50/p95/max at ${db.rows} follow-ups`, `${t.p50} / ${t.p95} / ${t.max}`, `≤ ${db.targetMs}`, ok(t.p50 <= db.targetMs)]);
    }
    for (const [period, t] of Object.entries((db.funnelComputeMs ?? {}) as Record<string, { p50: number; max: number }>)) {
      rows.push([`  funnel computation (${period}, roll-ups + live) ms p50/max`, `${t.p50} / ${t.max}`, `≤ ${db.targetMs}`, ok(t.p50 <= db.targetMs)]);
    }
    for (const [period, ms] of Object.entries((db.funnelRawMs ?? {}) as Record<string, number>)) {
      rows.push([`  funnel by the raw query (${period}) ms`, String(ms), '(before the roll-ups)', '']);
    }
    for (const [what, ms] of Object.entries((db.rollupRefreshMs ?? {}) as Record<string, number>)) {
      rows.push([`  funnel roll-up refresh (${what}) ms`, String(ms), '(in the background)', '']);
    }
  } else if (db) rows.push(['9 dashboard', `error: ${db.error}`, '', 'MISSED']);
  const w = [0, 1, 2].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => `${row[0]!.padEnd(w[0]!)}  ${row[1]!.padEnd(w[1]!)}  ${row[2]!.padEnd(w[2]!)}  ${row[3]}`).join('\n');
}

main()
  .then(() => process.exit(0))
  .catch((error) => {
    process.stderr.write(`${(error as Error).stack}\n`);
    process.exit(1);
  });
