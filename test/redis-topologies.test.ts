import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { createContext } from '../src/context.js';
import { createLogger } from '../src/log.js';
import type { Metrics } from '../src/metrics.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { insertDueFollowups, startRole, testEnv, waitFor } from './helpers/pipeline.js';
import { type ClusterSetup, redisCommand, type SentinelSetup, startCluster, startSentinelSetup } from './helpers/redis-topologies.js';

async function executedIds(db: TestDatabase['db'], ids: string[]): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status = 'executed'`,
    [ids],
  );
  return rows[0]!.n;
}

/**
 * How many follow-ups the relay published to the queue and how many it ran itself (direct mode),
 * from its own counters. (The rows' events cannot tell: a worker faster than the relay's
 * markQueued claims a row straight from `pending`, as direct mode does.)
 */
async function relayCounts(metrics: Metrics): Promise<{ published: number; direct: number }> {
  const value = async (counter: Metrics['published']) => (await counter.get()).values.reduce((sum, v) => sum + v.value, 0);
  return { published: await value(metrics.published), direct: await value(metrics.directRuns) };
}

function assertDeliveredOnce(fake: FakeEvolution, prefix: string, count: number) {
  const texts = fake.delivered.filter((d) => d.text.startsWith(prefix)).map((d) => d.text);
  assert.equal(new Set(texts).size, count, `${prefix}: every follow-up delivered`);
  assert.equal(texts.length, count, `${prefix}: none delivered twice`);
}

describe('Redis Sentinel: a failover moves the queue to the new master', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  let sentinel: SentinelSetup;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 6 });
    fake = await startFakeEvolution({ delayScale: 0 });
    sentinel = await startSentinelSetup();
  });
  after(async () => {
    await sentinel?.stop();
    await fake?.close();
    await testDb?.drop();
  });

  test('follow-ups keep flowing through the queue across SENTINEL FAILOVER, each delivered exactly once', async (t) => {
    const env = { QUEUE_NAME: 'sentinel_failover', REDIS_SENTINELS: sentinel.sentinels, REDIS_SENTINEL_NAME: sentinel.masterName, REDIS_COMMAND_TIMEOUT_MS: '1000' };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
    try {
      const before = await insertDueFollowups(testDb.db, { count: 20, phonePrefix: '55811', text: (i) => `before ${i}` });
      await waitFor('delivered before the failover', async () => (await executedIds(testDb.db, before)) === before.length);
      const first = await relayCounts(relay.ctx.metrics);
      assert.equal(first.direct, 0, 'none run in direct mode');
      assert.ok(first.published >= 20, 'all published to the queue');

      // Follow-ups come due all through the failover.
      const during = await insertDueFollowups(testDb.db, {
        count: 60,
        dueAt: new Date(Date.now() + 300),
        phonePrefix: '55812',
        text: (i) => `during ${i}`,
      });
      const failoverAt = Date.now();
      const { from, to } = await sentinel.failover();
      assert.notEqual(from, to);
      await waitFor('delivered during the failover', async () => (await executedIds(testDb.db, during)) === during.length, { timeoutMs: 40_000 });
      t.diagnostic(`the 60 due during the failover were all delivered ${Date.now() - failoverAt} ms after SENTINEL FAILOVER`);

      // The failover is over once the sentinels have turned the old master into a replica (which
      // drops its clients) and our connections have found the new master. Until then a publish may
      // fail and send the relay to direct mode for a moment — allowed; what must hold is below.
      await waitFor('the old master demoted', async () => /role:slave/.test(String(await redisCommand(from, 'INFO', 'replication'))), {
        timeoutMs: 30_000,
      });
      await waitFor(
        'producer and worker on the new master',
        async () => {
          const clients = String(await redisCommand(to, 'CLIENT', 'LIST'));
          return /name=followups:queue/.test(clients) && /name=followups:worker/.test(clients);
        },
        { timeoutMs: 30_000 },
      );
      // After the failover, the queue is on the new master: published there, taken from there.
      await waitFor('relay back in queue mode', async () => relay.running.relay!.mode === 'queue' && (await relay.ctx.queue!.ping()), {
        timeoutMs: 20_000,
      });
      const counted = await relayCounts(relay.ctx.metrics);
      const afterwards = await insertDueFollowups(testDb.db, { count: 30, phonePrefix: '55813', text: (i) => `after ${i}` });
      await waitFor('delivered after the failover', async () => (await executedIds(testDb.db, afterwards)) === afterwards.length, { timeoutMs: 30_000 });
      const now = await relayCounts(relay.ctx.metrics);
      assert.equal(now.direct - counted.direct, 0, 'none run in direct mode');
      assert.ok(now.published - counted.published >= afterwards.length, 'all published to the queue');
      const clients = String(await redisCommand(to, 'CLIENT', 'LIST'));
      assert.match(clients, /name=followups:queue/, 'the producer is connected to the new master');
      assert.match(clients, /name=followups:worker/, 'the worker is connected to the new master');
      assert.equal(relay.ctx.queue!.state().status, 'up');

      assertDeliveredOnce(fake, 'before ', 20);
      assertDeliveredOnce(fake, 'during ', 60);
      assertDeliveredOnce(fake, 'after ', 30);
    } finally {
      await worker.stop();
      await relay.stop();
    }
  });

  test('a replica given as REDIS_URL is reported as a queue that cannot take writes', async () => {
    const master = await sentinel.masterPort();
    const replicaPort = sentinel.dataPorts.find((p) => p !== master)!;
    // After the failover above, the sentinels turn the old master into a replica.
    await waitFor('a replica', async () => /role:slave/.test(String(await redisCommand(replicaPort, 'INFO', 'replication'))));
    const config = loadConfig(testEnv({ REDIS_URL: `redis://127.0.0.1:${replicaPort}`, DATABASE_URL: testDb.url }));
    const ctx = await createContext(config, createLogger({ level: 'silent' }), { db: testDb.db, skipMigrations: true });
    try {
      const state = ctx.queue!.state();
      assert.equal(state.status, 'read_only');
      assert.match(state.cause!.message, /READONLY|role:slave/);
      assert.equal(await ctx.queue!.ping(), false, 'the relay does not count a replica as a queue it can publish to');
    } finally {
      await ctx.close();
    }
  });
});

describe('Redis Cluster: three masters', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  let cluster: ClusterSetup;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 6 });
    fake = await startFakeEvolution({ delayScale: 0 });
    cluster = await startCluster();
  });
  after(async () => {
    await cluster?.stop();
    await fake?.close();
    await testDb?.drop();
  });

  test('delivers through the queue with REDIS_CLUSTER_NODES, each follow-up exactly once', async () => {
    const env = { QUEUE_NAME: 'cluster_delivery', REDIS_CLUSTER_NODES: cluster.nodes, SEND_RATE_PER_MINUTE: '6000', SEND_RATE_WINDOW_SECONDS: '1' };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
    try {
      assert.equal(relay.ctx.queue!.state().mode, 'cluster');
      const ids = await insertDueFollowups(testDb.db, { count: 50, phonePrefix: '55814', text: (i) => `cluster ${i}` });
      await waitFor('delivered', async () => (await executedIds(testDb.db, ids)) === ids.length, { timeoutMs: 30_000 });
      const counts = await relayCounts(relay.ctx.metrics);
      assert.equal(counts.direct, 0, 'none run in direct mode');
      assert.ok(counts.published >= ids.length, 'all published to the queue (a row deferred by the pace is published again)');
      assertDeliveredOnce(fake, 'cluster ', 50);
      assert.equal(relay.ctx.queue!.state().status, 'up');
    } finally {
      await worker.stop();
      await relay.stop();
    }
  });

  test('refuses a QUEUE_PREFIX without a hash tag, naming the setting', () => {
    assert.throws(
      () => loadConfig(testEnv({ REDIS_CLUSTER_NODES: cluster.nodes, QUEUE_PREFIX: 'followups' })),
      (error: Error) => /QUEUE_PREFIX: must contain a Redis Cluster hash tag/.test(error.message),
    );
  });
});
