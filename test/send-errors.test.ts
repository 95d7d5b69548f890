import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getFollowup } from '../src/followups/find-followups.js';
import { scheduleFollowup } from '../src/followups/schedule-followup.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { type RoleHandle, startRole, waitFor } from './helpers/pipeline.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('each Evolution error ends in the state DESIGN.md gives it', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  let roles: RoleHandle;
  let n = 0;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
    roles = await startRole({
      roles: ['relay', 'worker'],
      databaseUrl: testDb.url,
      env: { REDIS_URL, QUEUE_NAME: 'errors', MAX_SEND_ATTEMPTS: '3' },
      fake,
    });
  });
  after(async () => {
    await roles.stop();
    await fake.close();
    await testDb.drop();
  });

  async function send(phone?: string) {
    n++;
    const text = `Teste de erro ${n}`;
    const { followup } = await scheduleFollowup(roles.ctx, { phone: phone ?? `55819${String(77770000 + n)}`, message: text });
    return { id: followup.id, text };
  }

  async function settled(id: string, statuses = ['executed', 'failed', 'cancelled']) {
    try {
      return await waitFor(`follow-up ${id} settled`, async () => {
        const f = await getFollowup(testDb.db, id);
        return statuses.includes(f.followup.status) && f;
      }, { timeoutMs: 30_000 });
    } catch (error) {
      const f = await getFollowup(testDb.db, id);
      throw new Error(`${(error as Error).message}; events: ${JSON.stringify(f.events.map((e) => [e.to_status, e.reason, e.detail]))}`);
    }
  }

  test('a number not on WhatsApp is cancelled as invalid_number and the lead is marked', async () => {
    const phone = '5581900000001';
    fake.notOnWhatsApp.add(phone);
    const { id } = await send(phone);
    const f = await settled(id);
    assert.equal(f.followup.status, 'cancelled');
    assert.equal(f.followup.cancel_reason, 'invalid_number');
    const { rows } = await testDb.db.query<{ number_valid: boolean }>('SELECT number_valid FROM leads WHERE phone = $1', [phone]);
    assert.equal(rows[0]!.number_valid, false);
  });

  test('Connection Closed is retried with backoff and then delivered', async () => {
    fake.fail('connection-closed', { count: 1 });
    const { id, text } = await send();
    const f = await settled(id);
    assert.equal(f.followup.status, 'executed');
    assert.equal(f.followup.attempts, 2);
    assert.ok(f.events.some((e) => e.to_status === 'pending' && e.reason === 'connection_closed'));
    assert.equal(fake.delivered.filter((d) => d.text === text).length, 1);
  });

  test('a dropped connection is a transient network error', async () => {
    fake.fail('drop-connection', { count: 1 });
    const { id, text } = await send();
    const f = await settled(id);
    assert.equal(f.followup.status, 'executed');
    assert.ok(f.events.some((e) => e.reason === 'network_error'));
    assert.equal(fake.delivered.filter((d) => d.text === text).length, 1);
  });

  test('retries are spent on a persistent 500 and the follow-up fails with the reason', async () => {
    fake.fail('server-error');
    try {
      const { id, text } = await send();
      const f = await settled(id);
      assert.equal(f.followup.status, 'failed');
      assert.match(f.followup.last_error ?? '', /server_error/);
      assert.equal(f.followup.attempts, 3);
      assert.equal(fake.delivered.filter((d) => d.text === text).length, 0);
    } finally {
      fake.clearFaults();
    }
  });

  test('a timeout after the message was really delivered is reconciled, not resent', async () => {
    fake.fail('timeout-after-delivery', { count: 1 });
    const { id, text } = await send();
    const f = await settled(id);
    const deliveries = fake.delivered.filter((d) => d.text === text);
    assert.equal(deliveries.length, 1, 'delivered once, never resent');
    assert.equal(f.followup.status, 'executed');
    assert.equal(f.followup.provider_message_id, deliveries[0]!.id);
    assert.ok(f.events.some((e) => e.to_status === 'executed' && e.reason === 'reconciled'));
  });

  test('a timeout before delivery is reconciled as not sent and then retried once', async () => {
    fake.fail('timeout-before-delivery', { count: 1 });
    const { id, text } = await send();
    const f = await settled(id);
    assert.equal(f.followup.status, 'executed');
    assert.ok(f.events.some((e) => e.reason === 'ambiguous_not_delivered'), JSON.stringify(f.events.map((e) => [e.to_status, e.reason, e.detail])));
    assert.equal(fake.delivered.filter((d) => d.text === text).length, 1);
  });

  for (const [mode, reason] of [
    ['unauthorized', 'evolution_unauthorized'],
    ['instance-not-found', 'evolution_instance_not_found'],
  ] as const) {
    test(`${mode} pauses sending without burning the follow-up, and sending resumes when it is fixed`, async () => {
      fake.fail(mode);
      const { id, text } = await send();
      try {
        await waitFor('paused', async () => (await roles.ctx.gate.state()).reason === reason);
        // The gate closes before the follow-up is handed back (and a paused gate retries every
        // PAUSE_RETRY_SECONDS, `sending` again for a moment): wait for it to be seen handed back.
        const held = await waitFor('handed back', async () => {
          const f = await getFollowup(testDb.db, id);
          return (f.followup.status === 'pending' || f.followup.status === 'queued') && f.events.some((e) => e.reason === 'sending_paused') && f;
        });
        assert.ok(!held.events.some((e) => e.to_status === 'failed' || e.to_status === 'cancelled'), 'held back, not burned');
        assert.equal(held.followup.attempts, 0, 'the attempt was given back');
      } finally {
        fake.clearFaults();
      }
      const f = await settled(id);
      assert.equal(f.followup.status, 'executed');
      assert.equal(fake.delivered.filter((d) => d.text === text).length, 1);
      assert.equal((await roles.ctx.gate.state()).paused, false);
    });
  }

  test('a validation 400 fails the follow-up as rejected', async () => {
    // Evolution refuses blank text; the fake answers with the validation shape.
    const { rows } = await testDb.db.query<{ id: string }>(
      `WITH l AS (INSERT INTO leads (phone) VALUES ('5581977770999') RETURNING id)
       INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at)
       SELECT id, '   ', now(), now(), now() - interval '1 hour' FROM l RETURNING id`,
    );
    const f = await settled(rows[0]!.id);
    assert.equal(f.followup.status, 'failed');
    assert.equal(f.events.at(-1)!.reason, 'rejected');
  });
});
