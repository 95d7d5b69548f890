/**
 * A real PgBouncer of the test's own, on a free port, in front of the shared PostgreSQL
 * (127.0.0.1:5432): its own ini and userlist in a temporary directory, in transaction or
 * session mode with a small server pool — what Supabase's pooler looks like to us.
 * PgBouncer refuses to run as root: as root it is started as `postgres` (runuser).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PG_ADMIN_URL } from './db.js';
import { freePort } from './redis-server.js';

export const PGBOUNCER_USER = 'root';
export const PGBOUNCER_PASSWORD = 'bouncer-secret';

export interface OwnPgBouncer {
  port: number;
  mode: 'transaction' | 'session';
  /** A connection string to `database` through this PgBouncer (right password unless given one). */
  url(database: string, password?: string): string;
  /** PgBouncer's own log so far (for a failing test's message). */
  log(): string;
  stop(): Promise<void>;
}

function pgbouncerBinary(): string {
  for (const candidate of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer']) if (existsSync(candidate)) return candidate;
  try {
    return execFileSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('pgbouncer is not installed (apt-get install -y pgbouncer; .ci/run does it)');
  }
}

export async function startOwnPgBouncer(options: { mode: 'transaction' | 'session'; poolSize?: number; maxClientConn?: number }): Promise<OwnPgBouncer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'followups-pgbouncer-'));
  // PgBouncer runs as `postgres` and writes its log and pid file here.
  chmodSync(dir, 0o777);
  const upstream = new URL(PG_ADMIN_URL);
  const ini = join(dir, 'pgbouncer.ini');
  const logFile = join(dir, 'pgbouncer.log');
  writeFileSync(join(dir, 'userlist.txt'), `"${PGBOUNCER_USER}" "${PGBOUNCER_PASSWORD}"\n`, { mode: 0o644 });
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = md5',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      `pool_mode = ${options.mode}`,
      `default_pool_size = ${options.poolSize ?? 5}`,
      'min_pool_size = 0',
      'reserve_pool_size = 0',
      `max_client_conn = ${options.maxClientConn ?? 500}`,
      `logfile = ${logFile}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      // Its defaults, written out: a client waiting for a server connection gives up after 120 s.
      'query_wait_timeout = 120',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const binary = pgbouncerBinary();
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = asRoot
    ? spawn('runuser', ['-u', 'postgres', '--', binary, ini], { stdio: 'ignore', detached: true })
    : spawn(binary, [ini], { stdio: 'ignore', detached: true });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const url = (database: string, password = PGBOUNCER_PASSWORD) =>
    `postgresql://${PGBOUNCER_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  const readLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  const stop = async () => {
    if (!exited) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        process.kill(-child.pid!, 'SIGINT');
      } catch {
        child.kill('SIGINT');
      }
      const killer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 3_000);
      await gone;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  // Ready when a login through it reaches PostgreSQL.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      const log = readLog();
      await stop();
      throw new Error(`pgbouncer exited at start:\n${log}`);
    }
    const probe = new pg.Client({ connectionString: url('postgres'), connectionTimeoutMillis: 1_000 });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.query('SELECT 1');
      await probe.end();
      break;
    } catch (error) {
      await probe.end().catch(() => undefined);
      if (Date.now() > deadline) {
        const log = readLog();
        await stop();
        throw new Error(`pgbouncer did not start: ${(error as Error).message}\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { port, mode: options.mode, url, log: readLog, stop };
}
