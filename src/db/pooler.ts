/**
 * Which kind of connection pooler sits between us and PostgreSQL. Under a
 * transaction-mode pooler (PgBouncer `pool_mode = transaction`, Supabase's
 * pooler on port 6543) LISTEN/NOTIFY and other session state do not work.
 *
 * A minimal version: `explicit` (DATABASE_POOLER) wins; otherwise
 * `?pgbouncer=true` or port 6543 means transaction mode, anything else none.
 */
export type PoolerMode = 'none' | 'transaction' | 'session';

export function detectPooler(url: string, explicit?: string): PoolerMode {
  if (explicit === 'none' || explicit === 'transaction' || explicit === 'session') return explicit;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'none';
  }
  if (parsed.searchParams.get('pgbouncer') === 'true') return 'transaction';
  if (parsed.port === '6543') return 'transaction';
  return 'none';
}
