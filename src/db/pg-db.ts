/**
 * The PostgreSQL adapter, safe through a connection pooler (PgBouncer, Supavisor):
 *
 * - One bounded pool per process (`poolSize`), plus the relay's LISTEN connection:
 *   that is every connection a process opens. Idle ones are closed after a few seconds.
 * - No startup `options` (poolers refuse them: "unsupported startup parameter") and no
 *   session state: relaxed durability and generic plans are `SET LOCAL` in the statement's
 *   own transaction.
 * - Through a transaction pooler, statements are sent without a name (no prepared
 *   statements: the next execution may land on another server connection).
 * - Timeouts: connecting (and waiting for a pool connection), and every statement —
 *   server-side `SET LOCAL statement_timeout` in transactions, and a client-side timer
 *   (`query_timeout`) everywhere, which also covers a pooler that never answers. A
 *   connection whose statement timed out on the client is discarded, never reused.
 */
import pg from 'pg';
import type { Logger } from '../log.js';
import { type Db, type Queryable, type Statement, type Transaction } from './db.js';
import { type Pooler, stripPoolerParams } from '../database-url.js';

// int8 (counts, bigserial ids) as numbers: none of ours come near 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** Inside a transaction the server's statement_timeout fires first; the client's timer is the backstop. */
const CLIENT_TIMEOUT_GRACE_MS = 2_000;

export interface PgDbOptions {
  url: string;
  poolSize: number;
  log: Logger;
  applicationName?: string;
  /** `transaction`: no named prepared statements. Default `none`. */
  pooler?: Pooler;
  /** Every statement's timeout, in ms (0 = none, the default; the roles pass DATABASE_STATEMENT_TIMEOUT_MS). */
  statementTimeoutMs?: number;
  /** Connecting, or waiting for a free pool connection, in ms. Default 5 s. */
  connectTimeoutMs?: number;
  /** An idle pool connection is closed after this, in ms. Default 10 s. */
  idleTimeoutMs?: number;
}

export function makePgDb(options: PgDbOptions): Db {
  const url = stripPoolerParams(options.url);
  const prepared = (options.pooler ?? 'none') !== 'transaction';
  const statementTimeoutMs = options.statementTimeoutMs ?? 0;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;

  const toConfig = (statement: string | Statement, values: unknown[] | undefined, timeoutMs: number): pg.QueryConfig => {
    const text = typeof statement === 'string' ? statement : statement.text;
    const name = typeof statement === 'string' || !prepared ? undefined : statement.name;
    // pg reads `query_timeout` from the query config (not in its typings); 0 leaves it off.
    return { text, values, ...(name ? { name } : {}), ...(timeoutMs > 0 ? { query_timeout: timeoutMs } : {}) } as pg.QueryConfig;
  };

  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize,
    types,
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: options.idleTimeoutMs ?? 10_000,
    application_name: options.applicationName ?? 'nautico-followups',
  });
  // An idle client that loses its connection must not crash the process; the pool replaces it.
  pool.on('error', (error) => options.log.warn({ err: error }, 'idle database connection failed'));
  const listeners = new Set<{ stop(): Promise<void> }>();

  /**
   * A checked-out client has no pool 'error' listener: if the server drops the
   * connection between two statements (a PostgreSQL restart), the 'error' event
   * would crash the process. Listen while it is ours, and destroy it on release
   * if it broke (or a statement timed out on the client, leaving it mid-query),
   * so the pool never hands it out again.
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
      fail(error: Error) {
        failure ??= error;
      },
      done() {
        client.off('error', onError);
        client.release(failure);
      },
    };
  }

  function run(client: pg.PoolClient | pg.Pool, timeoutMs: number): Queryable['query'] {
    return async <T>(statement: string | Statement, values?: unknown[]) => {
      const result = await client.query(toConfig(statement, values, timeoutMs));
      return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 };
    };
  }

  async function transaction<T>(fn: (tx: Transaction) => Promise<T>, opts: { statementTimeoutMs?: number; settings?: string } = {}): Promise<T> {
    const timeoutMs = opts.statementTimeoutMs ?? statementTimeoutMs;
    const clientTimeoutMs = timeoutMs > 0 ? timeoutMs + CLIENT_TIMEOUT_GRACE_MS : 0;
    const { client, broken, fail, done } = await checkOut();
    try {
      // One round trip: BEGIN and the transaction's settings as one simple-protocol script.
      await client.query(
        toConfig(`BEGIN; SET LOCAL statement_timeout = ${Math.floor(timeoutMs)}${opts.settings ?? ''}`, undefined, clientTimeoutMs),
      );
      const query = run(client, clientTimeoutMs);
      const result = await fn({
        query,
        async exec(sql: string) {
          await client.query(toConfig(sql, undefined, clientTimeoutMs));
        },
      });
      await client.query(toConfig('COMMIT', undefined, clientTimeoutMs));
      return result;
    } catch (error) {
      if (/Query read timeout/.test((error as Error).message)) fail(error as Error);
      if (!broken()) await client.query(toConfig('ROLLBACK', undefined, 5_000)).catch((e: Error) => fail(e));
      throw error;
    } finally {
      done();
    }
  }

  const direct = run(pool, statementTimeoutMs);

  const db: Db = {
    kind: 'pg',
    query(statement, values) {
      if (typeof statement === 'string') return direct(statement, values);
      // Relaxed durability pays for its own transaction (two more round trips, against a WAL
      // flush of several ms). A generic plan alone does not: it rides along only when the
      // statement has its transaction anyway (measured: see the README's Supabase section).
      if (!statement.relaxedDurability) return direct(statement, values);
      const settings =
        '; SET LOCAL synchronous_commit = off' +
        (statement.genericPlan && prepared && statement.name ? '; SET LOCAL plan_cache_mode = force_generic_plan' : '');
      return transaction((tx) => tx.query(statement, values), { settings });
    },
    transaction(fn, opts) {
      return transaction(fn, { statementTimeoutMs: opts?.statementTimeoutMs });
    },
    async withSession(fn) {
      const { client, done } = await checkOut();
      try {
        const query = run(client, statementTimeoutMs);
        return await fn({
          query,
          async exec(sql: string) {
            await client.query(toConfig(sql, undefined, statementTimeoutMs));
          },
        });
      } finally {
        done();
      }
    },
    async listen(channel, onNotify) {
      // A dedicated connection outside the pool, re-established after a failure
      // (e.g. a PostgreSQL restart). Notifications missed meanwhile are covered
      // by the relay's capped sleep. Through a transaction pooler LISTEN "works" but
      // nothing ever arrives: the relay's NOTIFY probe (notify-probe.ts) notices.
      let client: pg.Client | undefined;
      let stopped = false;
      let retry: NodeJS.Timeout | undefined;
      const connect = async () => {
        if (stopped) return;
        const c = new pg.Client({
          connectionString: url,
          types,
          connectionTimeoutMillis: connectTimeoutMs,
          application_name: options.applicationName ?? 'nautico-followups',
        });
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
          await c.query(toConfig(`LISTEN ${pg.escapeIdentifier(channel)}`, undefined, statementTimeoutMs));
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
      await pool.end();
    },
  };
  return db;
}
