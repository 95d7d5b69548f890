/**
 * `followups doctor`.
 * Spawned as an operator runs it, against the real PostgreSQL and Redis, the fake
 * Evolution API and the fake LLM (helpers/operator-cli.ts): what it prints (`--json`),
 * the exit code, and what it changed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from './helpers/db.js';
import type { FakeEvolution } from './helpers/fake-evolution.js';
import type { FakeLlm } from './helpers/fake-llm.js';
import { type OwnRedis, freePort, startOwnRedis } from './helpers/redis-server.js';
import { PUBLIC_URL, SECRET, followups, startOperatorWorld, stopOperatorWorld } from './helpers/operator-cli.js';

let testDb: TestDatabase;
let evolution: FakeEvolution;
let llm: FakeLlm;
before(async () => {
  ({ testDb, evolution, llm } = await startOperatorWorld());
});
after(stopOperatorWorld);

describe('followups doctor', () => {
  let ownRedis: OwnRedis;
  before(async () => {
    ownRedis = await startOwnRedis();
  });
  after(async () => {
    await ownRedis?.stop();
  });

  it('passes every check when everything is right', async () => {
    evolution.presetWebhook({ url: `${PUBLIC_URL}/webhooks/evolution`, headers: { 'x-webhook-secret': SECRET }, events: ['MESSAGES_UPSERT', 'MESSAGES_UPDATE', 'SEND_MESSAGE', 'CONNECTION_UPDATE'] });
    evolution.setConnectionState('open');
    const run = await followups(['doctor', '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const byName = new Map<string, any>(run.json.checks.map((c: any) => [c.name, c]));
    for (const name of ['postgres.reachable', 'postgres.migrations', 'postgres.pooler', 'postgres.notify', 'clock', 'redis.reachable', 'redis.eviction', 'redis.role', 'redis.cluster', 'evolution.connection', 'evolution.webhook', 'llm']) {
      assert.equal(byName.get(name)?.status, 'ok', `${name}: ${JSON.stringify(byName.get(name))}`);
    }
    assert.ok(llm.requests.some((r) => r.body.model === 'gpt-test'), 'one completion was asked of the LLM');
  });

  it('reports each failing check with its fix: webhook elsewhere, WhatsApp closed, an evicting Redis, a migration missing, a bad LLM key', async () => {
    evolution.presetWebhook({ url: 'https://someone-else.example.com/webhooks/evolution', headers: { 'x-webhook-secret': SECRET }, events: ['MESSAGES_UPSERT'] });
    evolution.setConnectionState('close');
    const probe = new (await import('ioredis')).Redis(ownRedis.url);
    await probe.config('SET', 'maxmemory-policy', 'allkeys-lru');
    probe.disconnect();
    const { rows: removed } = await testDb.db.query<{ version: number; name: string }>(
      'DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations) RETURNING version, name',
    );
    try {
      const run = await followups(['doctor', '--json'], { REDIS_URL: ownRedis.url, LLM_API_KEY: 'sk-wrong' });
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.equal(run.json.ok, false);
      const byName = new Map<string, any>(run.json.checks.map((c: any) => [c.name, c]));
      const webhook = byName.get('evolution.webhook');
      assert.equal(webhook.status, 'fail');
      assert.match(webhook.detail, /someone-else\.example\.com/);
      assert.match(webhook.detail, /CONNECTION_UPDATE/);
      assert.match(webhook.fix, /followups webhook setup --url https:\/\/followups\.example\.com/);
      assert.equal(byName.get('evolution.connection').status, 'fail');
      assert.match(byName.get('evolution.connection').detail, /close/);
      assert.match(byName.get('evolution.connection').fix, /QR code/);
      assert.equal(byName.get('redis.eviction').status, 'fail');
      assert.match(byName.get('redis.eviction').detail, /allkeys-lru/);
      assert.match(byName.get('redis.eviction').fix, /noeviction/);
      assert.equal(byName.get('postgres.migrations').status, 'fail');
      assert.match(byName.get('postgres.migrations').fix, /followups migrate/);
      assert.equal(byName.get('llm').status, 'fail');
      assert.match(byName.get('llm').fix, /LLM_API_KEY/);

      const human = await followups(['doctor'], { REDIS_URL: ownRedis.url, LLM_API_KEY: 'sk-wrong' });
      assert.equal(human.code, 1);
      assert.match(human.stdout, /FAIL\s+evolution\.webhook/);
      assert.match(human.stdout, /fix: run `followups webhook setup/);
    } finally {
      await testDb.db.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [removed[0]!.version, removed[0]!.name]);
    }
  });
});
