/**
 * The pre-send reply check (a reply whose webhook was lost still stops the follow-up): right before a follow-up goes out, WhatsApp
 * itself is asked whether the fan wrote. The fake Evolution loses webhooks on
 * purpose and keeps the fan's message in findMessages, as the real one does when
 * its webhooks stop.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { type RoleHandle, startRole, waitFor } from './helpers/pipeline.js';

const SECRET = 'webhook-secret-123-abcdefghijkl';

describe('the pre-send reply check', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  let api: RoleHandle;
  const running: RoleHandle[] = [];

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
    api = await startRole({ roles: ['api'], databaseUrl: testDb.url, env: { WEBHOOK_SECRET: SECRET }, fake });
    // Evolution's webhooks reach the API (in process, as app.inject).
    fake.deliverWebhooksTo(async (body) => {
      const res = await api.running.app!.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'x-webhook-secret': SECRET }, payload: body });
      return res.statusCode;
    });
  });
  beforeEach(() => {
    fake.restoreWebhooks();
    fake.failFindMessages(null);
  });
  after(async () => {
    for (const role of running) await role.stop();
    await api.stop();
    await fake.close();
    await testDb.drop();
  });

  /** A relay in direct mode (it runs follow-ups itself) with the check set as given; stopped by afterEach. */
  async function startSender(env: Record<string, string>) {
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env: { WEBHOOK_SECRET: SECRET, ...env }, fake });
    running.push(relay);
    return relay;
  }
  afterEach(async () => {
    for (const role of running.splice(0)) await role.stop();
  });

  /** A follow-up due at `dueAt` for a Brazilian mobile (one WhatsApp files without its 9th digit), planned an hour before. */
  async function dueFollowup(phone: string, text: string, dueAt: Date): Promise<string> {
    const { rows } = await testDb.db.query<{ id: string }>(
      `WITH l AS (INSERT INTO leads (phone) VALUES ($1) ON CONFLICT (phone) DO UPDATE SET updated_at = now() RETURNING id)
       INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at)
       SELECT l.id, $2, $3::timestamptz, $3::timestamptz, $3::timestamptz - interval '1 hour' FROM l RETURNING id`,
      [phone, text, dueAt],
    );
    return rows[0]!.id;
  }

  async function followup(id: string) {
    const { rows } = await testDb.db.query<{ status: string; cancel_reason: string | null; defer_reason: string | null; lead_id: string; phone: string }>(
      `SELECT f.status, f.cancel_reason, f.defer_reason, f.lead_id, l.phone FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE f.id = $1`,
      [id],
    );
    return rows[0]!;
  }

  async function events(id: string) {
    const { rows } = await testDb.db.query<{ to_status: string; reason: string; detail: Record<string, unknown> | null }>(
      'SELECT to_status, reason, detail FROM follow_up_events WHERE follow_up_id = $1 ORDER BY id',
      [id],
    );
    return rows;
  }

  test('a fan who replies while webhooks are lost: the check finds it, the follow-up and the next step are cancelled, nothing is sent, the late webhook is a duplicate', async () => {
    const id = await dueFollowup('5582998765432', 'Opa! Ainda pensando no Sócio?', new Date(Date.now() + 1_500));
    const { lead_id: leadId, phone } = await followup(id);
    // The 48 h step of the same sequence, still pending.
    const { rows: later } = await testDb.db.query<{ id: string }>(
      `INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at)
       SELECT lead_id, 'Última chamada!', due_at + interval '1 day', due_at + interval '1 day', anchor_at FROM follow_ups WHERE id = $1 RETURNING id`,
      [id],
    );
    fake.loseWebhooks();
    const reply = fake.receiveFromLead({ phone, text: 'Já comprei, obrigado!' });
    await fake.webhooksSettled();
    assert.equal(reply.webhook, 'lost');

    await startSender({ PRESEND_REPLY_CHECK: 'required' });
    await waitFor('the follow-up cancelled', async () => (await followup(id)).status === 'cancelled');

    const row = await followup(id);
    assert.equal(row.cancel_reason, 'lead_replied');
    const cancelEvent = (await events(id)).find((e) => e.to_status === 'cancelled')!;
    assert.equal(cancelEvent.reason, 'lead_replied');
    assert.equal(cancelEvent.detail?.source, 'presend_check');
    assert.equal(cancelEvent.detail?.providerMessageId, reply.id);
    assert.equal(fake.deliveriesTo(phone).length, 0, 'nothing was sent to the fan');
    assert.equal((await followup(later[0]!.id)).cancel_reason, 'lead_replied', 'the later step is cancelled too');
    const { rows: logged } = await testDb.db.query<{ text: string }>(`SELECT text FROM messages WHERE lead_id = $1 AND direction = 'in'`, [leadId]);
    assert.deepEqual(logged.map((m) => m.text), ['Já comprei, obrigado!']);

    // Evolution delivers the lost webhook after all: the same WhatsApp id, so it is a duplicate.
    const late = await api.running.app!.inject({
      method: 'POST',
      url: '/webhooks/evolution',
      headers: { 'x-webhook-secret': SECRET },
      payload: {
        event: 'messages.upsert',
        instance: fake.instance,
        data: {
          key: { remoteJid: reply.jid, fromMe: false, id: reply.id },
          message: { conversation: reply.text },
          messageType: 'conversation',
          messageTimestamp: Math.floor(reply.at.getTime() / 1000),
        },
      },
    });
    assert.equal(late.statusCode, 200);
    assert.equal(late.json().results[0].outcome, 'duplicate');
    const { rows: after } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM messages WHERE lead_id = $1 AND direction = 'in'`, [leadId]);
    assert.equal(after[0]!.n, 1, 'one reply, not two');
  });

  test('an opt-out written under the fan\'s @lid, its webhook lost: found under the lid, the fan opted out for good', async () => {
    const id = await dueFollowup('5583998765432', 'Opa! Bora ser sócio?', new Date(Date.now() + 1_500));
    const { lead_id: leadId, phone } = await followup(id);
    const lid = '204958372615299@lid';
    await testDb.db.query('UPDATE leads SET whatsapp_lid = $2 WHERE id = $1', [leadId, lid]);
    fake.loseWebhooks();
    fake.receiveFromLead({ phone, lid, text: 'Pode parar de me mandar mensagem' });

    await startSender({ PRESEND_REPLY_CHECK: 'required' });
    await waitFor('the follow-up cancelled', async () => (await followup(id)).status === 'cancelled');
    assert.equal((await followup(id)).cancel_reason, 'opted_out');
    const { rows } = await testDb.db.query<{ opted_out_at: Date | null }>('SELECT opted_out_at FROM leads WHERE id = $1', [leadId]);
    assert.ok(rows[0]!.opted_out_at, 'the lead is opted out');
    assert.equal(fake.deliveriesTo(phone).length, 0);
  });

  test('findMessages failing: the follow-up is deferred again and again, never sent blind (required)', async () => {
    fake.failFindMessages({ mode: 'error' });
    const id = await dueFollowup('5584998765432', 'Opa! Passando pra lembrar.', new Date(Date.now() + 500));
    const { phone } = await followup(id);
    await startSender({ PRESEND_REPLY_CHECK: 'required', PRESEND_CHECK_RETRY_SECONDS: '1', PRESEND_CHECK_MAX_FAILURES: '1' });
    await waitFor('three failed checks', async () => (await events(id)).filter((e) => e.reason === 'presend_check_failed').length >= 3);
    assert.equal(fake.deliveriesTo(phone).length, 0, 'not sent while WhatsApp cannot be asked');
    const failed = (await events(id)).filter((e) => e.reason === 'presend_check_failed');
    assert.deepEqual(failed.map((e) => e.to_status), failed.map(() => 'pending'));
    assert.deepEqual(failed.slice(0, 3).map((e) => e.detail?.failedChecks), [1, 2, 3]);

    fake.failFindMessages(null);
    await waitFor('sent once WhatsApp answers', async () => (await followup(id)).status === 'executed');
    assert.equal(fake.deliveriesTo(phone).length, 1);
  });

  test('findMessages too slow counts as failed; best_effort sends after the configured number of failed checks', async () => {
    fake.failFindMessages({ mode: 'slow', ms: 1_500 });
    const id = await dueFollowup('5585998765432', 'Opa! Ainda dá tempo.', new Date(Date.now() + 500));
    const { phone } = await followup(id);
    await startSender({ PRESEND_REPLY_CHECK: 'best_effort', PRESEND_CHECK_TIMEOUT_MS: '300', PRESEND_CHECK_RETRY_SECONDS: '1', PRESEND_CHECK_MAX_FAILURES: '2' });
    await waitFor('sent unchecked', async () => (await followup(id)).status === 'executed', { timeoutMs: 60_000 });
    const reasons = (await events(id)).map((e) => e.reason);
    assert.equal(reasons.filter((r) => r === 'presend_check_failed').length, 2, reasons.join(', '));
    assert.ok(reasons.includes('presend_check_skipped'));
    assert.equal(fake.deliveriesTo(phone).length, 1);
  });
});
