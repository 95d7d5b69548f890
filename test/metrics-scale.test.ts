/**
 * /metrics at a million follow-ups: a scrape is served from memory (its time does
 * not grow with the table), never more than one count is in flight, and
 * /health/ready stays 200 while 50 scrapes hit the API at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makeFakeClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { createContext } from '../src/context.js';
import type { Db } from '../src/db/db.js';
import { readStats } from '../src/followups/read-stats.js';
import { buildApp } from '../src/http/build-app.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const ROWS = 1_000_000;
const TOKEN = 'api-token-for-metrics-scale-0001';

let testDb: TestDatabase;

before(async () => {
  testDb = await createTestDatabase();
  const { rows } = await testDb.db.query<{ id: string }>(`INSERT INTO leads (phone) VALUES ('5581900000001') RETURNING id`);
  // One statement: 96 % executed, the rest cancelled, failed or pending in the future.
  await testDb.db.query(
    `INSERT INTO follow_ups (lead_id, due_at, planned_at, anchor_at, status)
     SELECT $1::uuid, now() + (CASE WHEN g % 100 >= 98 THEN 1 ELSE -1 END) * interval '1 hour', now(), now(),
            CASE WHEN g % 100 < 96 THEN 'executed' WHEN g % 100 = 96 THEN 'cancelled' WHEN g % 100 = 97 THEN 'failed' ELSE 'pending' END
       FROM generate_series(1, $2::int) g`,
    [rows[0]!.id, ROWS],
  );
  await testDb.db.query('ANALYZE follow_ups');
});

after(async () => {
  await testDb?.drop();
});

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))]!;

describe(`/metrics with ${ROWS.toLocaleString('en')} follow-ups`, () => {
  it('serves a scrape from memory, runs one count at a time, and keeps /health/ready at 200 under 50 concurrent scrapes', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let counts = 0;
    const db: Db = {
      ...testDb.db,
      async query(...args: Parameters<Db['query']>) {
        const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
        if (!/GROUP BY status/.test(text)) return testDb.db.query(...args);
        counts += 1;
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          return await testDb.db.query(...args);
        } finally {
          inFlight -= 1;
        }
      },
    } as Db;
    const config = loadConfig({ DATABASE_URL: testDb.url, FOLLOWUPS_API_TOKEN: TOKEN, ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789', METRICS_REFRESH_SECONDS: '1' });
    const ctx = await createContext(config, createLogger({ level: 'silent' }), { db, queue: null, skipMigrations: true, clock: makeFakeClock() });
    const app = await buildApp(ctx);
    try {
      // What every scrape used to cost: counting the table.
      const countStarted = performance.now();
      const stats = await readStats(testDb.db);
      const countMs = performance.now() - countStarted;
      assert.equal(Object.values(stats.byStatus).reduce((a, b) => a + b, 0), ROWS);

      const first = await app.inject({ method: 'GET', url: '/metrics' });
      assert.match(first.body, new RegExp(`followups_by_status\\{status="executed"\\} ${ROWS * 0.96}\\n`));

      const scrapeMs: number[] = [];
      for (let i = 0; i < 50; i++) {
        const t = performance.now();
        const res = await app.inject({ method: 'GET', url: '/metrics' });
        scrapeMs.push(performance.now() - t);
        assert.equal(res.statusCode, 200);
      }

      const readyStatuses: number[] = [];
      const readyMs: number[] = [];
      const burstMs: number[] = [];
      for (let round = 0; round < 5; round++) {
        const t = performance.now();
        const ready = (async () => {
          const r0 = performance.now();
          const res = await app.inject({ method: 'GET', url: '/health/ready' });
          readyMs.push(performance.now() - r0);
          readyStatuses.push(res.statusCode);
        })();
        const scrapes = await Promise.all(Array.from({ length: 50 }, () => app.inject({ method: 'GET', url: '/metrics' })));
        await ready;
        burstMs.push(performance.now() - t);
        assert.ok(scrapes.every((r) => r.statusCode === 200));
        // Let the background count (at most one per METRICS_REFRESH_SECONDS) come round.
        await new Promise((r) => setTimeout(r, 400));
      }

      const p50 = percentile(scrapeMs, 50);
      console.log(
        `# ${ROWS} rows: one count ${countMs.toFixed(0)} ms; scrape p50 ${p50.toFixed(1)} ms, p99 ${percentile(scrapeMs, 99).toFixed(1)} ms; ` +
          `50 concurrent scrapes ${percentile(burstMs, 50).toFixed(0)} ms (p50 of 5 bursts); /health/ready meanwhile max ${Math.max(...readyMs).toFixed(0)} ms; ` +
          `counts run ${counts}, at most ${maxInFlight} at once`,
      );
      assert.deepEqual(readyStatuses, [200, 200, 200, 200, 200], '/health/ready stays 200');
      assert.equal(maxInFlight, 1, 'never two counts in flight');
      assert.ok(counts <= 1 + Math.ceil((performance.now() - countStarted) / 1000), `at most one count per refresh period (ran ${counts})`);
      assert.ok(p50 < countMs / 3, `a scrape (p50 ${p50.toFixed(1)} ms) costs far less than a count (${countMs.toFixed(0)} ms)`);
    } finally {
      await app.close();
      await ctx.close();
    }
  });
});
