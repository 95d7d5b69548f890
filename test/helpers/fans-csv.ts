/**
 * The fans-CSV import scenario: a club export with bad rows at known lines is imported,
 * the rejections are reported by line, and a second run enrolls nobody twice.
 * test/csv-import.slow.test.ts runs it at 100,000 rows (`npm run test:slow`),
 * test/csv-import.test.ts at a few thousand (`npm test`).
 */
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Campaigns } from '../../src/campaigns/campaign.js';
import { importCsv, type ImportSummary } from '../../src/campaigns/import-csv.js';
import type { makeFakeClock } from '../../src/clock.js';
import type { TestDatabase } from './db.js';

interface Expected {
  valid: number;
  byReason: { bad_phone: number; duplicate: number; empty_name: number };
  lines: Map<number, string>;
}

/**
 * Writes a fans CSV the way a club spreadsheet exports it (';', Portuguese
 * headers with accents, mixed date formats), with bad rows at known lines:
 * every 97th a bad phone, every 101st a duplicate of an earlier fan (in the
 * spelling without the 9th digit), every 89th an empty name.
 */
async function writeFansCsv(file: string, rows: number): Promise<Expected> {
  const out = createWriteStream(file);
  const write = (line: string) => (out.write(line) ? undefined : new Promise<void>((r) => out.once('drain', () => r())));
  await write('Nome;WhatsApp;Última Interação\n');
  const expected: Expected = { valid: 0, byReason: { bad_phone: 0, duplicate: 0, empty_name: 0 }, lines: new Map() };
  let lastValidPhone = '';
  for (let i = 0; i < rows; i++) {
    const line = i + 2;
    const phone = `55819${String(80_000_000 + i)}`; // a mobile: 9 + 8 digits starting with 8
    const anchor = i % 3 === 0 ? '2026-01-05T08:00:00Z' : i % 3 === 1 ? '05/01/2026 09:30' : '';
    let row: string;
    if (i % 97 === 0) {
      row = `Torcedor ${i};12345;${anchor}`;
      expected.byReason.bad_phone++;
      expected.lines.set(line, 'bad_phone');
    } else if (i % 101 === 0) {
      row = `Torcedor ${i};${lastValidPhone.slice(0, 4)}${lastValidPhone.slice(5)};${anchor}`;
      expected.byReason.duplicate++;
      expected.lines.set(line, 'duplicate');
    } else if (i % 89 === 0) {
      row = ` ;${phone};${anchor}`;
      expected.byReason.empty_name++;
      expected.lines.set(line, 'empty_name');
    } else {
      row = `Torcedor ${i} da Silva;${phone};${anchor}`;
      expected.valid++;
      lastValidPhone = phone;
    }
    const pending = write(`${row}\n`);
    if (pending) await pending;
  }
  await new Promise((resolve) => out.end(resolve));
  return expected;
}

function measure<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number; peakRssMb: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 25);
  const started = performance.now();
  return fn().then(
    (result) => {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      return { result, ms: performance.now() - started, peakRssMb: Math.round(peak / 1024 / 1024) };
    },
    (error) => {
      clearInterval(timer);
      throw error;
    },
  );
}

/** Imports a fans CSV of `ROWS` rows twice into an empty database and checks both runs. */
export async function checkFansImport(
  { testDb, campaigns, clock, dir }: { testDb: TestDatabase; campaigns: Campaigns; clock: ReturnType<typeof makeFakeClock>; dir: string },
  ROWS: number,
): Promise<void> {
  const file = join(dir, `fans-${ROWS}.csv`);
  const expected = await writeFansCsv(file, ROWS);
  const rejected = expected.byReason.bad_phone + expected.byReason.duplicate + expected.byReason.empty_name;
  const ctx = { db: testDb.db, clock, campaigns };
  let progressCalls = 0;

  const first = await measure(() =>
    importCsv(ctx, { file, campaign: 'nautico', timeZone: 'America/Recife', onProgress: () => progressCalls++ }),
  );
  const summary: ImportSummary = first.result;
  console.log(
    `first run: ${ROWS} rows in ${(first.ms / 1000).toFixed(2)} s = ${Math.round(ROWS / (first.ms / 1000))} rows/s; peak RSS ${first.peakRssMb} MB`,
  );
  assert.equal(summary.rows, ROWS);
  assert.equal(summary.enrolled, expected.valid);
  assert.equal(summary.alreadyActive, 0);
  assert.equal(summary.rejected, rejected);
  assert.deepEqual(summary.rejectedByReason, expected.byReason);
  assert.ok(progressCalls >= Math.floor(ROWS / 5_000), 'progress reported after every batch');
  // A few lines checked by hand: the first row (i = 0) is a bad phone, i = 89 an empty name, i = 101 a duplicate.
  const byLine = new Map(summary.rejections.map((r) => [r.line, r]));
  assert.deepEqual(byLine.get(2), { line: 2, phone: '12345', reason: 'bad_phone' });
  assert.equal(byLine.get(91)?.reason, 'empty_name');
  assert.equal(byLine.get(99)?.reason, 'bad_phone');
  assert.deepEqual(byLine.get(103), { line: 103, phone: '558180000100', reason: 'duplicate' });
  assert.equal(summary.rejections.length, rejected);
  for (const r of summary.rejections) assert.equal(r.reason, expected.lines.get(r.line), `line ${r.line}`);

  const counts = await testDb.db.query<{ enrollments: number; followups: number; events: number }>(
    `SELECT (SELECT count(*) FROM enrollments)::int AS enrollments, (SELECT count(*) FROM follow_ups)::int AS followups,
            (SELECT count(*) FROM follow_up_events)::int AS events`,
  );
  assert.deepEqual(counts.rows[0], { enrollments: expected.valid, followups: expected.valid * 3, events: expected.valid * 3 });
  // Dates without an offset are read in Recife time (UTC-3): 09:30 there is 12:30Z, so step 1 is at 16:30Z.
  const anchored = await testDb.db.query<{ due_at: Date }>(
    `SELECT f.due_at FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE l.phone = '5581980000001' AND f.step = 1`,
  );
  assert.equal(anchored.rows[0]!.due_at.toISOString(), '2026-01-05T16:30:00.000Z');

  const second = await measure(() => importCsv(ctx, { file, campaign: 'nautico', timeZone: 'America/Recife' }));
  console.log(`second run: ${Math.round(ROWS / (second.ms / 1000))} rows/s; peak RSS ${second.peakRssMb} MB`);
  assert.equal(second.result.enrolled, 0, 'nobody enrolled twice');
  assert.equal(second.result.alreadyActive, expected.valid);
  assert.deepEqual(second.result.rejectedByReason, expected.byReason);
  const again = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM follow_ups');
  assert.equal(again.rows[0]!.n, expected.valid * 3);
}
