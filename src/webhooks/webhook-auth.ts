/**
 * Who may post Evolution webhooks. Evolution signs nothing, so it is one of:
 *   - the `x-webhook-secret` header (set in the webhook's `headers`) equal to
 *     WEBHOOK_SECRET, compared in constant time (both sides hashed first, so
 *     neither content nor length leaks);
 *   - `Authorization: Bearer <JWT>` that Evolution signs with the webhook's
 *     `jwt_key` (WEBHOOK_JWT_KEY): HS256 only (no `none`, no algorithm
 *     confusion), `iat` and `exp` required, `app: "evolution"`. Evolution signs
 *     `{iat, exp: iat + 600}`; so a token is refused when it is past `exp`,
 *     older than 10 minutes, issued in the future, or valid for longer than 10
 *     minutes from now (a stolen long-lived token would be a master key), each
 *     with 30 s of leeway for clock skew.
 * Neither configured → every webhook is refused: unauthenticated webhooks would
 * let anyone opt leads out, hand them off or pause sending.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { Clock } from '../clock.js';

export const JWT_LEEWAY_SECONDS = 30;
/** Evolution's tokens live 600 s: none is accepted older, or valid further ahead, than that. */
export const JWT_MAX_AGE_SECONDS = 600;

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
      const now = options.clock.now();
      const { payload } = await jwtVerify(match[1]!, jwtKey, {
        algorithms: ['HS256'],
        requiredClaims: ['exp', 'iat'],
        clockTolerance: JWT_LEEWAY_SECONDS,
        // Also refuses an iat in the future (beyond the leeway).
        maxTokenAge: JWT_MAX_AGE_SECONDS,
        currentDate: now,
      });
      const expiresIn = payload.exp! - Math.floor(now.getTime() / 1000);
      return payload.app === 'evolution' && expiresIn <= JWT_MAX_AGE_SECONDS + JWT_LEEWAY_SECONDS;
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
