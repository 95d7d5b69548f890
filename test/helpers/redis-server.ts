/**
 * A redis-server of the test's own, on a free port, so a test can stop, hang
 * (SIGSTOP), flush or restart it without touching the shared instance.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once the Redis at `url` answers PONG (with AOF it answers LOADING until replayed). */
export async function waitForRedis(url: string, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis at ${url} did not start`);
}

export interface OwnRedis {
  port: number;
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** SIGSTOP: the server keeps its socket but answers nothing (a hung Redis). */
  freeze(): void;
  thaw(): void;
  flushAll(): Promise<void>;
}

/** `args`: more redis-server arguments, e.g. ['--requirepass', 'secret'] or ['--maxmemory-policy', 'allkeys-lru']. */
export async function startOwnRedis(options: { appendonly?: boolean; args?: string[]; password?: string } = {}): Promise<OwnRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'followups-redis-'));
  let child: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;
  const adminUrl = options.password ? `redis://:${encodeURIComponent(options.password)}@127.0.0.1:${port}` : url;

  const waitReady = () => waitForRedis(adminUrl);

  const redis: OwnRedis = {
    port,
    url,
    async start() {
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', options.appendonly ? 'yes' : 'no', '--dir', dir, ...(options.args ?? [])],
        { stdio: 'ignore' },
      );
      await waitReady();
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      c.kill('SIGCONT');
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
    freeze() {
      child?.kill('SIGSTOP');
    },
    thaw() {
      child?.kill('SIGCONT');
    },
    async flushAll() {
      const c = new Redis(adminUrl, { maxRetriesPerRequest: 1 });
      try {
        await c.flushall();
      } finally {
        c.disconnect();
      }
    },
  };
  await redis.start();
  return redis;
}
