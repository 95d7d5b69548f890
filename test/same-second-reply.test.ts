import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { scheduleFollowup } from '../src/followups/schedule-followup.js';
import { claimDueFollowups, claimForSending, markQueued } from '../src/followups/transitions.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { fixture, secretHeader, startWebhookApp, type WebhookApp } from './helpers/webhook-app.js';

const JOAO = '5581999998888'; // messages-upsert-reply.json (written 558199998888)
const ZE = '5581997776666'; // behind the @lid of messages-upsert-lid.json
const NOON = Date.parse('2026-03-10T15:00:00.000Z');
const at = (ms: number) => new Date(NOON + ms);

let testDb: TestDatabase;
let w: WebhookApp;

before(async () => {
  testDb = await createTestDatabase();
  w = await startWebhookApp(testDb.db);
});
after(async () => {
  await w?.close();
  await testDb?.drop();
});
beforeEach(async () => {
  await testDb.db.query('DELETE FROM leads');
});

/** The fixture as WhatsApp would deliver it, stamped `stampMs` after noon (whole seconds, as WhatsApp does), with its own id. */
function reply(name: 'messages-upsert-reply' | 'messages-upsert-lid', stampMs: number, id: string) {
  const body = fixture(name) as { data: { key: { id: string }; messageTimestamp: number } };
  body.data.messageTimestamp = Math.floor((NOON + stampMs) / 1000);
  body.data.key.id = id;
  return body;
}

async function deliver(body: unknown) {
  const res = await w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'content-type': 'application/json', ...secretHeader }, payload: JSON.stringify(body) });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().results[0] as { outcome: string; cancelled?: number };
}

async function plan(phone: string, plannedMs: number) {
  w.clock.set(at(plannedMs));
  const { followup } = await scheduleFollowup(w.ctx, { phone, message: 'Opa! Ficou alguma dúvida, visse?', delayMinutes: 0 });
  return followup.id;
}

async function statusOf(id: string) {
  const { rows } = await testDb.db.query<{ status: string; cancel_reason: string | null }>('SELECT status, cancel_reason FROM follow_ups WHERE id = $1', [id]);
  return rows[0]!;
}

/** What a worker does when the follow-up comes out of the queue: relay claim, queued, worker claim with its re-check. */
async function claimAt(id: string, nowMs: number) {
  const now = at(nowMs);
  await claimDueFollowups(testDb.db, { now, limit: 10, claimMs: 60_000 });
  await markQueued(testDb.db, [id], now, 60_000);
  await claimForSending(testDb.db, { id, now, leaseMs: 60_000 });
  return statusOf(id);
}

describe('a reply in the same second as the planning', () => {
  for (const [path, fixtureName, phone] of [
    ['the reply webhook', 'messages-upsert-reply', JOAO],
    ['an @lid reply', 'messages-upsert-lid', ZE],
  ] as const) {
    test(`through ${path}: a follow-up planned at 12:00:00.700 is cancelled by a reply stamped 12:00:00`, async () => {
      const id = await plan(phone, 700);
      w.clock.set(at(800));
      const result = await deliver(reply(fixtureName, 0, `SAME${path.length}`));
      assert.deepEqual([result.outcome, result.cancelled], ['reply_recorded', 1]);
      assert.deepEqual(await statusOf(id), { status: 'cancelled', cancel_reason: 'lead_replied' });
    });

    test(`through ${path}: a reply received after the follow-up was planned cancels it, though stamped earlier`, async () => {
      const id = await plan(phone, 700);
      // Written at 11:59:58, delivered by Evolution 2.3 s after the planning.
      w.clock.set(at(3_000));
      const result = await deliver(reply(fixtureName, -2_000, `LATE${path.length}`));
      assert.equal(result.cancelled, 1);
      assert.deepEqual(await statusOf(id), { status: 'cancelled', cancel_reason: 'lead_replied' });
    });

    test(`through ${path}: the worker's claim cancels a follow-up planned just after the reply arrived, in its second`, async () => {
      w.clock.set(at(300));
      assert.equal((await deliver(reply(fixtureName, 0, `CLAIM${path.length}`))).cancelled, 0, 'nothing planned yet');
      const id = await plan(phone, 700);
      assert.equal((await statusOf(id)).status, 'pending');
      assert.deepEqual(await claimAt(id, 900), { status: 'cancelled', cancel_reason: 'lead_replied' });
    });
  }

  test('a follow-up planned in a later second, after the reply was read, is kept and claimed', async () => {
    w.clock.set(at(300));
    await deliver(reply('messages-upsert-reply', 0, 'READ1'));
    const id = await plan(JOAO, 1_200);
    assert.equal((await claimAt(id, 1_300)).status, 'sending');
  });

  test('an older message arriving late does not cancel what was planned after the newest one', async () => {
    w.clock.set(at(10_000));
    await deliver(reply('messages-upsert-reply', 10_000, 'NEWER'));
    const id = await plan(JOAO, 20_000);
    w.clock.set(at(30_000));
    assert.equal((await deliver(reply('messages-upsert-reply', 0, 'OLDER'))).cancelled, 0);
    assert.equal((await statusOf(id)).status, 'pending');
  });
});
