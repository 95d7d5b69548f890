/**
 * The relay's (and the API's health check's) link to the BullMQ queue.
 * Redis is a conveyor belt that may vanish at any moment, so every call here is
 * bounded by a timeout: a hung Redis counts as down and never stalls the relay.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { jobIdFor } from '../followups/followup.js';
import type { Logger } from '../log.js';

export interface QueueSettings {
  url: string;
  queueName: string;
  prefix: string;
  commandTimeoutMs: number;
}

export const JOB_NAME = 'send-followup';

export interface QueueLink {
  /**
   * Adds one job per follow-up (job id derived from the follow-up id, so a re-publish is a no-op).
   * `urgent` ones go to the head of the queue (LIFO): follow-ups that just came due while a
   * backlog is being drained must not wait behind it.
   */
  publish(followupIds: string[], options?: { urgent?: ReadonlySet<string> }): Promise<void>;
  /** Jobs waiting to be picked up, or null when Redis does not answer (the relay's back-pressure). */
  waiting(): Promise<number | null>;
  ping(): Promise<boolean>;
  /** Waiting + active + delayed jobs, or null when Redis does not answer. */
  depth(): Promise<{ waiting: number; active: number; delayed: number } | null>;
  close(): Promise<void>;
  readonly queue: Queue;
}

export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError';
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueueUnavailableError(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export function makeRedisConnection(
  settings: QueueSettings,
  log: Logger,
  options: { blocking: boolean },
): Redis {
  const connection = new Redis(settings.url, {
    // Workers block on BRPOPLPUSH-style calls and must wait for Redis forever (BullMQ requires null);
    // producers fail fast instead, so the relay can switch to direct mode.
    maxRetriesPerRequest: options.blocking ? null : 1,
    enableOfflineQueue: options.blocking,
    connectTimeout: Math.max(1_000, settings.commandTimeoutMs),
    commandTimeout: options.blocking ? undefined : settings.commandTimeoutMs,
    retryStrategy: (times) => Math.min(200 * times, 2_000),
    lazyConnect: false,
  });
  let lastErrorLog = 0;
  connection.on('error', (error) => {
    // Redis down produces an error per reconnect attempt; log one a minute.
    if (Date.now() - lastErrorLog > 60_000) {
      lastErrorLog = Date.now();
      log.warn({ err: { message: error.message } }, 'redis connection error');
    }
  });
  return connection;
}

export function makeQueueLink(settings: QueueSettings, log: Logger): QueueLink {
  const connection = makeRedisConnection(settings, log, { blocking: false });
  const queue = new Queue(settings.queueName, { connection, prefix: settings.prefix });
  queue.on('error', () => undefined); // already logged by the connection
  const timeout = settings.commandTimeoutMs;

  /** A connection still being set up (start-up, reconnect) gets one timeout's worth of patience. */
  async function whenReady() {
    if (connection.status === 'ready') return;
    if (connection.status === 'end' || connection.status === 'close') {
      throw new QueueUnavailableError(`redis is ${connection.status}`);
    }
    await withTimeout(
      new Promise<void>((resolve) => connection.once('ready', () => resolve())),
      timeout,
      `waiting for redis (${connection.status})`,
    );
  }

  return {
    queue,
    async publish(followupIds, publishOptions) {
      if (followupIds.length === 0) return;
      const urgent = publishOptions?.urgent;
      await whenReady();
      await withTimeout(
        queue.addBulk(
          followupIds.map((id) => ({
            name: JOB_NAME,
            data: { followupId: id },
            opts: {
              jobId: jobIdFor(id),
              ...(urgent?.has(id) ? { lifo: true } : {}),
              // Finished jobs must not pile up in Redis; PostgreSQL keeps the history.
              removeOnComplete: true,
              removeOnFail: true,
              attempts: 5,
              backoff: { type: 'exponential', delay: 1_000 },
            },
          })),
        ),
        timeout * 2,
        'addBulk',
      );
    },
    async waiting() {
      try {
        await whenReady();
        return await withTimeout(queue.getWaitingCount(), timeout, 'getWaitingCount');
      } catch {
        return null;
      }
    },
    async ping() {
      try {
        await whenReady();
        return (await withTimeout(connection.ping(), timeout, 'ping')) === 'PONG';
      } catch {
        return false;
      }
    },
    async depth() {
      try {
        await whenReady();
        const counts = await withTimeout(queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized'), timeout, 'getJobCounts');
        return { waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0), active: counts.active ?? 0, delayed: counts.delayed ?? 0 };
      } catch {
        return null;
      }
    },
    async close() {
      await withTimeout(queue.close(), timeout, 'queue close').catch(() => undefined);
      connection.disconnect();
    },
  };
}
