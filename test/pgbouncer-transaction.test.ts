import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type OwnPgBouncer, startOwnPgBouncer } from './helpers/pgbouncer.js';
import { assertDeliveredOnce, deliverThroughPooler } from './helpers/pooled-delivery.js';

describe('through PgBouncer in transaction mode (5 server connections)', () => {
  let bouncer: OwnPgBouncer;
  before(async () => {
    bouncer = await startOwnPgBouncer({ mode: 'transaction', poolSize: 5 });
  });
  after(async () => {
    await bouncer.stop();
  });

  test('two `followups start` on an empty database migrate once and deliver 200 follow-ups exactly once, p99 lateness ≤ 5 s (no relay left asleep, no stalled pool), no 5xx', async () => {
    // `?pgbouncer=true` is how the mode is detected here (DATABASE_POOLER unset); 10 connections per process.
    const run = await deliverThroughPooler(bouncer, { count: 200, env: { DATABASE_POOL_SIZE: '10' }, urlSuffix: '?pgbouncer=true' });
    assertDeliveredOnce(run, 'transaction', 200);
    // LISTEN goes through but nothing arrives: both relays noticed and polled instead.
    for (const output of run.outputs) assert.match(output, /NOTIFY does not arrive/);
  });
});
