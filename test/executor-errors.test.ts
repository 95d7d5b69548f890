/**
 * One retry mechanism, the database's: a queue job is tried once, and an unexpected error in
 * the executor hands the row to the database's retry path (deferred with its attempt counted,
 * failed when they are spent) — or, once the send may have started, leaves it `sending` for the
 * sweeper to reconcile. Nothing is lost, nothing is resent blindly.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { makeFakeClock } from '../src/clock.js';
import { makeDefaultComposer } from '../src/compose/composer.js';
import { loadConfig } from '../src/config.js';
import { queueSettingsOf } from '../src/context.js';
import type { Db, Statement } from '../src/db/db.js';
import { scheduleFollowup } from '../src/followups/schedule-followup.js';
import { makeSendingGate } from '../src/followups/sending-gate.js';
import { claimDueFollowups, markQueued } from '../src/followups/transitions.js';
import { createLogger } from '../src/log.js';
import { makeQueueLink } from '../src/queue/queue-link.js';
import { type ExecutorDeps, executeFollowup } from '../src/worker/execute-followup.js';
import type { SendPolicy } from '../src/policy/send-policy.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { makeRecordingTransport } from './helpers/webhook-app.js';

const silent = createLogger({ level: 'silent' });
const clock = makeFakeClock('2026-01-05T12:00:00.000Z');
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let testDb: TestDatabase;
/** Statement names the wrapped database fails once each. */
const failOnce = new Set<string>();
let policyError: Error | null = null;
let seq = 0;

/** The test database, except that a statement named in `failOnce` fails (once), as a dropped connection would. */
function flakyDb(db: Db): Db {
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop === 'query') {
        return async (statement: string | Statement, params?: unknown[]) => {
          const name = typeof statement === 'string' ? undefined : statement.name;
          if (name && failOnce.delete(name)) throw new Error(`connection reset during ${name} (test)`);
          return target.query(statement, params);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const policy: SendPolicy = {
  async check() {
    if (policyError) throw policyError;
    return { ok: true };
  },
  typingDelayMs: () => 0,
};

function deps(transport = makeRecordingTransport(), maxSendAttempts = 2): ExecutorDeps {
  const db = flakyDb(testDb.db);
  return {
    db,
    clock,
    log: silent,
    transport,
    composer: makeDefaultComposer(),
    gate: makeSendingGate({ db, clock, cacheMs: 0 }),
    policy,
    settings: { leaseMs: 60_000, maxSendAttempts, retryBaseMs: 1_000, reconcileDelayMs: 0, pauseRetryMs: 1_000 },
  };
}

/** A follow-up due now, claimed by the relay and marked `queued`, as a worker's job finds it. */
async function queuedFollowup(): Promise<string> {
  seq += 1;
  const { followup } = await scheduleFollowup({ db: testDb.db, clock }, { phone: `55819${String(50_000_000 + seq)}`, message: `Teste ${seq}` });
  const { claimed } = await claimDueFollowups(testDb.db, { now: clock.now(), limit: 10, claimMs: 30_000 });
  await markQueued(testDb.db, claimed.map((c) => c.id), clock.now(), 60_000);
  return followup.id;
}

async function row(id: string) {
  const { rows } = await testDb.db.query<{ status: string; attempts: number; defer_reason: string | null; due_at: Date; last_error: string | null }>(
    'SELECT status, attempts, defer_reason, due_at, last_error FROM follow_ups WHERE id = $1',
    [id],
  );
  return rows[0]!;
}

before(async () => {
  testDb = await createTestDatabase();
});
after(async () => {
  await testDb?.drop();
});

describe('an unexpected error in the executor goes to the database retry path', () => {
  test('before the claim: the queued row goes back to pending, its attempt not counted', async () => {
    const id = await queuedFollowup();
    failOnce.add('followups_claim_for_sending_batch');
    assert.equal(await executeFollowup(deps(), id), 'deferred');
    const r = await row(id);
    assert.deepEqual([r.status, r.attempts, r.defer_reason], ['pending', 0, 'unexpected_error']);
    assert.ok(r.due_at > clock.now(), 'retried after a delay');
    assert.match(r.last_error ?? '', /connection reset during followups_claim_for_sending_batch/);
  });

  test('claimed, nothing sent: retried with its attempt counted, then failed when they are spent', async () => {
    const id = await queuedFollowup();
    const transport = makeRecordingTransport();
    policyError = new Error('the policy broke (test)');
    try {
      assert.equal(await executeFollowup(deps(transport), id), 'deferred');
      const r = await row(id);
      assert.deepEqual([r.status, r.attempts, r.defer_reason], ['pending', 1, 'unexpected_error']);
      // Due again, claimed again, fails again: the second of two attempts.
      clock.set(new Date(r.due_at.getTime() + 1));
      await claimDueFollowups(testDb.db, { now: clock.now(), limit: 10, claimMs: 30_000 });
      await markQueued(testDb.db, [id], clock.now(), 60_000);
      assert.equal(await executeFollowup(deps(transport), id), 'failed');
      const failed = await row(id);
      assert.deepEqual([failed.status, failed.attempts], ['failed', 2]);
      assert.match(failed.last_error ?? '', /unexpected_error: the policy broke/);
      assert.equal(transport.sent.length, 0);
    } finally {
      policyError = null;
    }
  });

  test('from the send on: thrown, and the row stays sending for the sweeper to reconcile (never resent blindly)', async () => {
    const id = await queuedFollowup();
    const transport = makeRecordingTransport();
    transport.sendText = async () => {
      throw new TypeError('the transport broke mid-send (test)');
    };
    await assert.rejects(executeFollowup(deps(transport), id), /broke mid-send/);
    const r = await row(id);
    assert.deepEqual([r.status, r.attempts], ['sending', 1]);
  });
});

describe('the queue does not retry', () => {
  test('a published job has one attempt', async () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://unused@127.0.0.1/unused',
      FOLLOWUPS_API_TOKEN: 'test-token-123-abcdefghijkl',
      ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
      REDIS_URL,
      QUEUE_NAME: `executor_errors_${randomBytes(4).toString('hex')}`,
    });
    const link = makeQueueLink(queueSettingsOf(config, config.redis.connection!), silent);
    try {
      const id = '00000000-0000-4000-8000-000000000001';
      await link.publish([id]);
      const job = await link.queue.getJob(`fu-${id}`);
      assert.equal(job?.opts.attempts, 1);
      await link.queue.obliterate({ force: true });
    } finally {
      await link.close();
    }
  });
});
