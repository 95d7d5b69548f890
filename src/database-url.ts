/**
 * Which kind of connection pooler sits between us and PostgreSQL, and the URL
 * node-postgres should really be given.
 *
 * - `none`: a direct connection. Named prepared statements, LISTEN/NOTIFY.
 * - `session`: a session-mode pooler (PgBouncer/Supavisor `pool_mode=session`, Supabase's
 *   pooler on 5432). A client connection holds one server connection for its lifetime, so
 *   everything works, but every client connection counts against the pooler's pool.
 * - `transaction`: a transaction-mode pooler (Supabase's pooler on 6543). Consecutive
 *   statements may run on different server connections: no named prepared statements, no
 *   session state (SET, session advisory locks), and LISTEN never receives anything.
 */
export type Pooler = 'none' | 'transaction' | 'session';

export const POOLERS: readonly Pooler[] = ['none', 'transaction', 'session'];

/** The port Supabase (Supavisor) and most PgBouncer guides use for transaction mode. */
const TRANSACTION_POOLER_PORT = '6543';

/**
 * Query parameters some ecosystems put in a Supabase connection string (Prisma's
 * `pgbouncer`, `connection_limit`, `pool_timeout`; `statement_cache_size` from asyncpg)
 * that are not libpq's. node-postgres would pass nothing wrong with them, but they are
 * read here and removed so what reaches the driver is a plain libpq URL.
 */
const NON_LIBPQ_PARAMS = ['pgbouncer', 'connection_limit', 'pool_timeout', 'statement_cache_size'];

/**
 * The pooler mode: `explicit` (DATABASE_POOLER) when given, else guessed from the URL —
 * `?pgbouncer=true` or port 6543 mean transaction mode; anything else is taken as direct
 * (a session pooler behaves like a direct connection, except for connection counts).
 */
export function detectPooler(url: string, explicit?: string): Pooler {
  if (explicit !== undefined && explicit !== '') {
    if (!(POOLERS as readonly string[]).includes(explicit)) {
      throw new Error(`DATABASE_POOLER: must be one of ${POOLERS.join(', ')} (got "${explicit}")`);
    }
    return explicit as Pooler;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'none';
  }
  if (/^(true|1|yes|on)$/i.test(parsed.searchParams.get('pgbouncer') ?? '')) return 'transaction';
  if (parsed.port === TRANSACTION_POOLER_PORT) return 'transaction';
  return 'none';
}

/** The URL without the non-libpq parameters above (unchanged when there are none). */
export function stripPoolerParams(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  const present = NON_LIBPQ_PARAMS.filter((p) => parsed.searchParams.has(p));
  if (present.length === 0) return url;
  for (const p of present) parsed.searchParams.delete(p);
  return parsed.toString();
}
