/**
 * Real Redis topologies of the test's own, on free ports: a Sentinel setup (one
 * master, one replica, three sentinels) and a three-master Cluster, built from
 * the same redis-server binary as production would run. Everything started here
 * is killed and its directory removed by stop().
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, waitForRedis } from './redis-server.js';

const run = promisify(execFile);

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One-shot command against 127.0.0.1:port. */
export async function redisCommand(port: number, ...args: Array<string | number>): Promise<unknown> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    client.disconnect();
  }
}

class Processes {
  readonly children: ChildProcess[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'followups-topology-'));

  spawn(args: string[]): ChildProcess {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.children.push(child);
    return child;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface SentinelSetup {
  masterName: string;
  /** `host:port,…` for REDIS_SENTINELS. */
  sentinels: string;
  sentinelPorts: number[];
  /** The data nodes' ports: [first master, first replica]. */
  dataPorts: number[];
  /** The master's port as the sentinels see it now. */
  masterPort(): Promise<number>;
  /** SENTINEL FAILOVER, then waits until the sentinels name the new master and it accepts writes. */
  failover(): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

/** A sentinel (`redis-server --sentinel`) monitoring 127.0.0.1:masterPort; quick to judge a master down. */
async function spawnSentinel(processes: Processes, masterName: string, masterPort: number, quorum: number): Promise<number> {
  const port = await freePort();
  const conf = join(processes.dir, `sentinel-${port}.conf`);
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${processes.dir}`,
      `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} ${quorum}`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 10000`,
      `sentinel parallel-syncs ${masterName} 1`,
      '',
    ].join('\n'),
  );
  processes.spawn([conf, '--sentinel']);
  await until(`sentinel on ${port}`, async () => (await redisCommand(port, 'PING')) === 'PONG');
  return port;
}

export async function startSentinelSetup(): Promise<SentinelSetup> {
  const processes = new Processes();
  const masterName = 'followups-master';
  try {
    const [master, replica] = [await freePort(), await freePort()];
    const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', processes.dir];
    processes.spawn(['--port', String(master), ...common, '--dbfilename', `m-${master}.rdb`]);
    await waitForRedis(`redis://127.0.0.1:${master}`);
    processes.spawn(['--port', String(replica), ...common, '--dbfilename', `r-${replica}.rdb`, '--replicaof', '127.0.0.1', String(master)]);
    await waitForRedis(`redis://127.0.0.1:${replica}`);
    await until('replica in sync', async () => /master_link_status:up/.test(String(await redisCommand(replica, 'INFO', 'replication'))));
    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) sentinelPorts.push(await spawnSentinel(processes, masterName, master, 2));
    // Every sentinel knows the replica and the other sentinels before anyone relies on a failover.
    await until('sentinels see the replica and each other', async () => {
      for (const port of sentinelPorts) {
        const replicas = (await redisCommand(port, 'SENTINEL', 'REPLICAS', masterName)) as unknown[];
        const others = (await redisCommand(port, 'SENTINEL', 'SENTINELS', masterName)) as unknown[];
        if (replicas.length < 1 || others.length < 2) return false;
      }
      return true;
    });
    const masterPort = async () => {
      const addr = (await redisCommand(sentinelPorts[0]!, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as [string, string];
      return Number(addr[1]);
    };
    return {
      masterName,
      sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
      sentinelPorts,
      dataPorts: [master, replica],
      masterPort,
      async failover() {
        const from = await masterPort();
        await redisCommand(sentinelPorts[0]!, 'SENTINEL', 'FAILOVER', masterName);
        const to = await until('the sentinels name a new master', async () => {
          const now = await masterPort();
          return now !== from ? now : null;
        });
        await until('the new master accepts writes', async () => /role:master/.test(String(await redisCommand(to, 'INFO', 'replication'))));
        return { from, to };
      },
      stop: () => processes.stop(),
    };
  } catch (error) {
    await processes.stop();
    throw error;
  }
}

/** One sentinel watching an existing Redis (for "a Sentinel's port given as REDIS_URL"). */
export async function startLoneSentinel(masterPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const processes = new Processes();
  try {
    const port = await spawnSentinel(processes, 'lone', masterPort, 1);
    return { port, stop: () => processes.stop() };
  } catch (error) {
    await processes.stop();
    throw error;
  }
}

export interface ClusterSetup {
  /** `host:port,…` for REDIS_CLUSTER_NODES. */
  nodes: string;
  ports: number[];
  stop(): Promise<void>;
}

/** `count` cluster-enabled nodes; with `create`, joined by `redis-cli --cluster create` (masters only). */
export async function startCluster(options: { count?: number; create?: boolean } = {}): Promise<ClusterSetup> {
  const processes = new Processes();
  const count = options.count ?? 3;
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      ports.push(port);
      processes.spawn([
        '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', processes.dir,
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000',
      ]);
    }
    for (const port of ports) await waitForRedis(`redis://127.0.0.1:${port}`);
    if (options.create !== false) {
      await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
      await until('cluster_state:ok on every node', async () => {
        for (const port of ports) if (!/cluster_state:ok/.test(String(await redisCommand(port, 'CLUSTER', 'INFO')))) return false;
        return true;
      });
    }
    return { nodes: ports.map((p) => `127.0.0.1:${p}`).join(','), ports, stop: () => processes.stop() };
  } catch (error) {
    await processes.stop();
    throw error;
  }
}
