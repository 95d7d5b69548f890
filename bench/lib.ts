/**
 * What every benchmark scenario shares: a fresh database per scenario (cloned
 * from the migrated test template), roles started as child processes exactly as
 * an operator runs them, their peak RSS read from /proc, bulk inserts with
 * generate_series, percentiles.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db.js';
import type { FakeEvolution } from '../test/helpers/fake-evolution.js';
import type { Db } from '../src/db/db.js';

export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const API_TOKEN = 'bench-token-123456-abcdefghijkl';
export const ROOT = new URL('..', import.meta.url).pathname;
export const LOG_DIR = process.env.BENCH_LOG_DIR ?? `${tmpdir()}/nautico-bench-logs`;

export interface BenchSettings {
  quick: boolean;
  concurrency: number;
  relayBatch: number;
}

/** Unique queue name and prefix per run, so nothing else on this Redis is touched. */
export function queueNames() {
  const tag = randomBytes(4).toString('hex');
  return { queueName: `bench_${tag}`, prefix: `{bench-${tag}}` };
}

/**
 * BENCH_PGBOUNCER=transaction|session: the roles reach PostgreSQL through a PgBouncer of the
 * benchmark's own (run.ts starts it); the benchmark itself still connects directly.
 */
let rolesDatabaseUrl: ((directUrl: string) => string) | undefined;
export function routeRolesThrough(rewrite: ((directUrl: string) => string) | undefined): void {
  rolesDatabaseUrl = rewrite;
}

/** BENCH_NUMBERS: how many WhatsApp numbers the roles send from (default 1). */
export function benchNumbers(): number {
  return Math.max(1, Number(process.env.BENCH_NUMBERS ?? 1) || 1);
}

/** The instance names of BENCH_NUMBERS numbers: the fake's own, then <name>2, <name>3, ... */
export function benchInstanceNames(first: string): string[] {
  return Array.from({ length: benchNumbers() }, (_, i) => (i === 0 ? first : `${first}${i + 1}`));
}

/** The environment of a role: every sending policy off, logs at warn, fake Evolution. */
export function roleEnv(options: {
  databaseUrl: string;
  fake: FakeEvolution;
  queue: { queueName: string; prefix: string };
  settings: BenchSettings;
  extra?: Record<string, string>;
}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    NODE_ENV: 'production',
    DATABASE_URL: rolesDatabaseUrl ? rolesDatabaseUrl(options.databaseUrl) : options.databaseUrl,
    REDIS_URL,
    QUEUE_NAME: options.queue.queueName,
    QUEUE_PREFIX: options.queue.prefix,
    EVOLUTION_API_URL: options.fake.url,
    EVOLUTION_API_KEY: options.fake.apiKey,
    // BENCH_NUMBERS=N: N WhatsApp numbers (instances of the one fake), leads spread over them.
    ...(benchNumbers() > 1
      ? { EVOLUTION_INSTANCES: benchInstanceNames(options.fake.instance).join(',') }
      : { EVOLUTION_INSTANCE_NAME: options.fake.instance }),
    FOLLOWUPS_API_TOKEN: API_TOKEN,
    ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    MIGRATE_ON_START: 'false',
    // Policies off: the benchmark measures the pipeline, not the pacing.
    TYPING_DELAY_ENABLED: 'false',
    SENDING_WINDOW_ENABLED: 'false',
    SEND_RATE_PER_MINUTE: '0',
    SEND_DAILY_CAP: '0',
    // The ingest scenario posts one follow-up per request as fast as it can: no per-token cap.
    API_REQUESTS_PER_MINUTE: '0',
    MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: '0',
    WORKER_CONCURRENCY: String(options.settings.concurrency),
    RELAY_BATCH_SIZE: String(options.settings.relayBatch),
    DATABASE_POOL_SIZE: process.env.BENCH_POOL_SIZE ?? '10',
    // BENCH_ENV="KEY=value,KEY=value": any other setting of the roles, to compare.
    ...Object.fromEntries((process.env.BENCH_ENV ?? '').split(',').filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
    ...options.extra,
  };
}

export interface RoleProcess {
  role: string;
  child: ChildProcess;
  /** Peak resident set (VmHWM) in MB, read while the process is alive. */
  peakRssMb(): number;
  /** SIGTERM, wait for exit; returns the last peak RSS seen. */
  stop(): Promise<number>;
}

function readHwmMb(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round((kb / 1024) * 10) / 10;
  } catch {
    return 0;
  }
}

/** Roles run from the compiled build, as `npm start` and the Dockerfile run them; BENCH_TSX=1 runs the sources through tsx. */
export const RUN_FROM_SOURCES = process.env.BENCH_TSX === '1';

/** The node arguments that run the CLI: `dist/cli.js`, or `--import tsx src/cli.ts` with BENCH_TSX=1. */
export function cliArgs(): string[] {
  return RUN_FROM_SOURCES ? ['--import', 'tsx', 'src/cli.ts'] : ['dist/cli.js'];
}

/** Builds dist/ when it is missing or older than any source file (the benchmark runs the build). */
export function ensureBuilt(log: (line: string) => void): void {
  if (RUN_FROM_SOURCES) return;
  const newest = (dir: string): number => {
    let latest = 0;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
    }
    return latest;
  };
  let built = 0;
  try {
    built = statSync(`${ROOT}dist/cli.js`).mtimeMs;
  } catch {
    // not built yet
  }
  if (built > newest(`${ROOT}src`)) return;
  log('building dist/ (npm run build) ...');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
}

/** `node dist/cli.js <role>` (or the sources through tsx with BENCH_TSX=1), ready when it says so. */
export async function spawnRole(role: 'relay' | 'worker' | 'api', env: Record<string, string>, nodeArgs: string[] = []): Promise<RoleProcess> {
  const args = [...nodeArgs, ...cliArgs(), role, '--no-migrate'];
  // The CLI logs "relay started" / "worker started" / "api listening" at info; ask for info on stdout only for start-up.
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  // Every role's own log (at BENCH_LOG_LEVEL, warn by default) is kept for a look afterwards.
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = createWriteStream(`${LOG_DIR}/${role}-${child.pid}.log`);
  child.stdout!.pipe(logFile);
  let stderr = '';
  child.stderr!.on('data', (d) => {
    logFile.write(d);
    stderr += String(d);
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  child.stdout!.on('data', (d) => {
    if (process.env.BENCH_VERBOSE) process.stdout.write(`[${role}] ${d}`);
  });
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, readHwmMb(child.pid));
  }, 250);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  exited.then(() => clearInterval(sampler));
  await waitForReady(role, env, child, exited, () => stderr);
  return {
    role,
    child,
    peakRssMb: () => (peak = Math.max(peak, readHwmMb(child.pid))),
    async stop() {
      peak = Math.max(peak, readHwmMb(child.pid));
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
      if (code === 'timeout') child.kill('SIGKILL');
      clearInterval(sampler);
      return peak;
    },
  };
}

async function waitForReady(
  role: string,
  env: Record<string, string>,
  child: ChildProcess,
  exited: Promise<number | null>,
  stderr: () => string,
): Promise<void> {
  // Readiness: the API answers /health/live; relay and worker are ready once connected (give them a moment).
  const deadline = Date.now() + 30_000;
  let dead = false;
  void exited.then(() => (dead = true));
  if (role === 'api') {
    for (;;) {
      if (dead) throw new Error(`api exited: ${stderr()}`);
      try {
        const r = await fetch(`http://127.0.0.1:${env.PORT}/health/live`);
        if (r.ok) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error('api did not start');
      await sleep(100);
    }
  }
  // tsx start-up plus connections: wait until the process has settled (RSS stops growing) and is alive.
  let last = -1;
  for (;;) {
    await sleep(300);
    if (dead) throw new Error(`${role} exited: ${stderr()}`);
    const now = readHwmMb(child.pid);
    if (now > 30 && Math.abs(now - last) < 0.5) return;
    last = now;
    if (Date.now() > deadline) return;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function freshDatabase(poolSize = 8): Promise<TestDatabase> {
  return createTestDatabase({ poolSize });
}

/**
 * Inserts `count` pending follow-ups for distinct leads (phones from `firstPhone`),
 * with text `<tag>:<n>` and due times `dueAt + n × spacingMs`, plus their
 * 'scheduled' events — what the API would have written. The leads' numbers are
 * marked as checked on WhatsApp already (leads the agent is talking to): the
 * once-per-lead /chat/whatsappNumbers check is the policy's cost, not the pipeline's.
 */
export async function insertFollowups(
  db: Db,
  options: { count: number; tag: string; firstPhone: number; dueAt: Date; spacingMs?: number; chunk?: number },
): Promise<void> {
  const chunk = options.chunk ?? 25_000;
  for (let start = 0; start < options.count; start += chunk) {
    const n = Math.min(chunk, options.count - start);
    await db.query(
      `WITH l AS (
         INSERT INTO leads (phone, number_checked_at, number_valid, whatsapp_jid)
         SELECT p.phone, now(), true, p.phone || '@s.whatsapp.net'
           FROM generate_series($2::int, $3::int) g, LATERAL (SELECT '55819' || lpad(($1::int + g)::text, 8, '0') AS phone) p
         RETURNING id, phone
       ), f AS (
         INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at)
         SELECT l.id, $4::text || ':' || (substr(l.phone, 6)::int - $1::int),
                d.due, d.due, d.due - interval '1 hour'
           FROM l, LATERAL (SELECT $5::timestamptz + (substr(l.phone, 6)::int - $1::int) * $6::float8 * interval '1 millisecond' AS due) d
         RETURNING id
       )
       INSERT INTO follow_up_events (follow_up_id, at, to_status, reason) SELECT id, now(), 'pending', 'scheduled' FROM f`,
      [options.firstPhone, start, start + n - 1, options.tag, options.dueAt, options.spacingMs ?? 0],
    );
  }
}

export function percentiles(values: number[]): { count: number; p50: number; p95: number; p99: number; max: number; mean: number } {
  if (values.length === 0) return { count: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN, mean: NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  const round = (v: number) => Math.round(v * 10) / 10;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { count: values.length, p50: round(at(0.5)), p95: round(at(0.95)), p99: round(at(0.99)), max: round(sorted[sorted.length - 1]!), mean: round(mean) };
}

/** Counts deliveries of texts starting with `tag:` in the fake; checks exactly once per follow-up. */
export function checkExactlyOnce(fake: FakeEvolution, tag: string, expected: number): { delivered: number; distinct: number; duplicates: number; missing: number; ok: boolean } {
  const seen = new Map<string, number>();
  for (const d of fake.delivered) {
    if (!d.text.startsWith(`${tag}:`)) continue;
    seen.set(d.text, (seen.get(d.text) ?? 0) + 1);
  }
  let delivered = 0;
  let duplicates = 0;
  for (const n of seen.values()) {
    delivered += n;
    if (n > 1) duplicates += n - 1;
  }
  const missing = expected - seen.size;
  return { delivered, distinct: seen.size, duplicates, missing, ok: duplicates === 0 && missing === 0 };
}

export function deliveredWithTag(fake: FakeEvolution, tag: string, from = 0): number {
  let n = 0;
  const prefix = `${tag}:`;
  for (let i = from; i < fake.delivered.length; i++) if (fake.delivered[i]!.text.startsWith(prefix)) n++;
  return n;
}

/** Waits until `probe` returns true, checking every `everyMs`; throws after `timeoutMs`. */
export async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Deletes every key under the run's prefix. */
export async function cleanRedisPrefix(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    let deleted = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    redis.disconnect();
  }
}

export async function redisInfo(): Promise<{ version: string; usedMemory: number; usedMemoryHuman: string; maxmemoryPolicy: string }> {
  const redis = new Redis(REDIS_URL);
  try {
    const info = await redis.info();
    const get = (k: string) => new RegExp(`^${k}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
    return { version: get('redis_version'), usedMemory: Number(get('used_memory')), usedMemoryHuman: get('used_memory_human'), maxmemoryPolicy: get('maxmemory_policy') };
  } finally {
    redis.disconnect();
  }
}

export async function countKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    let n = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      n += keys.length;
    } while (cursor !== '0');
    return n;
  } finally {
    redis.disconnect();
  }
}

/** CPU seconds (user + system) used so far, per kind of process: PostgreSQL, Redis, this benchmark, each role pid. */
export function cpuSnapshot(rolePids: Record<string, number | undefined> = {}, dbName?: string): Record<string, number> {
  const hz = 100; // USER_HZ on Linux
  const out: Record<string, number> = { postgres: 0, postgresOther: 0, redis: 0, bench: 0 };
  const roleOf = new Map(Object.entries(rolePids).filter(([, pid]) => pid).map(([name, pid]) => [pid!, name]));
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const p of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const seconds = (Number(fields[11]) + Number(fields[12])) / hz;
    const pid = Number(p);
    const role = roleOf.get(pid);
    if (role) out[role] = seconds;
    else if (pid === process.pid) out.bench = seconds;
    else if (comm === 'postgres') {
      // Backends of other databases (other work on the machine) are counted apart.
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      } catch {
        // gone
      }
      const otherDb = dbName && /^postgres: \S+ \S+ /.test(cmd) && !cmd.includes(` ${dbName} `);
      if (otherDb) out.postgresOther += seconds;
      else {
        out.postgres += seconds;
        // Which kind of PostgreSQL process: a backend of ours, autovacuum, the WAL writer, ...
        const kind = /^postgres: \S+ \S+ /.test(cmd) ? 'backends' : (/^postgres: (\S+)/.exec(cmd)?.[1] ?? 'postmaster');
        out[`postgres.${kind}`] = (out[`postgres.${kind}`] ?? 0) + seconds;
      }
    }
    else if (comm.startsWith('redis-server')) out.redis += seconds;
  }
  return out;
}

/** CPU seconds used between two snapshots, per kind. */
export function cpuDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) out[k] = Math.round((v - (before[k] ?? 0)) * 100) / 100;
  return out;
}
