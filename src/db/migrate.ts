/**
 * Forward-only migrations: numbered plain `.sql` files, applied in one transaction
 * holding a transaction-level advisory lock, so any number of processes may start at
 * once — directly or through any pooler — and exactly one applies each file.
 *
 * Hand-written rather than a library (node-pg-migrate, graphile-migrate): those
 * drive `pg` connections themselves and cannot run on the embedded PGlite, and
 * the contract here is 40 lines.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import type { Db } from './db.js';

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
const LOCK_KEY = 7_140_301_822; // arbitrary, constant: "nautico-followups migrations"

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((file) => /^\d+_.+\.sql$/.test(file))
    .map((file) => ({
      version: Number(file.split('_')[0]),
      name: file.replace(/\.sql$/, ''),
      sql: readFileSync(join(dir, file), 'utf8'),
    }))
    .sort((a, b) => a.version - b.version);
}

/**
 * Everything happens in one transaction: take the transaction-level advisory lock (released
 * by COMMIT/ROLLBACK, so it can never be left held by a pooled server connection), then
 * create the bookkeeping table, read which versions are applied — after the lock, so a
 * migrator that waited sees what the one before it did — and apply the rest in order.
 * A failing file rolls back all of this run. Safe through a transaction pooler (one
 * transaction is one server connection) and on PGlite (same SQL).
 */
export async function migrate(db: Db, log?: Logger, migrations = readMigrations()): Promise<string[]> {
  const applied = await db.transaction(
    async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
      await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
      const done = new Set(rows.map((r) => Number(r.version)));
      const names: string[] = [];
      for (const migration of migrations) {
        if (done.has(migration.version)) continue;
        try {
          await tx.exec(migration.sql);
          await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
        } catch (error) {
          throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
        }
        names.push(migration.name);
      }
      return names;
    },
    // A migration may rewrite a large table: no statement timeout.
    { statementTimeoutMs: 0 },
  );
  for (const name of applied) log?.info({ migration: name }, 'migration applied');
  return applied;
}
