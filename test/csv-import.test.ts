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
import { checkFansImport } from './helpers/fans-csv.js';
import { cliArgs } from './helpers/cli.js';

const START = '2026-01-05T14:00:00.000Z';
const ROWS = 3_000;

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

describe('followups import', () => {
  it('imports 3,000 rows with bad ones, reports them by line, and enrolls nobody twice on a second run (100,000 in csv-import.slow.test.ts)', async () => {
    await checkFansImport({ testDb, campaigns, clock, dir }, ROWS);
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
    const first = spawnSync(process.execPath, [...cliArgs(), 'import', file, '--campaign', 'nautico', '--rejections', rejections], {
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
