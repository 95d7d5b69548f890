/**
 * The benchmark scenarios against our pipeline. Each gets its own database and
 * queue names, runs the roles as child processes, and cleans up after itself.
 */
import { spawn } from 'node:child_process';
import pg from 'pg';
import type { FakeEvolution } from '../test/helpers/fake-evolution.js';
import { databaseUrl, PG_ADMIN_URL } from '../test/helpers/db.js';
import { freePort } from '../test/helpers/redis-server.js';
import {
  claimDueSql,
  claimForSendingBatchSql,
  findExpiredLeasesSql,
  markExecutedBatchSql,
} from '../src/followups/sql/follow-ups.js';
import { RECENT_DUE_MS } from '../src/followups/transitions.js';
import {
  API_TOKEN,
  type BenchSettings,
  checkExactlyOnce,
  cleanRedisPrefix,
  cliArgs,
  cpuDelta,
  cpuSnapshot,
  countKeys,
  deliveredWithTag,
  freshDatabase,
  insertFollowups,
  percentiles,
  queueNames,
  REDIS_URL,
  ROOT,
  roleEnv,
  sleep,
  spawnRole,
  until,
} from './lib.js';

export interface RssRecord {
  relay: number[];
  worker: number[];
  api: number[];
}

export interface ScenarioContext {
  fake: FakeEvolution;
  settings: BenchSettings;
  rss: RssRecord;
  /** Keys left under each run's prefix after the scenario (before cleanup). */
  leftoverKeys: Record<string, number>;
  log: (line: string) => void;
  workers: number;
}

const FAR_FUTURE = new Date(Date.now() + 7 * 24 * 3600_000);
let phoneBase = 0;
function phones(n: number): number {
  const first = phoneBase;
  phoneBase += n;
  return first;
}

async function withPipeline<T>(
  ctx: ScenarioContext,
  name: string,
  fn: (p: { db: import('../src/db/db.js').Db; dbName: string; url: string; cpu: () => Record<string, number> }) => Promise<T>,
  options: { roles?: Array<'relay' | 'worker'>; beforeRoles?: (db: import('../src/db/db.js').Db) => Promise<void>; extraEnv?: Record<string, string> } = {},
): Promise<T> {
  const tdb = await freshDatabase();
  const q = queueNames();
  const env = roleEnv({ databaseUrl: tdb.url, fake: ctx.fake, queue: q, settings: ctx.settings, extra: options.extraEnv });
  const roles = options.roles ?? ['relay', 'worker'];
  const procs: import('./lib.js').RoleProcess[] = [];
  try {
    await options.beforeRoles?.(tdb.db);
    for (const role of roles) {
      const count = role === 'worker' ? ctx.workers : 1;
      for (let i = 0; i < count; i++) procs.push(await spawnRole(role, env, process.env.BENCH_PROFILE ? [`--cpu-prof`, `--cpu-prof-dir=${ROOT}bench/profiles`] : []));
    }
    const pids: Record<string, number | undefined> = {};
    procs.forEach((p, i) => (pids[procs.filter((q) => q.role === p.role).length > 1 ? `${p.role}${i}` : p.role] = p.child.pid));
    return await fn({ db: tdb.db, dbName: tdb.name, url: tdb.url, cpu: () => cpuSnapshot(pids, tdb.name) });
  } finally {
    for (const p of procs) {
      const peak = await p.stop();
      ctx.rss[p.role as 'relay' | 'worker'].push(peak);
    }
    ctx.leftoverKeys[name] = await countKeys(q.prefix);
    await cleanRedisPrefix(q.prefix);
    await tdb.drop();
  }
}

async function waitDelivered(ctx: ScenarioContext, tag: string, count: number, timeoutMs: number, from = 0) {
  // Counting the fake's record is free; the database is asked once at the end.
  let seen = 0;
  let index = from;
  await until(
    `${count} deliveries of ${tag}`,
    () => {
      seen += deliveredWithTag(ctx.fake, tag, index);
      index = ctx.fake.delivered.length;
      return seen >= count;
    },
    timeoutMs,
    50,
  );
}

async function waitExecuted(db: import('../src/db/db.js').Db, tag: string, count: number) {
  await until(
    `${count} executed (${tag})`,
    async () => {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM follow_ups WHERE status = 'executed' AND message LIKE $1::text`,
        [`${tag}:%`],
      );
      return rows[0]!.n >= count;
    },
    30_000,
    100,
  );
}

async function latenessOf(db: import('../src/db/db.js').Db, tag: string): Promise<number[]> {
  const { rows } = await db.query<{ ms: number }>(
    `SELECT extract(epoch FROM (sent_at - due_at)) * 1000 AS ms FROM follow_ups WHERE message LIKE $1::text AND status = 'executed'`,
    [`${tag}:%`],
  );
  return rows.map((r) => Number(r.ms));
}

/** 1. End-to-end: `count` follow-ups all come due at once → follow-ups/s from due to the last executed. */
export async function throughput(ctx: ScenarioContext, count: number) {
  const tag = `tp${Date.now()}`;
  const fromIndex = ctx.fake.delivered.length;
  return withPipeline(
    ctx,
    'throughput',
    async ({ db, cpu, dbName }) => {
      await sleep(500);
      const cpuBefore = cpu();
      const statsBefore = await dbActivity(dbName);
      // Everything becomes due in one statement (the trigger wakes the relay), timed from that instant.
      const { rows } = await db.query<{ t0: Date }>(
        `WITH u AS (UPDATE follow_ups SET due_at = now(), planned_at = now() WHERE status = 'pending' RETURNING 1)
         SELECT now() AS t0, count(*) FROM u`,
      );
      const t0 = rows[0]!.t0;
      await waitDelivered(ctx, tag, count, 600_000, fromIndex);
      await waitExecuted(db, tag, count);
      const { rows: span } = await db.query<{ last: Date; n: number }>(
        `SELECT max(sent_at) AS last, count(*)::int AS n FROM follow_ups WHERE status = 'executed'`,
      );
      const seconds = (span[0]!.last.getTime() - t0.getTime()) / 1000;
      const cpuSeconds = cpuDelta(cpuBefore, cpu());
      const activity = activityDelta(statsBefore, await dbActivity(dbName));
      const once = checkExactlyOnce(ctx.fake, tag, count);
      // Sends per WhatsApp number (BENCH_NUMBERS), from the fake's record.
      const byNumber: Record<string, number> = {};
      for (const d of ctx.fake.delivered) if (d.text.startsWith(`${tag}:`)) byNumber[d.instance ?? '?'] = (byNumber[d.instance ?? '?'] ?? 0) + 1;
      return { count, seconds: round(seconds, 3), perSecond: round(count / seconds, 0), exactlyOnce: once, byNumber, cpuSeconds, database: activity };
    },
    { beforeRoles: (db) => insertFollowups(db, { count, tag, firstPhone: phones(count), dueAt: FAR_FUTURE }) },
  );
}

/** Where the lateness goes: due → queued (relay), queued → claimed (queue + worker), claimed → sent (send + completion). */
async function stagesOf(db: import('../src/db/db.js').Db, tag: string) {
  const { rows } = await db.query<{ relay: number; queue: number; send: number }>(
    `SELECT extract(epoch FROM (q.at - f.due_at)) * 1000 AS relay, extract(epoch FROM (c.at - q.at)) * 1000 AS queue,
            extract(epoch FROM (f.sent_at - c.at)) * 1000 AS send
       FROM follow_ups f
       JOIN LATERAL (SELECT min(at) AS at FROM follow_up_events e WHERE e.follow_up_id = f.id AND e.to_status = 'queued') q ON true
       JOIN LATERAL (SELECT min(at) AS at FROM follow_up_events e WHERE e.follow_up_id = f.id AND e.to_status = 'sending') c ON true
      WHERE f.message LIKE $1::text AND f.status = 'executed'`,
    [`${tag}:%`],
  );
  return {
    dueToQueued: percentiles(rows.map((r) => Number(r.relay))),
    queuedToClaimed: percentiles(rows.map((r) => Number(r.queue))),
    claimedToSent: percentiles(rows.map((r) => Number(r.send))),
  };
}

/** Transactions and row changes in one database so far (for per-follow-up figures). */
async function dbActivity(dbName: string): Promise<Record<string, number>> {
  const admin = new pg.Client({ connectionString: databaseUrl(dbName) });
  await admin.connect();
  try {
    await admin.query('SELECT pg_stat_clear_snapshot()');
    const { rows: d } = await admin.query<{ xacts: string }>(
      `SELECT (xact_commit + xact_rollback)::text AS xacts FROM pg_stat_database WHERE datname = current_database()`,
    );
    const { rows: t } = await admin.query<{ relname: string; ins: string; upd: string; hot: string }>(
      `SELECT relname, n_tup_ins::text AS ins, n_tup_upd::text AS upd, n_tup_hot_upd::text AS hot FROM pg_stat_user_tables`,
    );
    const out: Record<string, number> = { transactions: Number(d[0]!.xacts) };
    for (const r of t) {
      if (Number(r.ins) + Number(r.upd) === 0) continue;
      out[`${r.relname}.inserts`] = Number(r.ins);
      out[`${r.relname}.updates`] = Number(r.upd);
      out[`${r.relname}.hotUpdates`] = Number(r.hot);
    }
    return out;
  } finally {
    await admin.end();
  }
}

function activityDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) !== 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** 2. Lateness: follow-ups coming due at a steady `rate`/s for `seconds` → due-to-send percentiles. */
export async function lateness(ctx: ScenarioContext, rate: number, seconds: number) {
  const tag = `lt${Date.now()}`;
  const count = rate * seconds;
  return withPipeline(ctx, 'lateness', async ({ db }) => {
    await sleep(500);
    const leadMs = 4_000;
    const first = new Date(Date.now() + leadMs);
    await insertFollowups(db, { count, tag, firstPhone: phones(count), dueAt: first, spacingMs: 1000 / rate, chunk: 10_000 });
    await waitDelivered(ctx, tag, count, (seconds + 120) * 1000);
    await waitExecuted(db, tag, count);
    const once = checkExactlyOnce(ctx.fake, tag, count);
    return { ratePerSecond: rate, seconds, count, latenessMs: percentiles(await latenessOf(db, tag)), stagesMs: await stagesOf(db, tag), exactlyOnce: once };
  });
}

/** 3. Backlog drain: `count` overdue at once, fresh ones coming due meanwhile → drain rate and their lateness. */
export async function drain(ctx: ScenarioContext, count: number, freshPerSecond: number) {
  const tag = `dr${Date.now()}`;
  const freshTag = `fr${Date.now()}`;
  // Fresh follow-ups keep coming due for as long as the drain would take at the target rate.
  const freshSeconds = Math.max(4, Math.ceil(count / 5_000));
  const freshCount = freshPerSecond * freshSeconds;
  return withPipeline(
    ctx,
    'drain',
    async ({ db }) => {
      await sleep(500);
      const start = Date.now();
      await insertFollowups(db, { count: freshCount, tag: freshTag, firstPhone: phones(freshCount), dueAt: new Date(start + 1_000), spacingMs: 1000 / freshPerSecond });
      // The outage ends: the backlog is overdue by up to an hour, all at once.
      const { rows } = await db.query<{ t0: Date }>(
        `WITH u AS (
           UPDATE follow_ups SET due_at = now() - (random() * interval '1 hour'), planned_at = now() - interval '1 hour'
            WHERE status = 'pending' AND message LIKE $1::text RETURNING 1)
         SELECT now() AS t0, count(*) FROM u`,
        [`${tag}:%`],
      );
      const t0 = rows[0]!.t0;
      await waitDelivered(ctx, tag, count, 600_000);
      await waitDelivered(ctx, freshTag, freshCount, 120_000);
      await waitExecuted(db, tag, count);
      await waitExecuted(db, freshTag, freshCount);
      const { rows: span } = await db.query<{ last: Date }>(
        `SELECT max(sent_at) AS last FROM follow_ups WHERE status = 'executed' AND message LIKE $1::text`,
        [`${tag}:%`],
      );
      const seconds = (span[0]!.last.getTime() - t0.getTime()) / 1000;
      return {
        backlog: count,
        seconds: round(seconds, 3),
        perSecond: round(count / seconds, 0),
        fresh: { perSecond: freshPerSecond, count: freshCount, latenessMs: percentiles(await latenessOf(db, freshTag)), stagesMs: await stagesOf(db, freshTag) },
        exactlyOnce: { backlog: checkExactlyOnce(ctx.fake, tag, count), fresh: checkExactlyOnce(ctx.fake, freshTag, freshCount) },
      };
    },
    { beforeRoles: (db) => insertFollowups(db, { count, tag, firstPhone: phones(count), dueAt: FAR_FUTURE }) },
  );
}

/** 4. Ingest through the HTTP API. */
export async function ingest(ctx: ScenarioContext, count: number, inFlight: number, bulkCount: number) {
  const tdb = await freshDatabase();
  const q = queueNames();
  const port = await freePort();
  const env = roleEnv({ databaseUrl: tdb.url, fake: ctx.fake, queue: q, settings: ctx.settings, extra: { PORT: String(port), HOST: '127.0.0.1' } });
  const api = await spawnRole('api', env);
  const base = `http://127.0.0.1:${port}`;
  const headers = { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' };
  const result: Record<string, unknown> = {};
  try {
    // Does the enrollments bulk route exist yet? (Another change adds it.)
    const probe = await fetch(`${base}/v1/enrollments/bulk`, { method: 'POST', headers, body: '{}' });
    result.enrollmentsBulkRoute = probe.status === 404 ? 'absent' : `present (answered ${probe.status} to {})`;
    const first = phones(count);
    let next = 0;
    let failures = 0;
    const started = Date.now();
    const lanes = Array.from({ length: inFlight }, async () => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        const phone = `55819${String(first + i).padStart(8, '0')}`;
        const r = await fetch(`${base}/v1/followups`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ phone, message: `ingest:${i}`, delayHours: 24, lead: { name: `Torcedor ${i}` } }),
        });
        await r.arrayBuffer();
        if (r.status !== 201) failures++;
      }
    });
    await Promise.all(lanes);
    const seconds = (Date.now() - started) / 1000;
    result.followupsApi = { route: 'POST /v1/followups (one lead per request)', count, inFlight, seconds: round(seconds, 3), leadsPerSecond: round(count / seconds, 0), failures };
    if (probe.status === 404) {
      result.enrollmentsBulk = 'pending';
      result.csvImport = 'pending';
    } else {
      result.enrollmentsBulk = await ingestBulk(base, headers, bulkCount, 5_000);
      result.csvImport = await ingestCsv(env, bulkCount);
    }
  } finally {
    ctx.rss.api.push(await api.stop());
    await cleanRedisPrefix(q.prefix);
    await tdb.drop();
  }
  return result;
}

/** POST /v1/enrollments/bulk in chunks of `chunk` leads, two requests in flight: leads enrolled per second. */
async function ingestBulk(base: string, headers: Record<string, string>, count: number, chunk: number) {
  const first = phones(count);
  const started = Date.now();
  let enrolled = 0;
  let failures = 0;
  let next = 0;
  const lanes = Array.from({ length: 2 }, async () => {
    for (;;) {
      const start = next;
      next += chunk;
      if (start >= count) return;
      const n = Math.min(chunk, count - start);
      const leads = Array.from({ length: n }, (_, k) => ({ phone: `55819${String(first + start + k).padStart(8, '0')}`, name: `Torcedor ${start + k}` }));
      const r = await fetch(`${base}/v1/enrollments/bulk`, { method: 'POST', headers, body: JSON.stringify({ campaign: 'nautico', leads }) });
      const body = (await r.json()) as Record<string, unknown>;
      if (r.status !== 200) failures++;
      else enrolled += Number((body.enrolled as number | undefined) ?? (Array.isArray(body.enrolled) ? (body.enrolled as unknown[]).length : n));
    }
  });
  await Promise.all(lanes);
  const seconds = (Date.now() - started) / 1000;
  return { route: 'POST /v1/enrollments/bulk', count, chunk, inFlight: 2, seconds: round(seconds, 3), leadsPerSecond: round(count / seconds, 0), failedRequests: failures };
}

/** `followups import <csv> --campaign nautico` as an operator runs it (process start included). */
async function ingestCsv(env: Record<string, string>, count: number) {
  const { writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const file = `${tmpdir()}/bench-fans-${process.pid}.csv`;
  const first = phones(count);
  const lines = ['telefone,nome'];
  for (let i = 0; i < count; i++) lines.push(`55819${String(first + i).padStart(8, '0')},Torcedor ${i}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  const started = Date.now();
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [...cliArgs(), 'import', file, '--campaign', 'nautico'], { cwd: ROOT, env: { ...env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`import exited ${code}: ${out.slice(-1000)}`))));
  });
  const seconds = (Date.now() - started) / 1000;
  rmSync(file, { force: true });
  // The summary's own elapsed time, without the process start-up, when the CLI prints it.
  const elapsedMs = Number(/rows in ([\d.]+) s/.exec(output)?.[1] ?? NaN) * 1000;
  // The summary's line ("  enrolled   20,000"), not a progress line that mentions it.
  const enrolledMatch = /^\s+enrolled\s+([\d,.]+)/m.exec(output);
  return {
    command: 'followups import <file> --campaign nautico',
    count,
    enrolled: enrolledMatch ? Number(enrolledMatch[1]!.replace(/\D/g, '')) : null,
    secondsWithStartup: round(seconds, 3),
    leadsPerSecondWithStartup: round(count / seconds, 0),
    importSeconds: Number.isFinite(elapsedMs) ? round(elapsedMs / 1000, 3) : null,
    leadsPerSecond: Number.isFinite(elapsedMs) ? round(count / (elapsedMs / 1000), 0) : null,
  };
}

/** 5. Scale: the relay's claim with `small` vs `large` rows in follow_ups (mostly executed), and the hot plans. */
export async function scale(ctx: ScenarioContext, sizes: number[]) {
  const out: Record<string, unknown> = {};
  const claimTimes: Record<string, unknown> = {};
  for (const size of sizes) {
    const tdb = await freshDatabase();
    try {
      const t = Date.now();
      await buildHistory(tdb.db, size);
      const buildSeconds = (Date.now() - t) / 1000;
      const timing = await timeClaims(tdb.url);
      claimTimes[String(size)] = { ...timing, buildSeconds: round(buildSeconds, 1) };
      ctx.log(`  scale ${size}: claim p50 ${timing.claimBatch.p50} ms, idle claim p50 ${timing.claimIdle.p50} ms`);
      if (size === Math.max(...sizes)) out.plans = await explainHotQueries(tdb.url);
    } finally {
      await tdb.drop();
    }
  }
  const small = claimTimes[String(Math.min(...sizes))] as Awaited<ReturnType<typeof timeClaims>>;
  const large = claimTimes[String(Math.max(...sizes))] as Awaited<ReturnType<typeof timeClaims>>;
  return {
    sizes,
    claim: claimTimes,
    ratio: round(large.claimBatch.p50 / small.claimBatch.p50, 2),
    idleRatio: round(large.claimIdle.p50 / small.claimIdle.p50, 2),
    ...out,
  };
}

/**
 * 8. /metrics at `size` rows (the scale scenario's history): the time of one scrape, of 50 at
 * once, and of /health/ready and POST /v1/followups while they run, against the API role
 * (a child process, as operators run it). `countMs` is one count of the table, which
 * every scrape cost before the counts were cached.
 */
export async function metricsScrape(ctx: ScenarioContext, size: number, bursts: number) {
  const tdb = await freshDatabase();
  const port = await freePort();
  const q = queueNames();
  try {
    await buildHistory(tdb.db, size);
    const { readStats } = await import('../src/followups/read-stats.js');
    const countStarted = performance.now();
    await readStats(tdb.db);
    const countMs = performance.now() - countStarted;
    const env = roleEnv({ databaseUrl: tdb.url, fake: ctx.fake, queue: q, settings: ctx.settings, extra: { PORT: String(port), HOST: '127.0.0.1' } });
    const api = await spawnRole('api', env);
    const base = `http://127.0.0.1:${port}`;
    const timed = async (url: string, init?: RequestInit) => {
      const t = performance.now();
      const r = await fetch(`${base}${url}`, init);
      await r.arrayBuffer();
      return { status: r.status, ms: performance.now() - t };
    };
    try {
      await timed('/metrics'); // the first scrape waits for the first count
      const single: number[] = [];
      for (let i = 0; i < 200; i++) single.push((await timed('/metrics')).ms);
      const burst: number[] = [];
      const ready: Array<{ status: number; ms: number }> = [];
      const schedule: Array<{ status: number; ms: number }> = [];
      const headers = { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' };
      for (let b = 0; b < bursts; b++) {
        const t = performance.now();
        const scrapes = Promise.all(Array.from({ length: 50 }, () => timed('/metrics')));
        const [r, f] = await Promise.all([
          timed('/health/ready'),
          timed('/v1/followups', { method: 'POST', headers, body: JSON.stringify({ phone: `55819${String(90_000_000 + b).padStart(8, '0')}`, message: 'metrics bench', delayHours: 24 }) }),
        ]);
        await scrapes;
        burst.push(performance.now() - t);
        ready.push(r);
        schedule.push(f);
        await sleep(250);
      }
      const result = {
        rows: size,
        countMs: round(countMs, 1),
        scrapeMs: percentiles(single),
        fiftyConcurrentScrapesMs: percentiles(burst),
        readyDuringBurstsMs: percentiles(ready.map((r) => r.ms)),
        readyStatuses: [...new Set(ready.map((r) => r.status))],
        scheduleDuringBurstsMs: percentiles(schedule.map((r) => r.ms)),
        scheduleStatuses: [...new Set(schedule.map((r) => r.status))],
      };
      ctx.log(`  metrics ${size} rows: count ${result.countMs} ms; scrape p50 ${result.scrapeMs.p50} ms; 50 at once p50 ${result.fiftyConcurrentScrapesMs.p50} ms; ready ${result.readyStatuses.join('/')} max ${result.readyDuringBurstsMs.max} ms`);
      return result;
    } finally {
      ctx.rss.api.push(await api.stop());
    }
  } finally {
    await cleanRedisPrefix(q.prefix);
    await tdb.drop();
  }
}

/**
 * `size` follow-ups for size/10 leads: 96% executed (with their sent text), 2% cancelled or failed,
 * 2% pending in the future, and 1,000 due now (the claim's work); plus 50 queued and 50 sending rows.
 */
async function buildHistory(db: import('../src/db/db.js').Db, size: number) {
  const leads = Math.max(1_000, Math.floor(size / 10));
  await db.query(`INSERT INTO leads (phone) SELECT '55818' || lpad(g::text, 8, '0') FROM generate_series(1, $1::int) g`, [leads]);
  const chunk = 500_000;
  for (let start = 0; start < size; start += chunk) {
    const end = Math.min(size, start + chunk) - 1;
    await db.query(
      `INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at, status, sent_at, sent_text, composer,
                               provider_message_id, cancel_reason, attempts)
       SELECT l.id, 'hist:' || g, d.due, d.due, d.due - interval '1 hour', s.status,
              CASE WHEN s.status = 'executed' THEN d.due END, CASE WHEN s.status = 'executed' THEN 'hist:' || g END,
              CASE WHEN s.status = 'executed' THEN 'explicit' END, CASE WHEN s.status = 'executed' THEN 'P' || g END,
              CASE WHEN s.status = 'cancelled' THEN 'lead_replied' END, CASE WHEN s.status = 'pending' THEN 0 ELSE 1 END
         FROM generate_series($1::int, $2::int) g
         JOIN leads l ON l.phone = '55818' || lpad((1 + g % $3::int)::text, 8, '0')
         CROSS JOIN LATERAL (SELECT CASE WHEN g % 100 < 96 THEN 'executed' WHEN g % 100 = 96 THEN 'cancelled'
                                         WHEN g % 100 = 97 THEN 'failed' ELSE 'pending' END AS status) s
         CROSS JOIN LATERAL (SELECT CASE WHEN s.status = 'pending' THEN now() + (g % 1000 + 1) * interval '1 hour'
                                         ELSE now() - (g % 10000) * interval '1 minute' END AS due) d`,
      [start, end, leads],
    );
  }
  // The claim's work: 1,000 due now; the worker's and the sweeper's: in-flight rows.
  await db.query(
    `INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at, status, lease_until, sending_started_at, attempts)
     SELECT l.id, 'work:' || g, now() - interval '1 minute', now() - interval '1 minute', now() - interval '2 hours',
            CASE WHEN g <= 1000 THEN 'pending' WHEN g <= 1050 THEN 'queued' ELSE 'sending' END,
            CASE WHEN g > 1000 THEN now() - interval '1 second' END, CASE WHEN g > 1050 THEN now() END,
            CASE WHEN g > 1050 THEN 1 ELSE 0 END
       FROM generate_series(1, 1100) g JOIN leads l ON l.phone = '55818' || lpad(g::text, 8, '0')`,
  );
  await db.query('VACUUM ANALYZE follow_ups');
  await db.query('VACUUM ANALYZE leads');
}

async function timeClaims(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const measure = async (limit: number, nowOffsetMs: number, iterations: number) => {
      const times: number[] = [];
      for (let i = 0; i < iterations; i++) {
        await client.query('BEGIN');
        const t = process.hrtime.bigint();
        await client.query({ name: claimDueSql.name, text: claimDueSql.text, values: [new Date(Date.now() + nowOffsetMs), limit, 30_000, RECENT_DUE_MS, true] });
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
        await client.query('ROLLBACK');
      }
      return percentiles(times.slice(3));
    };
    return {
      // A batch of 500 among the 1,000 due rows (rolled back each time, so every claim sees the same table).
      claimBatch: await measure(500, 0, 43),
      // Nothing due (two hours ago): what an idle relay pays per wake-up.
      claimIdle: await measure(500, -2 * 3600_000, 43),
    };
  } finally {
    await client.end();
  }
}

async function explainHotQueries(url: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const plans: Record<string, string> = {};
  const explain = async (name: string, text: string, values: unknown[]) => {
    await client.query('BEGIN');
    try {
      const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, values);
      plans[name] = rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
    } finally {
      await client.query('ROLLBACK');
    }
  };
  try {
    const now = new Date();
    await explain('relay_claim', claimDueSql.text, [now, 500, 30_000, RECENT_DUE_MS, true]);
    const queued = await client.query<{ id: string }>(`SELECT id FROM follow_ups WHERE status = 'queued' LIMIT 20`);
    const sending = await client.query<{ id: string }>(`SELECT id FROM follow_ups WHERE status = 'sending' LIMIT 20`);
    const queuedIds = queued.rows.map((r) => r.id);
    const sendingIds = sending.rows.map((r) => r.id);
    await explain('worker_claim', claimForSendingBatchSql.text, [[queuedIds[0]], [now], [120_000]]);
    await explain('worker_claim_batch_20', claimForSendingBatchSql.text, [queuedIds, queuedIds.map(() => now), queuedIds.map(() => 120_000)]);
    await explain('mark_executed', markExecutedBatchSql.text, [[sendingIds[0]], ['X1'], ['texto'], ['explicit'], [now], ['sent']]);
    await explain('mark_executed_batch_20', markExecutedBatchSql.text, [
      sendingIds,
      sendingIds.map((_, i) => `X${i}`),
      sendingIds.map(() => 'texto'),
      sendingIds.map(() => 'explicit'),
      sendingIds.map(() => now),
      sendingIds.map(() => 'sent'),
    ]);
    await explain('sweeper', findExpiredLeasesSql.text, [now, 500]);
  } finally {
    await client.end();
  }
  return plans;
}

/** 7. Idle cost: transactions per second on a database where only an idle relay is connected. */
export async function idle(ctx: ScenarioContext, seconds: number) {
  const tdb = await freshDatabase(1);
  const q = queueNames();
  const env = roleEnv({ databaseUrl: tdb.url, fake: ctx.fake, queue: q, settings: ctx.settings });
  // Something scheduled, but not for a day.
  await insertFollowups(tdb.db, { count: 10, tag: 'idle', firstPhone: phones(10), dueAt: new Date(Date.now() + 24 * 3600_000) });
  await tdb.db.close();
  const relay = await spawnRole('relay', env);
  // Counted from another database, so the counting itself is not counted.
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  const read = async () => {
    await admin.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await admin.query<{ xacts: string }>(
      `SELECT (xact_commit + xact_rollback)::text AS xacts FROM pg_stat_database WHERE datname = $1`,
      [tdb.name],
    );
    return Number(rows[0]!.xacts);
  };
  let stopped = false;
  try {
    await sleep(3_000);
    const before = await read();
    const started = Date.now();
    await sleep(seconds * 1000);
    // An idle backend flushes its counters only every 10 s, but always when it exits: stop the relay
    // (its shutdown's own statements count too), then read. Counted over the whole span.
    ctx.rss.relay.push(await relay.stop());
    stopped = true;
    const span = (Date.now() - started) / 1000;
    await sleep(500);
    const queries = (await read()) - before;
    return { seconds: round(span, 1), transactions: queries, perSecond: round(queries / span, 2), method: 'pg_stat_database xact_commit+xact_rollback delta, only the relay connected, read after it exited (pg_stat_statements is installed but not preloaded)' };
  } finally {
    if (!stopped) ctx.rss.relay.push(await relay.stop());
    await admin.end();
    await cleanRedisPrefix(q.prefix);
    const drop = new pg.Client({ connectionString: PG_ADMIN_URL });
    await drop.connect();
    await drop.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(tdb.name)} WITH (FORCE)`);
    await drop.end();
  }
}

/** Runs a baseline in its own process and returns its RESULT. */
export async function runBaseline(kind: 'bullmq' | 'graphile', mode: 'throughput' | 'lateness', options: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/baseline.ts', kind, mode, JSON.stringify(options)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) return reject(new Error(`${kind} baseline failed (${code}): ${err.slice(-2000)}`));
      resolve(JSON.parse(line.slice(7)));
    });
  });
}

export async function bullmqBaseline(mode: 'throughput' | 'lateness', options: Record<string, unknown>) {
  const q = queueNames();
  try {
    return await runBaseline('bullmq', mode, { ...options, redisUrl: REDIS_URL, ...q });
  } finally {
    await cleanRedisPrefix(q.prefix);
  }
}

export async function graphileBaseline(mode: 'throughput' | 'lateness', options: Record<string, unknown>) {
  const tdb = await freshDatabase(1);
  await tdb.db.close();
  try {
    return await runBaseline('graphile', mode, { ...options, databaseUrl: databaseUrl(tdb.name) });
  } finally {
    const drop = new pg.Client({ connectionString: PG_ADMIN_URL });
    await drop.connect();
    await drop.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(tdb.name)} WITH (FORCE)`);
    await drop.end();
  }
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
