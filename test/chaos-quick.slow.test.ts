import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runChaos } from '../chaos/run-chaos.js';
import { QUICK } from '../chaos/scenario.js';

// The quick chaos run (npm run chaos:quick): its own PostgreSQL and Redis, 2 relays,
// 3 workers and the API as processes, killed and restarted; Redis restarted with and
// without its data; PostgreSQL restarted; Evolution failing in every way it does.
test('under crashes, outages and a misbehaving WhatsApp API nothing is lost, doubled or sent after "stop"', { timeout: 290_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'followups-chaos-test-'));
  const lines: string[] = [];
  try {
    const report = await runChaos(QUICK, {
      reportPath: join(dir, 'report.json'),
      say: (line) => {
        lines.push(line);
        if (process.env.CHAOS_VERBOSE) process.stdout.write(`${line}\n`);
      },
    });
    const violations = report.violations.map((v) => `${v.kind} ${v.followupId ?? ''} ${v.phone ?? ''}: ${v.detail}`);
    assert.deepEqual(violations, [], `chaos violations:\n${lines.slice(-80).join('\n')}`);
    assert.ok(report.ok);
    assert.equal(report.timeToQuiescenceMs !== null, true, 'every follow-up ended terminal');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
