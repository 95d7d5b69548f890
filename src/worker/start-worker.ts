/**
 * The queue worker: a BullMQ Worker on `followup_tasks` whose processor is the
 * shared executor. The job only carries the follow-up id; PostgreSQL decides
 * whether it may still be sent (the conditional claim), so a duplicate, stale or
 * resurrected job can never send twice.
 */
import { Worker } from 'bullmq';
import type { Logger } from '../log.js';
import { makeRedisConnection, type QueueSettings } from '../queue/queue-link.js';
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
}): QueueWorker {
  const executor: ExecutorDeps =
    options.batchTransitions === false || options.executor.transitions
      ? options.executor
      : { ...options.executor, transitions: makeBatchedTransitions(options.executor.db) };
  const connection = makeRedisConnection(options.queue, options.log, { blocking: true });
  const lockDuration = options.lockDurationMs ?? 30_000;
  const worker = new Worker(
    options.queue.queueName,
    async (job) => {
      const id = (job.data as { followupId?: unknown }).followupId;
      if (typeof id !== 'string') {
        options.log.warn({ jobId: job.id }, 'job without a follow-up id; dropped');
        return 'skipped';
      }
      return executeFollowup(executor, id);
    },
    {
      connection,
      prefix: options.queue.prefix,
      concurrency: options.concurrency,
      lockDuration,
      stalledInterval: lockDuration,
      maxStalledCount: 5,
      autorun: true,
    },
  );
  worker.on('error', (error) => options.log.warn({ err: { message: error.message } }, 'queue worker error'));
  worker.on('failed', (job, error) =>
    options.log.warn({ jobId: job?.id, err: error }, 'job failed; BullMQ retries it, the sweeper covers the rest'),
  );
  return {
    worker,
    async stop(timeoutMs = 10_000) {
      const graceful = worker.close();
      const timedOut = await Promise.race([
        graceful.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), timeoutMs).unref()),
      ]);
      // Jobs still running after the grace period are left to their leases: the sweeper reconciles them.
      if (timedOut) await worker.close(true).catch(() => undefined);
      connection.disconnect();
    },
  };
}
