/**
 * A redis-server of the chaos run's own, configured as production is (AOF on,
 * fsync every second, noeviction), on a free port, with its data in a temp dir.
 * It can be stopped and started again with its data (the AOF replays) or empty
 * (the AOF dir deleted first), as a crashed or re-provisioned Redis would come back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitForRedis } from '../test/helpers/redis-server.js';

export interface OwnRedis {
  url: string;
  port: number;
  start(): Promise<void>;
  /** SIGTERM: redis-server fsyncs the AOF and exits (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** Deletes the data dir's contents: the next start is empty. */
  wipe(): void;
  /** Stops and removes the data dir. */
  destroy(): Promise<void>;
}

export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'followups-chaos-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const waitReady = () => waitForRedis(url);

  const redis: OwnRedis = {
    url,
    port,
    async start() {
      child = spawn(
        'redis-server',
        [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--save', '',
          '--appendonly', 'yes',
          '--appendfsync', 'everysec',
          '--maxmemory-policy', 'noeviction',
          '--dir', dir,
        ],
        { stdio: 'ignore' },
      );
      await waitReady();
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
    wipe() {
      rmSync(dir, { recursive: true, force: true });
      // redis-server wants its --dir to exist.
      mkdirSync(dir, { recursive: true });
    },
    async destroy() {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await redis.start();
  return redis;
}

