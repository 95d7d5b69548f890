/**
 * The connection-pooler scenario (README "Supabase"): two `followups start` processes, through a real
 * PgBouncer with 5 server connections, on an EMPTY database; 200 follow-ups scheduled
 * through their APIs are delivered (dry-run transport) by their relays and workers.
 * Returns what a test asserts on.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { Redis } from 'ioredis';
import { readMigrations } from '../../src/db/migrate.js';
import { PG_ADMIN_URL } from './db.js';
import { type Deliveries, type FollowupsProcess, percentile, readDeliveries, scheduleFollowups, spawnFollowups, waitUntilReady } from './followups-processes.js';
import { waitFor } from './pipeline.js';
import type { OwnPgBouncer } from './pgbouncer.js';

export const TOKEN = 'pooler-test-token-abcdefghijkl';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface PooledRun {
  statuses: number[];
  /** How long scheduling them all took. */
  scheduledInMs: number;
  deliveries: Deliveries;
  /** "migration applied" lines over both processes' logs. */
  migrationLines: number;
  /** Rows in schema_migrations. */
  migrationsRecorded: number;
  /** Each process's log. */
  outputs: string[];
  exitCodes: Array<number | null>;
}

export async function deliverThroughPooler(
  bouncer: OwnPgBouncer,
  options: { count: number; env: Record<string, string>; urlSuffix?: string },
): Promise<PooledRun> {
  const database = `followups_pooler_${randomBytes(4).toString('hex')}`;
  const prefix = `{pooler-${randomBytes(4).toString('hex')}}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const directUrl = new URL(PG_ADMIN_URL);
  directUrl.pathname = `/${database}`;
  const processes: FollowupsProcess[] = [];
  try {
    const env = {
      DATABASE_URL: `${bouncer.url(database)}${options.urlSuffix ?? ''}`,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      FOLLOWUPS_API_TOKEN: TOKEN,
      ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
      TYPING_DELAY_ENABLED: 'false',
      SENDING_WINDOW_ENABLED: 'false',
      SEND_RATE_PER_MINUTE: '0',
      SEND_DAILY_CAP: '0',
      MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: '0',
      WHATSAPP_NUMBER_CHECK: 'false',
      ...options.env,
    };
    processes.push(await spawnFollowups('start', env), await spawnFollowups('start', env));
    await Promise.all(processes.map((p) => waitUntilReady(p)));
    const start = Date.now();
    // Each one due 3 s after it is scheduled: lateness is the pipeline's, not the time scheduling 200 took.
    const statuses = await scheduleFollowups(
      processes.map((p) => p.base),
      // Four requests in flight: an agent's pace, not a load test (the scheduling shares the machine's two cores).
      { count: options.count, token: TOKEN, dueAt: () => new Date(Date.now() + 3_000), parallel: 4 },
    );
    const scheduledInMs = Date.now() - start;
    await waitFor(
      `${options.count} follow-ups delivered`,
      async () => (await readDeliveries(directUrl.toString())).executed >= options.count,
      { timeoutMs: 40_000, intervalMs: 250 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${processes.map((p) => p.output().slice(-2_000)).join('\n---\n')}`);
    });
    const deliveries = await readDeliveries(directUrl.toString());
    const exitCodes = await Promise.all(processes.map((p) => p.stop()));
    const outputs = processes.map((p) => p.output());
    const check = new pg.Client({ connectionString: directUrl.toString() });
    await check.connect();
    const { rows } = await check.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations').finally(() => check.end());
    return {
      statuses,
      deliveries,
      scheduledInMs,
      migrationLines: outputs.join('\n').split('\n').filter((l) => l.includes('"migration applied"')).length,
      migrationsRecorded: rows[0]!.n,
      outputs,
      exitCodes,
    };
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
}

export const MIGRATION_COUNT = readMigrations().length;

/**
 * The p99 lateness the pooler tests hold the pipeline to: 5 s, whatever the machine's load.
 * It catches what breaks behind a pooler — a relay that sleeps its 10 s instead of being woken
 * or polling, a pool that stalls — without timing the machine: on a quiet machine these runs
 * measure p99 well under 1 s, but a loaded 2-core box (several suites at once) measured 1.0–4.7 s,
 * the same as over a direct connection. The 1 s target itself is a benchmark figure
 * (`BENCH_PGBOUNCER=transaction|session npm run bench`), not a test's.
 */
export function latenessBoundMs(): { boundMs: number; note: string } {
  const perCore = os.loadavg()[0]! / Math.max(1, os.cpus().length);
  return { boundMs: 5_000, note: `bound 5 s; load ${perCore.toFixed(1)} per core` };
}

/**
 * What both pooler modes must show: every POST answered 201, each of `count` follow-ups
 * delivered once to its own lead, each migration applied by one process, p99 lateness
 * within the bound and none early, both processes stopped cleanly on SIGTERM.
 */
export function assertDeliveredOnce(run: PooledRun, mode: string, count: number): void {
  assert.deepEqual([...new Set(run.statuses)], [201], 'every POST /v1/followups answered 201');
  assert.equal(run.deliveries.messages, count, 'one message per follow-up');
  assert.equal(run.deliveries.numbers, count, 'each lead got exactly one');
  assert.equal(run.deliveries.executed, count);
  assert.equal(run.migrationLines, MIGRATION_COUNT, 'each migration applied by one process');
  assert.equal(run.migrationsRecorded, MIGRATION_COUNT);
  const p50 = percentile(run.deliveries.latenessMs, 50);
  const p99 = percentile(run.deliveries.latenessMs, 99);
  const bound = latenessBoundMs();
  console.log(`${mode} mode: lateness p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms (${bound.note})`);
  assert.ok(p99 <= bound.boundMs, `p99 lateness ${p99} ms (${bound.note})`);
  assert.ok(run.deliveries.latenessMs[0]! >= 0, 'none before its time');
  assert.deepEqual(run.exitCodes, [0, 0], 'both stopped cleanly on SIGTERM');
}
