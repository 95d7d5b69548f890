/**
 * Who may call what. Bearer tokens are hashed before the constant-time
 * comparison, so neither the content nor the length of an expected token leaks
 * through timing (timingSafeEqual needs equal lengths).
 *
 * Failed authentications are counted per client IP (@fastify/rate-limit's
 * limiter, consumed only on failure): past AUTH_FAILURES_PER_MINUTE an address
 * gets 429 before its credentials are even looked at, so guessing a token or a
 * webhook secret is capped at that rate. Each refusal is logged at warn with
 * the address (never with what was sent).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TooManyRequestsError, UnauthorizedError } from '../errors.js';
import type { Logger } from '../log.js';

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** The token of `Authorization: Bearer <token>`, or why there is none. */
export function bearerTokenOf(header: string | undefined): { token: string } | { problem: 'missing' | 'malformed' } {
  if (!header) return { problem: 'missing' };
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? { token: match[1]! } : { problem: 'malformed' };
}

/** True when the request's Bearer token is one of `tokens` (constant time per token). */
export function makeBearerMatcher(tokens: ReadonlyArray<string | undefined>) {
  const expected = tokens.filter((t): t is string => Boolean(t)).map(sha256);
  return (header: string | undefined): boolean => {
    const given = bearerTokenOf(header);
    if (!('token' in given)) return false;
    const hash = sha256(given.token);
    let ok = false;
    for (const e of expected) ok = timingSafeEqual(hash, e) || ok;
    return ok;
  };
}

export interface AuthFailures {
  /** Throws TooManyRequestsError while the request's address is over its failure budget. */
  assertNotBlocked(request: FastifyRequest, what: string): Promise<void>;
  /** Counts one failure for the request's address, logs it at warn, and returns the 401 to throw. */
  refuse(request: FastifyRequest, what: string, reason: string): Promise<UnauthorizedError>;
}

/** Needs @fastify/rate-limit registered on `app` (build-app does it). */
export function makeAuthFailures(app: FastifyInstance, options: { perMinute: number; log: Logger }): AuthFailures {
  const limiter = app.createRateLimit({ max: options.perMinute, timeWindow: 60_000, keyGenerator: (request) => `auth-failure:${request.ip}` });
  return {
    async assertNotBlocked(request, what) {
      const status = await limiter(request, { increment: false });
      if (!status.isAllowed && status.remaining <= 0) {
        options.log.warn({ ip: request.ip, what, route: request.routeOptions.url }, 'authentication refused: too many failures from this address');
        throw new TooManyRequestsError('too many failed authentications from this address; try again later', Math.max(1, status.ttlInSeconds));
      }
    },
    async refuse(request, what, reason) {
      await limiter(request);
      options.log.warn({ ip: request.ip, what, route: request.routeOptions.url, reason }, 'authentication failed');
      return new UnauthorizedError(reason);
    },
  };
}

/**
 * A fastify onRequest hook that throws UnauthorizedError unless `Authorization:
 * Bearer <token>` carries `token`. The messages say what is wrong (missing vs
 * invalid) and never echo what was sent.
 */
export function requireApiToken(token: string, failures: AuthFailures) {
  const matches = makeBearerMatcher([token]);
  return async function checkApiToken(request: FastifyRequest): Promise<void> {
    await failures.assertNotBlocked(request, 'api');
    const header = request.headers.authorization;
    if (matches(header)) return;
    const given = bearerTokenOf(header);
    const reason =
      'problem' in given && given.problem === 'missing'
        ? 'missing Authorization header; send Authorization: Bearer <FOLLOWUPS_API_TOKEN>'
        : 'problem' in given
          ? 'invalid Authorization header; expected Authorization: Bearer <token>'
          : 'invalid API token';
    throw await failures.refuse(request, 'api', reason);
  };
}
