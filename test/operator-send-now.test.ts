/**
 * `followups send-now [--ignore-window]`.
 * Spawned as an operator runs it, against the real PostgreSQL and Redis, the fake
 * Evolution API and the fake LLM (helpers/operator-cli.ts): what it prints (`--json`),
 * the exit code, and what it changed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from './helpers/db.js';
import { systemClock } from '../src/clock.js';
import { claimForSending } from '../src/followups/transitions.js';
import { sendFollowupNow } from '../src/operator/send-followup-now.js';
import { makeRespectfulPolicy } from '../src/policy/respectful-policy.js';
import { makeDryRunTransport } from '../src/whatsapp/dry-run-transport.js';
import { followups, lastEvent, row, schedule, silent, startOperatorWorld, stopOperatorWorld } from './helpers/operator-cli.js';

let testDb: TestDatabase;
before(async () => {
  ({ testDb } = await startOperatorWorld());
});
after(stopOperatorWorld);

describe('followups send-now', () => {
  it('makes a pending follow-up due now, records it as an operator event, and keeps --ignore-window on the row', async () => {
    const plain = await schedule('5581993330001');
    const run = await followups(['send-now', plain.id, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.json.ignoreWindow, false);
    const moved = await row(plain.id);
    assert.ok(moved.due_at.getTime() <= Date.now(), 'due now');
    assert.equal(moved.ignore_window, false);
    const event = await lastEvent(plain.id);
    assert.equal(event.reason, 'operator');
    assert.equal(event.detail.action, 'send_now');
    assert.equal(new Date(event.detail.previousDueAt as string).getTime(), plain.due_at.getTime());

    const forced = await schedule('5581993330002');
    const run2 = await followups(['send-now', forced.id, '--ignore-window', '--json']);
    assert.equal(run2.code, 0, run2.stderr);
    assert.equal((await row(forced.id)).ignore_window, true);
    assert.equal((await lastEvent(forced.id)).detail.ignoreWindow, true);

    await testDb.db.query(`UPDATE follow_ups SET status = 'cancelled' WHERE id = $1::uuid`, [forced.id]);
    const refused = await followups(['send-now', forced.id, '--json']);
    assert.equal(refused.code, 1);
    assert.equal(refused.json.error.code, 'not_pending');

    const missing = await followups(['send-now', '00000000-0000-4000-8000-000000000000', '--json']);
    assert.equal(missing.code, 1);
    assert.equal(missing.json.error.code, 'not_found');
  });

  it("the worker's claim carries --ignore-window to the send policy, which then lets it out at night; without it, it waits for the opening", async () => {
    const policy = makeRespectfulPolicy({
      db: testDb.db,
      transport: makeDryRunTransport({ db: testDb.db, log: silent, clock: systemClock }),
      log: silent,
      limits: null,
      settings: {
        timeZone: 'America/Recife',
        window: { enabled: true, start: '08:00', end: '20:00', sundays: false, jitterMs: 0 },
        maxPerLeadPerWeek: 0,
        typingDelay: false,
        checkNumbers: false,
      },
    });
    const night = new Date('2026-03-03T05:00:00Z'); // 02:00 in Recife, a Tuesday
    const claimAfter = async (ignoreWindow: boolean) => {
      const f = await schedule(ignoreWindow ? '5581993330004' : '5581993330003');
      await sendFollowupNow({ db: testDb.db, clock: systemClock }, f.id, { ignoreWindow });
      await testDb.db.query('UPDATE follow_ups SET claimed_until = now() + interval \'1 minute\' WHERE id = $1::uuid', [f.id]); // the relay's claim
      const claimed = await claimForSending(testDb.db, { id: f.id, now: new Date(), leaseMs: 60_000 });
      assert.ok(claimed && claimed.status === 'sending');
      return { followup: claimed, lead: { id: claimed.lead_id, phone: claimed.phone, timeZone: claimed.lead_time_zone }, now: night };
    };
    const held = await policy.check(await claimAfter(false));
    assert.equal(held.ok, false);
    assert.equal(!held.ok && 'reason' in held ? held.reason : null, 'window');
    const forced = await claimAfter(true);
    assert.equal(forced.followup.ignore_window, true);
    assert.deepEqual(await policy.check(forced), { ok: true });
  });
});
