/**
 * `followups cancel --lead` and `followups retry --failed`.
 * Spawned as an operator runs it, against the real PostgreSQL and Redis, the fake
 * Evolution API and the fake LLM (helpers/operator-cli.ts): what it prints (`--json`),
 * the exit code, and what it changed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from './helpers/db.js';
import { markFailed } from '../src/followups/transitions.js';
import { followups, lastEvent, row, schedule, startOperatorWorld, stopOperatorWorld } from './helpers/operator-cli.js';

let testDb: TestDatabase;
before(async () => {
  ({ testDb } = await startOperatorWorld());
});
after(stopOperatorWorld);

describe('followups cancel --lead', () => {
  it("cancels every open follow-up of that lead only, with reason operator, whatever the phone's spelling", async () => {
    const a1 = await schedule('5581991110001');
    const a2 = await schedule('5581991110001', { inMinutes: 600 });
    const other = await schedule('5581991110002');
    const run = await followups(['cancel', '--lead', '+55 (81) 99111-0001', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual([...run.json.cancelled].sort(), [a1.id, a2.id].sort());
    for (const id of [a1.id, a2.id]) {
      assert.equal((await row(id)).status, 'cancelled');
      assert.equal((await row(id)).cancel_reason, 'operator');
      assert.equal((await lastEvent(id)).reason, 'operator');
    }
    assert.equal((await row(other.id)).status, 'pending');

    const again = await followups(['cancel', '--lead', '5581991110001', '--json']);
    assert.equal(again.code, 1, 'nothing left to cancel');
    assert.deepEqual(again.json.cancelled, []);

    const unknown = await followups(['cancel', '--lead', '5581991119999', '--json']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.json.error.code, 'lead_not_found');

    const bad = await followups(['cancel', '--lead', 'abc', '--json']);
    assert.equal(bad.code, 2);
    assert.match(bad.json.error.message, /lead/);
  });
});

describe('followups retry --failed', () => {
  it('retries the failed follow-ups matching the reason and the time, and only those', async () => {
    const fail = async (phone: string, reason: string, failedAgo?: string) => {
      const f = await schedule(phone);
      await markFailed(testDb.db, { id: f.id, now: new Date(), reason, error: `${reason}: boom`, from: ['pending'] });
      if (failedAgo) await testDb.db.query(`UPDATE follow_up_events SET at = now() - $2::interval WHERE follow_up_id = $1::uuid AND to_status = 'failed'`, [f.id, failedAgo]);
      return f;
    };
    const recent = await fail('5581992220001', 'retries_exhausted');
    const old = await fail('5581992220002', 'retries_exhausted', '3 days');
    const rejected = await fail('5581992220003', 'rejected');

    const dry = await followups(['retry', '--failed', '--reason', 'retries_exhausted', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.json.matched, 2);
    assert.deepEqual(dry.json.retried, []);
    assert.equal((await row(recent.id)).status, 'failed');

    const run = await followups(['retry', '--failed', '--reason', 'retries_exhausted', '--since', '1d', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.json.retried, [recent.id]);
    const retried = await row(recent.id);
    assert.equal(retried.status, 'pending');
    assert.ok(retried.due_at.getTime() <= Date.now());
    assert.equal((await lastEvent(recent.id)).reason, 'operator_retry');
    assert.deepEqual((await lastEvent(recent.id)).detail, { source: 'cli' });
    assert.equal((await row(old.id)).status, 'failed');
    assert.equal((await row(rejected.id)).status, 'failed');

    const none = await followups(['retry', '--failed', '--reason', 'no_such_reason', '--json']);
    assert.equal(none.code, 1, 'nothing matched');
    assert.equal(none.json.matched, 0);

    const usage = await followups(['retry', '--json']);
    assert.equal(usage.code, 2, 'without --failed it is a usage error');
    const badSince = await followups(['retry', '--failed', '--since', 'yesterday', '--json']);
    assert.equal(badSince.code, 2);
    assert.match(badSince.json.error.message, /--since/);
  });
});
