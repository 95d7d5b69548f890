import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { fixture, secretHeader, startWebhookApp, webhookFixtureNames, type WebhookApp } from './helpers/webhook-app.js';

let testDb: TestDatabase;
let w: WebhookApp;

before(async () => {
  testDb = await createTestDatabase();
  w = await startWebhookApp(testDb.db, { start: '2025-11-26T12:00:00.000Z' });
});
after(async () => {
  await w?.close();
  await testDb?.drop();
});

// A small seeded generator, so a failure can be replayed (FUZZ_SEED=...).
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
let state = seed;
function rnd(): number {
  state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
  return state / 2 ** 31;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
const int = (max: number) => Math.floor(rnd() * max);

const WEIRD_STRINGS = [
  '', ' ', '\u0000', 'a\u0000b', '\ud800', '😀'.repeat(50), 'x'.repeat(100_000), '558199998888@s.whatsapp.net', '120363@g.us',
  'status@broadcast', '123@lid', '@s.whatsapp.net', '+55 (81) 9999-8888', 'parar', 'não quero mais', "'; DROP TABLE leads; --",
  '{"event":"x"}', '__proto__', 'constructor', 'null', 'NaN', '-1', '1e309', 'MESSAGES_UPSERT', 'connection.update', 'open', 'close',
];

function randomValue(depth = 0): unknown {
  switch (int(depth > 4 ? 5 : 8)) {
    case 0: return null;
    case 1: return rnd() < 0.5;
    case 2: return pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 1_764_151_200, 1_764_151_200_000]);
    case 3: return pick(WEIRD_STRINGS);
    case 4: return Math.random().toString(36).slice(2);
    case 5: return Array.from({ length: int(5) }, () => randomValue(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = int(6); i > 0; i--) o[pick(['event', 'data', 'key', 'id', 'remoteJid', 'fromMe', 'message', 'state', 'messageTimestamp', 'conversation', '__proto__', 'x'])] = randomValue(depth + 1);
      return o;
    }
  }
}

function nested(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = rnd() < 0.5 ? [v] : { data: v };
  return v;
}

/** Takes a real fixture and breaks one field at a random path. */
function mutatedFixture(names: string[]): unknown {
  const body = fixture(pick(names)) as Record<string, unknown>;
  const paths = [['event'], ['data'], ['data', 'key'], ['data', 'key', 'id'], ['data', 'key', 'remoteJid'], ['data', 'key', 'fromMe'],
    ['data', 'key', 'remoteJidAlt'], ['data', 'message'], ['data', 'message', 'conversation'], ['data', 'messageTimestamp'], ['data', 'state'], ['data', 'messageType']];
  const path = pick(paths);
  let target: Record<string, unknown> | undefined = body;
  for (const key of path.slice(0, -1)) {
    const next: unknown = target?.[key];
    target = typeof next === 'object' && next !== null ? (next as Record<string, unknown>) : undefined;
  }
  if (target) {
    if (rnd() < 0.2) delete target[path.at(-1)!];
    else target[path.at(-1)!] = randomValue();
  }
  // Half of them get a fresh message id, so they are not all duplicates of the fixture.
  const data = body.data as { key?: unknown } | undefined;
  if (rnd() < 0.5 && typeof data === 'object' && data !== null && typeof data.key === 'object' && data.key !== null && !Array.isArray(data.key)) {
    (data.key as { id: unknown }).id = `FUZZ${int(1e9)}`;
  }
  return body;
}

function randomBody(names: string[]): { payload: string; contentType: string } {
  const kind = int(10);
  if (kind === 0) return { payload: pick(['{', '{"event":', 'not json', '[1,2', '\u0000', '']), contentType: 'application/json' };
  if (kind === 1) return { payload: JSON.stringify(nested(20 + int(200))), contentType: 'application/json' };
  if (kind === 2) return { payload: JSON.stringify({ event: 'messages.upsert', data: { key: { id: 'x'.repeat(int(500) + 1), remoteJid: pick(WEIRD_STRINGS), fromMe: rnd() < 0.5 }, message: { conversation: 'y'.repeat(int(200_000)) } } }), contentType: 'application/json' };
  if (kind === 3) return { payload: 'event=messages.upsert', contentType: pick(['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) };
  if (kind <= 6) return { payload: JSON.stringify(mutatedFixture(names)), contentType: 'application/json' };
  return { payload: JSON.stringify(randomValue()) ?? 'null', contentType: 'application/json' };
}

describe('webhook fuzzing', () => {
  test('5,000 random or malformed bodies: never a 5xx, and the process keeps answering', async () => {
    const names = webhookFixtureNames();
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const started = Date.now();
    for (let batch = 0; batch < 100; batch++) {
      const bodies = Array.from({ length: 50 }, () => randomBody(names));
      const answers = await Promise.all(
        bodies.map((b) =>
          w.app.inject({ method: 'POST', url: pick(['/webhooks/evolution', '/webhooks/evolution/messages-upsert', '/webhooks/evolution/connection-update', '/webhooks/evolution/%00']), headers: { ...secretHeader, 'content-type': b.contentType }, payload: b.payload }),
        ),
      );
      answers.forEach((res, i) => {
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode >= 500 && failures.length < 5) failures.push(`${res.statusCode} ${res.body} ← ${bodies[i]!.payload.slice(0, 300)}`);
      });
    }
    const summary = [...statuses.entries()].sort().map(([s, n]) => `${s}:${n}`).join(' ');
    console.log(`# fuzz (seed ${seed}): 5000 bodies in ${((Date.now() - started) / 1000).toFixed(1)} s → ${summary}`);
    assert.deepEqual(failures, [], `seed ${seed}`);
    assert.equal([...statuses.values()].reduce((a, b) => a + b, 0), 5_000);
    assert.ok((statuses.get(200) ?? 0) > 500, 'many were valid enough to be processed');
    assert.ok((statuses.get(400) ?? 0) > 500, 'many were refused as malformed');
    const live = await w.app.inject({ method: 'GET', url: '/health/ready' });
    assert.equal(live.statusCode, 200);
    const real = await w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: secretHeader, payload: fixture('messages-update-read') });
    assert.equal(real.statusCode, 200, 'still serving webhooks');
  });

  test('a reply with a lone surrogate or a NUL is recorded, mended (U+FFFD), not refused with a 500', async () => {
    const body = fixture('messages-upsert-reply');
    const data = body.data as { key: { id: string; remoteJid: string }; message: { conversation: string } };
    data.key.id = 'LONE-SURROGATE-1';
    data.key.remoteJid = '558187770001@s.whatsapp.net';
    // JSON.stringify writes a lone surrogate as \ud83d, which PostgreSQL's jsonb refuses (the raw payload is stored as jsonb).
    data.message.conversation = 'Oi \ud83d tudo\u0000 bem';
    const res = await w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { ...secretHeader, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    assert.equal(res.statusCode, 200, res.body);
    const { rows } = await testDb.db.query<{ text: string }>(`SELECT text FROM messages WHERE provider_message_id = 'LONE-SURROGATE-1'`);
    assert.deepEqual(rows, [{ text: 'Oi \ufffd tudo bem' }]);
  });
});
