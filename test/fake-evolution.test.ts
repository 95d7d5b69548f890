import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { type FakeEvolution, type FakeEvolutionOptions, startFakeEvolution } from './helpers/fake-evolution.js';
import { waitFor } from './helpers/pipeline.js';

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`./fixtures/evolution/${name}`, import.meta.url), 'utf8'));
}

async function withFake(options: FakeEvolutionOptions, fn: (fake: FakeEvolution) => Promise<void>): Promise<void> {
  const fake = await startFakeEvolution({ delayScale: 0, ...options });
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

async function call(
  fake: FakeEvolution,
  path: string,
  body?: unknown,
  options: { apiKey?: string; raw?: string } = {},
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${fake.url}${path}`, {
    method: body === undefined && options.raw === undefined ? 'GET' : 'POST',
    headers: { apikey: options.apiKey ?? fake.apiKey, 'content-type': 'application/json' },
    body: options.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const send = (fake: FakeEvolution, body: unknown, apiKey?: string) =>
  call(fake, `/message/sendText/${fake.instance}`, body, { apiKey });

describe('the fake Evolution server', () => {
  test('answers 404 for an unknown instance before it looks at the api key, then 401 for a wrong key', async () => {
    await withFake({ apiKey: 'right' }, async (fake) => {
      const unknown = await call(fake, '/message/sendText/sport', { number: '5581999998888', text: 'oi' }, { apiKey: 'wrong' });
      assert.equal(unknown.status, 404);
      assert.deepEqual(unknown.body, {
        status: 404,
        error: 'Not Found',
        response: { message: ['The "sport" instance does not exist'] },
      });
      const wrongKey = await send(fake, { number: '5581999998888', text: 'oi' }, 'wrong');
      assert.equal(wrongKey.status, 401);
      assert.deepEqual(wrongKey.body, fixture('error-401.json'));
      assert.equal(fake.delivered.length, 0);
    });
  });

  test('answers a sendText in the shape of the fixture, filed under the JID without the 9th digit', async () => {
    await withFake({}, async (fake) => {
      const { status, body } = await send(fake, { number: '5581999998888', text: 'Opa!', delay: 0, linkPreview: false });
      assert.equal(status, 201);
      assert.deepEqual(Object.keys(body).sort(), Object.keys(fixture('send-text-201.json') as object).sort());
      assert.equal(body.key.remoteJid, '558199998888@s.whatsapp.net');
      assert.equal(body.key.fromMe, true);
      assert.match(body.key.id, /^3EB0[0-9A-F]{16}$/);
      assert.equal(body.message.conversation, 'Opa!');
      assert.equal(typeof body.messageTimestamp, 'number');
      assert.deepEqual(fake.delivered.map((d) => [d.id, d.number, d.jid, d.text]), [
        [body.key.id, '5581999998888', '558199998888@s.whatsapp.net', 'Opa!'],
      ]);
    });
  });

  test('gives every message its own id', async () => {
    await withFake({}, async (fake) => {
      for (let i = 0; i < 20; i++) await send(fake, { number: '5581999998888', text: `m${i}` });
      assert.equal(new Set(fake.delivered.map((d) => d.id)).size, 20);
    });
  });

  test('answers a blank or missing text with the 400 validation shape', async () => {
    await withFake({}, async (fake) => {
      const blank = await send(fake, { number: '5581999998888', text: '  ' });
      assert.equal(blank.status, 400);
      assert.deepEqual(blank.body, {
        status: 400,
        error: 'Bad Request',
        response: { message: [['The "text" cannot be empty']] },
      });
      const missing = await send(fake, { number: '5581999998888' });
      assert.deepEqual(missing.body, fixture('send-text-400-validation.json'));
      const fractionalDelay = await send(fake, { number: '5581999998888', text: 'oi', delay: 1.5 });
      assert.equal(fractionalDelay.status, 400);
      assert.equal(fake.delivered.length, 0);
    });
  });

  test('answers exists:false for a number listed in either spelling, on sendText and whatsappNumbers', async () => {
    await withFake({}, async (fake) => {
      fake.notOnWhatsApp.add('5581900000000');
      const refused = await send(fake, { number: '558100000000', text: 'oi' });
      assert.equal(refused.status, 400);
      assert.deepEqual(refused.body, {
        status: 400,
        error: 'Bad Request',
        response: { message: [{ jid: '558100000000@s.whatsapp.net', exists: false, number: '558100000000' }] },
      });
      const checked = await call(fake, `/chat/whatsappNumbers/${fake.instance}`, { numbers: ['5581999998888', '5581900000000'] });
      assert.equal(checked.status, 200);
      assert.deepEqual(checked.body, [
        { jid: '558199998888@s.whatsapp.net', exists: true, number: '5581999998888' },
        { jid: '558100000000@s.whatsapp.net', exists: false, number: '5581900000000' },
      ]);
    });
  });

  test('answers bad JSON with 400 and keeps serving', async () => {
    await withFake({}, async (fake) => {
      const bad = await call(fake, `/message/sendText/${fake.instance}`, undefined, { raw: '{"number": ' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.status, 400);
      assert.equal(fake.requests[0]!.body, '{"number": ');
      assert.equal((await send(fake, { number: '5581999998888', text: 'still here' })).status, 201);
    });
  });

  test('findMessages answers the v2.3 records shape, newest first, for the exact JID asked', async () => {
    await withFake({}, async (fake) => {
      await send(fake, { number: '5581999998888', text: 'first' });
      await send(fake, { number: '558199998888', text: 'second' });
      await send(fake, { number: '5511987654321', text: 'elsewhere' });
      const found = await call(fake, `/chat/findMessages/${fake.instance}`, {
        where: { key: { remoteJid: '558199998888@s.whatsapp.net' } },
      });
      assert.equal(found.status, 200);
      assert.equal(found.body.messages.total, 2);
      assert.equal(found.body.messages.pages, 1);
      assert.equal(found.body.messages.currentPage, 1);
      assert.deepEqual(found.body.messages.records.map((r: any) => r.message.conversation), ['second', 'first']);
      assert.equal(found.body.messages.records[0].key.fromMe, true);
      const fullSpelling = await call(fake, `/chat/findMessages/${fake.instance}`, {
        where: { key: { remoteJid: '5581999998888@s.whatsapp.net' } },
      });
      assert.equal(fullSpelling.body.messages.total, 0, 'the real server matches remoteJid exactly');
      assert.equal(fake.deliveriesTo('5581999998888').length, 2);
      assert.equal(fake.deliveriesTo('558199998888@s.whatsapp.net').length, 2);
    });
  });

  test('a count-limited fault stops after N sendText calls', async () => {
    await withFake({}, async (fake) => {
      fake.fail('server-error', { count: 2 });
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await send(fake, { number: '5581999998888', text: `t${i}` })).status);
      assert.deepEqual(statuses, [500, 500, 201, 201]);
      assert.equal(fake.delivered.length, 2);
    });
  });

  test('a fault with a probability hits that share of the calls, and slow adds latency then answers', async () => {
    await withFake({}, async (fake) => {
      fake.fail('server-error', { probability: 0 });
      assert.equal((await send(fake, { number: '5581999998888', text: 'never hit' })).status, 201);
      fake.fail('server-error', { probability: 1, count: 1 });
      assert.equal((await send(fake, { number: '5581999998888', text: 'always hit' })).status, 500);
      fake.fail('slow', { ms: 150, count: 1 });
      const started = Date.now();
      assert.equal((await send(fake, { number: '5581999998888', text: 'late' })).status, 201);
      assert.ok(Date.now() - started >= 140, 'the slow fault held the answer');
      assert.deepEqual(fake.delivered.map((d) => d.text), ['never hit', 'late']);
    });
  });

  test('refuses to send while the WhatsApp connection is not open', async () => {
    await withFake({}, async (fake) => {
      fake.setConnectionState('close');
      const refused = await send(fake, { number: '5581999998888', text: 'oi' });
      assert.equal(refused.status, 500);
      assert.deepEqual(refused.body, fixture('send-text-500-connection-closed.json'));
      assert.equal(fake.delivered.length, 0);
    });
  });

  test('connection-closed also hits connectionState, in both shapes, until cleared', async () => {
    await withFake({}, async (fake) => {
      fake.fail('connection-closed');
      const first = await call(fake, `/instance/connectionState/${fake.instance}`);
      const second = await call(fake, `/instance/connectionState/${fake.instance}`);
      assert.equal(first.status, 500);
      assert.deepEqual(first.body, fixture('send-text-500-connection-closed.json'));
      assert.deepEqual(second.body, fixture('send-text-500-connection-closed-array.json'));
      fake.clearFaults();
      fake.setConnectionState('connecting');
      const state = await call(fake, `/instance/connectionState/${fake.instance}`);
      assert.deepEqual(state.body, { instance: { instanceName: 'nautico', state: 'connecting' } });
    });
  });

  test('honours the delay before answering, and can scale it', async () => {
    await withFake({ delayScale: 1 }, async (fake) => {
      let started = Date.now();
      await send(fake, { number: '5581999998888', text: 'typing', delay: 250 });
      assert.ok(Date.now() - started >= 240, 'waited the full delay');
      fake.setDelayScale(0.02);
      started = Date.now();
      await send(fake, { number: '5581999998888', text: 'typing fast', delay: 10_000 });
      const elapsed = Date.now() - started;
      // 10 s scaled by 0.02 is 200 ms; "well under the unscaled 10 s" is the property, with room for a loaded machine.
      assert.ok(elapsed >= 190 && elapsed < 5_000, `scaled delay took ${elapsed} ms`);
    });
  });

  test('timeout-after-delivery delivers and never answers; close() ends the held request', async () => {
    const fake = await startFakeEvolution({ delayScale: 0 });
    fake.fail('timeout-after-delivery');
    const pending = fetch(`${fake.url}/message/sendText/${fake.instance}`, {
      method: 'POST',
      headers: { apikey: fake.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ number: '5581999998888', text: 'held' }),
    }).then(
      () => 'answered',
      () => 'aborted',
    );
    await waitFor('delivered', async () => fake.delivered.length > 0, { intervalMs: 5 });
    await fake.close();
    // Aborted (not answered) by close(): the request was still held when the fake closed.
    assert.equal(await pending, 'aborted');
    assert.equal(fake.delivered[0]!.text, 'held');
  });

  test('maxPerWindow counts the most deliveries in any sliding window', async () => {
    await withFake({}, async (fake) => {
      for (let i = 0; i < 5; i++) await send(fake, { number: i < 3 ? '5581999998888' : '5581977776666', text: `m${i}` });
      // Pin the delivery times so the windows are exact: 0, 100, 200, 1000, 1050 ms.
      const base = Date.parse('2026-01-05T12:00:00.000Z');
      [0, 100, 200, 1000, 1050].forEach((offset, i) => (fake.delivered[i]!.at = new Date(base + offset)));
      assert.equal(fake.maxPerWindow(2000), 5);
      assert.equal(fake.maxPerWindow(250), 3);
      assert.equal(fake.maxPerWindow(200), 2, 'a window is half open: 0 and 200 ms are not in one 200 ms window');
      assert.equal(fake.maxPerWindow(100), 2);
      assert.equal(fake.maxPerWindow(1), 1);
      assert.equal(fake.maxPerWindow(2000, '558199998888'), 3);
      assert.equal(fake.maxPerWindow(60, '5581977776666'), 2);
    });
  });
});
