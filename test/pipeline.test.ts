import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { scheduleFollowup } from '../src/followups/schedule-followup.js';
import { cancelFollowup } from '../src/followups/operator-actions.js';
import { getFollowup } from '../src/followups/find-followups.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { countByStatus, insertDueFollowups, startRole, waitFor } from './helpers/pipeline.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('the pipeline on PostgreSQL, Redis and a fake Evolution API', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
  });
  after(async () => {
    await fake.close();
    await testDb.drop();
  });

  test('delivers a follow-up scheduled 2 s ahead once, not before its time, and records every transition', async () => {
    const env = { REDIS_URL, QUEUE_NAME: 'pipeline_first' };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
    try {
      const dueAt = new Date(Date.now() + 2_000);
      const text = 'Opa, João! Passando só pra saber se ficou alguma dúvida, visse?';
      const { followup } = await scheduleFollowup(relay.ctx, { phone: '558199998888', message: text, dueAt: dueAt.toISOString() });

      const done = await waitFor('executed', async () => {
        const f = await getFollowup(testDb.db, followup.id);
        return f.followup.status === 'executed' && f;
      });
      const deliveries = fake.delivered.filter((d) => d.text === text);
      assert.equal(deliveries.length, 1, 'delivered exactly once');
      assert.equal(deliveries[0]!.number, '5581999998888', 'sent to the canonical number');
      assert.ok(deliveries[0]!.at.getTime() >= dueAt.getTime(), 'not before its time');
      assert.equal(done.followup.provider_message_id, deliveries[0]!.id);
      assert.equal(done.followup.sent_text, text);
      const trail = done.events.map((e) => [e.from_status, e.to_status, e.reason]);
      // Published to the queue either way; a worker faster than the relay's markQueued claims the
      // row straight from `pending` (claimForSending), and then it never was `queued`.
      assert.deepEqual(
        trail,
        trail.some(([, to]) => to === 'queued')
          ? [
              [null, 'pending', 'scheduled'],
              ['pending', 'queued', 'published'],
              ['queued', 'sending', 'claimed'],
              ['sending', 'executed', 'sent'],
            ]
          : [
              [null, 'pending', 'scheduled'],
              ['pending', 'sending', 'claimed'],
              ['sending', 'executed', 'sent'],
            ],
      );
      const { rows } = await testDb.db.query<{ text: string; direction: string }>(
        'SELECT text, direction FROM messages WHERE follow_up_id = $1',
        [followup.id],
      );
      assert.deepEqual(rows, [{ text, direction: 'out' }], 'the sent text is in the conversation log');
    } finally {
      await worker.stop();
      await relay.stop();
    }
  });

  test('two relays and three workers racing over 2,000 due follow-ups deliver each exactly once', async () => {
    const env = { REDIS_URL, QUEUE_NAME: 'pipeline_race', RELAY_BATCH_SIZE: '100', WORKER_CONCURRENCY: '20' };
    const ids = await insertDueFollowups(testDb.db, { count: 2_000, phonePrefix: '55829', text: (i) => `race ${i}` });
    const roles = await Promise.all([
      startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake }),
      startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake }),
      startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake }),
      startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake }),
      startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake }),
    ]);
    try {
      await waitFor(
        'all executed',
        async () => {
          const { rows } = await testDb.db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status = 'executed'`,
            [ids],
          );
          return rows[0]!.n === ids.length;
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );
      const raced = fake.delivered.filter((d) => d.text.startsWith('race '));
      assert.equal(raced.length, 2_000, 'one delivery per follow-up');
      assert.equal(new Set(raced.map((d) => d.text)).size, 2_000, 'no follow-up delivered twice');
      const { rows } = await testDb.db.query<{ n: number }>(
        `SELECT count(DISTINCT provider_message_id)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[])`,
        [ids],
      );
      assert.equal(rows[0]!.n, 2_000, 'each executed row carries its own provider id');
      const published = await testDb.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (
           SELECT follow_up_id FROM follow_up_events
            WHERE follow_up_id = ANY($1::uuid[]) AND to_status = 'queued'
            GROUP BY follow_up_id HAVING count(*) > 1) twice`,
        [ids],
      );
      assert.equal(published.rows[0]!.n, 0, 'no follow-up was published twice');
    } finally {
      await Promise.all(roles.map((r) => r.stop()));
    }
  });

  test('a sleeping relay is woken by NOTIFY for an earlier follow-up, with no fixed poll', async () => {
    // A 60 s cap: only LISTEN/NOTIFY can make the relay act on a follow-up due in 1 s.
    const env = { REDIS_URL, QUEUE_NAME: 'pipeline_notify', RELAY_MAX_SLEEP_MS: '60000' };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
    try {
      // Until its NOTIFY probe answers, the relay polls every 200 ms; after it, it sleeps up to the 60 s cap.
      await waitFor('the relay sleeping on NOTIFY', async () => relay.running.relay!.notifyArrives);
      const dueAt = new Date(Date.now() + 1_000);
      const { followup } = await scheduleFollowup(relay.ctx, { phone: '5581988880003', message: 'Acordei o relay', dueAt: dueAt.toISOString() });
      await waitFor('executed', async () => (await getFollowup(testDb.db, followup.id)).followup.status === 'executed', { timeoutMs: 45_000 });
      const delivery = fake.delivered.find((d) => d.text === 'Acordei o relay')!;
      const lateness = delivery.at.getTime() - dueAt.getTime();
      assert.ok(lateness >= 0, 'not before its time');
      // Against the configured cap, with a margin a loaded machine cannot eat: well under 60 s means NOTIFY woke it.
      assert.ok(lateness < 30_000, `woken by NOTIFY, not by the 60 s cap (late by ${lateness} ms)`);
    } finally {
      await worker.stop();
      await relay.stop();
    }
  });

  test('does not send a follow-up cancelled while it was queued', async () => {
    const env = { REDIS_URL, QUEUE_NAME: 'pipeline_cancel' };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    const text = 'Esta mensagem foi cancelada na fila';
    const { followup } = await scheduleFollowup(relay.ctx, { phone: '5581988880001', message: text });
    await waitFor('queued', async () => (await getFollowup(testDb.db, followup.id)).followup.status === 'queued');
    await cancelFollowup(relay.ctx, followup.id);
    const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
    try {
      // The job is still in Redis; the worker takes it and must find the row cancelled.
      await waitFor('queue drained', async () => {
        const depth = await relay.ctx.queue!.depth();
        return depth !== null && depth.waiting === 0 && depth.active === 0;
      });
      // A positive marker before asserting absence: a follow-up published after the cancelled one's
      // job goes out, so the worker has long been past that job.
      const marker = 'Esta mensagem veio depois da cancelada';
      await scheduleFollowup(relay.ctx, { phone: '5581988880011', message: marker });
      await waitFor('the marker delivered', async () => fake.delivered.some((d) => d.text === marker));
      assert.equal(fake.delivered.filter((d) => d.text === text).length, 0);
      const after = await getFollowup(testDb.db, followup.id);
      assert.equal(after.followup.status, 'cancelled');
      assert.equal(after.followup.cancel_reason, 'operator');
    } finally {
      await worker.stop();
      await relay.stop();
    }
  });

  test('keeps pending follow-ups across a restart of every role', async () => {
    const env = { REDIS_URL, QUEUE_NAME: 'pipeline_restart' };
    let role = await startRole({ roles: ['relay', 'worker'], databaseUrl: testDb.url, env, fake });
    const { followup } = await scheduleFollowup(role.ctx, { phone: '5581988880002', message: 'Daqui a uma hora', delayHours: 1 });
    await role.stop();
    role = await startRole({ roles: ['relay', 'worker'], databaseUrl: testDb.url, env, fake });
    try {
      // A positive marker: a follow-up due now goes out through the restarted roles, so they have
      // been through the pending rows at least once.
      const marker = 'Logo depois do reinício';
      await scheduleFollowup(role.ctx, { phone: '5581988880012', message: marker });
      await waitFor('the marker delivered', async () => fake.delivered.some((d) => d.text === marker));
      const f = await getFollowup(testDb.db, followup.id);
      assert.equal(f.followup.status, 'pending', 'a restart neither cancels nor loses it');
      assert.ok((await countByStatus(testDb.db)).pending! >= 1);
    } finally {
      await role.stop();
    }
  });
});
