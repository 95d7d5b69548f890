/**
 * The one place that builds Redis connections from the configuration: the
 * relay's queue producer, the BullMQ worker and the rate limiter all get theirs
 * here, for one server (REDIS_URL), a Sentinel-managed master (REDIS_SENTINELS
 * or a redis+sentinel:// URL) or a Cluster (REDIS_CLUSTER_NODES).
 *
 * It also says what a Redis error means. A configuration error (wrong password,
 * an ACL without the queue's keys, a server that is not a Redis master we can
 * use, a Cluster reached as one server) never heals by retrying: it is logged at
 * most once a minute per kind, and reconnections back off to half a minute
 * instead of spinning.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisConnectionConfig } from '../config.js';
import type { RedisErrorKind } from '../errors.js';
import type { Logger } from '../log.js';

export type RedisClient = Redis | Cluster;

/** Kinds that retrying never fixes: start-up stops on them (exit 2). */
export const CONFIGURATION_ERRORS: ReadonlySet<RedisErrorKind> = new Set(['auth', 'acl', 'wrong_server', 'cluster_redirect']);

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);

export function classifyRedisError(error: unknown): RedisErrorKind {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string } | null)?.code;
  // Redis's own error words; a script's errors carry them after a prefix, hence no anchor for some.
  if (/\b(WRONGPASS|NOAUTH)\b|invalid (username-)?password/i.test(message)) return 'auth';
  if (/\bNOPERM\b/.test(message)) return 'acl';
  if (/\b(MOVED|ASK) \d+ |\bCROSSSLOT\b/.test(message)) return 'cluster_redirect';
  if (/\bREADONLY\b/.test(message)) return 'read_only';
  if (/\bOOM\b/.test(message)) return 'full';
  if (/^ERR unknown command/i.test(message)) return 'wrong_server';
  if ((code && NETWORK_CODES.has(code)) || /timed out|Connection is closed|isn't ready|not connected|max retries|ECONNREFUSED|ETIMEDOUT|ECONNRESET/i.test(message)) {
    return 'unreachable';
  }
  return 'other';
}

/** What to do about each kind of configuration error, for the operator. */
export function hintFor(kind: RedisErrorKind, mode: RedisConnectionConfig['mode']): string {
  switch (kind) {
    case 'auth':
      return mode === 'standalone'
        ? 'check the user and password in REDIS_URL (redis://user:password@host:6379)'
        : 'check REDIS_USERNAME / REDIS_PASSWORD (the data nodes\') and REDIS_SENTINEL_PASSWORD (the sentinels\')';
    case 'acl':
      return "the ACL user needs the queue's keys (~<QUEUE_PREFIX>:*) and BullMQ's commands; see README, \"Redis in production\"";
    case 'wrong_server':
      return 'this is not a Redis master the queue can use (a Sentinel\'s port? set REDIS_SENTINELS and REDIS_SENTINEL_NAME instead of REDIS_URL)';
    case 'cluster_redirect':
      return 'this Redis is a Cluster node: set REDIS_CLUSTER_NODES instead of REDIS_URL';
    default:
      return 'see README, "Redis in production"';
  }
}

/**
 * Logs Redis errors at most once a minute per kind (a Redis that is down or misconfigured
 * produces one per reconnect or per command) and remembers the last one for /health/ready.
 */
export interface RedisErrorLog {
  report(error: unknown, source: string): RedisErrorKind;
  readonly last: { kind: RedisErrorKind; message: string; at: Date } | null;
  clear(): void;
}

export function makeRedisErrorLog(log: Logger, everyMs = 60_000): RedisErrorLog {
  const loggedAt = new Map<RedisErrorKind, number>();
  let last: RedisErrorLog['last'] = null;
  return {
    report(error, source) {
      const kind = classifyRedisError(error);
      const message = error instanceof Error ? error.message : String(error);
      last = { kind, message, at: new Date() };
      const now = Date.now();
      if (now - (loggedAt.get(kind) ?? -Infinity) >= everyMs) {
        loggedAt.set(kind, now);
        const level = CONFIGURATION_ERRORS.has(kind) || kind === 'full' ? 'error' : 'warn';
        log[level]({ kind, source, err: { message } }, `redis error (${kind}); the same kind is logged again in a minute at the earliest`);
      }
      return kind;
    },
    get last() {
      return last;
    },
    clear() {
      last = null;
    },
  };
}

/** Reconnection delay: quick for an outage, backing off to 30 s for an error retrying cannot fix. */
export function reconnectDelay(times: number, lastKind: RedisErrorKind | undefined): number {
  if (lastKind && CONFIGURATION_ERRORS.has(lastKind)) return Math.min(1_000 * 2 ** Math.min(times - 1, 5), 30_000);
  return Math.min(200 * times, 2_000);
}

export interface ClientOptions {
  /** 'blocking': BullMQ's worker (waits for Redis forever, as BullMQ requires); 'commands': fail fast. */
  use: 'commands' | 'blocking';
  commandTimeoutMs: number;
  connectTimeoutMs?: number;
  /** Retries per command for 'commands' (default 1). */
  maxRetriesPerRequest?: number;
  /** Shows in CLIENT LIST. */
  name: string;
  errors: RedisErrorLog;
}

/** A new client for `connection`, connecting at once. */
export function makeRedisClient(connection: RedisConnectionConfig, options: ClientOptions): RedisClient {
  const blocking = options.use === 'blocking';
  let lastKind: RedisErrorKind | undefined;
  const perNode: RedisOptions = {
    // ioredis 6 speaks RESP3 by default; BullMQ's Lua scripts are written and tested against RESP2
    // replies (a Lua `false` is nil there, 0 under RESP3's legacy mapping).
    protocol: 2,
    connectionName: `followups:${options.name}`,
    // Workers block on BZPOPMIN-style calls and must wait for Redis forever (BullMQ requires null);
    // producers fail fast instead, so the relay can switch to direct mode.
    maxRetriesPerRequest: blocking ? null : (options.maxRetriesPerRequest ?? 1),
    enableOfflineQueue: blocking,
    connectTimeout: options.connectTimeoutMs ?? Math.max(1_000, options.commandTimeoutMs),
    commandTimeout: blocking ? undefined : options.commandTimeoutMs,
    retryStrategy: (times) => reconnectDelay(times, lastKind),
    // After a failover the old master answers READONLY: reconnect (asking the sentinels, or the
    // cluster's slots, for the new master) and resend the command there. One server named by
    // REDIS_URL would only be reconnected to as the same replica: there it is reported instead.
    reconnectOnError: (error) => (connection.mode !== 'standalone' && classifyRedisError(error) === 'read_only' ? 2 : false),
  };
  let client: RedisClient;
  if (connection.mode === 'standalone') {
    client = new Redis(connection.url, perNode);
  } else if (connection.mode === 'sentinel') {
    client = new Redis({
      ...perNode,
      sentinels: connection.sentinels,
      name: connection.name,
      role: 'master',
      sentinelPassword: connection.sentinelPassword,
      username: connection.username,
      password: connection.password,
      db: connection.db ?? 0,
      // Listen to the sentinels' +switch-master: a failover is followed within moments, not at
      // the next failed command.
      failoverDetector: true,
      sentinelRetryStrategy: (times) => reconnectDelay(times, lastKind),
    });
  } else {
    const clusterOptions: ClusterOptions = {
      redisOptions: { ...perNode, username: connection.username, password: connection.password },
      enableOfflineQueue: blocking,
      clusterRetryStrategy: (times) => reconnectDelay(times, lastKind),
      scaleReads: 'master',
      slotsRefreshTimeout: Math.max(1_000, options.commandTimeoutMs),
    };
    client = new Cluster(connection.nodes, clusterOptions);
  }
  client.on('error', (error: Error) => {
    lastKind = options.errors.report(error, options.name);
  });
  client.on('ready', () => {
    lastKind = undefined;
  });
  return client;
}

/** The master nodes to inspect: the cluster's masters, or the one connection. */
export function dataNodes(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}
