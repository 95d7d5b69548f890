/**
 * The send path's shortcuts (taken for the benchmark's throughput, bench/README.md) keep their guarantees: follow-ups travel
 * in chunks (jobs of several ids), and the lease check right before a send is
 * made locally while the claim's lease surely outlasts the send — but an
 * executor frozen past its lease still asks the database, and does not send.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { makeFakeClock } from '../src/clock.js';
import type { Composer } from '../src/compose/composer.js';
import { loadConfig } from '../src/config.js';
import { type Context, createContext } from '../src/context.js';
import type { Db, Statement } from '../src/db/db.js';
import { deferFollowup } from '../src/followups/transitions.js';
import { createLogger } from '../src/log.js';
import { chunkIds, followupIdsOf, jobIdForChunk, makeQueueLink } from '../src/queue/queue-link.js';
import { executorDeps } from '../src/roles.js';
import { executeFollowup, leaseHoldsForSend } from '../src/worker/execute-followup.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { waitForRedis } from './helpers/redis-server.js';
import { leadWithFollowups, makeRecordingTransport, type RecordingTransport } from './helpers/webhook-app.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('jobs carry chunks of follow-ups', () => {
  test('chunks are at most the job size; urgent ids get jobs of their own, first', () => {
    const ids = Array.from({ length: 45 }, (_, i) => `id${i}`);
    const urgent = new Set(['id3', 'id40', 'id41']);
    const chunks = chunkIds(ids, 20, urgent);
    assert.deepEqual(chunks.map((c) => [c.urgent, c.ids.length]), [[true, 3], [false, 20], [false, 20], [false, 2]]);
    assert.deepEqual(chunks[0]!.ids, ['id3', 'id40', 'id41']);
    assert.deepEqual(chunks.flatMap((c) => c.ids).sort(), [...ids].sort(), 'every id once');
    assert.deepEqual(chunkIds(ids, 50).map((c) => c.ids.length), [45]);
  });

  test('job ids: the same chunk gets the same id, another chunk another, never all digits', () => {
    const a = jobIdForChunk(['a', 'b', 'c']);
    assert.equal(jobIdForChunk(['a', 'b', 'c']), a);
    assert.notEqual(jobIdForChunk(['a', 'b', 'd']), a);
    assert.notEqual(jobIdForChunk(['a', 'x', 'c']), a, 'same first id and length, other content');
    assert.equal(jobIdForChunk(['123']), 'fu-123');
    assert.match(a, /^fb-/);
  });

  test('the worker reads both job shapes and refuses anything else', () => {
    assert.deepEqual(followupIdsOf({ followupIds: ['a', 'b'] }), ['a', 'b']);
    assert.deepEqual(followupIdsOf({ followupId: 'a' }), ['a'], 'one-per-job shape of earlier versions');
    assert.equal(followupIdsOf({ followupIds: ['a', 2] }), null);
    assert.equal(followupIdsOf({}), null);
    assert.equal(followupIdsOf(null), null);
  });

  test('publish: one addBulk of chunked jobs on the real Redis, urgent ones at the head', async () => {
    await waitForRedis(REDIS_URL);
    const queueName = `hot_path_${process.pid}_${Date.now()}`;
    const settings = { connection: { mode: 'standalone' as const, url: REDIS_URL }, queueName, prefix: '{hot-path-test}', commandTimeoutMs: 2_000, jobSize: 4 };
    const link = makeQueueLink(settings, createLogger({ level: 'silent' }));
    const queue = new Queue(queueName, { connection: { url: REDIS_URL }, prefix: settings.prefix });
    try {
      const ids = Array.from({ length: 10 }, (_, i) => `f-${i}`);
      await link.publish(ids, { urgent: new Set(['f-9']) });
      // Published again (a relay retrying after a lost markQueued): the same chunks are not added twice.
      await link.publish(ids, { urgent: new Set(['f-9']) });
      const jobs = await queue.getWaiting(0, 100);
      assert.equal(jobs.length, 4, 'chunks of 4 from 9 ids, and the urgent one apart');
      assert.deepEqual(jobs.map((j) => (j.data as { followupIds: string[] }).followupIds.length).sort(), [1, 1, 4, 4]);
      assert.deepEqual((jobs[0]!.data as { followupIds: string[] }).followupIds, ['f-9'], 'the urgent job is next in line');
      assert.equal(await link.waiting(), 4);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await link.close();
    }
  });
});

describe('statements that ask for relaxed durability or generic plans (real PostgreSQL)', () => {
  let testDb: TestDatabase;
  before(async () => {
    testDb = await createTestDatabase({ poolSize: 2 });
  });
  after(async () => {
    await testDb.drop();
  });

  test('run with those settings (SET LOCAL in their own transaction); other statements keep the defaults', async () => {
    const show = async (statement: Omit<Statement, 'text'>) => {
      const { rows } = await testDb.db.query<{ sc: string; pcm: string }>({
        name: `show_settings_${statement.relaxedDurability ? 'r' : ''}${statement.genericPlan ? 'g' : ''}`,
        ...statement,
        text: `SELECT current_setting('synchronous_commit') AS sc, current_setting('plan_cache_mode') AS pcm`,
      });
      return rows[0]!;
    };
    assert.deepEqual(await show({}), { sc: 'on', pcm: 'auto' });
    assert.deepEqual(await show({ relaxedDurability: true }), { sc: 'off', pcm: 'auto' });
    // A generic plan alone is not worth a transaction of its own (two more round trips): not applied.
    assert.deepEqual(await show({ genericPlan: true }), { sc: 'on', pcm: 'auto' });
    assert.deepEqual(await show({ relaxedDurability: true, genericPlan: true }), { sc: 'off', pcm: 'force_generic_plan' });
    assert.deepEqual(await show({}), { sc: 'on', pcm: 'auto' }, 'nothing left behind on the connection');
    // Inside a transaction the flags are ignored: the transaction's own connection runs it.
    const inTx = await testDb.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ sc: string }>({ relaxedDurability: true, text: `SELECT current_setting('synchronous_commit') AS sc` });
      return rows[0]!.sc;
    });
    assert.equal(inTx, 'on');
  });
});

describe('the lease check before the send', () => {
  const clock = makeFakeClock(new Date('2026-03-02T15:00:00Z'));
  const deps = { clock, settings: { leaseMs: 120_000, sendBudgetMs: 41_000, maxSendAttempts: 3, retryBaseMs: 1_000, reconcileDelayMs: 0, pauseRetryMs: 1_000 } };

  test('holds locally while the lease left is longer than the send can take (plus a margin)', () => {
    const claimNow = clock.now();
    const mono = performance.now();
    assert.equal(leaseHoldsForSend(deps, claimNow, mono), true);
    clock.set(new Date(claimNow.getTime() + 60_000));
    assert.equal(leaseHoldsForSend(deps, claimNow, mono), true, '60 s in: 60 s left > 41 s + 12 s');
    clock.set(new Date(claimNow.getTime() + 70_000));
    assert.equal(leaseHoldsForSend(deps, claimNow, mono), false, '70 s in: the database decides');
    clock.set(claimNow);
    assert.equal(leaseHoldsForSend(deps, claimNow, mono - 70_000), false, 'a frozen process: the monotonic clock counts the freeze');
    assert.equal(leaseHoldsForSend({ clock, settings: { ...deps.settings, sendBudgetMs: undefined } }, claimNow, mono), false, 'no budget: always renew');
  });
});

describe('the executor around a frozen claim (fake clock, real PostgreSQL)', () => {
  let testDb: TestDatabase;
  let ctx: Context;
  let transport: RecordingTransport;
  const clock = makeFakeClock(new Date('2026-03-02T15:00:00Z'));
  const statements: string[] = [];

  before(async () => {
    testDb = await createTestDatabase();
    transport = makeRecordingTransport();
    // Every named statement the executor runs, to see which round trips it makes.
    const db = testDb.db;
    const recording: Db = Object.create(db) as Db;
    recording.query = ((statement: string | Statement, values?: unknown[]) => {
      if (typeof statement !== 'string' && statement.name) statements.push(statement.name);
      return db.query(statement, values);
    }) as Db['query'];
    const config = loadConfig({ DATABASE_URL: 'postgresql://unused@127.0.0.1/x', FOLLOWUPS_API_TOKEN: 'test-token-123-abcdefghijkl', ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789', TYPING_DELAY_ENABLED: 'false', SEND_RATE_PER_MINUTE: '0', SENDING_WINDOW_ENABLED: 'false', MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: '0', WHATSAPP_NUMBER_CHECK: 'false' });
    ctx = await createContext(config, createLogger({ level: 'silent' }), { db: recording, queue: null, skipMigrations: true, clock, transport });
  });
  after(async () => {
    await ctx.close();
    await testDb.drop();
  });

  async function queued(phone: string) {
    const { followupIds } = await leadWithFollowups(testDb.db, { phone, now: clock.now(), count: 1 });
    await testDb.db.query(`UPDATE follow_ups SET status = 'queued', due_at = $2, planned_at = $2 WHERE id = $1`, [followupIds[0], clock.now()]);
    return followupIds[0]!;
  }

  test('a prompt send makes no renewal round trip', async () => {
    const id = await queued('5581999990001');
    statements.length = 0;
    assert.equal(await executeFollowup(executorDeps(ctx, 'test'), id), 'executed');
    assert.equal(transport.sent.length, 1);
    assert.ok(!statements.includes('followups_renew_sending_lease'), statements.join(', '));
  });

  test('frozen past its lease while composing, and the sweeper took the row: it renews, fails, and does not send', async () => {
    const id = await queued('5581999990002');
    const before = transport.sent.length;
    const base = executorDeps(ctx, 'test');
    const frozen: Composer = {
      async compose(input) {
        // The process stops for longer than the lease; meanwhile the sweeper found the row
        // expired and handed it back for another executor (as recoverSending does).
        clock.set(new Date(clock.now().getTime() + base.settings.leaseMs + 5_000));
        await deferFollowup(testDb.db, { id, now: clock.now(), dueAt: clock.now(), reason: 'lease_expired', giveBackAttempt: true });
        return { text: input.followup.message ?? 'oi', composer: 'explicit' };
      },
    };
    statements.length = 0;
    assert.equal(await executeFollowup({ ...base, composer: frozen }, id), 'skipped');
    assert.equal(transport.sent.length, before, 'nothing sent');
    assert.ok(statements.includes('followups_renew_sending_lease'), 'the database was asked');
    const { rows } = await testDb.db.query<{ status: string }>('SELECT status FROM follow_ups WHERE id = $1', [id]);
    assert.equal(rows[0]!.status, 'pending', 'left to the executor that takes it next');
  });
});
