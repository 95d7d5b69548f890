/**
 * A PostgreSQL cluster of the chaos run's own: initdb + pg_ctl as the `postgres`
 * user (we run as root, and PostgreSQL refuses to), in a temp dir that user owns,
 * on a free port, trust auth on 127.0.0.1 only. `restart()` is a fast shutdown and
 * start, as an operator's `pg_ctl restart -m fast` while claims and sends are in flight.
 *
 * `track_commit_timestamp` is on so the checks can order a reply's commit against
 * a claim's commit exactly (see checks.ts).
 */
import { execFile, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../test/helpers/redis-server.js';

const run = promisify(execFile);

export interface OwnPostgres {
  port: number;
  dir: string;
  /** URL of a database created with `createDatabase`. */
  urlFor(database: string): string;
  createDatabase(name: string): Promise<string>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function findBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL server binaries under ${root}/*/bin`);
  return join(root, versions[0]!, 'bin');
}

function uidOf(user: string): Promise<{ uid: number; gid: number }> {
  return Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]).then(([u, g]) => ({
    uid: Number(u.stdout.trim()),
    gid: Number(g.stdout.trim()),
  }));
}

export async function startOwnPostgres(options: { maxConnections?: number } = {}): Promise<OwnPostgres> {
  const bin = findBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'followups-chaos-pg-'));
  const { uid, gid } = await uidOf('postgres');
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const port = await freePort();
  // stdio ignored and the exit awaited (not 'close'): the postmaster inherits pg_ctl's
  // stdio, and a pipe held by it would keep the call waiting forever.
  const asPostgres = (cmd: string, args: string[], timeoutMs = 90_000) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`${cmd} ${args[0] ?? ''} exited with ${code ?? signal}`));
      });
    });

  const settings = [
    `-c port=${port}`,
    `-c listen_addresses=127.0.0.1`,
    `-c unix_socket_directories=${dir}`,
    `-c max_connections=${options.maxConnections ?? 250}`,
    `-c track_commit_timestamp=on`,
    `-c shared_buffers=128MB`,
  ].join(' ');
  let started = false;

  const start = async () => {
    await asPostgres('pg_ctl', ['start', '-w', '-t', '60', '-D', data, '-l', join(dir, 'postgres.log'), '-o', settings]);
    started = true;
  };

  try {
    await asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    await start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const urlFor = (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  return {
    port,
    dir,
    urlFor,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: urlFor('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
      return urlFor(name);
    },
    async restart() {
      await asPostgres('pg_ctl', ['restart', '-w', '-t', '60', '-m', 'fast', '-D', data, '-o', settings]);
    },
    async stop() {
      try {
        if (started) await asPostgres('pg_ctl', ['stop', '-w', '-t', '30', '-m', 'immediate', '-D', data]);
      } catch {
        // Not running (or already gone): the directory goes anyway.
      } finally {
        started = false;
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
