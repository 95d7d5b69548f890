/**
 * The campaign team's dashboard in a real browser (README "Dashboard"): playwright-core drives
 * Debian's chromium (/usr/bin/chromium; `.ci/run` installs it) against the API and a
 * relay on real PostgreSQL (dry-run transport). Signs in, reads the counts after
 * scheduling known follow-ups, checks the funnel against what was sent and answered,
 * finds a fan by another spelling of the number and opens the timeline, retries a
 * failed follow-up, pauses sending (due follow-ups held: operator_paused), resumes
 * (they go out), signs out. Screenshots at 1280 and 375 px go to
 * DASHBOARD_SCREENSHOTS_DIR (default: a temporary folder).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { markFailed } from '../src/followups/transitions.js';
import { recordInboundMessage } from '../src/leads/record-inbound.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { type RoleHandle, startRole, TEST_TOKEN, waitFor } from './helpers/pipeline.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.DASHBOARD_SCREENSHOTS_DIR ?? mkdtempSync(join(tmpdir(), 'dashboard-shots-'));
const auth = { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' };
const FANS = [
  { phone: '5581988880001', name: 'Maria Alves' },
  { phone: '5581988880002', name: 'João Barros' },
  { phone: '5581988880003', name: 'Ana Costa' },
  { phone: '5581988880004', name: 'Pedro Dias' },
];

describe('dashboard in a real browser', () => {
  let testDb: TestDatabase;
  let role: RoleHandle;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    testDb = await createTestDatabase({ poolSize: 6 });
    role = await startRole({ roles: ['api', 'relay'], databaseUrl: testDb.url, env: { METRICS_REFRESH_SECONDS: '1', DASHBOARD_PASSWORD: 'senha-do-painel-123' } });
    const app = role.running.app!;
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'pt-BR' });
    page = await context.newPage();
  });
  after(async () => {
    await browser?.close();
    await role?.stop();
    await testDb?.drop();
  });

  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, { method, headers: auth, body: body === undefined ? undefined : JSON.stringify(body) }).then(async (res) => {
      assert.ok(res.ok, `${method} ${path} → ${res.status} ${await res.clone().text()}`);
      return res.json() as Promise<Record<string, unknown>>;
    });
  const count = async (name: string) => Number(((await page.locator(`[data-count="${name}"]`).textContent()) ?? '').replace(/\D/g, ''));
  /** Reloads until the page shows it (the counts by status are refreshed in the background, every second here). */
  const reloadUntil = async (what: string, check: () => Promise<boolean>) =>
    waitFor(what, async () => {
      await page.reload();
      return check();
    }, { timeoutMs: 30_000, intervalMs: 300 });
  const statuses = async (ids: string[]) =>
    (await testDb.db.query<{ id: string; status: string; defer_reason: string | null }>('SELECT id, status, defer_reason FROM follow_ups WHERE id = ANY($1::uuid[])', [ids])).rows;
  const shoot = async (name: string) => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: join(SHOTS, `${name}-desktop.png`), fullPage: true });
    await page.setViewportSize({ width: 375, height: 812 });
    await page.screenshot({ path: join(SHOTS, `${name}-phone.png`), fullPage: true });
    // Readable at 375 px: nothing wider than the screen but the tables' own scroll boxes.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${name}: the page scrolls sideways by ${overflow} px at 375 px`);
    await page.setViewportSize({ width: 1280, height: 900 });
  };

  test('sign in, counts, funnel, fan timeline, retry, pause and resume, sign out', async () => {
    // --- unauthenticated → the sign-in page; a wrong secret is refused --------------------------
    await page.goto(`${base}/dashboard`);
    assert.match(page.url(), /\/dashboard\/login/);
    await page.fill('input[name=secret]', 'not-the-token-at-all');
    await page.click('button[type=submit]');
    assert.match((await page.locator('.flash.error').textContent()) ?? '', /incorreto/);
    await page.fill('input[name=secret]', TEST_TOKEN);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/dashboard\/now/);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'followups_dashboard');
    assert.ok(session && session.httpOnly && session.sameSite === 'Strict', 'httpOnly, SameSite=Strict session cookie');

    // --- counts after scheduling known follow-ups ---------------------------------------------
    for (const fan of FANS) await api('POST', '/v1/enrollments', { phone: fan.phone, campaign: 'nautico', lead: { name: fan.name } });
    const soon: string[] = [];
    for (let i = 0; i < 2; i++) soon.push((await api('POST', '/v1/followups', { phone: `558197770000${i}`, message: `Teste ${i}`, delayMinutes: 30 })).id as string);
    // 4 fans × 3 steps, plus 2 due in 30 minutes.
    await reloadUntil('counts on the page', async () => (await count('pending')) === 14 && (await count('due-next-hour')) === 2);
    assert.equal(await count('executed'), 0);

    // --- the funnel against what was sent and answered ----------------------------------------
    const { rows: firstSteps } = await testDb.db.query<{ id: string }>(
      `UPDATE follow_ups SET due_at = now() WHERE campaign = 'nautico' AND step = 1 RETURNING id`,
    );
    assert.equal(firstSteps.length, 4);
    await waitFor('step 1 sent to the 4 fans', async () => (await statuses(firstSteps.map((r) => r.id))).every((r) => r.status === 'executed'));
    // Two fans answer, one of them then asks to stop.
    for (const fan of FANS.slice(0, 2)) {
      await recordInboundMessage(testDb.db, { phone: fan.phone, text: 'Opa, quero saber dos planos', at: new Date(), source: 'lead' }, role.ctx.clock);
    }
    await api('POST', `/v1/leads/${FANS[1]!.phone}/opt-out`, {});
    await page.click('nav a[href="/dashboard/funnel"]');
    const step1 = page.locator('[data-campaign="nautico"] [data-funnel="step"] tr[data-row^="etapa 1"]');
    const cell = async (col: string) => Number(((await step1.locator(`[data-col="${col}"]`).textContent()) ?? '').trim().split(/\s/)[0]!.replace(/\D/g, ''));
    assert.equal(await cell('planned'), 4);
    assert.equal(await cell('sent'), 4);
    assert.equal(await cell('replied'), 2);
    assert.equal(await cell('opted-out'), 1);
    assert.equal(await cell('converted'), 0);
    const total = page.locator('[data-campaign="nautico"] [data-funnel="total"] tr');
    assert.equal(Number(((await total.locator('[data-col="planned"]').textContent()) ?? '').trim().split(/\s/)[0]), 12);
    // Per composer: the templates wrote them (no LLM configured); per variant: the 4 sends are spread over variants.
    assert.match((await page.locator('[data-campaign="nautico"] [data-funnel="composer"]').textContent()) ?? '', /modelo \(template\)/);
    const variantSent = await page.locator('[data-campaign="nautico"] [data-funnel="variant"] [data-col="sent"]').allTextContents();
    assert.equal(variantSent.reduce((sum, t) => sum + Number(t.trim().split(/\s/)[0]), 0), 4);
    await shoot('funnel');

    // --- a fan by another spelling of the number → the timeline --------------------------------
    await page.click('nav a[href="/dashboard/fans"]');
    await page.fill('input[name=q]', '+55 (81) 8888-0001'); // without the 9th digit
    await page.click('form[action="/dashboard/fans"] button');
    await page.click(`a[data-fan="${FANS[0]!.phone}"]`);
    await page.waitForURL(new RegExp(`/dashboard/fans/${FANS[0]!.phone}`));
    const timeline = (await page.locator('[data-section="timeline"]').textContent()) ?? '';
    assert.match(timeline, /Opa, quero saber dos planos/, 'the fan’s message');
    assert.match(timeline, /Maria/, 'the follow-up sent to her (the template uses her first name)');
    assert.match(timeline, /fã respondeu/, 'the later steps cancelled because she answered');
    assert.match((await page.locator('h1').textContent()) ?? '', /Maria Alves/);
    // By name too.
    await page.goto(`${base}/dashboard/fans?q=jo`);
    assert.equal(await page.locator(`a[data-fan="${FANS[1]!.phone}"]`).count(), 1);

    // --- retry a failed follow-up -------------------------------------------------------------
    const failed = (await api('POST', '/v1/followups', { phone: '5581977700009', message: 'Vai falhar', delayHours: 24 })).id as string;
    assert.ok(await markFailed(testDb.db, { id: failed, now: new Date(), reason: 'retries_exhausted', error: 'Evolution 500 (teste)', from: ['pending'] }));
    await page.click('nav a[href="/dashboard/failures"]');
    const row = page.locator(`[data-section="failed"] tr[data-followup="${failed}"]`);
    assert.match((await row.textContent()) ?? '', /Evolution 500 \(teste\)/);
    assert.match((await row.textContent()) ?? '', /retries_exhausted/);
    await row.locator('button[data-action="retry"]').click();
    assert.match((await page.locator('.flash').textContent()) ?? '', /de volta à fila/);
    await waitFor('the retried follow-up sent', async () => (await statuses([failed]))[0]!.status === 'executed');

    // --- pause: due follow-ups held; resume: they go out ---------------------------------------
    await page.click('nav a[href="/dashboard/now"]');
    await page.fill('form[action="/dashboard/actions/pause"] input[name=reason]', 'Revisão do texto da etapa 2');
    await page.fill('form[action="/dashboard/actions/pause"] input[name=who]', 'Ana (marketing)');
    await page.click('button[data-action="pause"]');
    assert.match((await page.locator('.flash').textContent()) ?? '', /em pausa/);
    assert.equal(await page.locator('[data-sending="paused"]').count(), 1);
    // Every process notices within its gate's cache (a second): due follow-ups scheduled from then on are held.
    await waitFor('the relay sees the pause', async () => (await role.ctx.gate.state()).reason === 'operator_paused');
    const held: string[] = [];
    for (let i = 0; i < 2; i++) held.push((await api('POST', '/v1/followups', { phone: `558197771000${i}`, message: `Durante a pausa ${i}` })).id as string);
    await waitFor('both held (operator_paused)', async () => {
      const rows = await statuses(held);
      return rows.every((r) => r.status === 'pending' && r.defer_reason === 'operator_paused');
    });
    const ready = (await api('GET', '/health/ready')) as { checks: { sending: { status: string; reason: string } } };
    assert.equal(ready.checks.sending.reason, 'operator_paused');
    await page.reload();
    assert.match((await page.locator('[data-sending="paused"]').textContent()) ?? '', /Revisão do texto da etapa 2/);
    assert.match((await page.locator('tr[data-number="dry-run"]').textContent()) ?? '', /pausado pela equipe/, 'the number shows it is held');
    await shoot('now');
    await page.click('button[data-action="resume"]');
    assert.match((await page.locator('.flash').textContent()) ?? '', /retomados/);
    await waitFor('both sent after the resume', async () => (await statuses(held)).every((r) => r.status === 'executed'));
    await page.reload();
    assert.match((await page.locator('[data-section="pause-history"]').textContent()) ?? '', /Ana \(marketing\)/);

    await page.click('nav a[href="/dashboard/activity"]');
    assert.ok(Number(((await page.locator('[data-total="sends"]').textContent()) ?? '').replace(/\D/g, '')) >= 7);
    assert.equal(await page.locator('#chart canvas').count(), 1, 'uPlot drew the chart');
    await shoot('activity');

    // --- an action without the page's CSRF token is refused -----------------------------------
    const forged = await page.request.post(`${base}/dashboard/actions/pause`, { form: { scope: 'all', reason: 'forjado' } });
    assert.equal(forged.status(), 403);

    // --- sign out -------------------------------------------------------------------------------
    await page.click('button[data-action="logout"]');
    await page.waitForURL(/\/dashboard\/login/);
    await page.goto(`${base}/dashboard/now`);
    assert.match(page.url(), /\/dashboard\/login/);
    // The dashboard password signs in too.
    await page.fill('input[name=secret]', 'senha-do-painel-123');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/dashboard\/now/);
  });
});
