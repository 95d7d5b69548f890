/**
 * The relay's (and the API's health check's) link to the BullMQ queue.
 * Redis is a conveyor belt that may vanish at any moment, so every call here is
 * bounded by a timeout: a hung Redis counts as down and never stalls the relay.
 */
import { Queue } from 'bullmq';
import { createHash } from 'node:crypto';
import type { RedisConnectionConfig } from '../config.js';
import { QueueUnavailableError, RedisConfigurationError, type RedisErrorKind } from '../errors.js';
import type { Logger } from '../log.js';
import { inspectRedis, type RedisInspection } from './inspect-redis.js';
import {
  CONFIGURATION_ERRORS,
  hintFor,
  makeRedisClient,
  makeRedisErrorLog,
  type RedisClient,
  type RedisErrorLog,
} from './redis-connection.js';
import { withTimeout as within } from '../timeout.js';

export interface QueueSettings {
  connection: RedisConnectionConfig;
  queueName: string;
  prefix: string;
  commandTimeoutMs: number;
  /** Follow-ups per job (default DEFAULT_JOB_SIZE): one job carries a chunk of a relay batch. */
  jobSize?: number;
  /** How often the Redis behind the queue is inspected (role, eviction policy, data lost; default 5 s). */
  inspectIntervalMs?: number;
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
  /**
   * Start-up check: throws RedisConfigurationError when Redis can never work as configured
   * (wrong password, ACL, wrong kind of server); warns about an eviction policy that may drop
   * jobs. A Redis that does not answer is not an error here: direct mode takes over.
   */
  verify(): Promise<void>;
  /** What is known now, without calling Redis (for /health/ready). */
  state(): QueueState;
  /**
   * `listener` runs when the queue's jobs may have been lost: Redis restarted (new run_id), came
   * back empty, was flushed, or evicted keys. Returns the unsubscribe function.
   */
  onJobsLost(listener: (reason: string) => void): () => void;
}

export interface QueueState {
  /** up: connected and writable; read_only / full: connected, writes refused; misconfigured: see cause. */
  status: 'up' | 'down' | 'read_only' | 'full' | 'misconfigured';
  /** Why it is not up: the kind and Redis's own words. */
  cause?: { kind: RedisErrorKind; message: string; since: string };
  /** The topology configured: standalone, sentinel or cluster. */
  mode: RedisConnectionConfig['mode'];
  /** maxmemory-policy; anything but noeviction may evict queued jobs. */
  evictionPolicy: string | null;
  warnings: string[];
  /** From the last inspection (every few seconds), with its time. */
  depth: { waiting: number; active: number; delayed: number } | null;
  checkedAt: string | null;
}


/** A Redis call that does not answer within `ms` is a QueueUnavailableError (src/timeout.ts). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return within(promise, ms, what, QueueUnavailableError);
}

/** The key the inspection writes on the queue's own slot (and the marker whose loss means lost jobs). */
export function markerKey(settings: Pick<QueueSettings, 'prefix' | 'queueName'>): string {
  return `${settings.prefix}:${settings.queueName}:followups-marker`;
}

/** The queue's Redis connection, built by the one factory; errors go to `errors`. */
export function makeRedisConnection(
  settings: QueueSettings,
  errors: RedisErrorLog,
  options: { blocking: boolean; name: string },
): RedisClient {
  return makeRedisClient(settings.connection, {
    use: options.blocking ? 'blocking' : 'commands',
    commandTimeoutMs: settings.commandTimeoutMs,
    name: options.name,
    errors,
  });
}

export function makeQueueLink(settings: QueueSettings, log: Logger): QueueLink {
  const errors = makeRedisErrorLog(log);
  const connection = makeRedisConnection(settings, errors, { blocking: false, name: 'queue' });
  const queue = new Queue(settings.queueName, { connection, prefix: settings.prefix });
  queue.on('error', (error) => errors.report(error, 'queue'));
  const timeout = settings.commandTimeoutMs;
  const monitor = makeMonitor(settings, connection, queue, errors, log);
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
              // One attempt: retrying is the database's (attempts, backoff and leases on the row;
              // see executeFollowup). A failed job is dropped; its rows are deferred or swept.
              attempts: 1,
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
        if ((await withTimeout(connection.ping(), timeout, 'ping')) !== 'PONG') return false;
        // A Redis that answers but refuses writes (full, a replica, misconfigured) is not back.
        if (monitor.state().status === 'up') return true;
        await monitor.inspectNow();
        return monitor.state().status === 'up';
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
    verify: () => monitor.verify(),
    state: () => monitor.state(),
    onJobsLost: (listener) => monitor.onJobsLost(listener),
    async close() {
      monitor.stop();
      await withTimeout(queue.close(), timeout, 'queue close').catch(() => undefined);
      connection.disconnect();
    },
  };
}

/**
 * Inspects the Redis behind the queue every few seconds and right after each (re)connection, so
 * /health/ready answers from what is known instead of calling Redis, and lost jobs are noticed.
 */
function makeMonitor(settings: QueueSettings, connection: RedisClient, queue: Queue, errors: RedisErrorLog, log: Logger) {
  const timeout = settings.commandTimeoutMs;
  const key = markerKey(settings);
  const listeners = new Set<(reason: string) => void>();
  let last: RedisInspection | null = null;
  let misconfigured: RedisConfigurationError | null = null;
  /** The last inspection failed (Redis did not answer it): not up, whatever the connection says. */
  let inspectionFailed: { kind: RedisErrorKind; message: string; at: Date } | null = null;
  let depth: QueueState['depth'] = null;
  let checkedAt: Date | null = null;
  let warnedPolicy: string | null = null;
  let running: Promise<void> | null = null;

  function jobsLost(reason: string) {
    log.warn({ reason }, 'the queue may have lost jobs; queued follow-ups are published again');
    for (const listener of listeners) listener(reason);
  }

  async function inspect(): Promise<void> {
    const previous = last;
    try {
      const found = await inspectRedis(connection, { markerKey: key, mode: settings.connection.mode, timeoutMs: timeout });
      misconfigured = null;
      last = found;
      checkedAt = new Date();
      if (found.evictionPolicy && found.evictionPolicy !== 'noeviction' && warnedPolicy !== found.evictionPolicy) {
        warnedPolicy = found.evictionPolicy;
        log.warn(
          { evictionPolicy: found.evictionPolicy },
          'Redis maxmemory-policy is not noeviction: under memory pressure it may evict queued jobs (set maxmemory-policy noeviction)',
        );
      }
      if (found.writeError) errors.report(new Error(found.writeError.message), 'inspection');
      else if (errors.last && !CONFIGURATION_ERRORS.has(errors.last.kind)) errors.clear();
      if (previous) {
        if (previous.runIds.length > 0 && found.runIds.length > 0 && previous.runIds.join() !== found.runIds.join()) {
          jobsLost('redis restarted or failed over (new run_id)');
        } else if (previous.marker && found.marker && previous.marker !== found.marker) {
          jobsLost('redis lost its data (flushed, or restarted empty)');
        } else if (found.evictedKeys > previous.evictedKeys) {
          jobsLost(`redis evicted ${found.evictedKeys - previous.evictedKeys} keys`);
        }
      }
      depth = await withTimeout(queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized'), timeout, 'getJobCounts')
        .then((c) => ({ waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 }))
        .catch(() => null);
      inspectionFailed = null;
    } catch (error) {
      if (error instanceof RedisConfigurationError) misconfigured = error;
      const kind = errors.report(error, 'inspection');
      inspectionFailed = { kind, message: (error as Error).message, at: new Date() };
    }
  }

  function inspectNow(): Promise<void> {
    if (!running) running = inspect().finally(() => (running = null));
    return running;
  }

  const onReady = () => void inspectNow();
  connection.on('ready', onReady);
  const timer = setInterval(() => {
    if (connection.status === 'ready') void inspectNow();
  }, settings.inspectIntervalMs ?? 5_000);
  timer.unref();

  return {
    async verify() {
      try {
        await whenConnected(connection, timeout);
      } catch {
        // Unreachable at start: not a configuration error; direct mode covers it and the
        // monitor inspects as soon as Redis answers. But a connection refused by the server for
        // a configuration reason has already said so.
        const lastError = errors.last;
        if (lastError && CONFIGURATION_ERRORS.has(lastError.kind)) {
          throw new RedisConfigurationError(lastError.kind, lastError.message, hintFor(lastError.kind, settings.connection.mode));
        }
        return;
      }
      await inspectNow();
      if (misconfigured) throw misconfigured;
    },
    state(): QueueState {
      const warnings: string[] = [];
      const policy = last?.evictionPolicy ?? null;
      if (policy && policy !== 'noeviction') warnings.push(`maxmemory-policy is ${policy}: Redis may evict queued jobs (use noeviction)`);
      if (last && last.evictionPolicy === null) warnings.push('maxmemory-policy could not be read (INFO not allowed)');
      const base = { mode: settings.connection.mode, evictionPolicy: policy, warnings, depth, checkedAt: checkedAt?.toISOString() ?? null };
      const cause = (kind: RedisErrorKind, message: string, at?: Date) => ({ kind, message, since: (at ?? new Date()).toISOString() });
      if (misconfigured) return { ...base, status: 'misconfigured', cause: cause(misconfigured.kind, misconfigured.redisMessage, errors.last?.at) };
      const lastError = errors.last;
      if (connection.status !== 'ready') {
        if (lastError && CONFIGURATION_ERRORS.has(lastError.kind)) return { ...base, status: 'misconfigured', cause: cause(lastError.kind, lastError.message, lastError.at) };
        return { ...base, status: 'down', cause: cause(lastError?.kind ?? 'unreachable', lastError?.message ?? `connection is ${connection.status}`, lastError?.at) };
      }
      if (inspectionFailed) return { ...base, status: 'down', cause: cause(inspectionFailed.kind, inspectionFailed.message, inspectionFailed.at) };
      if (last?.writeError) return { ...base, status: last.writeError.kind === 'full' ? 'full' : 'read_only', cause: cause(last.writeError.kind, last.writeError.message, checkedAt ?? undefined) };
      if (lastError && CONFIGURATION_ERRORS.has(lastError.kind)) return { ...base, status: 'misconfigured', cause: cause(lastError.kind, lastError.message, lastError.at) };
      return { ...base, status: 'up' };
    },
    onJobsLost(listener: (reason: string) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    inspectNow,
    stop() {
      clearInterval(timer);
      connection.off('ready', onReady);
    },
  };
}

/** Resolves once the connection is ready; rejects after `ms`, or at once when it was closed. */
async function whenConnected(connection: RedisClient, ms: number): Promise<void> {
  if (connection.status === 'ready') return;
  if (connection.status === 'end') throw new QueueUnavailableError('redis connection is closed');
  await withTimeout(
    new Promise<void>((resolve) => connection.once('ready', () => resolve())),
    ms,
    `waiting for redis (${connection.status})`,
  );
}

