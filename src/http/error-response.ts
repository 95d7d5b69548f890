/**
 * The one mapping from a thrown error to an HTTP answer. 4xx say what is wrong
 * (naming the field); 5xx say nothing internal: the error is logged, never returned.
 */
import type { FastifyError } from 'fastify';
import { readDbError } from '../db/db-errors.js';
import { ConflictError, NotFoundError, TooManyRequestsError, UnauthorizedError, UnavailableError, ValidationError } from '../errors.js';

export interface ErrorEnvelope {
  error: { code: string; message: string; details?: unknown };
}

export interface ErrorResponse {
  statusCode: number;
  body: ErrorEnvelope;
  headers?: Record<string, string>;
  /** True for 5xx: the caller must log the error (the body says nothing about it). */
  internal: boolean;
}

const envelope = (code: string, message: string, details?: unknown): ErrorEnvelope => ({
  error: details === undefined ? { code, message } : { code, message, details },
});

function fieldError(statusCode: number, code: string, field: string, message: string): ErrorResponse {
  return { statusCode, body: envelope(code, `${field}: ${message}`, [{ field, message }]), internal: false };
}

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  431: 'headers_too_large',
};

/** Errors fastify raises itself while reading a request (before any handler of ours runs). */
function fromFastify(error: FastifyError, bodyLimit: number): ErrorResponse | null {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return fieldError(400, 'validation_error', 'body', 'is not valid JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return fieldError(400, 'validation_error', 'body', 'is empty but content-type is application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return fieldError(400, 'validation_error', 'body', 'size does not match Content-Length');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return fieldError(413, 'payload_too_large', 'body', `must be at most ${bodyLimit} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return fieldError(415, 'unsupported_media_type', 'content-type', 'must be application/json');
    // Raised while routing, before any handler (they reach us through `frameworkErrors`).
    case 'FST_ERR_BAD_URL':
      return fieldError(400, 'bad_request', 'url', 'is not validly percent-encoded');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return fieldError(414, 'uri_too_long', 'url', 'has a path segment that is too long');
  }
  if (error.validation) {
    // Only if a route ever declares a fastify schema; ours validate with zod.
    const details = error.validation.map((v) => ({ field: v.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(body)', message: v.message ?? 'is invalid' }));
    const message = details.map((d) => `${d.field}: ${d.message}`).join('; ');
    return { statusCode: 400, body: envelope('validation_error', message, details), internal: false };
  }
  const status = error.statusCode;
  if (typeof error.code === 'string' && error.code.startsWith('FST_') && status && status >= 400 && status < 500) {
    return { statusCode: status, body: envelope(CODE_BY_STATUS[status] ?? 'bad_request', error.message), internal: false };
  }
  return null;
}

export function toErrorResponse(error: unknown, options: { bodyLimit: number }): ErrorResponse {
  if (error instanceof ValidationError) {
    // Domain errors name the field in the message ("dueAt: is in the past", "phone must be ...");
    // in details the field has its own key, so the message drops it.
    const field = error.field;
    const details =
      error.details ??
      (field ? [{ field, message: error.message.startsWith(field) ? error.message.slice(field.length).replace(/^:?\s*/, '') : error.message }] : undefined);
    return { statusCode: 400, body: envelope('validation_error', error.message, details), internal: false };
  }
  if (error instanceof UnauthorizedError) {
    return {
      statusCode: 401,
      body: envelope('unauthorized', error.message),
      headers: { 'www-authenticate': 'Bearer' },
      internal: false,
    };
  }
  if (error instanceof TooManyRequestsError) {
    return { statusCode: 429, body: envelope('rate_limited', error.message), headers: { 'retry-after': String(error.retryAfterSeconds) }, internal: false };
  }
  if (error instanceof NotFoundError) return { statusCode: 404, body: envelope('not_found', error.message), internal: false };
  if (error instanceof ConflictError) return { statusCode: 409, body: envelope(error.code, error.message), internal: false };
  if (error instanceof UnavailableError) {
    return { statusCode: error.statusCode, body: envelope(error.code, error.message), headers: { 'retry-after': String(error.retryAfterSeconds) }, internal: false };
  }
  const fromFramework = error instanceof Error ? fromFastify(error as FastifyError, options.bodyLimit) : null;
  if (fromFramework) return fromFramework;
  if (readDbError(error).unreachable) {
    // DESIGN: 503 when a dependency is down. Which one, and why, stays in the log.
    return {
      statusCode: 503,
      body: envelope('unavailable', 'service temporarily unavailable; try again shortly'),
      headers: { 'retry-after': '5' },
      internal: true,
    };
  }
  return { statusCode: 500, body: envelope('internal_error', 'internal error'), internal: true };
}
