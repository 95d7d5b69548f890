import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { fixture, followupsOf, leadWithFollowups, secretHeader, startWebhookApp, type WebhookApp } from './helpers/webhook-app.js';

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

function replyFrom(jid: string, id: string) {
  const body = fixture('messages-upsert-reply') as { data: { key: { remoteJid: string; id: string } } };
  body.data.key.remoteJid = jid;
  body.data.key.id = id;
  return body;
}

async function deliver(body: unknown) {
  const res = await w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'content-type': 'application/json', ...secretHeader }, payload: JSON.stringify(body) });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().results[0] as { outcome: string; cancelled?: number };
}

describe('inbound de-duplication', () => {
  test('is per chat: two leads whose messages carry the same id are both replies; the same chat twice is one', async () => {
    const now = w.clock.now();
    const ana = await leadWithFollowups(testDb.db, { phone: '5581988880001', now });
    const bia = await leadWithFollowups(testDb.db, { phone: '5581988880002', now });
    w.clock.set(new Date(now.getTime() + 3_600_000));
    assert.equal((await deliver(replyFrom('558188880001@s.whatsapp.net', 'SAMEID0001'))).outcome, 'reply_recorded');
    const second = await deliver(replyFrom('558188880002@s.whatsapp.net', 'SAMEID0001'));
    assert.deepEqual([second.outcome, second.cancelled], ['reply_recorded', 2], "another chat's message with the same id is a reply");
    assert.equal((await deliver(replyFrom('558188880002@s.whatsapp.net', 'SAMEID0001'))).outcome, 'duplicate');
    for (const lead of [ana, bia]) {
      assert.deepEqual((await followupsOf(testDb.db, lead.leadId)).map((f) => f.cancel_reason), ['lead_replied', 'lead_replied']);
    }
    const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE provider_message_id = 'SAMEID0001'`);
    assert.equal(rows[0]!.n, 2);
  });
});
