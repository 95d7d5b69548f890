/**
 * `doctor`'s Redis checks, on a connection built the way the service builds its
 * own (makeRedisConnection): reachable, authentication/ACL, `maxmemory-policy`
 * (BullMQ needs `noeviction`: an evicting Redis silently drops jobs and locks),
 * the role (a replica is read-only) and cluster mode.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { withTimeout } from '../queue/queue-link.js';
import { makeRedisClient, makeRedisErrorLog } from '../queue/redis-connection.js';
import { type Check, fail, ok, skip, warn } from './check.js';

const AUTH_ERROR = /NOAUTH|WRONGPASS|NOPERM|invalid password|invalid username/i;

export async function checkRedis(config: Config, log: Logger): Promise<Check[]> {
  const { redis } = config;
  if (!redis.connection) return [skip('redis', 'REDIS_URL is not set: direct mode (the relay sends follow-ups itself)')];
  const target = describeTarget(redis.connection);
  const connection = makeRedisClient(redis.connection, {
    use: 'commands',
    commandTimeoutMs: redis.commandTimeoutMs,
    name: 'followups-doctor',
    errors: makeRedisErrorLog(log),
  });
  let lastError: string | undefined;
  connection.on('error', (error: Error) => {
    lastError = error.message;
  });
  const timeout = Math.max(2_000, redis.commandTimeoutMs * 2);
  try {
    try {
      if (connection.status !== 'ready') {
        await withTimeout(
          new Promise<void>((resolve, reject) => {
            connection.once('ready', () => resolve());
            connection.once('error', (error: Error) => (AUTH_ERROR.test(error.message) ? reject(error) : undefined));
          }),
          timeout,
          'connecting to redis',
        );
      }
      await withTimeout(connection.ping(), timeout, 'PING');
    } catch (error) {
      const message = lastError ?? (error as Error).message;
      if (AUTH_ERROR.test(message)) {
        return [fail('redis.auth', `Redis refused us: ${message}`, 'put the right user and password in REDIS_URL (redis://user:password@host:6379), and give that ACL user what BullMQ needs on its keys (e.g. `+@all -@dangerous +info ~*`)')];
      }
      return [fail('redis.reachable', `${target}: ${message}`, 'check REDIS_URL and that Redis is running; meanwhile the relay sends follow-ups directly', true)];
    }
    const checks: Check[] = [ok('redis.reachable', `${target} answers PING`), ok('redis.auth', 'authenticated')];
    const info = async (section: string): Promise<Record<string, string> | string> => {
      try {
        return parseInfo(await withTimeout(connection.info(section), timeout, `INFO ${section}`));
      } catch (error) {
        return (error as Error).message;
      }
    };
    const [memory, replication, cluster] = [await info('memory'), await info('replication'), await info('cluster')];

    if (typeof memory === 'string') {
      checks.push(warn('redis.eviction', `cannot read INFO memory: ${memory}`, 'allow INFO for this ACL user (+info), or check `maxmemory-policy` yourself: it must be noeviction'));
    } else {
      const policy = memory.maxmemory_policy ?? 'unknown';
      checks.push(
        policy === 'noeviction'
          ? ok('redis.eviction', 'maxmemory-policy is noeviction')
          : fail('redis.eviction', `maxmemory-policy is ${policy}: Redis may evict queue jobs and locks under memory pressure`, 'set `maxmemory-policy noeviction` (redis.conf, or CONFIG SET maxmemory-policy noeviction; on a managed Redis, in its parameter group)'),
      );
    }
    if (typeof replication === 'string') {
      checks.push(warn('redis.role', `cannot read INFO replication: ${replication}`, 'allow INFO for this ACL user (+info)'));
    } else {
      checks.push(
        replication.role === 'master'
          ? ok('redis.role', 'role master')
          : fail('redis.role', `role ${replication.role ?? 'unknown'}: a replica refuses writes`, 'point REDIS_URL at the primary (or use Sentinel so failovers are followed)'),
      );
    }
    if (typeof cluster === 'string') {
      checks.push(warn('redis.cluster', `cannot read INFO cluster: ${cluster}`, 'allow INFO for this ACL user (+info)'));
    } else if (cluster.cluster_enabled === '1') {
      checks.push(
        /\{.+\}/.test(redis.prefix) && redis.connection.mode === 'cluster'
          ? ok('redis.cluster', `Redis Cluster through ${redis.connection.nodes.length} seed nodes; QUEUE_PREFIX ${redis.prefix} is a hash tag`)
          : /\{.+\}/.test(redis.prefix)
          ? warn('redis.cluster', `Redis Cluster mode; QUEUE_PREFIX ${redis.prefix} is a hash tag`, 'connect through the cluster nodes (REDIS_CLUSTER_NODES) so MOVED redirections are followed')
          : fail('redis.cluster', `Redis Cluster mode, but QUEUE_PREFIX ${redis.prefix} is not a hash tag: the queue's keys would span slots`, 'set QUEUE_PREFIX to a hash tag such as {followups}'),
      );
    } else {
      checks.push(ok('redis.cluster', 'standalone (not a cluster)'));
    }
    return checks;
  } finally {
    connection.disconnect();
  }
}

function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return fields;
}

/** Where the checks connect, without a password, for output. */
function describeTarget(connection: NonNullable<Config['redis']['connection']>): string {
  const hosts = (list: Array<{ host: string; port: number }>) => list.map((e) => `${e.host}:${e.port}`).join(',');
  if (connection.mode === 'standalone') return redactUrl(connection.url);
  if (connection.mode === 'sentinel') return `master ${connection.name} via sentinels ${hosts(connection.sentinels)}`;
  return `cluster ${hosts(connection.nodes)}`;
}

/** The URL without its password, for output. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
