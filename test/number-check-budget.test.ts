import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { insertDueFollowups, startRole, waitFor } from './helpers/pipeline.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The most calls of those kinds WhatsApp saw in any span of `windowMs`. */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('WhatsApp number checks share the number budget with the sends', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
  });
  after(async () => {
    await fake.close();
    await testDb.drop();
  });

  test('60 leads due at once: lookups go out batched, and lookups plus sends never exceed the budget in any window', async () => {
    const windowMs = 3_000;
    const budget = 30;
    const env = {
      REDIS_URL,
      WHATSAPP_NUMBER_CHECK: 'true',
      SEND_RATE_PER_MINUTE: String(budget),
      SEND_RATE_WINDOW_SECONDS: String(windowMs / 1000),
      WORKER_CONCURRENCY: '10',
      LEASE_SECONDS: '20',
    };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    const queueName = relay.ctx.config.redis.queueName;
    const workers = await Promise.all([1, 2].map(() => startRole({ roles: ['worker'], databaseUrl: testDb.url, env: { ...env, QUEUE_NAME: queueName }, fake })));
    const ids = await insertDueFollowups(testDb.db, { count: 60, phonePrefix: '55818', text: (i) => `checado ${i}` });
    const started = Date.now();
    try {
      await waitFor(
        'all 60 executed',
        async () => {
          const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1) AND status = 'executed'`, [ids]);
          return rows[0]!.n === ids.length;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await relay.stop();
    }
    const seconds = (Date.now() - started) / 1000;
    const lookups = fake.requests.filter((r) => r.path.startsWith('/chat/whatsappNumbers/'));
    const sends = fake.requests.filter((r) => r.path.startsWith('/message/sendText/'));
    const asked = lookups.flatMap((r) => (r.body as { numbers: string[] }).numbers);
    assert.equal(asked.length, 60, 'every number looked up once');
    assert.equal(new Set(asked).size, 60);
    assert.ok(lookups.length <= 20, `batched: ${lookups.length} calls for 60 numbers`);
    const busiest = busiestWindow([...lookups, ...sends].map((r) => r.at.getTime()), windowMs);
    assert.ok(busiest <= budget, `lookups + sends in any ${windowMs} ms: at most ${budget}, saw ${busiest}`);
    const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM leads WHERE phone LIKE '55818%' AND number_checked_at IS NOT NULL`);
    assert.equal(rows[0]!.n, 60, 'the answers are cached on the leads');
    console.log(`# number checks: ${lookups.length} lookups for 60 numbers, ${sends.length} sends in ${seconds.toFixed(1)} s, busiest ${windowMs} ms window ${busiest}/${budget}`);
  });
});
