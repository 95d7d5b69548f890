import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, HTTPMethods } from 'fastify';
import { makeFakeClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { type Context, createContext } from '../src/context.js';
import { makePgDb } from '../src/db/pg-db.js';
import { buildApp, routeModules } from '../src/http/build-app.js';
import { createLogger } from '../src/log.js';
import { makeQueueLink } from '../src/queue/queue-link.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const TOKEN = 'test-token-123-abcdefghijkl';
const auth = { authorization: `Bearer ${TOKEN}` };
const silent = createLogger({ level: 'silent' });

let testDb: TestDatabase;
let ctx: Context;
let app: FastifyInstance;

function configFor(url: string) {
  return loadConfig({ DATABASE_URL: url, FOLLOWUPS_API_TOKEN: TOKEN, ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789' });
}

before(async () => {
  testDb = await createTestDatabase();
  ctx = await createContext(configFor(testDb.url), silent, { db: testDb.db, queue: null, skipMigrations: true, clock: makeFakeClock() });
  app = await buildApp(ctx);
});

after(async () => {
  await app?.close();
  await ctx?.close();
  await testDb?.drop();
});

describe('health', () => {
  it('answers /health/live with 200 ok, without a token', async () => {
    const res = await app.inject({ method: 'GET', url: '/health/live' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
  });

  it('is ready (200 ok) with the database up, the queue in direct mode and sending active', async () => {
    const res = await app.inject({ method: 'GET', url: '/health/ready', headers: auth });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.status, 'ok');
    assert.equal(body.checks.database.status, 'up');
    assert.equal(typeof body.checks.database.latencyMs, 'number');
    assert.deepEqual(body.checks.queue, { status: 'direct' });
    assert.deepEqual(body.checks.sending, { status: 'active' });
    assert.deepEqual(body.checks.transport, { name: 'dry-run' });
  });

  it('shows why sending is paused, and stays ready (degraded)', async () => {
    await ctx.gate.pause('evolution_unauthorized', 'Evolution answered 401: check EVOLUTION_API_KEY');
    try {
      const res = await app.inject({ method: 'GET', url: '/health/ready', headers: auth });
      assert.equal(res.statusCode, 200);
      const body = res.json();
      assert.equal(body.status, 'degraded');
      assert.equal(body.checks.sending.status, 'paused');
      assert.equal(body.checks.sending.reason, 'evolution_unauthorized');
      assert.equal(body.checks.sending.detail, 'Evolution answered 401: check EVOLUTION_API_KEY');
      assert.equal(body.checks.sending.since, '2026-01-05T12:00:00.000Z');
    } finally {
      await ctx.gate.resume();
    }
  });

  it('stays ready (degraded) when the queue is down: the relay runs follow-ups itself', async () => {
    // A real queue link to a port where nothing listens: the answer comes from its state, at once. A
    // command would wait its 60 s timeout, so "at once" is told apart with a margin a loaded machine cannot eat.
    const downQueue = makeQueueLink(
      { connection: { mode: 'standalone', url: 'redis://127.0.0.1:1' }, queueName: 'down', prefix: '{down}', commandTimeoutMs: 60_000 },
      silent,
    );
    const queueCtx = await createContext(configFor(testDb.url), silent, { db: testDb.db, queue: downQueue, skipMigrations: true });
    const queueApp = await buildApp(queueCtx);
    try {
      await queueApp.inject({ method: 'GET', url: '/health/live' }); // the app's first request warms it up
      const started = performance.now();
      const res = await queueApp.inject({ method: 'GET', url: '/health/ready', headers: auth });
      const took = performance.now() - started;
      assert.ok(took < 30_000, `answered without waiting for Redis (${Math.round(took)} ms)`);
      assert.equal(res.statusCode, 200);
      assert.equal(res.json().status, 'degraded');
      assert.equal(res.json().checks.queue.status, 'down');
      assert.equal(res.json().checks.queue.cause.kind, 'unreachable');
    } finally {
      await queueApp.close();
      await queueCtx.close();
      await downQueue.close();
    }
  });

  it('answers 503 (down) when the database is unreachable, saying nothing internal', async () => {
    const deadDb = makePgDb({ url: 'postgresql://root@127.0.0.1:1/x', poolSize: 1, log: silent });
    const deadCtx = await createContext(configFor('postgresql://root@127.0.0.1:1/x'), silent, { db: deadDb, queue: null, skipMigrations: true });
    const deadApp = await buildApp(deadCtx);
    try {
      const res = await deadApp.inject({ method: 'GET', url: '/health/ready', headers: auth });
      assert.equal(res.statusCode, 503);
      const body = res.json();
      assert.equal(body.status, 'down');
      assert.deepEqual(body.checks.database, { status: 'down', reason: 'unreachable' });
      assert.deepEqual(body.checks.sending, { status: 'unknown' });
      assert.deepEqual(body.checks.queue, { status: 'direct' });
      assert.ok(!res.body.includes('127.0.0.1') && !res.body.includes('ECONNREFUSED'));
      const live = await deadApp.inject({ method: 'GET', url: '/health/live' });
      assert.equal(live.statusCode, 200, 'liveness does not depend on the database');
    } finally {
      await deadApp.close();
      await deadCtx.close();
      await deadDb.close();
    }
  });

  it('counts a database that does not answer within 2 s as down', async () => {
    const hung = { ...testDb.db, query: () => new Promise<never>(() => undefined) };
    const hungCtx = await createContext(configFor(testDb.url), silent, { db: hung, queue: null, skipMigrations: true });
    const hungApp = await buildApp(hungCtx);
    try {
      const started = Date.now();
      const res = await hungApp.inject({ method: 'GET', url: '/health/ready', headers: auth });
      assert.equal(res.statusCode, 503);
      assert.deepEqual(res.json().checks.database, { status: 'down', reason: 'timeout' });
      // The hung database never answers, so an answer at all is the 2 s timeout's doing: it waited
      // them (a timer never fires early), and not a much longer wait (a margin a loaded machine cannot eat).
      const took = Date.now() - started;
      assert.ok(took >= 1_950 && took < 20_000, `answered after ${took} ms`);
    } finally {
      await hungApp.close();
      await hungCtx.close();
    }
  });
});

describe('metrics and documentation', () => {
  it('exposes Prometheus metrics with follow-ups counted by status', async () => {
    const scheduled = await app.inject({ method: 'POST', url: '/v1/followups', headers: auth, payload: { phone: '5581999998888', message: 'oi' } });
    assert.equal(scheduled.statusCode, 201);
    await app.inject({ method: 'POST', url: `/v1/followups/${scheduled.json().id}/cancel`, headers: auth });
    await app.inject({ method: 'POST', url: '/v1/followups', headers: auth, payload: { phone: '5581999997777', message: 'oi' } });

    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.body, /# TYPE followups_by_status gauge/);
    assert.match(res.body, /followups_by_status\{status="pending"\} 1\n/);
    assert.match(res.body, /followups_by_status\{status="cancelled"\} 1\n/);
    assert.match(res.body, /followups_by_status\{status="executed"\} 0\n/);
    assert.match(res.body, /followups_outcomes_total/);
  });

  it('describes every route in /openapi.json, each backed by a real route', async () => {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', description: 'FOLLOWUPS_API_TOKEN' });
    assert.ok(doc.components.schemas.Error.properties.error);
    for (const path of [
      '/v1/followups',
      '/v1/followups/{id}',
      '/v1/followups/{id}/cancel',
      '/v1/followups/{id}/retry',
      '/v1/stats',
      '/v1/leads/{phone}/send',
      '/v1/agent/tools',
      '/v1/agent/tools/{name}',
      '/v1/agent/outbox',
      '/v1/agent/outbox/{id}/retry',
      '/v1/numbers',
      '/v1/numbers/{name}',
      '/webhooks/evolution',
      '/mcp',
      '/health/live',
      '/health/ready',
      '/metrics',
      '/openapi.json',
      '/docs',
    ]) {
      assert.ok(doc.paths[path], `${path} is documented`);
    }
    // The request schema comes from the zod schema: strict, with the real limits.
    const schedule = doc.components.schemas.ScheduleFollowupRequest;
    assert.equal(schedule.additionalProperties, false);
    assert.equal(schedule.properties.message.anyOf[0].maxLength, 4096);
    assert.deepEqual(schedule.required, ['phone']);

    const methods = ['get', 'post', 'put', 'delete', 'patch'];
    for (const [path, item] of Object.entries<Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>(doc.paths)) {
      for (const method of Object.keys(item).filter((m) => methods.includes(m))) {
        const url = path.replace(/\{(\w+)\}/g, ':$1');
        assert.ok(app.hasRoute({ method: method.toUpperCase() as HTTPMethods, url }), `${method} ${path} is a route`);
        const op = item[method]!;
        // The MCP endpoint takes the API token too (README "Agent integration" → "MCP server").
        if (path.startsWith('/v1/') || path === '/mcp') {
          assert.deepEqual(op.security, [{ bearerAuth: [] }], `${method} ${path} needs the token`);
          assert.ok(op.responses['401'], `${method} ${path} documents 401`);
        } else {
          assert.deepEqual(op.security, [], `${method} ${path} is public`);
        }
      }
    }
    // And the other way round: every route module has its operations in the document (tagged with its name).
    const tags = new Set(Object.values<Record<string, { tags?: string[] }>>(doc.paths).flatMap((item) => Object.values(item).flatMap((op) => op.tags ?? [])));
    for (const route of routeModules) assert.ok(tags.has(route.name), `${route.name} is documented`);
  });

  it('serves /docs as one self-contained page that reads /openapi.json', async () => {
    const res = await app.inject({ method: 'GET', url: '/docs' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.body, /fetch\('\/openapi\.json'\)/);
    assert.doesNotMatch(res.body, /<(script|link|img)[^>]+(src|href)=/i, 'no external assets');
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
  });
});
