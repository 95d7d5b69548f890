/**
 * `followups status`.
 * Spawned as an operator runs it, against the real PostgreSQL and Redis, the fake
 * Evolution API and the fake LLM (helpers/operator-cli.ts): what it prints (`--json`),
 * the exit code, and what it changed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from './helpers/db.js';
import { systemClock } from '../src/clock.js';
import { makeSendingGate } from '../src/followups/sending-gate.js';
import { makeQueueLink } from '../src/queue/queue-link.js';
import { freePort } from './helpers/redis-server.js';
import { QUEUE_NAME, REDIS_URL, followups, schedule, silent, startOperatorWorld, stopOperatorWorld } from './helpers/operator-cli.js';

let testDb: TestDatabase;
before(async () => {
  ({ testDb } = await startOperatorWorld());
});
after(stopOperatorWorld);

describe('followups status', () => {
  it('reports counts, overdue and due-soon follow-ups, the queue depth, why sending is paused and the sends of today', async () => {
    const overdue = await schedule('5581990000001');
    await testDb.db.query(`UPDATE follow_ups SET due_at = now() - interval '10 minutes', defer_reason = 'window' WHERE id = $1::uuid`, [overdue.id]);
    await schedule('5581990000002', { inMinutes: 30 });
    await schedule('5581990000003', { inMinutes: 180 });
    const sent = await schedule('5581990000004');
    await testDb.db.query(`UPDATE follow_ups SET status = 'executed', sent_at = now() WHERE id = $1::uuid`, [sent.id]);
    await makeSendingGate({ db: testDb.db, clock: systemClock }).pause('whatsapp_disconnected', 'connection.update close');
    const link = makeQueueLink({ connection: { mode: 'standalone', url: REDIS_URL }, queueName: QUEUE_NAME, prefix: '{followups}', commandTimeoutMs: 2_000 }, silent);
    try {
      await link.publish([overdue.id]);
      const run = await followups(['status', '--json']);
      assert.equal(run.code, 0, run.stderr);
      const s = run.json;
      assert.equal(s.byStatus.pending, 3);
      assert.equal(s.byStatus.executed, 1);
      assert.equal(s.pending.overdue, 1);
      assert.equal(s.pending.dueNextHour, 1);
      assert.equal(s.pending.oldestOverdue.id, overdue.id);
      assert.equal(s.pending.oldestOverdue.deferReason, 'window');
      assert.ok(s.pending.oldestOverdue.overdueSeconds >= 590, `overdue by ${s.pending.oldestOverdue.overdueSeconds} s`);
      assert.equal(s.queue.mode, 'redis');
      assert.deepEqual(s.queue.depth, { waiting: 1, active: 0, delayed: 0 });
      assert.equal(s.sending.paused, true);
      assert.equal(s.sending.reason, 'whatsapp_disconnected');
      assert.equal(s.today.sent, 1);
      assert.equal(s.today.dailyCap, 500);

      const human = await followups(['status']);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /PAUSED: whatsapp_disconnected/);
      assert.match(human.stdout, /redis: 1 waiting, 0 active, 0 delayed/);
      assert.match(human.stdout, /sent today\s+1 of 500/);
    } finally {
      await link.queue.obliterate({ force: true }).catch(() => undefined);
      await link.close();
      await makeSendingGate({ db: testDb.db, clock: systemClock }).resume();
      await testDb.db.query(`UPDATE follow_ups SET status = 'cancelled' WHERE status = 'pending'`);
    }
  });

  it('says "direct" when there is no Redis, and exits 2 on a bad setting, naming it', async () => {
    const direct = await followups(['status', '--json'], { REDIS_URL: undefined });
    assert.equal(direct.code, 0, direct.stderr);
    assert.equal(direct.json.queue.mode, 'direct');
    assert.equal(direct.json.queue.depth, null);

    const bad = await followups(['status', '--json'], { REDIS_URL: 'not-a-url' });
    assert.equal(bad.code, 2);
    assert.equal(bad.json.error.code, 'invalid_configuration');
    assert.match(bad.stderr, /REDIS_URL/);
  });

  it('exits 3 when PostgreSQL does not answer', async () => {
    const run = await followups(['status', '--json'], { DATABASE_URL: `postgresql://root@127.0.0.1:${await freePort()}/nothing` });
    assert.equal(run.code, 3, run.stderr);
    assert.equal(run.json.error.code, 'database_unreachable');
  });
});
