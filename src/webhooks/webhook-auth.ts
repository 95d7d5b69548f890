/**
 * Who may post Evolution webhooks. Evolution signs nothing, so it is one of:
 *   - the `x-webhook-secret` header (set in the webhook's `headers`) equal to
 *     WEBHOOK_SECRET, compared in constant time (both sides hashed first, so
 *     neither content nor length leaks);
 *   - `Authorization: Bearer <JWT>` that Evolution signs with the webhook's
 *     `jwt_key` (WEBHOOK_JWT_KEY): HS256 only (no `none`, no algorithm
 *     confusion), `exp` required and not past (30 s leeway for clock skew),
 *     `app: "evolution"`.
 * Neither configured → every webhook is refused: unauthenticated webhooks would
 * let anyone opt leads out, hand them off or pause sending.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { Clock } from '../clock.js';

export const JWT_LEEWAY_SECONDS = 30;

export interface WebhookAuth {
  /** False when neither WEBHOOK_SECRET nor WEBHOOK_JWT_KEY is set: everything is refused. */
  readonly configured: boolean;
  /** How the caller proved itself, or why it did not (the HTTP layer answers 401 with `reason`). */
  verify(headers: Record<string, string | string[] | undefined>): Promise<WebhookAuthResult>;
}

export type WebhookAuthResult = { ok: true; via: 'secret' | 'jwt' } | { ok: false; reason: string };

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest();

export function makeWebhookAuth(options: { secret?: string; jwtKey?: string; clock: Clock }): WebhookAuth {
  const secret = options.secret ? sha256(options.secret) : null;
  const jwtKey = options.jwtKey ? new TextEncoder().encode(options.jwtKey) : null;

  async function validJwt(authorization: string): Promise<boolean> {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!match || !jwtKey) return false;
    try {
      const { payload } = await jwtVerify(match[1]!, jwtKey, {
        algorithms: ['HS256'],
        requiredClaims: ['exp'],
        clockTolerance: JWT_LEEWAY_SECONDS,
        currentDate: options.clock.now(),
      });
      return payload.app === 'evolution';
    } catch {
      return false;
    }
  }

  return {
    configured: Boolean(secret || jwtKey),
    async verify(headers) {
      if (!secret && !jwtKey) return { ok: false, reason: 'webhooks are disabled: set WEBHOOK_SECRET or WEBHOOK_JWT_KEY' };
      const given = headers['x-webhook-secret'];
      const authorization = headers.authorization;
      if (given === undefined && authorization === undefined) {
        return { ok: false, reason: 'missing x-webhook-secret header or Authorization: Bearer <jwt>' };
      }
      if (secret && typeof given === 'string' && timingSafeEqual(sha256(given), secret)) return { ok: true, via: 'secret' };
      if (jwtKey && typeof authorization === 'string' && (await validJwt(authorization))) return { ok: true, via: 'jwt' };
      return { ok: false, reason: 'invalid webhook credentials' };
    },
  };
}
