import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { createContext } from '../src/context.js';
import { buildApp } from '../src/http/build-app.js';
import { createLogger } from '../src/log.js';
import { RedisConfigurationError } from '../src/errors.js';
import { startRoles } from '../src/roles.js';
import { makeEvolutionTransport } from '../src/whatsapp/evolution-client.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { insertDueFollowups, startRole, TEST_TOKEN, testEnv, waitFor } from './helpers/pipeline.js';
import { type OwnRedis, startOwnRedis } from './helpers/redis-server.js';
import { startCluster, startLoneSentinel } from './helpers/redis-topologies.js';
import { cliArgs } from './helpers/cli.js';

const silent = createLogger({ level: 'silent' });

describe('Redis misconfiguration stops start-up with Redis\'s own words', () => {
  let testDb: TestDatabase;
  let secured: OwnRedis;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 6 });
    secured = await startOwnRedis({ args: ['--requirepass', 'right-password'], password: 'right-password' });
  });
  after(async () => {
    await secured?.stop();
    await testDb?.drop();
  });

  /** createContext with these Redis settings; resolves to the error it throws. */
  async function startupError(env: Record<string, string>): Promise<RedisConfigurationError> {
    const config = loadConfig(testEnv({ DATABASE_URL: testDb.url, ...env }));
    try {
      const ctx = await createContext(config, silent, { db: testDb.db, skipMigrations: true });
      await ctx.close();
    } catch (error) {
      assert.ok(error instanceof RedisConfigurationError, `a RedisConfigurationError, got ${(error as Error).message}`);
      return error;
    }
    assert.fail('start-up should have been refused');
  }

  test('a wrong password: `followups relay` exits 2 saying WRONGPASS', async () => {
    const child = spawn(process.execPath, [...cliArgs(), 'relay', '--no-migrate'], {
      env: { ...process.env, ...testEnv({ DATABASE_URL: testDb.url, REDIS_URL: `redis://:wrong-password@127.0.0.1:${secured.port}`, LOG_LEVEL: 'fatal' }) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /Redis configuration error \(auth\): WRONGPASS invalid username-password pair/);
    assert.match(stderr, /REDIS_URL/);
  });

  test('no password where one is required: NOAUTH', async () => {
    const error = await startupError({ REDIS_URL: secured.url });
    assert.equal(error.kind, 'auth');
    assert.match(error.message, /NOAUTH/);
  });

  test("an ACL user without the queue's keys: NOPERM", async () => {
    await withAdmin(secured, ['ACL', 'SETUSER', 'narrow', 'on', '>narrow-pass', '~other:*', '+@all']);
    const error = await startupError({ REDIS_URL: `redis://narrow:narrow-pass@127.0.0.1:${secured.port}` });
    assert.equal(error.kind, 'acl');
    assert.match(error.message, /NOPERM/);
    assert.match(error.message, /QUEUE_PREFIX/);
  });

  test("the README's ACL for the queue is enough to deliver through it", async () => {
    // As written in README, "Redis in production".
    await withAdmin(secured, ['ACL', 'SETUSER', 'followups', 'on', '>followups-pass', 'resetkeys', '~{followups}:*', 'resetchannels', '-@all', '+@read', '+@write', '+@scripting', '+@connection', '+@transaction', '-@dangerous', '+info', '+client|setname']);
    const fake = await startFakeEvolution({ delayScale: 0 });
    const env = { QUEUE_NAME: 'acl_delivery', REDIS_URL: `redis://followups:followups-pass@127.0.0.1:${secured.port}`, SEND_RATE_PER_MINUTE: '6000', SEND_RATE_WINDOW_SECONDS: '1' };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
    try {
      assert.equal(relay.ctx.queue!.state().status, 'up');
      const ids = await insertDueFollowups(testDb.db, { count: 20, phonePrefix: '55815', text: (i) => `acl ${i}` });
      await waitFor('delivered', async () => {
        const { rows } = await testDb.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status = 'executed'`,
          [ids],
        );
        return rows[0]!.n === ids.length;
      });
      // Through the queue: the relay ran none itself. (Not from the rows' events: a worker faster
      // than the relay's markQueued claims a row straight from `pending`.)
      assert.equal((await relay.ctx.metrics.directRuns.get()).values.reduce((n, v) => n + v.value, 0), 0, 'none run in direct mode');
      assert.equal(relay.running.relay!.mode, 'queue');
    } finally {
      await worker.stop();
      await relay.stop();
      await fake.close();
    }
  });

  test("a Sentinel's port given as REDIS_URL: the wrong kind of server", async () => {
    const plain = await startOwnRedis();
    const lone = await startLoneSentinel(plain.port);
    try {
      const error = await startupError({ REDIS_URL: `redis://127.0.0.1:${lone.port}` });
      assert.equal(error.kind, 'wrong_server');
      assert.match(error.message, /unknown command/);
      assert.match(error.message, /REDIS_SENTINELS/);
    } finally {
      await lone.stop();
      await plain.stop();
    }
  });

  test('a Cluster node given as a plain REDIS_URL', async () => {
    const cluster = await startCluster({ count: 3 });
    try {
      const error = await startupError({ REDIS_URL: `redis://127.0.0.1:${cluster.ports[0]}` });
      assert.equal(error.kind, 'cluster_redirect');
      assert.match(error.message, /REDIS_CLUSTER_NODES/);
    } finally {
      await cluster.stop();
    }
  });
});

describe('Redis that may lose jobs', () => {
  let testDb: TestDatabase;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 6 });
  });
  after(async () => {
    await testDb?.drop();
  });

  test('maxmemory-policy allkeys-lru is a warning at start-up and in /health/ready', async () => {
    const lru = await startOwnRedis({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] });
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', destination: { write: (line: string) => lines.push(line) } });
    const config = loadConfig(testEnv({ DATABASE_URL: testDb.url, REDIS_URL: lru.url }));
    const ctx = await createContext(config, log, { db: testDb.db, skipMigrations: true });
    const app = await buildApp(ctx);
    try {
      assert.ok(lines.some((l) => /maxmemory-policy is not noeviction/.test(l) && /allkeys-lru/.test(l)), lines.join('\n'));
      const res = await app.inject({ method: 'GET', url: '/health/ready', headers: { authorization: `Bearer ${TEST_TOKEN}` } });
      const queue = res.json().checks.queue;
      assert.equal(queue.evictionPolicy, 'allkeys-lru');
      assert.match(queue.warnings.join(), /allkeys-lru: Redis may evict queued jobs/);
      assert.equal(res.json().status, 'degraded');
    } finally {
      await app.close();
      await ctx.close();
      await lru.stop();
    }
  });

  test('a Redis restarted empty: queued follow-ups are published again within seconds, not after the lease', async (t) => {
    const redis = await startOwnRedis();
    const fake = await startFakeEvolution({ delayScale: 0 });
    // A 120 s lease: without noticing the restart, the rows would wait two minutes.
    const env = { QUEUE_NAME: 'restarted_empty', REDIS_URL: redis.url, LEASE_SECONDS: '120', SEND_TIMEOUT_MS: '2000' };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    try {
      const ids = await insertDueFollowups(testDb.db, { count: 30, phonePrefix: '55816', text: (i) => `restarted ${i}` });
      await waitFor('all queued (no worker yet)', async () => {
        const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status = 'queued'`, [ids]);
        return rows[0]!.n === ids.length;
      });
      await redis.stop();
      await redis.start(); // empty: no persistence
      const restartedAt = Date.now();
      const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
      try {
        await waitFor(
          'delivered',
          async () => {
            const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status = 'executed'`, [ids]);
            return rows[0]!.n === ids.length;
          },
          { timeoutMs: 90_000 },
        );
        const took = Date.now() - restartedAt;
        // Against the 120 s lease (what would otherwise bring them back), with a margin a loaded machine cannot eat.
        assert.ok(took < 60_000, `republished after ${took} ms, well before the 120 s lease`);
        t.diagnostic(`all 30 delivered ${took} ms after Redis came back empty (lease: 120 s)`);
        const texts = fake.delivered.filter((d) => d.text.startsWith('restarted ')).map((d) => d.text);
        assert.equal(texts.length, 30);
        assert.equal(new Set(texts).size, 30, 'none delivered twice');
      } finally {
        await worker.stop();
      }
    } finally {
      await relay.stop();
      await fake.close();
      await redis.stop();
    }
  });
});

describe('a full Redis under noeviction', () => {
  let testDb: TestDatabase;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 6 });
  });
  after(async () => {
    await testDb?.drop();
  });

  test('is reported as full, follow-ups go out directly, and the logs stay quiet', async () => {
    const redis = await startOwnRedis({ args: ['--maxmemory-policy', 'noeviction'] });
    const fake = await startFakeEvolution({ delayScale: 0 });
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } });
    const config = loadConfig(
      testEnv({ DATABASE_URL: testDb.url, REDIS_URL: redis.url, QUEUE_NAME: 'full', EVOLUTION_API_URL: fake.url, EVOLUTION_API_KEY: fake.apiKey, EVOLUTION_INSTANCE_NAME: fake.instance }),
    );
    // Full: maxmemory just under what Redis already uses, so every write is refused with OOM.
    const used = Number(/used_memory:(\d+)/.exec(String(await redisCommandOn(redis, 'INFO', 'memory')))![1]);
    await redisCommandOn(redis, 'CONFIG', 'SET', 'maxmemory', String(used - 1024));
    const ctx = await createContext(config, log, {
      db: testDb.db,
      skipMigrations: true,
      transport: makeEvolutionTransport({ ...config.evolution!, timeoutMs: config.sendTimeoutMs, log }),
    });
    const running = await startRoles(ctx, ['relay', 'worker'], { listen: false });
    try {
      const state = ctx.queue!.state();
      assert.equal(state.status, 'full');
      assert.match(state.cause!.message, /OOM command not allowed/);
      const ids = await insertDueFollowups(testDb.db, { count: 30, phonePrefix: '55817', text: (i) => `full ${i}` });
      await waitFor('delivered in direct mode', async () => {
        const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status = 'executed'`, [ids]);
        return rows[0]!.n === ids.length;
      });
      assert.equal(running.relay!.mode, 'direct');
      assert.equal(await ctx.queue!.ping(), false, 'a Redis that refuses writes does not count as back');
      // The issue measured 314,067 warnings in 111 s: here, each kind of error once.
      const warnings = lines.filter((l) => /"level":(40|50)/.test(l));
      assert.ok(warnings.length <= 6, `a few warnings, not one per attempt: ${warnings.length}\n${warnings.join('')}`);
    } finally {
      await running.stop();
      await ctx.close();
      await fake.close();
      await redis.stop();
    }
  });
});
async function redisCommandOn(redis: OwnRedis, ...args: string[]): Promise<unknown> {
  const { Redis } = await import('ioredis');
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    return await client.call(args[0]!, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

async function withAdmin(redis: OwnRedis, command: string[]): Promise<void> {
  const { Redis } = await import('ioredis');
  const admin = new Redis(redis.url, { password: 'right-password', maxRetriesPerRequest: 1 });
  try {
    await admin.call(command[0]!, ...command.slice(1));
  } finally {
    admin.disconnect();
  }
}
