import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type OwnPgBouncer, startOwnPgBouncer } from './helpers/pgbouncer.js';
import { percentile } from './helpers/followups-processes.js';
import { deliverThroughPooler, latenessBoundMs, MIGRATION_COUNT } from './helpers/pooled-delivery.js';

describe('through PgBouncer in transaction mode (5 server connections)', () => {
  let bouncer: OwnPgBouncer;
  before(async () => {
    bouncer = await startOwnPgBouncer({ mode: 'transaction', poolSize: 5 });
  });
  after(async () => {
    await bouncer.stop();
  });

  test('two `followups start` on an empty database migrate once and deliver 200 follow-ups exactly once, p99 lateness ≤ 1 s (5 s on an oversubscribed machine), no 5xx', async () => {
    // `?pgbouncer=true` is how the mode is detected here (DATABASE_POOLER unset); 10 connections per process.
    const run = await deliverThroughPooler(bouncer, { count: 200, env: { DATABASE_POOL_SIZE: '10' }, urlSuffix: '?pgbouncer=true' });
    assert.deepEqual([...new Set(run.statuses)], [201], 'every POST /v1/followups answered 201');
    assert.equal(run.deliveries.messages, 200, 'one message per follow-up');
    assert.equal(run.deliveries.numbers, 200, 'each lead got exactly one');
    assert.equal(run.deliveries.executed, 200);
    assert.equal(run.migrationLines, MIGRATION_COUNT, 'each migration applied by one process');
    assert.equal(run.migrationsRecorded, MIGRATION_COUNT);
    const p50 = percentile(run.deliveries.latenessMs, 50);
    const p99 = percentile(run.deliveries.latenessMs, 99);
    console.log(`transaction mode: lateness p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms (${latenessBoundMs().note})`);
    const bound = latenessBoundMs();
    assert.ok(p99 <= bound.boundMs, `p99 lateness ${p99} ms (${bound.note})`);
    assert.ok(run.deliveries.latenessMs[0]! >= 0, 'none before its time');
    // LISTEN goes through but nothing arrives: both relays noticed and polled instead.
    for (const output of run.outputs) assert.match(output, /NOTIFY does not arrive/);
    assert.deepEqual(run.exitCodes, [0, 0], 'both stopped cleanly on SIGTERM');
  });
});
