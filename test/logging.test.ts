import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { createContext } from '../src/context.js';
import { createLogger, maskPhone } from '../src/log.js';
import { startRoles } from '../src/roles.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { testEnv, waitFor } from './helpers/pipeline.js';

describe('logs', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0, apiKey: 'evolution-secret-key-42' });
  });
  after(async () => {
    await fake.close();
    await testDb.drop();
  });

  test('masks phone numbers as 5581*****8888', () => {
    assert.equal(maskPhone('5581999998888'), '5581*****8888');
    assert.equal(maskPhone('558199998888'), '5581****8888');
  });

  test('log each stage of a follow-up once, with masked phones and no secret', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const config = loadConfig(
      testEnv({
        DATABASE_URL: testDb.url,
        FOLLOWUPS_API_TOKEN: 'api-token-secret-99-abcdefghijkl',
        ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
        EVOLUTION_API_URL: fake.url,
        EVOLUTION_API_KEY: fake.apiKey,
        EVOLUTION_INSTANCE_NAME: fake.instance,
        REDIS_URL: 'redis://127.0.0.1:6379',
        LOG_LEVEL: 'debug',
      }),
    );
    const ctx = await createContext(config, createLogger({ level: 'debug', destination: sink }), { skipMigrations: true });
    const running = await startRoles(ctx, ['api', 'relay', 'worker'], { listen: false });
    try {
      const res = await running.app!.inject({
        method: 'POST',
        url: '/v1/followups',
        headers: { authorization: 'Bearer api-token-secret-99-abcdefghijkl' },
        payload: { phone: '5581999998888', message: 'Oi, tudo certo?' },
      });
      assert.equal(res.statusCode, 201);
      const { id } = res.json() as { id: string };
      await waitFor('executed', async () => {
        const { rows } = await ctx.db.query<{ status: string }>('SELECT status FROM follow_ups WHERE id = $1', [id]);
        return rows[0]?.status === 'executed';
      });
    } finally {
      await running.stop();
      await ctx.close();
    }
    const all = lines.join('\n');
    const leaks = lines.filter((l) => l.includes('5581999998888') || l.includes('558199998888'));
    if (leaks.length) console.log(leaks.join('\n'));
    assert.ok(!all.includes('5581999998888') && !all.includes('558199998888'), 'no unmasked phone number');
    assert.ok(!all.includes('evolution-secret-key-42'), 'no Evolution key');
    assert.ok(!all.includes('api-token-secret-99-abcdefghijkl'), 'no API token');
    const stages = lines.map((l) => JSON.parse(l) as { followupId?: string; stage?: string; phone?: string }).filter((l) => l.stage);
    const logged = stages.map((l) => l.stage);
    // A worker faster than the relay's markQueued claims the row straight from `pending`
    // (claimForSending): then it never was `queued`, and that stage is not logged.
    assert.deepEqual(
      logged,
      logged.includes('queued') ? ['scheduled', 'queued', 'sending', 'executed'] : ['scheduled', 'sending', 'executed'],
      'each stage logged once, in order',
    );
    assert.ok(stages.filter((l) => l.phone).every((l) => l.phone === '5581*****8888'));
  });
});
