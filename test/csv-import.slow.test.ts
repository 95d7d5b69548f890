/**
 * The fans-CSV import at full size: 100,000 rows (a club's whole mailing list), twice.
 * Slow (tens of seconds), so it runs in `npm run test:slow`; `npm test` runs the same
 * scenario at 3,000 rows (test/csv-import.test.ts). CSV_IMPORT_ROWS overrides the size.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Campaigns } from '../src/campaigns/campaign.js';
import { DEFAULT_CAMPAIGNS_DIR, loadCampaigns } from '../src/campaigns/load-campaigns.js';
import { makeFakeClock } from '../src/clock.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { checkFansImport } from './helpers/fans-csv.js';

const ROWS = Number(process.env.CSV_IMPORT_ROWS ?? 100_000);

let testDb: TestDatabase;
let campaigns: Campaigns;
let dir: string;
const clock = makeFakeClock('2026-01-05T14:00:00.000Z');

before(async () => {
  testDb = await createTestDatabase();
  campaigns = loadCampaigns(DEFAULT_CAMPAIGNS_DIR, { personaName: 'Marina Campelo', maxChars: 300 });
  dir = mkdtempSync(join(tmpdir(), 'csv-import-slow-'));
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await testDb?.drop();
});

describe('followups import at full size', () => {
  it('imports 100,000 rows with bad ones, reports them by line, and enrolls nobody twice on a second run', async () => {
    await checkFansImport({ testDb, campaigns, clock, dir }, ROWS);
  });
});
