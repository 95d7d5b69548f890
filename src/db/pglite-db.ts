import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { type Db, type Queryable, type Statement, statementText } from './db.js';

function wrap(target: { query: PGlite['query'] }): Queryable {
  return {
    async query<T>(statement: string | Statement, values?: unknown[]) {
      const result = await target.query<T>(statementText(statement), values as unknown[] | undefined);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
  };
}

/**
 * The embedded default: PostgreSQL compiled to WASM, in one process, persisted
 * in `dataDir` (or in memory with `memory://`). One connection, so transactions
 * are serialised by PGlite itself.
 */
export async function makePgliteDb(options: { dataDir: string; loadDataDir?: Blob }): Promise<Db> {
  if (!options.dataDir.startsWith('memory://')) mkdirSync(options.dataDir, { recursive: true });
  // loadDataDir: a cluster saved by PGlite's dumpDataDir, started instead of running initdb (the tests' cache).
  const pglite = await PGlite.create(options.dataDir, options.loadDataDir ? { loadDataDir: options.loadDataDir } : {});
  // int8 as numbers, as with the pg adapter.
  const base = wrap(pglite);
  return {
    kind: 'pglite',
    query: base.query,
    // One connection, no timeouts to set: the options are for the pg adapter.
    transaction(fn) {
      return pglite.transaction((tx) =>
        fn({
          ...wrap(tx),
          async exec(sql: string) {
            await tx.exec(sql);
          },
        }),
      );
    },
    async withSession(fn) {
      return fn({
        ...base,
        async exec(sql: string) {
          await pglite.exec(sql);
        },
      });
    },
    async listen(channel, onNotify) {
      const unsubscribe = await pglite.listen(channel, onNotify);
      return async () => {
        await unsubscribe();
      };
    },
    async close() {
      if (!pglite.closed) await pglite.close();
    },
  };
}
