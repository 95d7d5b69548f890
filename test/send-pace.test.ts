import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { insertDueFollowups, startRole, waitFor } from './helpers/pipeline.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('the pace per WhatsApp number, shared by every worker through Redis', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
    fake.fail('slow', { ms: 15 });
  });
  after(async () => {
    await fake.close();
    await testDb.drop();
  });

  test('with 3 workers and SEND_RATE_PER_MINUTE=30 (over a window shrunk to 15 s), WhatsApp never sees more than 30 in any window', async () => {
    const windowMs = 15_000;
    const env = {
      REDIS_URL,
      SEND_RATE_PER_MINUTE: '30',
      SEND_RATE_WINDOW_SECONDS: String(windowMs / 1000),
      WORKER_CONCURRENCY: '10',
      LEASE_SECONDS: '20',
    };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    const queueName = relay.ctx.config.redis.queueName;
    const workers = await Promise.all([1, 2, 3].map(() => startRole({ roles: ['worker'], databaseUrl: testDb.url, env: { ...env, QUEUE_NAME: queueName }, fake })));
    const ids = await insertDueFollowups(testDb.db, { count: 50, text: (i) => `ritmo ${i}` });
    const started = Date.now();
    try {
      await waitFor(
        'all 50 executed',
        async () => {
          const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1) AND status = 'executed'`, [ids]);
          return rows[0]!.n === ids.length;
        },
        { timeoutMs: 75_000, intervalMs: 200 },
      );
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await relay.stop();
    }
    const seconds = (Date.now() - started) / 1000;
    const deliveries = fake.delivered.filter((d) => d.text.startsWith('ritmo '));
    assert.equal(deliveries.length, 50, 'each delivered');
    assert.equal(new Set(deliveries.map((d) => d.text)).size, 50, 'none twice');
    const busiest = fake.maxPerWindow(windowMs);
    assert.ok(busiest <= 30, `at most 30 in any ${windowMs} ms window, saw ${busiest}`);
    const times = deliveries.map((d) => d.at.getTime()).sort((a, b) => a - b);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Sends start more than ⅔ of a slot apart (src/policy/send-limits.ts), but the fake sees them arrive with
    // the machine's jitter: one stalled request lands next to the following one. So the spacing is checked
    // on the median gap (a few stalls cannot move it), the hard bound on the window count above.
    const twoThirdsOfSlot = ((windowMs / 29) * 2) / 3;
    const medianGap = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)]!;
    assert.ok(medianGap >= twoThirdsOfSlot, `sends spread out (⅔ of a slot is ${Math.round(twoThirdsOfSlot)} ms): median gap ${medianGap} ms`);
    assert.ok(seconds > ((50 - 30) / 30) * (windowMs / 1000), `paced, not bursted: ${seconds.toFixed(1)} s`);
    const { rows } = await testDb.db.query<{ reason: string; n: number }>(
      `SELECT reason, count(*)::int AS n FROM follow_up_events WHERE follow_up_id = ANY($1) AND to_status = 'pending' AND from_status = 'sending' GROUP BY reason`,
      [ids],
    );
    assert.ok(rows.every((r) => r.reason === 'pace'), `only held back by the pace: ${JSON.stringify(rows)}`);
    const failed = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1) AND attempts > 1`, [ids]);
    assert.equal(failed.rows[0]!.n, 0, 'a paced follow-up gets its attempt back');
    console.log(`# pace: 50 sends in ${seconds.toFixed(1)} s, busiest ${windowMs} ms window ${busiest}, min gap ${Math.min(...gaps)} ms, deferrals ${rows.reduce((s, r) => s + r.n, 0)}`);
  });
});
