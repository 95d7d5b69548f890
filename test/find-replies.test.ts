/**
 * The Evolution client's side of the pre-send check (findReplies) and the silence
 * rule that needs no sends in a row (no webhook at all for WEBHOOK_SILENCE_MINUTES).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { makeFakeClock } from '../src/clock.js';
import { SendError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { makeWebhookSilence } from '../src/webhooks/webhook-silence.js';
import { makeEvolutionTransport } from '../src/whatsapp/evolution-client.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const silent = createLogger({ level: 'silent' });

/** A fetch that answers every findMessages with `answer` and keeps the request bodies. */
function answering(answer: { status: number; body: string }) {
  const bodies: Array<Record<string, unknown>> = [];
  const fetchStub = (async (_url: string | URL | Request, init?: RequestInit) => {
    bodies.push(JSON.parse(String(init?.body)));
    return new Response(answer.body, { status: answer.status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return { bodies, fetch: fetchStub };
}

function transport(fetchStub: typeof fetch) {
  return makeEvolutionTransport({ url: 'http://evolution.test', apiKey: 'k', instance: 'nautico', timeoutMs: 1_000, log: silent, fetch: fetchStub });
}

describe('findReplies (Evolution findMessages)', () => {
  const fixture = readFileSync(new URL('./fixtures/evolution/find-messages-200.json', import.meta.url), 'utf8');

  test('asks for the chat\'s inbound messages under both spellings and the @lid, and returns only the fan\'s messages since the anchor', async () => {
    const stub = answering({ status: 200, body: fixture });
    // The fixture's inbound message is at 1764151200 (2025-11-26T10:00:00Z), our text after it.
    const found = await transport(stub.fetch).findReplies!({ number: '5581999998888', lid: '204958372615243@lid', since: new Date('2025-11-26T09:00:00Z') });
    assert.deepEqual(
      stub.bodies.map((b) => (b.where as { key: unknown }).key),
      [
        { remoteJid: '5581999998888@s.whatsapp.net', fromMe: false },
        { remoteJid: '558199998888@s.whatsapp.net', fromMe: false },
        { remoteJid: '204958372615243@lid', fromMe: false },
      ],
    );
    assert.deepEqual(found.map((f) => [f.providerMessageId, f.at.toISOString()]), [['3A554E20ECABF3D45BB2', '2025-11-26T10:00:00.000Z']]);
  });

  test('a number checked on WhatsApp is asked under the JID WhatsApp gave, not both spellings', async () => {
    const stub = answering({ status: 200, body: fixture });
    await transport(stub.fetch).findReplies!({ number: '5581999998888', jid: '558199998888@s.whatsapp.net', since: new Date('2025-11-26T09:00:00Z') });
    assert.deepEqual(stub.bodies.map((b) => (b.where as { key: { remoteJid: string } }).key.remoteJid), ['558199998888@s.whatsapp.net']);
  });

  test('a message in the anchor\'s own second counts; one before it does not', async () => {
    const stub = answering({ status: 200, body: fixture });
    const sameSecond = await transport(stub.fetch).findReplies!({ number: '5581999998888', since: new Date('2025-11-26T10:00:00.700Z') });
    assert.equal(sameSecond.length, 1);
    const later = await transport(stub.fetch).findReplies!({ number: '5581999998888', since: new Date('2025-11-26T10:00:01Z') });
    assert.equal(later.length, 0);
  });

  test('an error answer is a transient SendError; a bad key stays a configuration fault', async () => {
    const failing = answering({ status: 500, body: '{"status":500,"error":"Internal Server Error","response":{"message":"Connection Closed"}}' });
    await assert.rejects(transport(failing.fetch).findReplies!({ number: '5581999998888', since: new Date() }), (e) => e instanceof SendError && e.kind === 'transient');
    const refused = answering({ status: 401, body: '{"status":401,"error":"Unauthorized","response":{"message":"Unauthorized"}}' });
    await assert.rejects(transport(refused.fetch).findReplies!({ number: '5581999998888', since: new Date() }), (e) => e instanceof SendError && e.kind === 'configuration');
  });
});

describe('webhook silence without echoes to count', () => {
  let testDb: TestDatabase;
  before(async () => {
    testDb = await createTestDatabase({ poolSize: 2 });
  });
  after(async () => {
    await testDb.drop();
  });

  test('no webhook at all for WEBHOOK_SILENCE_MINUTES while sending: that number is silent (no_webhooks), another number is not', async () => {
    const clock = makeFakeClock('2026-03-02T12:00:00Z');
    const make = (instance: string) =>
      makeWebhookSilence({ db: testDb.db, clock, log: silent, instance, echoTimeoutMs: 60_000, silenceMs: 10 * 60_000, cacheMs: 0 });
    const quiet = make('number-a');
    const other = make('number-b');
    await quiet.detect(); // the baseline: nothing sent before it counts
    await other.detect();
    // One send at 12:01 whose echo never comes; no webhook at all afterwards.
    await testDb.db.query(
      `WITH l AS (INSERT INTO leads (phone) VALUES ('5581998887777') RETURNING id)
       INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at, status, sent_at, provider_message_id)
       SELECT id, 'Opa!', $1, $1, $1, 'executed', $1, 'X1' FROM l`,
      [new Date('2026-03-02T12:01:00Z')],
    );
    clock.set('2026-03-02T12:09:00Z');
    assert.equal(await quiet.detect(), false, 'one unechoed send, nine minutes without webhooks: not yet');
    clock.set('2026-03-02T12:10:01Z');
    await other.noteWebhook(false);
    await other.flush();
    assert.equal(await quiet.detect(), true);
    assert.deepEqual(await quiet.state().then((s) => [s.silent, s.reason]), [true, 'no_webhooks']);
    assert.equal(await other.detect(), false, 'number-b heard a webhook');
    assert.equal((await other.state()).silent, false);
  });
});
