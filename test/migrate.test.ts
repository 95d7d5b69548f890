import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { migrate, readMigrations } from '../src/db/migrate.js';
import type { Db } from '../src/db/db.js';
import { makePgDb } from '../src/db/pg-db.js';
import { createLogger } from '../src/log.js';
import { databaseUrl, PG_ADMIN_URL } from './helpers/db.js';
import { startTestPglite } from './helpers/pglite.js';

describe('migrations', () => {
  // One embedded PGlite for the file (it takes seconds to start on a busy machine): the first
  // PGlite test migrates it from empty, the next one starts with `migrate` (a no-op when done).
  let embedded: Db;
  before(async () => {
    embedded = await startTestPglite();
  });
  after(async () => {
    await embedded?.close();
  });

  test('five processes migrating an empty database at once apply each file exactly once', async () => {
    const name = `followups_migrate_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const dbs = Array.from({ length: 5 }, () => makePgDb({ url: databaseUrl(name), poolSize: 2, log: createLogger({ level: 'silent' }) }));
    try {
      const results = await Promise.all(dbs.map((db) => migrate(db)));
      const applied = results.flat();
      assert.deepEqual(applied.sort(), readMigrations().map((m) => m.name).sort(), 'each migration applied by exactly one process');
      const { rows } = await dbs[0]!.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
      assert.equal(rows[0]!.n, readMigrations().length);
      assert.deepEqual(await migrate(dbs[0]!), [], 'a second run has nothing to do');
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  test('the same SQL runs on the embedded PGlite', async () => {
    const db = embedded;
    const applied = await migrate(db);
    assert.equal(applied.length, readMigrations().length);
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM follow_ups WHERE status = 'pending'");
    assert.equal(rows[0]!.n, 0);
  });

  test('a failing migration rolls back whole and is not recorded', async () => {
    const db = embedded;
    await migrate(db);
    const bad = [...readMigrations(), { version: 999, name: '999_broken', sql: 'CREATE TABLE half_done (id int); SELECT * FROM no_such_table;' }];
    await assert.rejects(() => migrate(db, undefined, bad), /999_broken/);
    const { rows } = await db.query<{ t: string | null }>("SELECT to_regclass('half_done')::text AS t");
    assert.equal(rows[0]!.t, null, 'nothing half-written');
    const versions = await db.query<{ version: number }>('SELECT version FROM schema_migrations WHERE version = 999');
    assert.equal(versions.rows.length, 0);
  });
});
