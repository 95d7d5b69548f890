// Runs the test suite with Node's own test runner (TypeScript through tsx).
// `npm test` runs everything under test/; `npm test -- test/relay.test.ts` runs the files named.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith('.test.ts')) found.push(path);
  }
  return found.sort();
}

const files = process.argv.slice(2).length > 0 ? process.argv.slice(2) : findTests('test');
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', '--import', 'tsx', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
