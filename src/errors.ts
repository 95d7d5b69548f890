/**
 * The few error classes that carry meaning through the system. Everything a
 * transport or the database throws is translated into one of these at the edge.
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
