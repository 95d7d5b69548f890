/**
 * Signing in to the dashboard: the API token or DASHBOARD_PASSWORD (compared in
 * constant time, as hashes, so neither content nor length leaks), exchanged for a
 * session cookie — an HS256 JWT (jose) that is httpOnly, SameSite=Strict, scoped to
 * /dashboard and valid for SESSION_HOURS. Its key is derived from the secrets, so every
 * API replica accepts it and changing the token or the password signs everyone out.
 *
 * CSRF: every form carries a synchronizer token, an HMAC of the session's id under
 * that key; every action checks it (and SameSite=Strict keeps the cookie off
 * cross-site requests in the first place).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

export const SESSION_COOKIE = 'followups_dashboard';
export const SESSION_HOURS = 12;

export interface Session {
  id: string;
  /** How they signed in: 'token' (the API token) or 'password' (DASHBOARD_PASSWORD). */
  via: 'token' | 'password';
  expiresAt: Date;
}

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest();

export interface Sessions {
  /** Which secret `given` is, or null (constant time over both). */
  check(given: string): 'token' | 'password' | null;
  create(via: Session['via']): Promise<{ cookie: string; session: Session }>;
  /** The session of a cookie value, or null when missing, forged or expired. */
  verify(cookie: string | undefined): Promise<Session | null>;
  csrfToken(session: Session): string;
  checkCsrf(session: Session, given: unknown): boolean;
}

export function makeSessions(options: { apiToken: string; password?: string }): Sessions {
  const secrets: Array<{ via: Session['via']; hash: Buffer }> = [
    { via: 'token', hash: sha256(options.apiToken) },
    ...(options.password ? [{ via: 'password' as const, hash: sha256(options.password) }] : []),
  ];
  const key = createHmac('sha256', options.apiToken).update(`nautico-followups dashboard session\0${options.password ?? ''}`).digest();
  const csrfOf = (id: string) => createHmac('sha256', key).update(`csrf\0${id}`).digest('base64url');

  return {
    check(given) {
      const hash = sha256(given);
      let found: Session['via'] | null = null;
      for (const secret of secrets) if (timingSafeEqual(hash, secret.hash) && !found) found = secret.via;
      return found;
    },
    async create(via) {
      const id = randomBytes(16).toString('base64url');
      const expiresAt = new Date(Date.now() + SESSION_HOURS * 3_600_000);
      const cookie = await new SignJWT({ via })
        .setProtectedHeader({ alg: 'HS256' })
        .setJti(id)
        .setAudience('dashboard')
        .setIssuedAt()
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .sign(key);
      return { cookie, session: { id, via, expiresAt } };
    },
    async verify(cookie) {
      if (!cookie) return null;
      try {
        const { payload } = await jwtVerify(cookie, key, { algorithms: ['HS256'], audience: 'dashboard' });
        if (typeof payload.jti !== 'string' || (payload.via !== 'token' && payload.via !== 'password') || !payload.exp) return null;
        return { id: payload.jti, via: payload.via, expiresAt: new Date(payload.exp * 1000) };
      } catch {
        return null;
      }
    },
    csrfToken(session) {
      return csrfOf(session.id);
    },
    checkCsrf(session, given) {
      if (typeof given !== 'string' || given.length === 0) return false;
      const expected = sha256(csrfOf(session.id));
      return timingSafeEqual(sha256(given), expected);
    },
  };
}
