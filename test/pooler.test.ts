import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { createContext } from '../src/context.js';
import type { Db, Statement } from '../src/db/db.js';
import { migrate, readMigrations } from '../src/db/migrate.js';
import { probeNotify } from '../src/db/notify-probe.js';
import { makePgDb } from '../src/db/pg-db.js';
import { detectPooler, stripPoolerParams } from '../src/database-url.js';
import { buildApp } from '../src/http/build-app.js';
import { createLogger } from '../src/log.js';
import { startRoles } from '../src/roles.js';
import { createTestDatabase, PG_ADMIN_URL, type TestDatabase } from './helpers/db.js';
import { spawnFollowups } from './helpers/followups-processes.js';
import { type OwnPgBouncer, PGBOUNCER_PASSWORD, startOwnPgBouncer } from './helpers/pgbouncer.js';
import { waitFor } from './helpers/pipeline.js';

const silent = createLogger({ level: 'silent' });

describe('detecting the pooler from DATABASE_URL', () => {
  test('port 6543 or ?pgbouncer=true mean transaction mode; anything else direct; DATABASE_POOLER wins', () => {
    assert.equal(detectPooler('postgresql://u:p@aws-0-sa-east-1.pooler.supabase.com:6543/postgres'), 'transaction');
    assert.equal(detectPooler('postgresql://u:p@db.example.com:6432/app?pgbouncer=true'), 'transaction');
    assert.equal(detectPooler('postgresql://u:p@aws-0-sa-east-1.pooler.supabase.com:5432/postgres'), 'none');
    assert.equal(detectPooler('postgresql://u:p@db.example.com/app'), 'none');
    assert.equal(detectPooler('postgresql://u:p@db.example.com:6543/app', 'session'), 'session');
    assert.throws(() => detectPooler('postgresql://db/app', 'statement'), /DATABASE_POOLER: must be one of none, transaction, session/);
  });

  test('the setting is validated with the other settings, and non-libpq parameters are stripped before connecting', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://u:p@h:6543/db', FOLLOWUPS_API_TOKEN: 'token-1234-abcdefghijklmnop', ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789' });
    assert.equal(config.database.pooler, 'transaction');
    assert.throws(() => loadConfig({ DATABASE_URL: 'postgresql://u:p@h/db', FOLLOWUPS_API_TOKEN: 'token-1234-abcdefghijklmnop', ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789', DATABASE_POOLER: 'statement' }), /DATABASE_POOLER/);
    assert.equal(stripPoolerParams('postgresql://u:p@h:6543/db?pgbouncer=true&connection_limit=1&sslmode=require'), 'postgresql://u:p@h:6543/db?sslmode=require');
  });
});

describe('through a real PgBouncer', () => {
  let transaction: OwnPgBouncer;
  let session: OwnPgBouncer;
  let testDb: TestDatabase;
  before(async () => {
    [transaction, session, testDb] = await Promise.all([
      startOwnPgBouncer({ mode: 'transaction', poolSize: 5 }),
      startOwnPgBouncer({ mode: 'session', poolSize: 5 }),
      createTestDatabase({ poolSize: 2 }),
    ]);
  });
  after(async () => {
    await Promise.all([transaction?.stop(), session?.stop(), testDb?.drop()]);
  });

  test('in transaction mode, named statements and relaxed-durability statements work from many connections at once', async () => {
    const db = makePgDb({ url: transaction.url(testDb.name), poolSize: 10, log: silent, pooler: 'transaction', statementTimeoutMs: 10_000 });
    try {
      const named: Statement = { name: 'pooler_named', text: 'SELECT $1::int + 1 AS n' };
      const relaxed: Statement = { name: 'pooler_relaxed', relaxedDurability: true, genericPlan: true, text: "SELECT current_setting('synchronous_commit') AS sc, $1::int AS n" };
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => db.query<{ n: number }>(named, [i])));
      assert.deepEqual(results.map((r) => r.rows[0]!.n), Array.from({ length: 60 }, (_, i) => i + 1));
      const relaxedResults = await Promise.all(Array.from({ length: 20 }, (_, i) => db.query<{ sc: string }>(relaxed, [i])));
      assert.deepEqual([...new Set(relaxedResults.map((r) => r.rows[0]!.sc))], ['off']);
      const after = await db.query<{ sc: string }>("SELECT current_setting('synchronous_commit') AS sc");
      assert.equal(after.rows[0]!.sc, 'on', 'no setting leaks to the next statement on a pooled connection');
    } finally {
      await db.close();
    }
  });

  test('with prepared statements on, the same statements break in transaction mode (what the setting is for)', async () => {
    const db = makePgDb({ url: transaction.url(testDb.name), poolSize: 10, log: silent, pooler: 'none' });
    try {
      const named: Statement = { name: 'pooler_named_on', text: 'SELECT $1::int + 1 AS n' };
      const settled = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => db.query(named, [i])));
      assert.ok(settled.some((r) => r.status === 'rejected' && /prepared statement/.test((r.reason as Error).message)));
    } finally {
      await db.close();
    }
  });

  test('three migrators at once on an empty database through transaction mode apply each file once, three times over, and leave no lock behind', async () => {
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      for (let round = 0; round < 3; round++) {
        const name = `followups_pooler_mig_${randomBytes(4).toString('hex')}`;
        await admin.query(`CREATE DATABASE ${name}`);
        const dbs = Array.from({ length: 3 }, () => makePgDb({ url: transaction.url(name), poolSize: 2, log: silent, pooler: 'transaction' }));
        try {
          const applied = (await Promise.all(dbs.map((db) => migrate(db)))).flat();
          assert.deepEqual(applied.sort(), readMigrations().map((m) => m.name).sort(), `round ${round}: each migration applied by exactly one migrator`);
          assert.deepEqual(await migrate(dbs[0]!), [], 'the next migrate has nothing to do (and does not wait on a lock)');
        } finally {
          await Promise.all(dbs.map((db) => db.close()));
          await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        }
      }
    } finally {
      await admin.end();
    }
  });

  test('the NOTIFY probe says NOTIFY does not arrive through transaction mode, and does directly and through session mode', async () => {
    const through = (url: string, pooler: 'transaction' | 'session') => makePgDb({ url, poolSize: 1, log: silent, pooler });
    const dbs: Db[] = [through(transaction.url(testDb.name), 'transaction'), through(session.url(testDb.name), 'session')];
    try {
      assert.equal(await probeNotify(dbs[0]!, 1_500), false, 'transaction mode');
      assert.equal(await probeNotify(dbs[1]!, 5_000), true, 'session mode');
      assert.equal(await probeNotify(testDb.db, 5_000), true, 'direct');
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
  });

  test('a relay through transaction mode notices NOTIFY does not arrive and polls (every 200 ms): a follow-up written after it fell asleep goes out long before its 60 s sleep ends', async () => {
    const config = loadConfig({
      DATABASE_URL: `${transaction.url(testDb.name)}?pgbouncer=true`,
      FOLLOWUPS_API_TOKEN: 'token-1234-abcdefghijklmnop', ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
      // A long sleep: without NOTIFY or polling, the follow-up would wait up to 60 s.
      RELAY_MAX_SLEEP_MS: '60000',
      TYPING_DELAY_ENABLED: 'false',
      SENDING_WINDOW_ENABLED: 'false',
      SEND_RATE_PER_MINUTE: '0',
      MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: '0',
      WHATSAPP_NUMBER_CHECK: 'false',
    });
    const ctx = await createContext(config, silent, { queue: null, skipMigrations: true });
    const running = await startRoles(ctx, ['api', 'relay'], { listen: false });
    try {
      await waitFor('the relay decided NOTIFY does not arrive', async () => running.relay!.notifyArrives === false && (await new Promise((r) => setTimeout(r, 2_500, true))));
      const dueAt = new Date(Date.now() + 500);
      const res = await running.app!.inject({
        method: 'POST',
        url: '/v1/followups',
        headers: { authorization: 'Bearer token-1234-abcdefghijklmnop' },
        payload: { phone: '5581988887777', message: 'Oi!', dueAt: dueAt.toISOString() },
      });
      assert.equal(res.statusCode, 201, res.body);
      const { id } = res.json() as { id: string };
      const sent = await waitFor('sent', async () => {
        const { rows } = await testDb.db.query<{ at: Date }>(
          'SELECT m.at FROM dry_run_messages m JOIN follow_ups f ON f.provider_message_id = m.provider_message_id WHERE f.id = $1::uuid',
          [id],
        );
        return rows[0]?.at;
      }, { timeoutMs: 45_000 });
      const lateness = new Date(sent).getTime() - dueAt.getTime();
      // Polling adds at most 200 ms; against the configured 60 s sleep, with a margin a loaded machine cannot eat.
      assert.ok(lateness >= 0 && lateness < 30_000, `lateness ${lateness} ms (polling every 200 ms, not sleeping 60 s)`);
    } finally {
      await running.stop();
      await ctx.close();
    }
  });

  test('a wrong password stops `followups start` at once with exit code 2 and the server’s message', async () => {
    const p = await spawnFollowups('start', {
      DATABASE_URL: transaction.url(testDb.name, `not-${PGBOUNCER_PASSWORD}`),
      FOLLOWUPS_API_TOKEN: 'token-1234-abcdefghijklmnop', ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
    });
    // No wall-clock bound (loading the sources through tsx alone took over 30 s on a loaded machine):
    // exit code 2 with the server's words is the refused-login path, which does not retry; the timer
    // is only a backstop against a process that keeps retrying.
    let backstop: NodeJS.Timeout | undefined;
    const code = await Promise.race([p.exited, new Promise<'hung'>((r) => (backstop = setTimeout(() => r('hung'), 240_000)))]);
    clearTimeout(backstop);
    if (code === 'hung') await p.stop();
    assert.equal(code, 2, p.output());
    assert.match(p.output(), /password authentication failed/);
    assert.match(p.output(), /the database refused the login/, 'the no-retry path (src/cli.ts exitIfAuthError)');
  });

  test('/health/ready reports a relay that fails every turn (degraded, with the kind of failure)', async () => {
    const refusing: Db = {
      ...testDb.db,
      query: (async (statement: string | Statement, values?: unknown[]) => {
        if (typeof statement !== 'string' && statement.name === 'followups_claim_due') {
          throw Object.assign(new Error('password authentication failed for user "root"'), { code: '28P01' });
        }
        return testDb.db.query(statement, values);
      }) as Db['query'],
    };
    const config = loadConfig({ DATABASE_URL: testDb.url, FOLLOWUPS_API_TOKEN: 'token-1234-abcdefghijklmnop', ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789', RELAY_MAX_SLEEP_MS: '50' });
    const ctx = await createContext(config, silent, { db: refusing, queue: null, skipMigrations: true });
    const running = await startRoles(ctx, ['relay'], { listen: false });
    const app = await buildApp(ctx);
    try {
      const body = await waitFor('relay reported failing', async () => {
        const res = await app.inject({ method: 'GET', url: '/health/ready', headers: { authorization: 'Bearer token-1234-abcdefghijklmnop' } });
        const json = res.json() as { status: string; checks: { roles: { relay?: { status: string; reason?: string; code?: string } } } };
        return json.checks.roles.relay?.status === 'failing' && json;
      }, { timeoutMs: 15_000 });
      assert.equal(body.status, 'degraded');
      assert.equal(body.checks.roles.relay!.reason, 'database_auth');
      assert.equal(body.checks.roles.relay!.code, '28P01');
    } finally {
      await app.close();
      await running.stop();
      await ctx.close();
    }
  });
});
