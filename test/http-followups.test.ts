import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { makeFakeClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { type Context, createContext } from '../src/context.js';
import type { Db } from '../src/db/db.js';
import { markFailed } from '../src/followups/transitions.js';
import { buildApp } from '../src/http/build-app.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const TOKEN = 'test-token-123-abcdefghijkl';
const auth = { authorization: `Bearer ${TOKEN}` };
const START = '2026-01-05T12:00:00.000Z';

let testDb: TestDatabase;
let ctx: Context;
let app: FastifyInstance;
const clock = makeFakeClock(START);

function configFor(url: string) {
  return loadConfig({ DATABASE_URL: url, FOLLOWUPS_API_TOKEN: TOKEN, ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789' });
}

before(async () => {
  testDb = await createTestDatabase();
  ctx = await createContext(configFor(testDb.url), createLogger({ level: 'silent' }), {
    db: testDb.db,
    queue: null,
    skipMigrations: true,
    clock,
  });
  app = await buildApp(ctx);
});

after(async () => {
  await app?.close();
  await ctx?.close();
  await testDb?.drop();
});

function post(url: string, payload?: unknown, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, headers: { ...auth, ...headers }, payload: payload as object });
}
function get(url: string, headers: Record<string, string> = auth) {
  return app.inject({ method: 'GET', url, headers });
}
async function rowCounts(db: Db = testDb.db) {
  const { rows } = await db.query<{ followups: number; leads: number; events: number }>(
    `SELECT (SELECT count(*) FROM follow_ups)::int AS followups, (SELECT count(*) FROM leads)::int AS leads,
            (SELECT count(*) FROM follow_up_events)::int AS events`,
  );
  return rows[0]!;
}
let phoneSeq = 0;
/** A fresh valid Recife mobile per call, so tests do not share leads. */
function newPhone() {
  phoneSeq += 1;
  return `55819${String(70_000_000 + phoneSeq).padStart(8, '0')}`;
}

describe('POST /v1/followups', () => {
  it('schedules a follow-up and reads it back with its scheduled event', async () => {
    const phone = newPhone();
    const res = await post('/v1/followups', { phone, message: 'Oi! Ainda pensando no Sócio?', delayHours: 4, lead: { name: 'Ana' } });
    assert.equal(res.statusCode, 201);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['dueAt', 'id', 'leadId', 'status']);
    assert.equal(body.status, 'pending');
    assert.equal(body.dueAt, '2026-01-05T16:00:00.000Z');
    assert.equal(res.headers.location, `/v1/followups/${body.id}`);

    const read = await get(`/v1/followups/${body.id}`);
    assert.equal(read.statusCode, 200);
    const followup = read.json();
    assert.equal(followup.id, body.id);
    assert.equal(followup.leadId, body.leadId);
    assert.equal(followup.phone, phone);
    assert.equal(followup.message, 'Oi! Ainda pensando no Sócio?');
    assert.equal(followup.status, 'pending');
    assert.equal(followup.dueAt, '2026-01-05T16:00:00.000Z');
    assert.equal(followup.createdAt, START);
    assert.equal(followup.events.length, 1);
    assert.deepEqual(followup.events[0], {
      at: START,
      from: null,
      to: 'pending',
      reason: 'scheduled',
      detail: { dueAt: '2026-01-05T16:00:00.000Z' },
    });
  });

  it('schedules for now when no timing is given, and accepts delayMinutes and dueAt', async () => {
    const now = await post('/v1/followups', { phone: newPhone(), message: 'agora' });
    assert.equal(now.json().dueAt, START);
    const minutes = await post('/v1/followups', { phone: newPhone(), message: 'logo', delayMinutes: 30 });
    assert.equal(minutes.json().dueAt, '2026-01-05T12:30:00.000Z');
    const at = await post('/v1/followups', { phone: newPhone(), message: 'depois', dueAt: '2026-01-06T09:00:00-03:00' });
    assert.equal(at.json().dueAt, '2026-01-06T12:00:00.000Z');
  });

  it('treats 558199998888 and 5581999998888 as the same lead (the 9th digit)', async () => {
    const without9 = await post('/v1/followups', { phone: '558199998888', message: 'um' });
    const with9 = await post('/v1/followups', { phone: '5581999998888', message: 'dois' });
    const formatted = await post('/v1/followups', { phone: '+55 (81) 99999-8888', message: 'três' });
    assert.equal(without9.statusCode, 201);
    assert.equal(with9.statusCode, 201);
    assert.equal(with9.json().leadId, without9.json().leadId);
    assert.equal(formatted.json().leadId, without9.json().leadId);
    const { rows } = await testDb.db.query<{ phone: string }>("SELECT phone FROM leads WHERE phone LIKE '55819999%8888'");
    assert.deepEqual(rows, [{ phone: '5581999998888' }]);
  });

  it('returns the first follow-up (200, same id) when the body idempotency key repeats, writing one row', async () => {
    const payload = { phone: newPhone(), message: 'só uma vez', delayHours: 1, idempotencyKey: 'agent-run-1' };
    const first = await post('/v1/followups', payload);
    const before = await rowCounts();
    const again = await post('/v1/followups', payload);
    assert.equal(first.statusCode, 201);
    assert.equal(again.statusCode, 200);
    assert.deepEqual(again.json(), first.json());
    assert.deepEqual(await rowCounts(), before);
    const { rows } = await testDb.db.query("SELECT id FROM follow_ups WHERE idempotency_key = 'agent-run-1'");
    assert.equal(rows.length, 1);
  });

  it('accepts the idempotency key as an Idempotency-Key header too', async () => {
    const payload = { phone: newPhone(), message: 'header' };
    const first = await post('/v1/followups', payload, { 'idempotency-key': 'hdr-1' });
    const again = await post('/v1/followups', payload, { 'idempotency-key': 'hdr-1' });
    const viaBody = await post('/v1/followups', { ...payload, idempotencyKey: 'hdr-1' });
    assert.equal(first.statusCode, 201);
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().id, first.json().id);
    assert.equal(viaBody.json().id, first.json().id);
    const { rows } = await testDb.db.query("SELECT id FROM follow_ups WHERE idempotency_key = 'hdr-1'");
    assert.equal(rows.length, 1);
  });

  it('writes one row when identical requests with one idempotency key race', async () => {
    const payload = { phone: newPhone(), message: 'corrida', delayHours: 2 };
    const responses = await Promise.all(
      Array.from({ length: 6 }, () => post('/v1/followups', payload, { 'idempotency-key': 'race-1' })),
    );
    const codes = responses.map((r) => r.statusCode).sort();
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 201]);
    assert.equal(new Set(responses.map((r) => r.json().id)).size, 1);
    const { rows } = await testDb.db.query("SELECT id FROM follow_ups WHERE idempotency_key = 'race-1'");
    assert.equal(rows.length, 1);
  });

  it('refuses an Idempotency-Key header that differs from the body key', async () => {
    const before = await rowCounts();
    const res = await post('/v1/followups', { phone: newPhone(), idempotencyKey: 'a' }, { 'idempotency-key': 'b' });
    assert.equal(res.statusCode, 400);
    assert.match(res.json().error.message, /idempotencyKey/);
    assert.deepEqual(await rowCounts(), before);
  });

  const badRequests: Array<{ what: string; field: string; payload?: unknown; raw?: string }> = [
    { what: 'a bad phone', field: 'phone', payload: { phone: '12345', message: 'oi' } },
    { what: 'a phone with an unknown area code', field: 'phone', payload: { phone: '5520999998888', message: 'oi' } },
    { what: 'no phone', field: 'phone', payload: { message: 'oi' } },
    { what: 'a negative delayHours', field: 'delayHours', payload: { phone: '5581999998888', delayHours: -1 } },
    { what: 'a delayHours given as a string', field: 'delayHours', payload: { phone: '5581999998888', delayHours: '4' } },
    { what: 'a dueAt in the past', field: 'dueAt', payload: { phone: '5581999998888', dueAt: '2026-01-04T12:00:00Z' } },
    { what: 'a dueAt that is not a date', field: 'dueAt', payload: { phone: '5581999998888', dueAt: 'amanhã' } },
    { what: 'a message over 4,096 characters', field: 'message', payload: { phone: '5581999998888', message: 'a'.repeat(4097) } },
    { what: 'a blank message', field: 'message', payload: { phone: '5581999998888', message: '   ' } },
    { what: 'an unknown top-level field', field: 'delay_hours', payload: { phone: '5581999998888', delay_hours: 4 } },
    { what: 'two timing fields at once', field: 'delayMinutes', payload: { phone: '5581999998888', delayHours: 1, delayMinutes: 5 } },
    { what: 'a lead with a bad time zone', field: 'lead.timeZone', payload: { phone: '5581999998888', lead: { timeZone: 'Mars/Base' } } },
    { what: 'a JSON array', field: '(body)', payload: [{ phone: '5581999998888' }] },
    { what: 'malformed JSON', field: 'body', raw: '{"phone": "5581999998888", ' },
    { what: 'no body at all', field: '(body)', raw: '' },
  ];
  for (const bad of badRequests) {
    it(`answers 400 naming ${bad.field} and writes nothing for ${bad.what}`, async () => {
      const before = await rowCounts();
      const res = await app.inject({
        method: 'POST',
        url: '/v1/followups',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: bad.raw ?? JSON.stringify(bad.payload),
      });
      assert.equal(res.statusCode, 400, res.body);
      const { error } = res.json();
      assert.equal(error.code, 'validation_error');
      assert.ok(error.message.includes(bad.field), `"${error.message}" names ${bad.field}`);
      assert.deepEqual(await rowCounts(), before);
    });
  }

  it('lists every offending field in details', async () => {
    const res = await post('/v1/followups', { phone: '5581999998888', delayHours: -1, message: '', extra: 1 });
    assert.equal(res.statusCode, 400);
    const fields = res.json().error.details.map((d: { field: string }) => d.field).sort();
    assert.deepEqual(fields, ['delayHours', 'extra', 'message']);
  });

  it('answers 415 for a body that is not JSON and 413 for one over 1 MiB, writing nothing', async () => {
    const before = await rowCounts();
    const text = await app.inject({ method: 'POST', url: '/v1/followups', headers: { ...auth, 'content-type': 'text/plain' }, payload: 'oi' });
    assert.equal(text.statusCode, 415);
    assert.equal(text.json().error.code, 'unsupported_media_type');
    const huge = await post('/v1/followups', { phone: '5581999998888', message: 'x', lead: { notes: 'a'.repeat(1024 * 1024) } });
    assert.equal(huge.statusCode, 413);
    assert.equal(huge.json().error.code, 'payload_too_large');
    assert.deepEqual(await rowCounts(), before);
  });

  it('refuses a prototype-poisoning body', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/followups',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"phone":"5581999998888","__proto__":{"admin":true}}',
    });
    assert.equal(res.statusCode, 400);
  });

  it('answers 409 when the lead opted out, writing no follow-up', async () => {
    const phone = newPhone();
    await post('/v1/followups', { phone, message: 'antes' });
    await testDb.db.query('UPDATE leads SET opted_out_at = now() WHERE phone = $1', [phone]);
    const before = await rowCounts();
    const res = await post('/v1/followups', { phone, message: 'depois' });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().error.code, 'lead_opted_out');
    assert.deepEqual(await rowCounts(), before);
  });
});

describe('authentication', () => {
  it('answers 401 without a token and writes nothing', async () => {
    const before = await rowCounts();
    const res = await app.inject({ method: 'POST', url: '/v1/followups', payload: { phone: newPhone(), message: 'x' } });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().error.code, 'unauthorized');
    assert.match(res.json().error.message, /missing/i);
    assert.equal(res.headers['www-authenticate'], 'Bearer');
    assert.deepEqual(await rowCounts(), before);
  });

  it('answers 401 with a wrong token, without echoing it, and writes nothing', async () => {
    const before = await rowCounts();
    for (const authorization of ['Bearer wrong-token-456', `Bearer ${TOKEN}x`, 'Bearer test-token-12', `Basic ${TOKEN}`, TOKEN]) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/followups',
        headers: { authorization },
        payload: { phone: newPhone(), message: 'x' },
      });
      assert.equal(res.statusCode, 401, authorization);
      assert.match(res.json().error.message, /invalid/i);
      assert.ok(!res.body.includes('wrong-token') && !res.body.includes(TOKEN), 'the token is not echoed');
    }
    assert.deepEqual(await rowCounts(), before);
  });

  it('refuses an unauthenticated request before reading its body', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/followups',
      headers: { 'content-type': 'application/json' },
      payload: '{not json',
    });
    assert.equal(res.statusCode, 401);
  });

  it('guards every /v1 route', async () => {
    for (const [method, url] of [
      ['GET', '/v1/followups'],
      ['GET', '/v1/followups/00000000-0000-4000-8000-000000000000'],
      ['POST', '/v1/followups/00000000-0000-4000-8000-000000000000/cancel'],
      ['POST', '/v1/followups/00000000-0000-4000-8000-000000000000/retry'],
      ['GET', '/v1/stats'],
    ] as const) {
      const res = await app.inject({ method, url });
      assert.equal(res.statusCode, 401, `${method} ${url}`);
    }
  });
});

describe('GET /v1/followups', () => {
  let listDb: TestDatabase;
  let listCtx: Context;
  let listApp: FastifyInstance;
  const listClock = makeFakeClock(START);
  const list = (query: string) => listApp.inject({ method: 'GET', url: `/v1/followups${query}`, headers: auth });

  before(async () => {
    // Its own database, so counts are exact.
    listDb = await createTestDatabase();
    listCtx = await createContext(configFor(listDb.url), createLogger({ level: 'silent' }), {
      db: listDb.db,
      queue: null,
      skipMigrations: true,
      clock: listClock,
    });
    listApp = await buildApp(listCtx);
  });
  after(async () => {
    await listApp?.close();
    await listCtx?.close();
    await listDb?.drop();
  });

  it('walks every row exactly once, newest first, with cursor paging', async () => {
    const created: string[] = [];
    for (let i = 0; i < 25; i++) {
      // Some rows share a creation time: the cursor must break ties by id.
      if (i % 3 === 0) listClock.advance(1_000);
      const res = await listApp.inject({
        method: 'POST',
        url: '/v1/followups',
        headers: auth,
        payload: { phone: `55819${String(80_000_000 + i)}`, message: `n${i}`, delayHours: 1 },
      });
      assert.equal(res.statusCode, 201);
      created.push(res.json().id);
    }
    const seen: Array<{ id: string; createdAt: string }> = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await list(`?limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.statusCode, 200);
      const page = res.json();
      seen.push(...page.items);
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor);
    assert.equal(pages, 3);
    assert.equal(seen.length, 25);
    assert.deepEqual(new Set(seen.map((f) => f.id)), new Set(created));
    const times = seen.map((f) => f.createdAt);
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
  });

  it('does not skip rows whose creation times differ by less than a millisecond', async () => {
    // Rows written by SQL defaults carry microseconds; a cursor cut to milliseconds would skip some.
    const { rows: lead } = await listDb.db.query<{ id: string }>('SELECT id FROM leads LIMIT 1');
    await listDb.db.query(
      `INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at, created_at)
       SELECT $1::uuid, 'micro', now(), now(), now(), '2026-02-01T00:00:00.000100Z'::timestamptz + i * interval '1 microsecond'
         FROM generate_series(1, 6) i`,
      [lead[0]!.id],
    );
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: Array<{ id: string }>; nextCursor: string | null } = (
        await list(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      ).json();
      ids.push(...page.items.map((f) => f.id));
      cursor = page.nextCursor;
    } while (cursor);
    assert.equal(ids.length, 31);
    assert.equal(new Set(ids).size, 31);
  });

  it('filters by status and by phone (in any spelling)', async () => {
    const phone = '558188887777';
    const mine = await listApp.inject({ method: 'POST', url: '/v1/followups', headers: auth, payload: { phone, message: 'a' } });
    const other = await listApp.inject({ method: 'POST', url: '/v1/followups', headers: auth, payload: { phone, message: 'b' } });
    await listApp.inject({ method: 'POST', url: `/v1/followups/${other.json().id}/cancel`, headers: auth });

    const byPhone = (await list('?phone=5581988887777')).json();
    assert.deepEqual(byPhone.items.map((f: { id: string }) => f.id).sort(), [mine.json().id, other.json().id].sort());
    const cancelled = (await list(`?status=cancelled&phone=${phone}`)).json();
    assert.deepEqual(cancelled.items.map((f: { id: string }) => f.id), [other.json().id]);
    const allCancelled = (await list('?status=cancelled')).json();
    assert.ok(allCancelled.items.every((f: { status: string }) => f.status === 'cancelled'));
    const pending = (await list('?status=pending&limit=500')).json();
    assert.ok(pending.items.length > 20 && pending.items.every((f: { status: string }) => f.status === 'pending'));
  });

  it('answers 400 naming the parameter for bad filters', async () => {
    for (const [query, field] of [
      ['?status=sent', 'status'],
      ['?limit=0', 'limit'],
      ['?limit=abc', 'limit'],
      ['?phone=123', 'phone'],
      ['?cursor=bm9wZQ', 'cursor'],
      ['?colour=red', 'colour'],
    ]) {
      const res = await list(query!);
      assert.equal(res.statusCode, 400, query);
      assert.ok(res.json().error.message.includes(field!), `${query}: ${res.json().error.message}`);
    }
  });

  it('counts by status at /v1/stats', async () => {
    const res = await listApp.inject({ method: 'GET', url: '/v1/stats', headers: auth });
    assert.equal(res.statusCode, 200);
    const { rows } = await listDb.db.query<{ n: number }>("SELECT count(*)::int AS n FROM follow_ups WHERE status = 'pending'");
    assert.deepEqual(res.json(), { byStatus: { pending: rows[0]!.n, queued: 0, sending: 0, executed: 0, failed: 0, cancelled: 1 } });
  });
});

describe('cancel and retry', () => {
  async function schedule() {
    const res = await post('/v1/followups', { phone: newPhone(), message: 'x', delayHours: 1 });
    return res.json().id as string;
  }

  it('cancels a pending follow-up with a reason, then answers 409 when cancelling again', async () => {
    const id = await schedule();
    const res = await post(`/v1/followups/${id}/cancel`, { reason: 'customer_called' });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.status, 'cancelled');
    assert.equal(body.cancelReason, 'customer_called');
    assert.deepEqual(
      body.events.map((e: { to: string; reason: string }) => [e.to, e.reason]),
      [['pending', 'scheduled'], ['cancelled', 'customer_called']],
    );
    const again = await post(`/v1/followups/${id}/cancel`);
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().error.code, 'not_cancellable');
    assert.match(again.json().error.message, /already cancelled/);
  });

  it('cancels with reason "operator" when no body (or an empty JSON body) is sent', async () => {
    const bare = await app.inject({ method: 'POST', url: `/v1/followups/${await schedule()}/cancel`, headers: auth });
    assert.equal(bare.statusCode, 200);
    assert.equal(bare.json().cancelReason, 'operator');
    const empty = await app.inject({
      method: 'POST',
      url: `/v1/followups/${await schedule()}/cancel`,
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '',
    });
    assert.equal(empty.statusCode, 200, empty.body);
    assert.equal(empty.json().cancelReason, 'operator');
  });

  it('refuses a cancel reason over 64 characters or an unknown field, leaving the follow-up pending', async () => {
    const id = await schedule();
    const long = await post(`/v1/followups/${id}/cancel`, { reason: 'r'.repeat(65) });
    assert.equal(long.statusCode, 400);
    assert.match(long.json().error.message, /reason/);
    const unknown = await post(`/v1/followups/${id}/cancel`, { why: 'x' });
    assert.equal(unknown.statusCode, 400);
    assert.match(unknown.json().error.message, /why/);
    assert.equal((await get(`/v1/followups/${id}`)).json().status, 'pending');
  });

  it('answers 409 for a follow-up that is being sent', async () => {
    const id = await schedule();
    await testDb.db.query("UPDATE follow_ups SET status = 'sending' WHERE id = $1", [id]);
    const res = await post(`/v1/followups/${id}/cancel`);
    assert.equal(res.statusCode, 409);
    assert.match(res.json().error.message, /being sent/);
  });

  it('answers 409 when retrying a pending follow-up', async () => {
    const id = await schedule();
    const res = await post(`/v1/followups/${id}/retry`);
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().error.code, 'not_retryable');
    assert.equal((await get(`/v1/followups/${id}`)).json().status, 'pending');
  });

  it('puts a failed follow-up back to pending, due now', async () => {
    const id = await schedule();
    await testDb.db.query("UPDATE follow_ups SET status = 'sending', attempts = 6 WHERE id = $1", [id]);
    assert.ok(await markFailed(testDb.db, { id, now: clock.now(), reason: 'retries_exhausted', error: 'HTTP 500' }));
    clock.advance(60_000);
    const res = await post(`/v1/followups/${id}/retry`);
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.status, 'pending');
    assert.equal(body.attempts, 0);
    assert.equal(body.dueAt, clock.now().toISOString());
    assert.deepEqual(body.events.at(-1), { at: clock.now().toISOString(), from: 'failed', to: 'pending', reason: 'operator_retry', detail: null });
  });

  it('answers 404 for an unknown id and 400 naming id for a malformed one', async () => {
    const unknown = '3f2b6c1e-7d8a-4b9c-9e0f-1a2b3c4d5e6f';
    for (const [method, url] of [
      ['GET', `/v1/followups/${unknown}`],
      ['POST', `/v1/followups/${unknown}/cancel`],
      ['POST', `/v1/followups/${unknown}/retry`],
    ] as const) {
      const res = await app.inject({ method, url, headers: auth });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json().error.code, 'not_found');
    }
    for (const [method, url] of [
      ['GET', '/v1/followups/42'],
      ['POST', '/v1/followups/not-a-uuid/cancel'],
      ['POST', "/v1/followups/'%3B%20drop%20table/retry"],
    ] as const) {
      const res = await app.inject({ method, url, headers: auth });
      assert.equal(res.statusCode, 400, url);
      assert.equal(res.json().error.code, 'validation_error');
      assert.match(res.json().error.message, /^id: /);
    }
  });
});

describe('errors and logs', () => {
  it('answers unknown routes with 404 in the error envelope', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/nothing-here?phone=5581999998888', headers: auth });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), { error: { code: 'not_found', message: 'no route GET /v1/nothing-here' } });
  });

  it('answers malformed URLs and over-long ids in the error envelope', async () => {
    const bad = await app.inject({ method: 'GET', url: '/v1/followups/%E0%A4%A', headers: auth });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'bad_request');
    const long = await app.inject({ method: 'GET', url: `/v1/followups/${'a'.repeat(5000)}`, headers: auth });
    assert.equal(long.statusCode, 414);
    assert.equal(long.json().error.code, 'uri_too_long');
  });

  it('answers 500 saying nothing internal, and logs the error', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'error', destination: { write: (line: string) => void lines.push(line) } });
    const broken: Db = {
      ...testDb.db,
      query: async () => {
        throw new Error('relation "secret_table" does not exist');
      },
    };
    const brokenCtx = await createContext(configFor(testDb.url), log, { db: broken, queue: null, skipMigrations: true, clock });
    const brokenApp = await buildApp(brokenCtx);
    try {
      const res = await brokenApp.inject({ method: 'GET', url: '/v1/followups', headers: auth });
      assert.equal(res.statusCode, 500);
      assert.deepEqual(res.json(), { error: { code: 'internal_error', message: 'internal error' } });
      assert.equal(lines.length, 1);
      assert.match(lines[0]!, /secret_table/);
      assert.match(lines[0]!, /"route":"\/v1\/followups"/);
    } finally {
      await brokenApp.close();
      await brokenCtx.close();
    }
  });

  it('answers 503 when the database is unreachable', async () => {
    const down: Db = {
      ...testDb.db,
      query: async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' });
      },
    };
    const downCtx = await createContext(configFor(testDb.url), createLogger({ level: 'silent' }), { db: down, queue: null, skipMigrations: true, clock });
    const downApp = await buildApp(downCtx);
    try {
      const res = await downApp.inject({ method: 'GET', url: '/v1/followups', headers: auth });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'unavailable');
      assert.ok(!res.body.includes('10.0.0.1'));
    } finally {
      await downApp.close();
      await downCtx.close();
    }
  });

  it('logs requests at debug level without the Authorization header or the phone in the URL', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
    const loggedCtx = await createContext(configFor(testDb.url), log, { db: testDb.db, queue: null, skipMigrations: true, clock });
    const loggedApp = await buildApp(loggedCtx, { logger: true });
    try {
      const res = await loggedApp.inject({ method: 'GET', url: '/v1/followups?phone=5581999998888', headers: auth });
      assert.equal(res.statusCode, 200);
      const completed = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request completed');
      assert.equal(completed.length, 1);
      assert.equal(completed[0].level, 20);
      assert.equal(completed[0].route, '/v1/followups');
      assert.equal(completed[0].statusCode, 200);
      const all = lines.join('\n');
      assert.ok(!all.includes(TOKEN), 'token not logged');
      assert.ok(!all.includes('99999'), 'phone not logged');
    } finally {
      await loggedApp.close();
      await loggedCtx.close();
    }
  });
});
