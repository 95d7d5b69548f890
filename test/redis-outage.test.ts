import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { scheduleFollowup } from '../src/followups/schedule-followup.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { insertDueFollowups, startRole, waitFor } from './helpers/pipeline.js';
import { type OwnRedis, startOwnRedis } from './helpers/redis-server.js';

async function allExecuted(db: TestDatabase['db'], ids: string[]) {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status = 'executed'`,
    [ids],
  );
  return rows[0]!.n === ids.length;
}

function assertDeliveredOnce(fake: FakeEvolution, prefix: string, count: number) {
  const texts = fake.delivered.filter((d) => d.text.startsWith(prefix)).map((d) => d.text);
  assert.equal(texts.length, count, `${prefix}: one delivery per follow-up`);
  assert.equal(new Set(texts).size, count, `${prefix}: none delivered twice`);
}

describe('Redis is disposable', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  let redis: OwnRedis;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
    redis = await startOwnRedis();
  });
  after(async () => {
    await redis.stop();
    await fake.close();
    await testDb.drop();
  });

  test('delivers everything in direct mode while Redis is stopped, then publishes again when it is back empty', async () => {
    const env = { REDIS_URL: redis.url, QUEUE_NAME: 'outage', REDIS_COMMAND_TIMEOUT_MS: '300' };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
    try {
      await redis.stop();
      const down = await insertDueFollowups(testDb.db, {
        count: 60,
        dueAt: new Date(Date.now() + 500),
        phonePrefix: '55819',
        text: (i) => `down #${i}`,
      });
      // Scheduling keeps working: it only needs PostgreSQL.
      const { followup } = await scheduleFollowup(relay.ctx, { phone: '5581966660000', message: 'down api' });
      await waitFor('delivered in direct mode', () => allExecuted(testDb.db, [...down, followup.id]), { timeoutMs: 30_000 });
      assert.equal(relay.running.relay!.mode, 'direct');
      assertDeliveredOnce(fake, 'down #', 60);
      const { rows } = await testDb.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM follow_up_events WHERE follow_up_id = ANY($1::uuid[]) AND to_status = 'queued'`,
        [down],
      );
      assert.equal(rows[0]!.n, 0, 'nothing was marked queued while nothing could be enqueued');

      // Redis returns empty (a new process without persistence): the relay goes back to publishing.
      await redis.start();
      await waitFor('back to queue mode', async () => relay.running.relay!.mode === 'queue', { timeoutMs: 20_000 });
      const back = await insertDueFollowups(testDb.db, { count: 30, phonePrefix: '55829', text: (i) => `back ${i}` });
      await waitFor('delivered through the queue', () => allExecuted(testDb.db, back), { timeoutMs: 30_000 });
      assertDeliveredOnce(fake, 'back ', 30);
    } finally {
      await worker.stop();
      await relay.stop();
    }
  });

  test('recovers queued follow-ups whose jobs were flushed from Redis', async () => {
    const env = { REDIS_URL: redis.url, QUEUE_NAME: 'flushed', LEASE_SECONDS: '3' };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    try {
      const ids = await insertDueFollowups(testDb.db, { count: 40, phonePrefix: '55839', text: (i) => `flushed ${i}` });
      await waitFor('all queued', async () => {
        const { rows } = await testDb.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status = 'queued'`,
          [ids],
        );
        return rows[0]!.n === ids.length;
      });
      await redis.flushAll(); // every job is gone; PostgreSQL still says queued
      const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
      try {
        await waitFor('recovered and delivered', () => allExecuted(testDb.db, ids), { timeoutMs: 30_000 });
        assertDeliveredOnce(fake, 'flushed ', 40);
      } finally {
        await worker.stop();
      }
    } finally {
      await relay.stop();
    }
  });

  test('a hung Redis (SIGSTOP) counts as down: the relay goes direct instead of stalling', async () => {
    const env = { REDIS_URL: redis.url, QUEUE_NAME: 'hung', REDIS_COMMAND_TIMEOUT_MS: '300' };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    try {
      redis.freeze();
      const ids = await insertDueFollowups(testDb.db, { count: 20, phonePrefix: '55849', text: (i) => `hung ${i}` });
      await waitFor('delivered while Redis hangs', () => allExecuted(testDb.db, ids), { timeoutMs: 30_000 });
      assert.equal(relay.running.relay!.mode, 'direct');
      const started = Date.now();
      assert.equal(await relay.ctx.queue!.ping(), false);
      assert.ok(Date.now() - started < 2_000, 'a ping to a hung Redis gives up quickly');
      assertDeliveredOnce(fake, 'hung ', 20);
    } finally {
      redis.thaw();
      await relay.stop();
    }
  });
});
