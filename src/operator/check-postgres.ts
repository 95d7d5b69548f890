/**
 * `doctor`'s database checks: reachable and which version, migrations current
 * against the files this code ships (src/db/migrations), the pooler in between
 * (detectPooler), whether NOTIFY reaches a LISTEN connection (the relay's wake-up),
 * and this machine's clock against PostgreSQL's `now()` (leases and due times
 * compare the two).
 */
import type { Config } from '../config.js';
import type { Db } from '../db/db.js';
import { readDbError } from '../db/db-errors.js';
import { readMigrations } from '../db/migrate.js';
import { probeNotify } from '../db/notify-probe.js';
import { detectPooler } from '../database-url.js';
import { type Check, fail, ok, warn } from './check.js';

/** Past this, leases and due times disagree noticeably between this machine and the database. */
export const MAX_CLOCK_SKEW_MS = 2_000;
const NOTIFY_TIMEOUT_MS = 3_000;

export async function checkPostgres(ctx: { db: Db; config: Config }, clock: () => number = Date.now): Promise<Check[]> {
  const where = ctx.config.database.url ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite (${ctx.config.database.dataDir})`;
  let version: string;
  try {
    const { rows } = await ctx.db.query<{ version: string }>('SELECT version() AS version');
    version = rows[0]!.version.split(' on ')[0]!.split(',')[0]!;
  } catch (error) {
    return [
      fail('postgres.reachable', `${where}: ${(error as Error).message}`, 'check DATABASE_URL (host, port, user, password, database) and that PostgreSQL is running', true),
    ];
  }
  const checks: Check[] = [ok('postgres.reachable', `${where}: ${version}`)];
  checks.push(await checkMigrations(ctx.db));

  if (ctx.config.database.url) {
    const pooler = detectPooler(ctx.config.database.url, ctx.config.database.pooler);
    checks.push(
      pooler === 'transaction'
        ? warn('postgres.pooler', 'transaction-mode pooler detected: LISTEN/NOTIFY does not pass through it', 'the relay polls every 200 ms instead of waiting for NOTIFY (up to 200 ms of extra delay and 5 queries a second); give the relay the session (5432) or direct connection string to avoid it')
        : ok('postgres.pooler', pooler === 'none' ? 'no pooler detected (direct connection)' : `${pooler}-mode pooler`),
    );
  } else {
    checks.push(ok('postgres.pooler', 'embedded database: no pooler'));
  }

  const notified = await probeNotify(ctx.db, NOTIFY_TIMEOUT_MS);
  checks.push(
    notified
      ? ok('postgres.notify', 'a NOTIFY reached a LISTEN connection')
      : warn('postgres.notify', `no NOTIFY arrived within ${NOTIFY_TIMEOUT_MS} ms`, 'connect to PostgreSQL directly or through a session-mode pooler; without NOTIFY the relay polls every 200 ms instead'),
  );

  checks.push(await checkClock(ctx.db, clock));
  return checks;
}

async function checkMigrations(db: Db): Promise<Check> {
  const files = readMigrations();
  let applied: number[];
  try {
    const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    applied = rows.map((r) => Number(r.version));
  } catch (error) {
    if (readDbError(error).undefinedTable) {
      return fail('postgres.migrations', 'no migration has been applied (no schema_migrations table)', 'run `followups migrate`');
    }
    throw error;
  }
  const done = new Set(applied);
  const missing = files.filter((m) => !done.has(m.version)).map((m) => m.name);
  const known = new Set(files.map((m) => m.version));
  const unknown = applied.filter((v) => !known.has(v));
  if (missing.length > 0) {
    return fail('postgres.migrations', `${missing.length} of ${files.length} migrations not applied: ${missing.join(', ')}`, 'run `followups migrate` (every role also migrates on start unless --no-migrate)');
  }
  if (unknown.length > 0) {
    return warn('postgres.migrations', `the database has migrations this code does not know (${unknown.join(', ')}): it was migrated by a newer version`, 'run the same version of nautico-followups everywhere');
  }
  return ok('postgres.migrations', `all ${files.length} migrations applied (latest ${files.at(-1)?.name ?? 'none'})`);
}

async function checkClock(db: Db, clock: () => number): Promise<Check> {
  const before = clock();
  const { rows } = await db.query<{ ms: string }>(`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint::text AS ms`);
  const after = clock();
  const skew = Math.round((before + after) / 2 - Number(rows[0]!.ms));
  const detail = `this machine is ${Math.abs(skew)} ms ${skew >= 0 ? 'ahead of' : 'behind'} PostgreSQL (round trip ${after - before} ms)`;
  return Math.abs(skew) > MAX_CLOCK_SKEW_MS
    ? fail('clock', detail, 'synchronise both machines with NTP (chrony or systemd-timesyncd): leases and due times compare the two clocks')
    : ok('clock', detail);
}
