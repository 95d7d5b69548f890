/**
 * What kind of Redis the queue is talking to, and whether it can do the job:
 * its mode (standalone / sentinel / cluster), role (a replica cannot take
 * writes), eviction policy (anything but noeviction may drop queued jobs),
 * run_id (a new one means a restarted server, maybe empty) and a write probe
 * on the queue's own keys — which also finds ACLs that do not cover them,
 * scripting that is not allowed, and a Redis that is full.
 *
 * The probe key doubles as a marker: written on every inspection, never expiring,
 * its value made up by whoever finds it missing. A value that changed means the
 * data was lost (a flush, a restart without persistence, eviction) and queued
 * follow-ups must be published again.
 */
import { randomBytes } from 'node:crypto';
import { RedisConfigurationError, type RedisErrorKind } from '../errors.js';
import { CONFIGURATION_ERRORS, classifyRedisError, dataNodes, hintFor, type RedisClient } from './redis-connection.js';
import type { RedisConnectionConfig } from '../config.js';
import { withTimeout } from '../timeout.js';

export interface RedisInspection {
  /** redis_mode of the node(s) reached; null when INFO is not allowed. */
  serverMode: 'standalone' | 'sentinel' | 'cluster' | null;
  /** 'master' | 'slave' (a replica); null when INFO is not allowed. */
  role: string | null;
  /** maxmemory-policy; null when INFO is not allowed (some managed services hide it). */
  evictionPolicy: string | null;
  /** run_id of each master (one unless Cluster), sorted: changes when a server restarts or fails over. */
  runIds: string[];
  /** Keys evicted since each server started, summed. */
  evictedKeys: number;
  /** The write probe succeeded. */
  writable: boolean;
  /** Why not: Redis's own words. */
  writeError?: { kind: RedisErrorKind; message: string };
  /**
   * The marker's value: made up by whichever process finds it missing. A value other than the one
   * seen last time means the data was lost since (even if another process noticed first).
   */
  marker: string | null;
}

/** Writes the marker (keeping its value, or ARGV[1] when missing) and returns it: a write on the queue's own slot. */
const PROBE_SCRIPT = "local v = redis.call('GET', KEYS[1]) or ARGV[1] redis.call('SET', KEYS[1], v) return v";

function infoField(info: string, field: string): string | null {
  const match = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  return match ? match[1]!.trim() : null;
}

/**
 * Inspects the Redis behind `client`. Throws RedisConfigurationError for what configuration must fix
 * (in Redis's own words), any other error when Redis does not answer.
 */
export async function inspectRedis(
  client: RedisClient,
  options: { markerKey: string; mode: RedisConnectionConfig['mode']; timeoutMs: number },
): Promise<RedisInspection> {
  const result: RedisInspection = {
    serverMode: null,
    role: null,
    evictionPolicy: null,
    runIds: [],
    evictedKeys: 0,
    writable: false,
    marker: null,
  };
  let probeError: unknown;
  try {
    const fresh = `${Date.now()}-${randomBytes(6).toString('hex')}`;
    result.marker = (await withTimeout(client.eval(PROBE_SCRIPT, 1, options.markerKey, fresh) as Promise<string>, options.timeoutMs, 'write probe'));
    result.writable = true;
  } catch (error) {
    probeError = error;
  }
  let infoError: unknown;
  for (const node of dataNodes(client)) {
    try {
      const info = await withTimeout(node.info(), options.timeoutMs, 'INFO');
      result.serverMode = (infoField(info, 'redis_mode') as RedisInspection['serverMode']) ?? result.serverMode;
      if (infoField(info, 'cluster_enabled') === '1') result.serverMode = 'cluster';
      const role = infoField(info, 'role');
      if (role && result.role !== 'slave') result.role = role;
      result.evictionPolicy = infoField(info, 'maxmemory_policy') ?? result.evictionPolicy;
      const runId = infoField(info, 'run_id');
      if (runId) result.runIds.push(runId);
      result.evictedKeys += Number(infoField(info, 'evicted_keys') ?? 0);
    } catch (error) {
      // INFO may be denied by an ACL (managed services): only the eviction policy goes unchecked.
      infoError = error;
    }
  }
  result.runIds.sort();

  // The wrong kind of server first: its probe error ("unknown command", MOVED) says less than this.
  if (result.serverMode === 'sentinel') {
    const words = probeError instanceof Error ? probeError.message : 'INFO says redis_mode:sentinel';
    throw new RedisConfigurationError('wrong_server', words, 'this is a Redis Sentinel, not a data node: set REDIS_SENTINELS and REDIS_SENTINEL_NAME instead of REDIS_URL');
  }
  if (result.serverMode === 'cluster' && options.mode !== 'cluster') {
    const words = probeError instanceof Error && classifyRedisError(probeError) === 'cluster_redirect' ? probeError.message : 'INFO says cluster_enabled:1';
    throw new RedisConfigurationError('cluster_redirect', words, hintFor('cluster_redirect', options.mode));
  }
  if (probeError) {
    const kind = classifyRedisError(probeError);
    const message = (probeError as Error).message;
    if (CONFIGURATION_ERRORS.has(kind)) throw new RedisConfigurationError(kind, message, hintFor(kind, options.mode));
    if (kind === 'read_only' || kind === 'full') {
      result.writeError = { kind, message };
    } else {
      throw probeError;
    }
  }
  if (infoError && result.runIds.length === 0) {
    const kind = classifyRedisError(infoError);
    if (kind !== 'acl' && kind !== 'wrong_server') throw infoError;
  }
  if (result.role === 'slave' && !result.writeError) {
    result.writable = false;
    result.writeError = { kind: 'read_only', message: 'INFO says role:slave (a replica)' };
  }
  return result;
}
