/**
 * Noticing when Evolution's webhooks stop (README "Conversations: webhooks and the stop rules"): every message we send comes
 * back as a webhook (its echo); when several sends in a row get none, the number
 * is marked silent — /health/ready degraded, a metric, an event — until webhooks
 * flow again. With PAUSE_WHEN_WEBHOOKS_SILENT, nothing is sent meanwhile.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { type RoleHandle, startRole, TEST_TOKEN, waitFor } from './helpers/pipeline.js';

const SECRET = 'webhook-secret-123-abcdefghijkl';
const ECHO_TIMEOUT_SECONDS = 1;

describe('webhook silence', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  let api: RoleHandle;
  const running: RoleHandle[] = [];
  let phoneSeq = 0;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
    api = await startRole({ roles: ['api'], databaseUrl: testDb.url, env: { WEBHOOK_SECRET: SECRET }, fake });
    fake.deliverWebhooksTo(async (body) => {
      const res = await api.running.app!.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'x-webhook-secret': SECRET }, payload: body });
      return res.statusCode;
    });
  });
  beforeEach(() => fake.restoreWebhooks());
  afterEach(async () => {
    for (const role of running.splice(0)) await role.stop();
  });
  after(async () => {
    await api.stop();
    await fake.close();
    await testDb.drop();
  });

  async function startSender(env: Record<string, string> = {}) {
    const relay = await startRole({
      roles: ['relay'],
      databaseUrl: testDb.url,
      env: { WEBHOOK_SECRET: SECRET, PRESEND_REPLY_CHECK: 'required', WEBHOOK_ECHO_TIMEOUT_SECONDS: String(ECHO_TIMEOUT_SECONDS), ...env },
      fake,
    });
    running.push(relay);
    return relay;
  }

  /** `count` follow-ups due at `dueAt`, each for its own fan. */
  async function dueFollowups(count: number, dueAt = new Date()): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      phoneSeq += 1;
      const phone = `5581997${String(100_000 + phoneSeq).slice(-6)}`;
      const { rows } = await testDb.db.query<{ id: string }>(
        `WITH l AS (INSERT INTO leads (phone) VALUES ($1) ON CONFLICT (phone) DO UPDATE SET updated_at = now() RETURNING id)
         INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at)
         SELECT l.id, $2, $3::timestamptz, $3::timestamptz, $3::timestamptz - interval '1 hour' FROM l RETURNING id`,
        [phone, `Opa! Mensagem ${phoneSeq}`, dueAt],
      );
      ids.push(rows[0]!.id);
    }
    return ids;
  }

  async function allExecuted(ids: string[]) {
    const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1) AND status = 'executed'`, [ids]);
    return rows[0]!.n === ids.length;
  }

  async function ready() {
    const res = await api.running.app!.inject({ method: 'GET', url: '/health/ready', headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    return res.json() as { status: string; checks: { webhooks: { status: string; reason?: string } } };
  }

  async function silenceEvents() {
    const { rows } = await testDb.db.query<{ kind: string; reason: string | null }>('SELECT kind, reason FROM webhook_health_events ORDER BY id');
    return rows;
  }

  async function makeSilent() {
    // Webhooks stop; three sends in a row get no echo.
    fake.loseWebhooks();
    const silentIds = await dueFollowups(3, new Date(Date.now() + 1_000));
    await waitFor('the three follow-ups sent', () => allExecuted(silentIds));
    const { rows } = await testDb.db.query<{ last: Date }>('SELECT max(sent_at) AS last FROM follow_ups WHERE id = ANY($1)', [silentIds]);
    await waitFor('webhooks marked silent', async () => (await ready()).checks.webhooks.status === 'silent', { timeoutMs: 30_000 });
    return { lastSend: new Date(rows[0]!.last).getTime(), detectedAt: Date.now() };
  }

  test('several sends without their echo: silent within the configured time (health degraded, metric, one event), cleared by the next echo', async () => {
    const sender = await startSender();
    const flowing = await dueFollowups(2);
    await waitFor('sent while webhooks flow', () => allExecuted(flowing));
    await waitFor('the echoes heard', async () => (await ready()).checks.webhooks.status === 'flowing');
    assert.equal((await ready()).status, 'ok');

    const { lastSend, detectedAt } = await makeSilent();
    // Echo timeout, plus the detector's one-second turn, plus a loaded machine's slack.
    assert.ok(detectedAt - lastSend < ECHO_TIMEOUT_SECONDS * 1000 + 8_000, `detected ${detectedAt - lastSend} ms after the last send`);
    const health = await ready();
    assert.equal(health.status, 'degraded');
    assert.equal(health.checks.webhooks.reason, 'echoes_missing');
    const metrics = await api.running.app!.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /followups_webhooks_silent\{instance="nautico"\} 1/);
    // Detection runs again (here and in every sending process): still one event.
    assert.equal(await sender.ctx.webhookSilence!.detect(), false);
    assert.deepEqual(await silenceEvents(), [{ kind: 'silent', reason: 'echoes_missing' }]);

    // Webhooks flow again: the next send's echo clears it.
    fake.restoreWebhooks();
    const next = await dueFollowups(1);
    await waitFor('the next one sent', () => allExecuted(next));
    await waitFor('no longer silent', async () => (await ready()).checks.webhooks.status === 'flowing');
    assert.equal((await ready()).status, 'ok');
    assert.deepEqual((await silenceEvents()).map((e) => e.kind), ['silent', 'flowing']);
    const after = await api.running.app!.inject({ method: 'GET', url: '/metrics' });
    assert.match(after.body, /followups_webhooks_silent\{instance="nautico"\} 0/);
  });

  test('with PAUSE_WHEN_WEBHOOKS_SILENT, nothing is sent while silent; a webhook arriving again lets it go', async () => {
    await startSender({ PAUSE_WHEN_WEBHOOKS_SILENT: 'true' });
    await makeSilent();
    const delivered = fake.delivered.length;
    const [held] = await dueFollowups(1);
    await waitFor('held back as paused', async () => {
      const { rows } = await testDb.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM follow_up_events WHERE follow_up_id = $1 AND reason = 'sending_paused' AND detail->>'pause' = 'webhooks_silent'`,
        [held],
      );
      return rows[0]!.n >= 2;
    });
    assert.equal(fake.delivered.length, delivered, 'nothing was sent while silent');
    const { rows } = await testDb.db.query<{ status: string }>('SELECT status FROM follow_ups WHERE id = $1', [held]);
    assert.equal(rows[0]!.status, 'pending');

    // A fan writes to the number and its webhook arrives: webhooks flow again.
    fake.restoreWebhooks();
    fake.receiveFromLead({ phone: '5581996000001', text: 'Oi, quero saber dos planos' });
    await waitFor('sent once webhooks flow', () => allExecuted([held!]));
    assert.equal((await ready()).checks.webhooks.status, 'flowing');
  });
});
