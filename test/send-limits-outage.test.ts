import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../src/log.js';
import { makeSendLimits, type SendLimits } from '../src/policy/send-limits.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

// Nothing listens there: Redis is down from the start, for both processes.
const DEAD_REDIS = 'redis://127.0.0.1:1';
const NOW = new Date('2026-01-05T12:00:00.000Z');

describe('the pace while Redis is down', () => {
  let testDb: TestDatabase;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await testDb.drop();
  });

  function limitsFor(instance: string, keyPrefix: string): SendLimits {
    return makeSendLimits({
      ratePerWindow: 10,
      windowMs: 9_000, // a slot of 1 s
      dailyCap: 0,
      timeZone: 'America/Recife',
      instance,
      keyPrefix,
      redis: { connection: { mode: 'standalone', url: DEAD_REDIS }, commandTimeoutMs: 200 },
      fallbackDb: testDb.db,
      maxWaitMs: 5_000,
      log: createLogger({ level: 'silent' }),
      clock: () => NOW,
      random: () => 0,
      sleep: async () => undefined,
    });
  }

  test('two processes sharing one WhatsApp number book its slots in PostgreSQL: together, never more than one process alone', async () => {
    // Two processes of two deployments (queue names differ): the budget is the number's.
    const alone = limitsFor('sozinho', '{followups}:limits');
    const aloneGranted = (await Promise.all(Array.from({ length: 20 }, () => alone.reserve(NOW)))).filter((o) => o.ok).length;
    await alone.close();
    assert.ok(aloneGranted >= 1);
    // Two processes of two deployments (queue names differ): the budget is the number's.
    const processes = [limitsFor('nautico', '{followups}:limits'), limitsFor('nautico', '{followups}:limits')];
    try {
      const outcomes = await Promise.all(processes.flatMap((limits) => Array.from({ length: 10 }, () => limits.reserve(NOW))));
      const granted = outcomes.filter((o) => o.ok).length;
      assert.equal(granted, aloneGranted, `two processes got ${granted} sends where one alone gets ${aloneGranted}`);
      assert.ok(outcomes.every((o) => o.ok || o.reason === 'pace'));
      const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM send_limit_points WHERE key LIKE '{followups}:limits:pace:nautico:%'`);
      assert.ok(rows[0]!.n >= granted, 'the points live in PostgreSQL, under the instance');
      // Another number has a budget of its own.
      const other = limitsFor('outro-numero', '{followups}:limits');
      assert.equal((await other.reserve(NOW)).ok, true);
      await other.close();
    } finally {
      await Promise.all(processes.map((p) => p.close()));
    }
  });
});
