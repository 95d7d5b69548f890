import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Campaigns } from '../src/campaigns/campaign.js';
import { csvCell, forTerminal, formatRejectionLine, importCsv, MAX_RECORD_BYTES } from '../src/campaigns/import-csv.js';
import { formatImportSummary } from '../src/campaigns/import-progress.js';
import { DEFAULT_CAMPAIGNS_DIR, loadCampaigns } from '../src/campaigns/load-campaigns.js';
import { makeFakeClock } from '../src/clock.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

let testDb: TestDatabase;
let campaigns: Campaigns;
let dir: string;
const clock = makeFakeClock('2026-01-05T14:00:00.000Z');

before(async () => {
  testDb = await createTestDatabase();
  campaigns = loadCampaigns(DEFAULT_CAMPAIGNS_DIR, { personaName: 'Marina Campelo', maxChars: 300 });
  dir = mkdtempSync(join(tmpdir(), 'csv-hostile-'));
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await testDb?.drop();
});

const ctx = () => ({ db: testDb.db, clock, campaigns });

describe('a hostile or broken CSV', () => {
  it('rejects a row with a NUL, a row with a bad quote and a row of invalid UTF-8, each with its line, and imports the rest', async () => {
    const file = join(dir, 'broken.csv');
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from('phone,name\n'),
        Buffer.from('5581988880001,Ana\n'),
        Buffer.from('5581988880002,Be\u0000to\n'), // line 3: a NUL
        Buffer.from('5581988880003,Jo"ão "o" da Silva\n'), // line 4: stray quotes inside a field: read as written
        Buffer.from('5581988880004,'),
        Buffer.from([0xc3, 0x28, 0xff]), // line 5: not UTF-8
        Buffer.from('\n5581988880005,Duda\n'),
      ]),
    );
    const summary = await importCsv(ctx(), { file, campaign: 'nautico', timeZone: 'America/Recife' });
    assert.equal(summary.enrolled, 3, JSON.stringify(summary.rejections));
    assert.deepEqual(
      summary.rejections.map((r) => [r.line, r.reason]),
      [
        [3, 'bad_row'],
        [5, 'bad_encoding'],
      ],
    );
  });

  it('bounds an unclosed quote to one record: memory does not grow with the file, the row is rejected and the import ends', async () => {
    const file = join(dir, 'unclosed.csv');
    const filler = Array.from({ length: 20_000 }, (_, i) => `55819${String(70_000_000 + i)},Torcedor ${i}`).join('\n'); // ~500 KB after the quote
    writeFileSync(file, `phone,name\n5581988881111,Ana\n5581988882222,"Bia\n${filler}\n`);
    const before = process.memoryUsage().heapUsed;
    const summary = await importCsv(ctx(), { file, campaign: 'nautico', timeZone: 'America/Recife' });
    assert.equal(summary.enrolled, 1);
    assert.ok(summary.rejections.some((r) => r.reason === 'bad_row'), JSON.stringify(summary.rejections.slice(0, 3)));
    assert.ok(MAX_RECORD_BYTES <= 64 * 1024);
    assert.ok(process.memoryUsage().heapUsed - before < 50 * 1024 * 1024);
  });

  it('neutralises formula cells in the rejections file and escapes control characters on the terminal', async () => {
    for (const [cell, written] of [
      ['=cmd|\' /C calc\'!A0', `"'=cmd|' /C calc'!A0"`],
      ['+5581', `"'+5581"`],
      ['-2+3', `"'-2+3"`],
      ['@SUM(A1)', `"'@SUM(A1)"`],
      ['\tx', `"'\tx"`],
      ['\rx', `"'\rx"`],
      ['5581 "9"', '"5581 ""9"""'],
    ] as const) {
      assert.equal(csvCell(cell), written, cell);
    }
    assert.equal(formatRejectionLine({ line: 7, phone: '=HYPERLINK("http://x")', reason: 'bad_phone' }), `7,"'=HYPERLINK(""http://x"")",bad_phone\n`);
    const evil = '\u001b]0;pwned\u0007\u001b[2J5581\u202e';
    assert.equal(forTerminal(evil), '\\u001b]0;pwned\\u0007\\u001b[2J5581\\u202e');
    const printed = formatImportSummary(
      { rows: 1, bytes: 1, totalBytes: 1, enrolled: 0, alreadyActive: 0, rejected: 1, elapsedMs: 1, rejectedByReason: { bad_phone: 1 }, rejections: [{ line: 2, phone: evil, reason: 'bad_phone' }], rejectionsTruncated: false },
      { campaign: 'nautico' },
    );
    assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/.test(printed), JSON.stringify(printed));
  });

  it('names a hostile header without printing its control characters', async () => {
    const file = join(dir, 'header.csv');
    writeFileSync(file, 'x\u001b[31m,y\n1,2\n');
    await assert.rejects(importCsv(ctx(), { file, campaign: 'nautico', timeZone: 'America/Recife' }), (e: Error) => !e.message.includes('\u001b') && e.message.includes('\\u001b'));
  });
});
