import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { makeFakeClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { type Context, createContext } from '../src/context.js';
import type { Db } from '../src/db/db.js';
import { buildApp } from '../src/http/build-app.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const TOKEN = 'api-token-for-security-tests-0001';
const METRICS_TOKEN = 'metrics-token-for-security-tests-01';
const auth = { authorization: `Bearer ${TOKEN}` };
const silent = createLogger({ level: 'silent' });

let testDb: TestDatabase;

before(async () => {
  testDb = await createTestDatabase();
});
after(async () => {
  await testDb?.drop();
});

/** An app on the test database; `lines` collects its log lines when asked. */
async function startApp(env: Record<string, string> = {}, options: { db?: Db; lines?: string[] } = {}) {
  const config = loadConfig({ DATABASE_URL: testDb.url, FOLLOWUPS_API_TOKEN: TOKEN, ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789', LOG_LEVEL: 'debug', ...env });
  const log = options.lines ? createLogger({ level: 'debug', destination: { write: (l: string) => void options.lines!.push(l) } }) : silent;
  const ctx: Context = await createContext(config, log, { db: options.db ?? testDb.db, queue: null, skipMigrations: true, clock: makeFakeClock() });
  const app: FastifyInstance = await buildApp(ctx);
  return { ctx, app, close: async () => (await app.close(), await ctx.close()) };
}

describe('/health/ready without a token', () => {
  it('answers the status only; the details (queue, sending, transport) need the API token or METRICS_TOKEN', async () => {
    const s = await startApp({ METRICS_TOKEN });
    try {
      await s.ctx.gate.pause('evolution_unauthorized', 'Evolution answered 401: check EVOLUTION_API_KEY');
      const anonymous = await s.app.inject({ method: 'GET', url: '/health/ready' });
      assert.equal(anonymous.statusCode, 200);
      assert.deepEqual(anonymous.json(), { status: 'degraded' });
      assert.doesNotMatch(anonymous.body, /evolution|dry-run|EVOLUTION_API_KEY/);

      const wrong = await s.app.inject({ method: 'GET', url: '/health/ready', headers: { authorization: 'Bearer not-the-token-at-all-000000' } });
      assert.deepEqual(wrong.json(), { status: 'degraded' });

      for (const token of [TOKEN, METRICS_TOKEN]) {
        const res = await s.app.inject({ method: 'GET', url: '/health/ready', headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.json().checks.sending.reason, 'evolution_unauthorized');
        assert.equal(res.json().checks.transport.name, 'dry-run');
      }
    } finally {
      await s.ctx.gate.resume();
      await s.close();
    }
  });
});

describe('/metrics', () => {
  it('with METRICS_TOKEN set, refuses a scrape without it (401) and serves one with it', async () => {
    const s = await startApp({ METRICS_TOKEN });
    try {
      const anonymous = await s.app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(anonymous.statusCode, 401);
      assert.match(anonymous.json().error.message, /METRICS_TOKEN/);
      const wrong = await s.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer wrong-metrics-token-0000000000' } });
      assert.equal(wrong.statusCode, 401);
      const ok = await s.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      assert.equal(ok.statusCode, 200);
      assert.match(ok.body, /followups_by_status\{status="pending"\}/);
    } finally {
      await s.close();
    }
  });

  it('without METRICS_TOKEN stays public', async () => {
    const s = await startApp();
    try {
      assert.equal((await s.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
    } finally {
      await s.close();
    }
  });

  it('runs at most one count at a time however many scrapes arrive, and serves later scrapes from memory', async () => {
    let countsStarted = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const counting: Db = {
      ...testDb.db,
      async query(...args: Parameters<Db['query']>) {
        const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
        if (!/GROUP BY status/.test(text)) return testDb.db.query(...args);
        countsStarted += 1;
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          return await testDb.db.query(...args);
        } finally {
          inFlight -= 1;
        }
      },
    } as Db;
    const s = await startApp({ METRICS_REFRESH_SECONDS: '3600' }, { db: counting });
    try {
      const scrapes = await Promise.all(Array.from({ length: 50 }, () => s.app.inject({ method: 'GET', url: '/metrics' })));
      assert.ok(scrapes.every((r) => r.statusCode === 200 && /followups_by_status\{status="pending"\}/.test(r.body)));
      assert.equal(maxInFlight, 1, 'never two counts in flight');
      assert.equal(countsStarted, 1, 'the 50 concurrent first scrapes share one count');
      for (let i = 0; i < 20; i++) await s.app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(countsStarted, 1, 'within METRICS_REFRESH_SECONDS every scrape is served from memory');
      assert.match((await s.app.inject({ method: 'GET', url: '/metrics' })).body, /followups_by_status_age_seconds \d/);
    } finally {
      await s.close();
    }
  });
});

describe('rate limits', () => {
  it('after AUTH_FAILURES_PER_MINUTE failures an address gets 429, even with the right token, and each refusal is logged at warn with the IP', async () => {
    const lines: string[] = [];
    const s = await startApp({ AUTH_FAILURES_PER_MINUTE: '5' }, { lines });
    try {
      for (let i = 0; i < 5; i++) {
        const res = await s.app.inject({ method: 'GET', url: '/v1/stats', headers: { authorization: `Bearer guess-${i}-aaaaaaaaaaaaaaaaaaaaaa` } });
        assert.equal(res.statusCode, 401);
      }
      const blocked = await s.app.inject({ method: 'GET', url: '/v1/stats', headers: auth });
      assert.equal(blocked.statusCode, 429);
      assert.equal(blocked.json().error.code, 'rate_limited');
      assert.ok(Number(blocked.headers['retry-after']) >= 1);
      const webhook = await s.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'x-webhook-secret': 'guess' }, payload: {} });
      assert.equal(webhook.statusCode, 429, 'the budget is per address, across the API and webhooks');
      // Another address is not affected.
      const other = await s.app.inject({ method: 'GET', url: '/v1/stats', headers: auth, remoteAddress: '10.1.2.3' });
      assert.equal(other.statusCode, 200);

      const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.level === 40 && /authentication/.test(l.msg));
      assert.equal(warnings.filter((l) => l.msg === 'authentication failed').length, 5);
      assert.ok(warnings.every((l) => l.ip === '127.0.0.1'), 'each names the address');
      assert.ok(warnings.some((l) => /too many failures/.test(l.msg)));
      assert.ok(!lines.some((l) => l.includes('guess-')), 'never what was sent');
    } finally {
      await s.close();
    }
  });

  it('wrong webhook secrets count as failures too', async () => {
    const s = await startApp({ AUTH_FAILURES_PER_MINUTE: '3', WEBHOOK_SECRET: 'webhook-secret-for-tests-000001' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        statuses.push((await s.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'x-webhook-secret': `wrong-${i}` }, payload: {} })).statusCode);
      }
      assert.deepEqual(statuses, [401, 401, 401, 429]);
    } finally {
      await s.close();
    }
  });

  it('caps the calls made with the API token at API_REQUESTS_PER_MINUTE (429 past it)', async () => {
    const s = await startApp({ API_REQUESTS_PER_MINUTE: '3' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await s.app.inject({ method: 'GET', url: '/v1/stats', headers: auth })).statusCode);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
    } finally {
      await s.close();
    }
  });
});

describe('careless and hostile input', () => {
  let s: Awaited<ReturnType<typeof startApp>>;
  let seq = 0;
  const newPhone = () => `55819${String(60_000_000 + ++seq).padStart(8, '0')}`;
  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    s.app.inject({ method: 'POST', url, headers: { ...auth, 'content-type': 'application/json', ...headers }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
  before(async () => {
    s = await startApp({ LOG_LEVEL: 'silent' });
  });
  after(async () => {
    await s?.close();
  });

  it('answers 409 naming what differs when an idempotency key comes back with another request', async () => {
    const phone = newPhone();
    const first = await post('/v1/followups', { phone, message: 'Oi!', delayHours: 2, idempotencyKey: 'key-409-a' });
    assert.equal(first.statusCode, 201);
    const same = await post('/v1/followups', { phone: `+55 ${phone.slice(2, 4)} ${phone.slice(4)}`, message: 'Oi!', delayHours: 2, idempotencyKey: 'key-409-a' });
    assert.equal(same.statusCode, 200, 'the same request, phone spelled differently: the first follow-up');
    assert.equal(same.json().id, first.json().id);

    const otherPhone = await post('/v1/followups', { phone: newPhone(), message: 'Oi!', delayHours: 2, idempotencyKey: 'key-409-a' });
    assert.equal(otherPhone.statusCode, 409);
    assert.equal(otherPhone.json().error.code, 'idempotency_key_reused');
    assert.match(otherPhone.json().error.message, /phone/);
    assert.match(otherPhone.json().error.message, new RegExp(first.json().id));

    const otherText = await post('/v1/followups', { phone, message: 'Outro texto', delayHours: 2 }, { 'idempotency-key': 'key-409-a' });
    assert.equal(otherText.statusCode, 409);
    assert.match(otherText.json().error.message, /message/);

    const otherDelay = await post('/v1/followups', { phone, message: 'Oi!', delayHours: 3, idempotencyKey: 'key-409-a' });
    assert.equal(otherDelay.statusCode, 409);
    assert.match(otherDelay.json().error.message, /delay\/dueAt or lead/);
    const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM follow_ups WHERE lead_id = $1::uuid`, [first.json().leadId]);
    assert.equal(rows[0]!.n, 1, 'nothing else written');
  });

  it('caps lead metadata at 16 KB: one large request, and many small ones merged, get a 400 naming lead', async () => {
    const big = await post('/v1/followups', { phone: newPhone(), message: 'Oi', lead: { name: 'Ana', notes: 'x'.repeat(17 * 1024) } });
    assert.equal(big.statusCode, 400);
    assert.equal(big.json().error.details[0].field, 'lead');
    assert.match(big.json().error.message, /16 KB/);

    const phone = newPhone();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      statuses.push((await post('/v1/followups', { phone, message: `Oi ${i}`, lead: { [`field${i}`]: 'y'.repeat(1_500) } })).statusCode);
    }
    assert.ok(statuses.slice(0, 10).every((c) => c === 201), statuses.join());
    assert.ok(statuses.slice(11).every((c) => c === 400), statuses.join());
    const { rows } = await testDb.db.query<{ bytes: number }>(`SELECT octet_length(metadata::text) AS bytes FROM leads WHERE phone = $1`, [phone]);
    assert.ok(rows[0]!.bytes <= 16 * 1024, `${rows[0]!.bytes} bytes`);
  });

  it('answers 400 (not 500) to JSON nested 5,000 levels deep', async () => {
    const deep = `{"phone":"${newPhone()}","lead":${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}}`;
    const res = await post('/v1/followups', deep);
    assert.equal(res.statusCode, 400);
    assert.match(res.json().error.message, /^body: nests deeper than 32 levels/);
  });

  it('refuses a dueAt in the year 9999, like a delay past 90 days', async () => {
    const res = await post('/v1/followups', { phone: newPhone(), message: 'Oi', dueAt: '9999-12-31T23:59:59Z' });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.details[0].field, 'dueAt');
    assert.match(res.json().error.message, /90 days/);
  });

  it('refuses junk phones: +0000000000, a JID of another server, a JSON number', async () => {
    for (const phone of ['+0000000000', '5581999998888@evil.com', 5581999998888]) {
      for (const url of ['/v1/followups', '/v1/enrollments']) {
        const res = await post(url, { phone, message: url === '/v1/followups' ? 'Oi' : undefined, campaign: url === '/v1/enrollments' ? 'nautico' : undefined });
        assert.equal(res.statusCode, 400, `${url} ${phone}: ${res.body}`);
        assert.equal(res.json().error.details[0].field, 'phone');
      }
    }
  });

  it('answers 400 naming the field for a NUL character in any text, and writes nothing', async () => {
    const phone = newPhone();
    const inMessage = await post('/v1/followups', { phone, message: 'Oi\u0000' });
    assert.equal(inMessage.statusCode, 400);
    assert.equal(inMessage.json().error.details[0].field, 'message');
    const inName = await post('/v1/enrollments', { phone, campaign: 'nautico', lead: { name: 'Ana\u0000' } });
    assert.equal(inName.statusCode, 400);
    assert.equal(inName.json().error.details[0].field, 'lead.name');
    const inQuery = await s.app.inject({ method: 'GET', url: '/v1/followups?status=pending%00', headers: auth });
    assert.equal(inQuery.statusCode, 400);
    assert.equal(inQuery.json().error.details[0].field, 'status');
    const { rows } = await testDb.db.query(`SELECT 1 FROM leads WHERE phone = $1`, [phone]);
    assert.equal(rows.length, 0);
  });

  it('states the bulk route\'s own limit (4 MB) in its 413', async () => {
    const leads = Array.from({ length: 10_000 }, (_, i) => ({ phone: `55819${String(i).padStart(8, '0')}`, name: 'n'.repeat(420) }));
    const res = await post('/v1/enrollments/bulk', { campaign: 'nautico', leads });
    assert.equal(res.statusCode, 413);
    assert.match(res.json().error.message, new RegExp(`at most ${4 * 1024 * 1024} bytes`));
  });
});
