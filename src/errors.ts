/**
 * The error classes that carry meaning through the system, all of them here. Everything
 * a transport or the database throws is translated into one of these at the edge
 * (database driver errors are read by src/db/db-errors.ts). Two live elsewhere on
 * purpose: OperatorError (src/operator/exit-codes.ts), made of the operator commands'
 * exit codes, and the client's FollowupsApiError (src/client/), which must not load
 * server code.
 */

/** Bad input from a caller: names the field. Maps to HTTP 400. */
export class ValidationError extends Error {
  override name = 'ValidationError';
  constructor(
    message: string,
    readonly field?: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The request conflicts with the current state (terminal follow-up, opted-out lead). HTTP 409. */
export class ConflictError extends Error {
  override name = 'ConflictError';
  constructor(
    message: string,
    readonly code = 'conflict',
  ) {
    super(message);
  }
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/**
 * The request is fine but cannot be done now (429: the number's pace or daily cap; 503: sending
 * paused, WhatsApp unreachable; 502: WhatsApp refused it) or its outcome is unknown (504: a send
 * that timed out; repeat with the same idempotency key). Carries how long to wait (Retry-After).
 */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
  constructor(
    message: string,
    readonly code: string,
    readonly retryAfterSeconds: number,
    readonly statusCode: 429 | 502 | 503 | 504 = 503,
  ) {
    super(message);
  }
}

/** Misconfiguration found at start-up: every problem, listed at once. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** The kinds of outcome a failed send can have; the worker maps each to a state. */
export type SendErrorKind =
  /** Will never succeed for this follow-up (number not on WhatsApp, rejected text). */
  | 'permanent'
  /** Our side is misconfigured (bad API key, unknown instance): pause, don't burn the follow-up. */
  | 'configuration'
  /** Try again later (5xx, Connection Closed, network error, WhatsApp disconnected). */
  | 'transient'
  /** We don't know whether it went out (client timeout): reconcile before any retry. */
  | 'ambiguous';

export class SendError extends Error {
  override name = 'SendError';
  constructor(
    readonly kind: SendErrorKind,
    /** Short machine reason stored on the follow-up: invalid_number, unauthorized, timeout, ... */
    readonly reason: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Missing or wrong credentials. HTTP 401. */
export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
}

/** Too many requests (failed authentications from one address, or calls with one token). HTTP 429. */
export class TooManyRequestsError extends Error {
  override name = 'TooManyRequestsError';
  readonly statusCode = 429;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** A wait that ran out (src/timeout.ts: Redis calls, the readiness check's database probe). */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Invalid campaign files, found at start-up: every problem, listed at once. */
export class CampaignError extends ConfigError {
  override name = 'CampaignError';
  constructor(problems: string[]) {
    super(problems);
    this.message = `Invalid campaign definitions:\n${problems.map((p) => `  - ${p}`).join('\n')}`;
  }
}

/** Why the model produced no text: 'timeout', 'http_<status>', 'network', 'no_content', 'error'. */
export class LlmError extends Error {
  override name = 'LlmError';
  constructor(
    readonly why: string,
    message: string,
  ) {
    super(message);
  }
}

/** The queue (Redis) cannot take or give jobs right now: not connected, or a call timed out. */
export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError';
}

/** What a Redis error means (src/queue/redis-connection.ts classifyRedisError). */
export type RedisErrorKind =
  /** WRONGPASS, NOAUTH: the password or user is wrong or missing. */
  | 'auth'
  /** NOPERM: the ACL user may not run a command or touch the queue's keys. */
  | 'acl'
  /** "unknown command": not a Redis data node (e.g. a Sentinel's port), or commands renamed away. */
  | 'wrong_server'
  /** MOVED / ASK / CROSSSLOT: a Cluster node reached without REDIS_CLUSTER_NODES. */
  | 'cluster_redirect'
  /** READONLY: a replica (a demoted master after a failover). */
  | 'read_only'
  /** OOM: maxmemory reached under noeviction; writes are refused until memory frees up. */
  | 'full'
  | 'unreachable'
  | 'other';

/** A Redis that can never work as configured: start-up exits 2 with this, in Redis's own words. */
export class RedisConfigurationError extends Error {
  override name = 'RedisConfigurationError';
  constructor(
    readonly kind: RedisErrorKind,
    /** What Redis answered, verbatim. */
    readonly redisMessage: string,
    hint: string,
  ) {
    super(`Redis configuration error (${kind}): ${redisMessage} — ${hint}`);
  }
}

/** An Evolution API call that got no usable answer: `status` is absent when Evolution could not be reached at all. */
export class EvolutionCallError extends Error {
  override name = 'EvolutionCallError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}
