import pg from 'pg';
import type { Logger } from '../log.js';
import { type Db, type Queryable, type Statement } from './db.js';

// int8 (counts, bigserial ids) as numbers: none of ours come near 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

function toConfig(statement: string | Statement, values?: unknown[]): pg.QueryConfig {
  if (typeof statement === 'string') return { text: statement, values };
  return { name: statement.name, text: statement.text, values };
}

function wrap(client: pg.PoolClient | pg.Pool): Queryable {
  return {
    async query<T>(statement: string | Statement, values?: unknown[]) {
      const result = await client.query(toConfig(statement, values));
      return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 };
    },
  };
}

export function makePgDb(options: { url: string; poolSize: number; log: Logger; applicationName?: string }): Db {
  const makePool = (max: number, settings?: string) => {
    const p = new pg.Pool({
      connectionString: options.url,
      max,
      types,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      application_name: options.applicationName ?? 'nautico-followups',
      ...(settings ? { options: settings } : {}),
    });
    // An idle client that loses its connection must not crash the process; the pool replaces it.
    p.on('error', (error) => options.log.warn({ err: error }, 'idle database connection failed'));
    return p;
  };
  const pool = makePool(options.poolSize);
  /**
   * Statements that ask for relaxed durability or generic plans run on a few connections of
   * their own with those session settings (made on first use): PostgreSQL has no per-statement
   * switch for either outside a transaction.
   */
  const special = new Map<number, { pool: pg.Pool; query: Queryable['query'] }>();
  const routed = (statement: Statement) => {
    const key = (statement.relaxedDurability ? 1 : 0) | (statement.genericPlan ? 2 : 0);
    if (key === 0) return undefined;
    let entry = special.get(key);
    if (!entry) {
      const settings = [
        statement.relaxedDurability ? '-c synchronous_commit=off' : '',
        statement.genericPlan ? '-c plan_cache_mode=force_generic_plan' : '',
      ].filter(Boolean).join(' ');
      const p = makePool(Math.max(1, Math.ceil(options.poolSize / 2)), settings);
      entry = { pool: p, query: wrap(p).query };
      special.set(key, entry);
    }
    return entry.query;
  };
  const direct = wrap(pool).query;
  const listeners = new Set<{ stop(): Promise<void> }>();

  /**
   * A checked-out client has no pool 'error' listener: if the server drops the
   * connection between two statements (a PostgreSQL restart), the 'error' event
   * would crash the process. Listen while it is ours, and destroy it on release
   * if it broke, so the pool never hands it out again.
   */
  async function checkOut() {
    const client = await pool.connect();
    let failure: Error | undefined;
    const onError = (error: Error) => {
      failure = error;
      options.log.warn({ err: { message: error.message } }, 'database connection lost mid-transaction');
    };
    client.on('error', onError);
    return {
      client,
      broken: () => failure !== undefined,
      done() {
        client.off('error', onError);
        client.release(failure);
      },
    };
  }

  const db: Db = {
    kind: 'pg',
    query(statement, values) {
      const run = typeof statement === 'string' ? undefined : routed(statement);
      return run ? run(statement, values) : direct(statement, values);
    },
    async transaction(fn) {
      const { client, broken, done } = await checkOut();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        if (!broken()) await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        done();
      }
    },
    async withSession(fn) {
      const { client, done } = await checkOut();
      try {
        return await fn({
          ...wrap(client),
          async exec(sql: string) {
            await client.query(sql);
          },
        });
      } finally {
        done();
      }
    },
    async listen(channel, onNotify) {
      // A dedicated connection outside the pool, re-established after a failure
      // (e.g. a PostgreSQL restart). Notifications missed meanwhile are covered
      // by the relay's capped sleep.
      let client: pg.Client | undefined;
      let stopped = false;
      let retry: NodeJS.Timeout | undefined;
      const connect = async () => {
        if (stopped) return;
        const c = new pg.Client({ connectionString: options.url, types, connectionTimeoutMillis: 5_000 });
        c.on('notification', (message) => {
          if (message.channel === channel) onNotify(message.payload ?? '');
        });
        c.on('error', (error) => {
          options.log.warn({ err: error, channel }, 'listen connection lost; reconnecting');
          c.end().catch(() => undefined);
          if (client === c) client = undefined;
          schedule();
        });
        try {
          await c.connect();
          await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
          if (stopped) {
            await c.end().catch(() => undefined);
            return;
          }
          client = c;
        } catch (error) {
          options.log.debug({ err: error, channel }, 'listen connection failed; retrying');
          c.end().catch(() => undefined);
          schedule();
        }
      };
      const schedule = () => {
        if (stopped || retry) return;
        retry = setTimeout(() => {
          retry = undefined;
          void connect();
        }, 1_000);
      };
      await connect();
      const handle = {
        async stop() {
          stopped = true;
          if (retry) clearTimeout(retry);
          const c = client;
          client = undefined;
          if (c) await c.end().catch(() => undefined);
          listeners.delete(handle);
        },
      };
      listeners.add(handle);
      return handle.stop;
    },
    async close() {
      await Promise.all([...listeners].map((l) => l.stop()));
      await Promise.all([pool.end(), ...[...special.values()].map((s) => s.pool.end())]);
    },
  };
  return db;
}
