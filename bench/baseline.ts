/**
 * The baselines, each run in its own child process so it gets the machine the
 * way our roles do: bare BullMQ (addBulk + a no-op Worker) on the same Redis,
 * and Graphile Worker (the Postgres-only queue) doing the same no-op jobs.
 *
 *   node --import tsx bench/baseline.ts <bullmq|graphile> <throughput|lateness> '<json options>'
 *
 * Prints one line `RESULT {...}` on stdout.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Logger, makeWorkerUtils, run, type Task } from 'graphile-worker';

const GRAPHILE_MAX_CONCURRENCY = 48;

const quiet = new Logger(() => () => undefined);

interface Options {
  count: number;
  concurrency: number;
  chunk: number;
  /** lateness: jobs per second and lead time before the first one is due. */
  ratePerSecond?: number;
  leadMs?: number;
  redisUrl?: string;
  queueName?: string;
  prefix?: string;
  databaseUrl?: string;
  pollIntervalMs?: number;
}

const [kind, mode, raw] = process.argv.slice(2);
const options = JSON.parse(raw ?? '{}') as Options;

function done(result: Record<string, unknown>) {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

async function bullmq() {
  const connection = new Redis(options.redisUrl!, { maxRetriesPerRequest: null, protocol: 2 });
  const workerConnection = new Redis(options.redisUrl!, { maxRetriesPerRequest: null, protocol: 2 });
  const queue = new Queue(options.queueName!, { connection, prefix: options.prefix });
  const lateness: number[] = [];
  let completed = 0;
  let lastAt = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));
  const worker = new Worker(
    options.queueName!,
    async (job) => {
      if (mode === 'lateness') lateness.push(Date.now() - (job.data as { dueAt: number }).dueAt);
    },
    { connection: workerConnection, prefix: options.prefix, concurrency: options.concurrency },
  );
  worker.on('completed', () => {
    completed++;
    lastAt = Date.now();
    if (completed === options.count) finish();
  });
  await worker.waitUntilReady();
  const opts = { removeOnComplete: true, removeOnFail: true, attempts: 5, backoff: { type: 'exponential' as const, delay: 1_000 } };
  const t0 = Date.now();
  if (mode === 'throughput') {
    for (let i = 0; i < options.count; i += options.chunk) {
      const n = Math.min(options.chunk, options.count - i);
      await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { n: i + k }, opts: { ...opts, jobId: `j${i + k}` } })));
    }
  } else {
    const first = t0 + options.leadMs!;
    const spacing = 1000 / options.ratePerSecond!;
    for (let i = 0; i < options.count; i += options.chunk) {
      const n = Math.min(options.chunk, options.count - i);
      const now = Date.now();
      await queue.addBulk(
        Array.from({ length: n }, (_, k) => {
          const dueAt = Math.round(first + (i + k) * spacing);
          return { name: 'noop', data: { dueAt }, opts: { ...opts, jobId: `j${i + k}`, delay: Math.max(0, dueAt - now) } };
        }),
      );
    }
  }
  const addedMs = Date.now() - t0;
  await finished;
  const seconds = (lastAt - t0) / 1000;
  await worker.close();
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  connection.disconnect();
  workerConnection.disconnect();
  done({ completed, seconds, perSecond: options.count / seconds, addMs: addedMs, lateness: mode === 'lateness' ? lateness : undefined });
}

async function graphile() {
  const lateness: number[] = [];
  let completed = 0;
  let lastAt = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));
  const noop: Task = async (payload) => {
    if (mode === 'lateness') lateness.push(Date.now() - (payload as { dueAt: number }).dueAt);
  };
  const runner = await run({
    connectionString: options.databaseUrl!,
    // Graphile Worker holds a connection per job in flight: above ~50 it would exhaust the server's
    // max_connections (100 here, shared with everything else), so it runs at most 48 at once.
    concurrency: Math.min(options.concurrency, GRAPHILE_MAX_CONCURRENCY),
    maxPoolSize: Math.min(options.concurrency, GRAPHILE_MAX_CONCURRENCY) + 2,
    pollInterval: options.pollIntervalMs ?? 2_000,
    noHandleSignals: true,
    taskList: { noop },
    logger: quiet,
  });
  runner.events.on('job:success', () => {
    completed++;
    lastAt = Date.now();
    if (completed === options.count) finish();
  });
  const utils = await makeWorkerUtils({ connectionString: options.databaseUrl!, logger: quiet });
  const t0 = Date.now();
  if (mode === 'throughput') {
    for (let i = 0; i < options.count; i += options.chunk) {
      const n = Math.min(options.chunk, options.count - i);
      await utils.addJobs(Array.from({ length: n }, (_, k) => ({ identifier: 'noop', payload: { n: i + k } })));
    }
  } else {
    const first = t0 + options.leadMs!;
    const spacing = 1000 / options.ratePerSecond!;
    for (let i = 0; i < options.count; i += options.chunk) {
      const n = Math.min(options.chunk, options.count - i);
      await utils.addJobs(
        Array.from({ length: n }, (_, k) => {
          const dueAt = Math.round(first + (i + k) * spacing);
          return { identifier: 'noop', payload: { dueAt }, runAt: new Date(dueAt) };
        }),
      );
    }
  }
  const addedMs = Date.now() - t0;
  await finished;
  const seconds = (lastAt - t0) / 1000;
  await runner.stop();
  await utils.release();
  done({ completed, seconds, perSecond: options.count / seconds, addMs: addedMs, concurrency: Math.min(options.concurrency, GRAPHILE_MAX_CONCURRENCY), lateness: mode === 'lateness' ? lateness : undefined });
}

(kind === 'bullmq' ? bullmq() : graphile())
  .then(() => process.exit(0))
  .catch((error) => {
    process.stderr.write(`${(error as Error).stack}\n`);
    process.exit(1);
  });
