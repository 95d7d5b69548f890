/**
 * What an error from the database driver means, read in one place. The pg driver and
 * PGlite report PostgreSQL's SQLSTATE as `code`; a socket that fails carries Node's code
 * (ECONNREFUSED, ...), and the pg pool some errors of its own by message only.
 */

/** What a database error means for the caller. Several may hold at once (a connect timeout is both `unreachable` and `timeout`). */
export interface DbErrorMeaning {
  /** The SQLSTATE or driver code, when there is one. */
  code: string | undefined;
  /**
   * A refused login: wrong password or user (28P01, 28000), or a pooler saying so (PgBouncer
   * answers 08P01 "password authentication failed" / "no such user"). Retrying does not help:
   * the configuration must change.
   */
  auth: boolean;
  /** The database is unreachable right now (the query is not wrong): connection failures, shutdown, too many connections. */
  unreachable: boolean;
  /** Something timed out: the server's statement_timeout (57014), the client's read timeout, a connect timeout. */
  timeout: boolean;
  /** A deadlock (40P01) or a serialisation failure (40001): the database asks us to try again, not a fault. */
  retry: boolean;
  /** A unique constraint refused the row (23505). */
  uniqueViolation: boolean;
  /** A table does not exist (42P01): the database is not migrated (yet). */
  undefinedTable: boolean;
}

const NETWORK_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'];
const CONNECTION_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|terminating connection|Query read timeout/i;

export function readDbError(error: unknown): DbErrorMeaning {
  const e = error as { code?: unknown; message?: unknown } | null | undefined;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : '';
  return {
    code,
    auth: code === '28P01' || code === '28000' || (code === '08P01' && /auth|password|no such user|not allowed|SASL/i.test(message)),
    unreachable:
      Boolean(e) &&
      ((code !== undefined && (/^(08|57P0[123]|53300)/.test(code) || NETWORK_CODES.includes(code))) || CONNECTION_MESSAGES.test(message)),
    timeout: code === '57014' || /timeout/i.test(message),
    retry: code === '40P01' || code === '40001',
    uniqueViolation: code === '23505',
    undefinedTable: code === '42P01',
  };
}
