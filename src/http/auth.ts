/**
 * Bearer-token check for the /v1 API. Both tokens are hashed before the
 * constant-time comparison, so neither the content nor the length of the
 * expected token leaks through timing (timingSafeEqual needs equal lengths).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/** Missing or wrong credentials. HTTP 401. */
export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
}

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * A fastify hook (usable as onRequest or preHandler) that throws UnauthorizedError
 * unless `Authorization: Bearer <token>` carries `token`. The messages say what is
 * wrong (missing vs invalid) and never echo what was sent.
 */
export function requireApiToken(token: string) {
  const expected = sha256(token);
  return async function checkApiToken(request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization;
    if (!header) {
      throw new UnauthorizedError('missing Authorization header; send Authorization: Bearer <FOLLOWUPS_API_TOKEN>');
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!match) throw new UnauthorizedError('invalid Authorization header; expected Authorization: Bearer <token>');
    if (!timingSafeEqual(sha256(match[1]!), expected)) throw new UnauthorizedError('invalid API token');
  };
}
