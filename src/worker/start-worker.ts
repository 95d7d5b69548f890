/**
 * The queue worker: a BullMQ Worker on `followup_tasks` whose processor is the
 * shared executor. A job carries only follow-up ids (a chunk of a relay batch);
 * PostgreSQL decides whether each may still be sent (the conditional claim), so
 * a duplicate, stale or resurrected job can never send twice. A job is tried once:
 * retrying is the database's (the row's attempts and lease), never BullMQ's as well.
 *
 * Sends in flight are bounded per process (`concurrency`), whatever the job
 * sizes. The worker takes another job while it holds fewer than 1.5 ×
 * `concurrency` follow-ups: the next ones are ready when a send finishes, without
 * hoarding a backlog another worker could be sending, or that a follow-up coming
 * due now would wait behind. (At a trickle the relay publishes jobs of one or two
 * follow-ups; during a backlog, full chunks.) Urgent jobs' follow-ups — just
 * came due while a backlog drains — jump the line of sends.
 */
import { Worker } from 'bullmq';
import PQueue from 'p-queue';
import type { Logger } from '../log.js';
import type { RoleHealth } from '../role-health.js';
import { DEFAULT_JOB_SIZE, followupIdsOf, type JobData, makeRedisConnection, type QueueSettings } from '../queue/queue-link.js';
import { CONFIGURATION_ERRORS, makeRedisErrorLog } from '../queue/redis-connection.js';
import { makeBatchedTransitions } from './batch-transitions.js';
import { type ExecutorDeps, executeFollowup } from './execute-followup.js';

export interface QueueWorker {
  /** Stop taking jobs, let the ones in flight finish (up to `timeoutMs`), close. */
  stop(timeoutMs?: number): Promise<void>;
  readonly worker: Worker;
}

export function startQueueWorker(options: {
  queue: QueueSettings;
  concurrency: number;
  executor: ExecutorDeps;
  log: Logger;
  /** BullMQ lock duration: a job whose worker died is handed to another after about this long. */
  lockDurationMs?: number;
  /** Coalesce the claims and completions of concurrent jobs into one statement each (default true). */
  batchTransitions?: boolean;
  /** Told of each job's success or failure (for /health/ready). */
  roleHealth?: RoleHealth;
}): QueueWorker {
  const batched = options.batchTransitions === false || options.executor.transitions ? undefined : makeBatchedTransitions(options.executor.db);
  const executor: ExecutorDeps = batched ? { ...options.executor, transitions: batched } : options.executor;
  const errors = makeRedisErrorLog(options.log);
  const connection = makeRedisConnection(options.queue, errors, { blocking: true, name: 'worker' });
  const lockDuration = options.lockDurationMs ?? 30_000;
  // Sends in flight, across jobs; follow-ups of urgent jobs (just came due during a backlog) go first.
  const sends = new PQueue({ concurrency: options.concurrency });
  const jobSize = Math.max(1, options.queue.jobSize ?? DEFAULT_JOB_SIZE);
  // Follow-ups in hand (in the jobs being processed): while fewer than this, take one more job.
  const inHandTarget = Math.ceil(1.5 * options.concurrency);
  let inHand = 0;
  let jobsInHand = 0;
  const holdMore = () => {
    const wanted = Math.max(1, jobsInHand + (inHand < inHandTarget ? 1 : 0));
    if (worker.concurrency !== wanted) worker.concurrency = wanted;
  };
  const worker: Worker = new Worker(
    options.queue.queueName,
    async (job) => {
      const ids = followupIdsOf(job.data);
      if (!ids) {
        options.log.warn({ jobId: job.id }, 'job without follow-up ids; dropped');
        return { skipped: 0 };
      }
      const priority = (job.data as JobData).urgent ? 1 : 0;
      inHand += ids.length;
      jobsInHand++;
      holdMore();
      const results = await Promise.allSettled(ids.map((id) => sends.add(() => executeFollowup(executor, id), { priority })));
      inHand -= ids.length;
      jobsInHand--;
      holdMore();
      const outcomes: Record<string, number> = {};
      const errors: unknown[] = [];
      for (const r of results) {
        if (r.status === 'fulfilled') outcomes[r.value] = (outcomes[r.value] ?? 0) + 1;
        else errors.push(r.reason);
      }
      // Not retried by BullMQ (one attempt per job): the executor handed every row it could to the
      // database's retry path; what it threw for is left in flight, and the sweeper recovers it.
      if (errors.length > 0) throw new AggregateError(errors, `${errors.length} of ${ids.length} follow-ups failed: ${(errors[0] as Error)?.message}`);
      return outcomes;
    },
    {
      connection,
      prefix: options.queue.prefix,
      concurrency: Math.min(options.concurrency, Math.ceil(options.concurrency / jobSize) + 1),
      lockDuration,
      stalledInterval: lockDuration,
      maxStalledCount: 5,
      autorun: true,
    },
  );
  // A Redis error that persists (configuration, a full or read-only Redis) must not spin the
  // worker's loop: it stops taking jobs for a while, twice as long each time up to a minute, and
  // tries again. Errors are logged at most once a minute per kind.
  let backoffMs = 0;
  let resumeTimer: NodeJS.Timeout | undefined;
  let stopping = false;
  const backOff = () => {
    if (resumeTimer || stopping) return;
    backoffMs = Math.min(backoffMs ? backoffMs * 2 : 1_000, 60_000);
    void worker.pause(true).catch(() => undefined);
    resumeTimer = setTimeout(() => {
      resumeTimer = undefined;
      if (!stopping) void worker.resume().catch(() => undefined);
    }, backoffMs);
  };
  worker.on('error', (error) => {
    const kind = errors.report(error, 'worker');
    if (CONFIGURATION_ERRORS.has(kind) || kind === 'full' || kind === 'read_only') backOff();
  });
  worker.on('completed', () => {
    backoffMs = 0;
    options.roleHealth?.succeeded('worker');
  });
  worker.on('failed', (job, error) => {
    // An AggregateError of the job's follow-ups: the first one says why.
    options.roleHealth?.failed('worker', error instanceof AggregateError ? (error.errors[0] ?? error) : error);
    if (errors.report(error, 'worker') === 'other') {
      options.log.warn({ jobId: job?.id, err: error }, 'job failed; its follow-ups are recovered by the sweeper after their lease');
    }
  });
  return {
    worker,
    async stop(timeoutMs = 10_000) {
      stopping = true;
      if (resumeTimer) clearTimeout(resumeTimer);
      const graceful = worker.close();
      const timedOut = await Promise.race([
        graceful.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), timeoutMs).unref()),
      ]);
      // Jobs still running after the grace period are left to their leases: the sweeper reconciles them.
      if (timedOut) await worker.close(true).catch(() => undefined);
      connection.disconnect();
      if (batched) options.log.info({ claims: batched.stats.claims, completions: batched.stats.completions }, 'worker stopped');
    },
  };
}
