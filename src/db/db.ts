/**
 * The one narrow SQL port every part of the system uses. Two adapters implement
 * it in a few lines each: `pg` for PostgreSQL/Supabase and PGlite for the
 * embedded default. Both run the same SQL.
 */

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

/**
 * A statement with a stable name is prepared once per connection (pg) — unless the
 * connection goes through a transaction pooler, where the name is left out (a prepared
 * statement lives on one server connection, and the next statement may run on another).
 * PGlite ignores the name.
 */
export interface Statement {
  name?: string;
  text: string;
  /**
   * The commit need not wait for the WAL flush (`synchronous_commit = off`): a crash of the
   * database server may lose the last fraction of a second of such commits. Only for writes
   * whose loss the system recovers from by itself (a claim the relay makes again, a completion
   * the sweeper reconciles with the provider); never for the claim that fences a send.
   * Applied with `SET LOCAL` in the statement's own transaction (never as a session or
   * startup setting, which poolers reject or lose). Outside a transaction only; PGlite ignores it.
   */
  relaxedDurability?: boolean;
  /**
   * Always run with the generic plan (`plan_cache_mode = force_generic_plan`): for the
   * small, fixed-shape statements of the send path, planning each execution anew costs more
   * than running it. Only meaningful for a named (prepared) statement, so ignored through a
   * transaction pooler. Outside a transaction only; PGlite ignores it.
   */
  genericPlan?: boolean;
}

export interface Queryable {
  query<T = Record<string, unknown>>(statement: string | Statement, values?: unknown[]): Promise<QueryResult<T>>;
}

/** A transaction's connection: statements, and `exec` for a script of several (a migration file). */
export interface Transaction extends Queryable {
  exec(sql: string): Promise<void>;
}

export interface TransactionOptions {
  /**
   * Server-side `statement_timeout` for this transaction (`SET LOCAL`), in ms; 0 = none.
   * Default: the adapter's statement timeout (DATABASE_STATEMENT_TIMEOUT_MS).
   */
  statementTimeoutMs?: number;
}

export interface Db extends Queryable {
  readonly kind: 'pg' | 'pglite';
  /** Runs `fn` in one transaction on one connection; rolls back if it throws. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Runs `fn` on one dedicated connection. Session state does not survive a transaction
   * pooler: nothing in the system relies on this any more (migrations use a transaction).
   */
  withSession<T>(fn: (session: Queryable & { exec(sql: string): Promise<void> }) => Promise<T>): Promise<T>;
  /** LISTEN on a channel; returns a function that stops listening. Reconnects on its own (pg). */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** Accepts a string or a named statement and returns the text (for adapters that don't prepare). */
export function statementText(statement: string | Statement): string {
  return typeof statement === 'string' ? statement : statement.text;
}
