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
  const config = loadConfig({ DATABASE_URL: testDb.url, FOLLOWUPS_API_TOKEN: TOKEN, LOG_LEVEL: 'debug', ...env });
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
