/**
 * Every test file gets its own PostgreSQL database, cloned from a template that
 * was migrated once (as graphile-worker does): fast, isolated, and the real
 * PostgreSQL. The template's name carries a hash of the migrations, so a changed
 * migration builds a new template instead of reusing a stale one.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { makePgDb } from '../../src/db/pg-db.js';
import { migrate, readMigrations } from '../../src/db/migrate.js';
import type { Db } from '../../src/db/db.js';
import { createLogger } from '../../src/log.js';

export const PG_ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://root@127.0.0.1:5432/postgres';

export function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

function templateName(): string {
  const hash = createHash('sha256');
  for (const m of readMigrations()) hash.update(m.name).update(m.sql);
  return `followups_tpl_${hash.digest('hex').slice(0, 12)}`;
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function ensureTemplate(): Promise<string> {
  const name = templateName();
  await withAdmin(async (admin) => {
    // Several test files start at once: one builds the template, the others wait.
    await admin.query('SELECT pg_advisory_lock(424242)');
    try {
      const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (rowCount) return;
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      const db = makePgDb({ url: databaseUrl(name), poolSize: 1, log: createLogger({ level: 'silent' }) });
      try {
        await migrate(db);
      } finally {
        await db.close();
      }
    } finally {
      await admin.query('SELECT pg_advisory_unlock(424242)');
    }
  });
  return name;
}

export interface TestDatabase {
  name: string;
  url: string;
  db: Db;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/** A fresh, migrated database for one test file (or one test). */
export async function createTestDatabase(options: { poolSize?: number } = {}): Promise<TestDatabase> {
  const template = await ensureTemplate();
  const name = `followups_test_${randomBytes(6).toString('hex')}`;
  await withAdmin(async (admin) => {
    // CREATE DATABASE ... TEMPLATE fails if another session is connected to the template at that moment.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template)}`);
        return;
      } catch (error) {
        if (attempt > 20 || !/being accessed by other users/.test((error as Error).message)) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  const url = databaseUrl(name);
  const db = makePgDb({ url, poolSize: options.poolSize ?? 10, log: createLogger({ level: 'silent' }) });
  return {
    name,
    url,
    db,
    async drop() {
      await db.close();
      await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
    },
  };
}

/** An empty database (no migrations applied), e.g. for a `followups migrate` to fill. */
export async function createEmptyDatabase(): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `followups_empty_${randomBytes(6).toString('hex')}`;
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  return {
    name,
    url: databaseUrl(name),
    async drop() {
      await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
    },
  };
}
