import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type OwnPgBouncer, startOwnPgBouncer } from './helpers/pgbouncer.js';
import { assertDeliveredOnce, deliverThroughPooler } from './helpers/pooled-delivery.js';

describe('through PgBouncer in session mode (5 server connections)', () => {
  let bouncer: OwnPgBouncer;
  before(async () => {
    bouncer = await startOwnPgBouncer({ mode: 'session', poolSize: 5 });
  });
  after(async () => {
    await bouncer.stop();
  });

  test('two `followups start` on an empty database migrate once and deliver 200 follow-ups exactly once, p99 lateness ≤ 5 s (no relay left asleep, no stalled pool), no 5xx', async () => {
    // In session mode every client connection holds a server connection: 1 pool connection + the
    // relay's LISTEN per process, 4 of the pooler's 5.
    const run = await deliverThroughPooler(bouncer, { count: 200, env: { DATABASE_POOLER: 'session', DATABASE_POOL_SIZE: '1' } });
    assertDeliveredOnce(run, 'session', 200);
    // A session pooler carries LISTEN/NOTIFY: the relays sleep until woken.
    for (const output of run.outputs) assert.doesNotMatch(output, /NOTIFY does not arrive/);
  });
});
