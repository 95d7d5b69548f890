/**
 * The dashboard's sign-in and its protections (README "Dashboard"), through the app: unauthenticated →
 * sign-in page, a wrong secret refused (and counted against AUTH_FAILURES_PER_MINUTE), the
 * session cookie's flags, a forged or foreign cookie ignored, CSRF on every action, a POST from
 * another origin refused, no open redirect after sign-in, a Content-Security-Policy on pages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { type RoleHandle, startRole, TEST_TOKEN } from './helpers/pipeline.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const PASSWORD = 'senha-do-painel-123';

describe('dashboard sign-in', () => {
  let testDb: TestDatabase;
  let api: RoleHandle;
  before(async () => {
    testDb = await createTestDatabase({ poolSize: 3 });
    api = await startRole({ roles: ['api'], databaseUrl: testDb.url, env: { DASHBOARD_PASSWORD: PASSWORD, AUTH_FAILURES_PER_MINUTE: '3' } });
  });
  after(async () => {
    await api.stop();
    await testDb.drop();
  });
  const inject = (options: InjectOptions) => api.running.app!.inject(options);
  const signIn = async (secret: string, next = '') => {
    const res = await inject({ method: 'POST', url: '/dashboard/login', headers: FORM, payload: `secret=${encodeURIComponent(secret)}&next=${encodeURIComponent(next)}` });
    return { res, cookie: res.headers['set-cookie'] ? String(res.headers['set-cookie']).split(';')[0]! : null };
  };

  test('unauthenticated pages and actions go to the sign-in page', async () => {
    for (const url of ['/dashboard', '/dashboard/now', '/dashboard/funnel', '/dashboard/fans/5581999998888']) {
      const res = await inject({ method: 'GET', url });
      assert.equal(res.statusCode, 303, url);
      assert.match(String(res.headers.location), /^\/dashboard(\/now|\/login)/);
    }
    const action = await inject({ method: 'POST', url: '/dashboard/actions/pause', headers: FORM, payload: 'scope=all&reason=x' });
    assert.equal(action.statusCode, 303);
    assert.match(String(action.headers.location), /^\/dashboard\/login/);
    const forged = await inject({ method: 'GET', url: '/dashboard/now', headers: { cookie: 'followups_dashboard=eyJhbGciOiJIUzI1NiJ9.eyJ2aWEiOiJ0b2tlbiJ9.AAAA' } });
    assert.equal(forged.statusCode, 303, 'a forged session is not one');
    const login = await inject({ method: 'GET', url: '/dashboard/login' });
    assert.equal(login.statusCode, 200);
    assert.match(String(login.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
    assert.match(login.body, /lang="pt-BR"/);
  });

  test('the token and the password sign in; the cookie is httpOnly, SameSite=Strict, scoped; no open redirect', async () => {
    for (const secret of [TEST_TOKEN, PASSWORD]) {
      const { res, cookie } = await signIn(secret, 'https://evil.example.com/');
      assert.equal(res.statusCode, 303);
      assert.equal(res.headers.location, '/dashboard/now', 'a foreign `next` is ignored');
      const setCookie = String(res.headers['set-cookie']);
      assert.match(setCookie, /HttpOnly/);
      assert.match(setCookie, /SameSite=Strict/);
      assert.match(setCookie, /Path=\/dashboard/);
      const page = await inject({ method: 'GET', url: '/dashboard/now', headers: { cookie: cookie! } });
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /Agora/);
    }
    const { res } = await signIn(TEST_TOKEN, '/dashboard/funnel?days=30');
    assert.equal(res.headers.location, '/dashboard/funnel?days=30');
  });

  test('every action needs the CSRF token of its session, and the same origin', async () => {
    const { cookie } = await signIn(TEST_TOKEN);
    const other = (await signIn(PASSWORD)).cookie!;
    const page = await inject({ method: 'GET', url: '/dashboard/now', headers: { cookie: cookie! } });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const post = (payload: string, headers: Record<string, string> = {}, session = cookie!) =>
      inject({ method: 'POST', url: '/dashboard/actions/pause', headers: { ...FORM, cookie: session, ...headers }, payload });
    assert.equal((await post('scope=all&reason=x')).statusCode, 403, 'no token');
    assert.equal((await post('scope=all&reason=x&_csrf=wrong')).statusCode, 403, 'wrong token');
    assert.equal((await post(`scope=all&reason=x&_csrf=${csrf}`, {}, other)).statusCode, 403, "another session's token");
    assert.equal((await post(`scope=all&reason=x&_csrf=${csrf}`, { origin: 'https://evil.example.com' })).statusCode, 403, 'another origin');
    const { rows } = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM sending_pauses');
    assert.equal(rows[0]!.n, 0, 'nothing was paused');
    const ok = await post(`scope=all&reason=${encodeURIComponent('teste')}&_csrf=${csrf}`);
    assert.equal(ok.statusCode, 303);
    assert.match(decodeURIComponent(String(ok.headers.location)), /em pausa/);
    const empty = await inject({ method: 'POST', url: '/dashboard/actions/resume', headers: { ...FORM, cookie: cookie! }, payload: `scope=campaign:nope&_csrf=${csrf}` });
    assert.match(decodeURIComponent(String(empty.headers.location)), /erro=campaign: campaign nope is not paused|erro=.*not paused/);
    const resumed = await inject({ method: 'POST', url: '/dashboard/actions/resume', headers: { ...FORM, cookie: cookie! }, payload: `scope=all&_csrf=${csrf}` });
    assert.match(decodeURIComponent(String(resumed.headers.location)), /retomados/);
  });

  test('a wrong secret is refused, and too many from one address are refused for a while', async () => {
    const first = await inject({ method: 'POST', url: '/dashboard/login', remoteAddress: '10.9.9.9', headers: FORM, payload: 'secret=wrong-wrong-wrong' });
    assert.equal(first.statusCode, 401);
    assert.match(first.body, /incorreto/);
    assert.equal(first.headers['set-cookie'], undefined);
    let last = first;
    for (let i = 0; i < 5; i++) last = await inject({ method: 'POST', url: '/dashboard/login', remoteAddress: '10.9.9.9', headers: FORM, payload: 'secret=wrong-wrong-wrong' });
    const blocked = await inject({ method: 'POST', url: '/dashboard/login', remoteAddress: '10.9.9.9', headers: FORM, payload: `secret=${TEST_TOKEN}` });
    assert.equal(blocked.statusCode, 429, `after repeated failures: ${last.statusCode}`);
    assert.equal(blocked.headers['set-cookie'], undefined);
  });
});
