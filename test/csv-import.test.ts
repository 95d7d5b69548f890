import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Campaigns } from '../src/campaigns/campaign.js';
import { importCsv, type ImportSummary } from '../src/campaigns/import-csv.js';
import { DEFAULT_CAMPAIGNS_DIR, loadCampaigns } from '../src/campaigns/load-campaigns.js';
import { makeFakeClock } from '../src/clock.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const START = '2026-01-05T14:00:00.000Z';
const ROWS = Number(process.env.CSV_IMPORT_ROWS ?? 100_000);

let testDb: TestDatabase;
let campaigns: Campaigns;
let dir: string;
const clock = makeFakeClock(START);

before(async () => {
  testDb = await createTestDatabase();
  campaigns = loadCampaigns(DEFAULT_CAMPAIGNS_DIR, { personaName: 'Marina Campelo', maxChars: 300 });
  dir = mkdtempSync(join(tmpdir(), 'csv-import-'));
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await testDb?.drop();
});

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

describe('followups import', () => {
  it('imports 100,000 rows with bad ones, reports them by line, and enrolls nobody twice on a second run', async () => {
    const file = join(dir, 'fans.csv');
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
  });

  it('enrolls two batches at once, counts them in file order, and waits for the other batch when one fails', async () => {
    const file = join(dir, 'batches.csv');
    const rows = Array.from({ length: 11 }, (_, i) => `Fã ${i},81 9${String(7000_0000 + i)}`);
    writeFileSync(file, `nome,telefone\n${rows.join('\n')}\n`);
    let running = 0;
    let most = 0;
    const slow = {
      async query<T>(statement: Parameters<typeof testDb.db.query>[0], values?: unknown[]) {
        running++;
        most = Math.max(most, running);
        try {
          await new Promise((r) => setTimeout(r, 20));
          return await testDb.db.query<T>(statement, values);
        } finally {
          running--;
        }
      },
    };
    const seen: Array<{ bytes: number; enrolled: number }> = [];
    const summary = await importCsv(
      { db: slow, clock, campaigns },
      { file, campaign: 'nautico', timeZone: 'America/Recife', batchSize: 2, onProgress: (p) => seen.push({ bytes: p.bytes, enrolled: p.enrolled }) },
    );
    assert.equal(summary.enrolled, 11);
    assert.equal(most, 2, 'two batches in flight, never more');
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i]!.bytes >= seen[i - 1]!.bytes && seen[i]!.enrolled >= seen[i - 1]!.enrolled, 'progress only moves forward');
    }

    // The third batch's enrollment fails: the import fails with its error, after the batch next to it has finished.
    let calls = 0;
    const failing = {
      async query<T>(statement: Parameters<typeof testDb.db.query>[0], values?: unknown[]) {
        const name = typeof statement === 'string' ? '' : statement.name;
        if (name === 'enroll_leads' && ++calls === 3) throw new Error('boom');
        return slow.query<T>(statement, values);
      },
    };
    writeFileSync(file, `nome,telefone\n${rows.map((r) => r.replace(' 97', ' 96')).join('\n')}\n`);
    await assert.rejects(importCsv({ db: failing, clock, campaigns }, { file, campaign: 'nautico', timeZone: 'America/Recife', batchSize: 2 }), /boom/);
    assert.equal(running, 0, 'no query left running');
  });

  it('runs from the command line, with plain progress lines off a terminal and a summary', async () => {
    const file = join(dir, 'small.csv');
    const rejections = join(dir, 'rejected.csv');
    writeFileSync(file, 'telefone,nome,ultima_interacao\n81 99999-0001,Ana,\n123,Bia,\n81999990003,,\n81999990001,Ana de novo,\n+55 (81) 99999-0005,"Lima, Carla",2026-01-05T10:00:00-03:00\n');
    const env = { ...process.env, DATABASE_URL: testDb.url, FOLLOWUPS_API_TOKEN: 'test-token-123-abcdefghijkl', ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789', MIGRATE_ON_START: 'false', LOG_LEVEL: 'silent', REDIS_URL: '' };
    const first = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'import', file, '--campaign', 'nautico', '--rejections', rejections], {
      env,
      encoding: 'utf8',
    });
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /^import: 100% 5 rows/m, 'plain progress lines when stderr is not a terminal');
    assert.match(first.stdout, /enrolled\s+2\n/);
    assert.match(first.stdout, /already active\s+0\n/);
    assert.match(first.stdout, /rejected\s+3 \(bad_phone: 1, empty_name: 1, duplicate: 1\)/);
    assert.match(first.stdout, /line 3: bad_phone \(123\)/);
    assert.match(first.stdout, /line 4: empty_name/);
    assert.match(first.stdout, /line 5: duplicate/);
    assert.equal(readFileSync(rejections, 'utf8'), 'line,phone,reason\n3,"123",bad_phone\n4,"81999990003",empty_name\n5,"81999990001",duplicate\n');

    // The file is read again, through the function this time: a bad header names what it wanted.
    writeFileSync(file, 'cpf,email\n1,2\n');
    await assert.rejects(
      importCsv({ db: testDb.db, clock, campaigns }, { file, campaign: 'nautico', timeZone: 'America/Recife' }),
      /no phone column \(one of: phone, telefone, whatsapp, .*\) and no name column \(one of: name, nome/,
    );
  });
});
