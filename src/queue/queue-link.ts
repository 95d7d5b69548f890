/**
 * The relay's (and the API's health check's) link to the BullMQ queue.
 * Redis is a conveyor belt that may vanish at any moment, so every call here is
 * bounded by a timeout: a hung Redis counts as down and never stalls the relay.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';

export interface QueueSettings {
  url: string;
  queueName: string;
  prefix: string;
  commandTimeoutMs: number;
  /** Follow-ups per job (default DEFAULT_JOB_SIZE): one job carries a chunk of a relay batch. */
  jobSize?: number;
}

export const JOB_NAME = 'send-followups';
export const DEFAULT_JOB_SIZE = 20;

/** What a job carries: the follow-up ids, nothing else (PostgreSQL holds the rest). */
export interface JobData {
  followupIds: string[];
  /** Follow-ups that just came due while a backlog drains: the worker sends them first. */
  urgent?: boolean;
}

/** The ids of a job; `{ followupId }` is the one-per-job shape of earlier versions, still accepted. */
export function followupIdsOf(data: unknown): string[] | null {
  const d = data as { followupIds?: unknown; followupId?: unknown } | null;
  if (Array.isArray(d?.followupIds) && d.followupIds.every((id) => typeof id === 'string')) return d.followupIds as string[];
  if (typeof d?.followupId === 'string') return [d.followupId];
  return null;
}

/** BullMQ refuses all-digit job ids; ours are a digest of the chunk's follow-up ids. */
export function jobIdForChunk(ids: string[]): string {
  if (ids.length === 1) return `fu-${ids[0]}`;
  return `fb-${createHash('sha1').update(ids.join(',')).digest('base64url')}`;
}

/** Splits `ids` into jobs of at most `size`, keeping the ones in `first` apart (they go to the head). */
export function chunkIds(ids: string[], size: number, first?: ReadonlySet<string>): Array<{ ids: string[]; urgent: boolean }> {
  const urgent = first ? ids.filter((id) => first.has(id)) : [];
  const rest = first ? ids.filter((id) => !first.has(id)) : ids;
  const chunks: Array<{ ids: string[]; urgent: boolean }> = [];
  for (const [list, isUrgent] of [[urgent, true], [rest, false]] as const) {
    for (let i = 0; i < list.length; i += size) chunks.push({ ids: list.slice(i, i + size), urgent: isUrgent });
  }
  return chunks;
}

export interface QueueLink {
  /**
   * Adds the follow-ups as jobs of up to `jobSize` ids each, in one `addBulk`. The job id is
   * derived from the chunk's ids, so publishing the same chunk again while its job is still
   * there is a no-op; any other duplicate is harmless, because the worker's claim is
   * conditional. `urgent` ones go to the head of the queue (LIFO) in jobs of their own:
   * follow-ups that just came due while a backlog is being drained must not wait behind it.
   */
  publish(followupIds: string[], options?: { urgent?: ReadonlySet<string> }): Promise<void>;
  /** Follow-ups per job. */
  readonly jobSize: number;
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
    // ioredis 6 speaks RESP3 by default; BullMQ's Lua scripts are written and tested against RESP2
    // replies (a Lua `false` is nil there, 0 under RESP3's legacy mapping).
    protocol: 2,
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
  const jobSize = Math.max(1, settings.jobSize ?? DEFAULT_JOB_SIZE);

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
    jobSize,
    async publish(followupIds, publishOptions) {
      if (followupIds.length === 0) return;
      await whenReady();
      await withTimeout(
        queue.addBulk(
          chunkIds(followupIds, jobSize, publishOptions?.urgent).map((chunk) => ({
            name: JOB_NAME,
            data: (chunk.urgent ? { followupIds: chunk.ids, urgent: true } : { followupIds: chunk.ids }) satisfies JobData,
            opts: {
              jobId: jobIdForChunk(chunk.ids),
              ...(chunk.urgent ? { lifo: true } : {}),
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
