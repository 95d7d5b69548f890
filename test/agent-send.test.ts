/**
 * POST /v1/leads/:phone/send (README "Agent integration" → "Sending a message"): the agent answers a fan through
 * the service. Against the real PostgreSQL and the fake Evolution API, whose echoes
 * of our sends come back as webhooks to the same app.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { type RoleHandle, startRole, TEST_TOKEN } from './helpers/pipeline.js';

const SECRET = 'webhook-secret-123-abcdefghijkl';
const auth = { authorization: `Bearer ${TEST_TOKEN}` };

describe('POST /v1/leads/:phone/send', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  let api: RoleHandle;
  const extra: RoleHandle[] = [];
  let seq = 0;
  const nextPhone = () => `5581996${String(100_000 + ++seq).slice(-6)}`;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
    api = await startRole({ roles: ['api'], databaseUrl: testDb.url, env: { WEBHOOK_SECRET: SECRET }, fake });
    fake.deliverWebhooksTo(async (body) => {
      const res = await api.running.app!.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'x-webhook-secret': SECRET }, payload: body });
      return res.statusCode;
    });
  });
  beforeEach(() => fake.clearFaults());
  after(async () => {
    for (const role of extra) await role.stop();
    await api.stop();
    await fake.close();
    await testDb.drop();
  });

  const send = (phone: string, payload: unknown, role: RoleHandle = api, headers: Record<string, string> = {}) =>
    role.running.app!.inject({ method: 'POST', url: `/v1/leads/${phone}/send`, headers: { ...auth, ...headers }, payload: payload as object });

  async function messagesOf(phone: string) {
    const { rows } = await testDb.db.query<{ source: string; direction: string; text: string; provider_message_id: string | null }>(
      `SELECT m.source, m.direction, m.text, m.provider_message_id FROM messages m JOIN leads l ON l.id = m.lead_id WHERE l.phone = $1 ORDER BY m.at, m.created_at`,
      [phone],
    );
    return rows;
  }
  async function leadOf(phone: string) {
    const { rows } = await testDb.db.query<{ handoff_at: Date | null; last_outbound_at: Date | null }>('SELECT * FROM leads WHERE phone = $1', [phone]);
    return rows[0];
  }

  it("sends the text through Evolution, answers with Evolution's message id, logs it as the agent's, and its echo is not taken for a hand-off", async () => {
    const phone = nextPhone();
    const scheduled = await api.running.app!.inject({
      method: 'POST',
      url: '/v1/followups',
      headers: auth,
      payload: { phone, delayHours: 4, message: 'Oi! Conseguiu ver os planos?' },
    });
    assert.equal(scheduled.statusCode, 201, scheduled.body);

    const res = await send(phone, { text: 'Oi Ana! O plano família sai por R$ 390/mês.' });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    const delivered = fake.deliveriesTo(phone);
    assert.equal(delivered.length, 1);
    assert.equal(delivered[0]!.text, 'Oi Ana! O plano família sai por R$ 390/mês.');
    assert.equal(body.providerMessageId, delivered[0]!.id);
    assert.equal(body.created, true);

    await fake.webhooksSettled();
    assert.ok(fake.webhookCounts.delivered > 0, 'the echo reached the webhook route');
    const lead = await leadOf(phone);
    assert.equal(lead!.handoff_at, null, 'our own message is not a person taking over');
    assert.ok(lead!.last_outbound_at, 'last_outbound_at stamped');
    assert.deepEqual(await messagesOf(phone), [
      { source: 'agent', direction: 'out', text: 'Oi Ana! O plano família sai por R$ 390/mês.', provider_message_id: delivered[0]!.id },
    ]);
    const followup = await testDb.db.query<{ status: string }>('SELECT status FROM follow_ups WHERE id = $1', [scheduled.json().id]);
    assert.equal(followup.rows[0]!.status, 'pending', 'the follow-up is still there');
  });

  it('a person writing from our number is still a hand-off (the echo check is not blind)', async () => {
    const phone = nextPhone();
    assert.equal((await send(phone, { text: 'Primeira mensagem do agente' })).statusCode, 201);
    const webhook = await api.running.app!.inject({
      method: 'POST',
      url: '/webhooks/evolution',
      headers: { 'x-webhook-secret': SECRET },
      payload: {
        event: 'messages.upsert',
        instance: fake.instance,
        data: {
          key: { remoteJid: `${phone}@s.whatsapp.net`, fromMe: true, id: 'HUMAN0001' },
          message: { conversation: 'Oi, aqui é a Carla da secretaria' },
          messageType: 'conversation',
          messageTimestamp: Math.floor(Date.now() / 1000),
        },
      },
    });
    assert.equal(webhook.statusCode, 200, webhook.body);
    assert.ok((await leadOf(phone))!.handoff_at, 'handed off');
    const refused = await send(phone, { text: 'Ainda está aí?' });
    assert.equal(refused.statusCode, 409);
    assert.equal(refused.json().error.code, 'lead_handoff');
    assert.match(refused.json().error.message, /handoff/);
  });

  it('the same idempotency key sends once and answers the first send again; another request with that key is refused', async () => {
    const phone = nextPhone();
    const first = await send(phone, { text: 'Posso te mandar o regulamento?', idempotencyKey: 'turn-42' });
    assert.equal(first.statusCode, 201, first.body);
    const again = await send(phone, { text: 'Posso te mandar o regulamento?' }, api, { 'idempotency-key': 'turn-42' });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json().created, false);
    assert.equal(again.json().providerMessageId, first.json().providerMessageId);
    assert.equal(again.json().messageId, first.json().messageId);
    assert.equal(fake.deliveriesTo(phone).length, 1, 'sent once');

    const other = await send(phone, { text: 'Outro texto', idempotencyKey: 'turn-42' });
    assert.equal(other.statusCode, 409);
    assert.equal(other.json().error.code, 'idempotency_key_reused');
    assert.equal(fake.deliveriesTo(phone).length, 1);
    assert.equal((await messagesOf(phone)).length, 1);
  });

  it('refuses (409, with the reason) an opted-out, an erased lead and a number not on WhatsApp, and sends nothing', async () => {
    const optedOut = nextPhone();
    assert.equal((await api.running.app!.inject({ method: 'POST', url: `/v1/leads/${optedOut}/opt-out`, headers: auth })).statusCode, 200);
    const r1 = await send(optedOut, { text: 'Oi' });
    assert.equal(r1.statusCode, 409);
    assert.equal(r1.json().error.code, 'lead_opted_out');
    assert.match(r1.json().error.message, /opted out/);

    const erased = nextPhone();
    assert.equal((await send(erased, { text: 'Oi, tudo bem?' })).statusCode, 201);
    assert.equal((await api.running.app!.inject({ method: 'DELETE', url: `/v1/leads/${erased}`, headers: auth })).statusCode, 200);
    const r2 = await send(erased, { text: 'Oi de novo' });
    assert.equal(r2.statusCode, 409);
    assert.equal(r2.json().error.code, 'lead_erased');
    assert.equal(fake.deliveriesTo(erased).length, 1, 'only the message before the erasure');
    const { rowCount } = await testDb.db.query('SELECT 1 FROM leads WHERE phone = $1', [erased]);
    assert.equal(rowCount, 0, 'no new lead was made for the erased number');

    const absent = nextPhone();
    fake.notOnWhatsApp.add(absent);
    const r3 = await send(absent, { text: 'Oi' });
    assert.equal(r3.statusCode, 409, r3.body);
    assert.equal(r3.json().error.code, 'lead_invalid_number');
    assert.deepEqual(await messagesOf(absent), [], 'nothing logged for a message that did not go out');
    assert.equal(fake.deliveriesTo(optedOut).length + fake.deliveriesTo(absent).length, 0);
  });

  it('bad input is a 400 naming the field, and nothing is written or sent', async () => {
    const phone = nextPhone();
    const cases: Array<[unknown, string]> = [
      [{}, 'text'],
      [{ text: '   ' }, 'text'],
      [{ text: 'x'.repeat(4_097) }, 'text'],
      [{ text: 'oi', typing: 'yes' }, 'typing'],
      [{ text: 'oi', extra: 1 }, 'extra'],
    ];
    for (const [payload, field] of cases) {
      const res = await send(phone, payload);
      assert.equal(res.statusCode, 400, `${JSON.stringify(payload).slice(0, 40)}: ${res.body}`);
      assert.equal(res.json().error.details[0].field, field);
    }
    const badPhone = await send('12ab', { text: 'oi' });
    assert.equal(badPhone.statusCode, 400);
    assert.equal(badPhone.json().error.details[0].field, 'phone');
    assert.equal((await testDb.db.query('SELECT 1 FROM leads WHERE phone = $1', [phone])).rowCount, 0);
    assert.equal(fake.deliveriesTo(phone).length, 0);
  });

  it('a send that timed out answers 504; repeating it with the same key finds it at Evolution instead of sending twice', async () => {
    const phone = nextPhone();
    fake.fail('timeout-after-delivery', { count: 1 });
    const first = await send(phone, { text: 'Te mando o link do tour virtual', idempotencyKey: 'turn-timeout' });
    assert.equal(first.statusCode, 504, first.body);
    assert.equal(first.json().error.code, 'send_outcome_unknown');
    const again = await send(phone, { text: 'Te mando o link do tour virtual', idempotencyKey: 'turn-timeout' });
    assert.equal(again.statusCode, 200, again.body);
    const delivered = fake.deliveriesTo(phone);
    assert.equal(delivered.length, 1, 'not sent twice');
    assert.equal(again.json().providerMessageId, delivered[0]!.id);
    assert.equal((await messagesOf(phone))[0]!.provider_message_id, delivered[0]!.id);
  });

  it('a transport failure answers 503 and logs nothing; a paused sender answers 503 sending_paused', async () => {
    const phone = nextPhone();
    fake.fail('server-error');
    const failed = await send(phone, { text: 'Oi' });
    fake.clearFaults();
    assert.equal(failed.statusCode, 503, failed.body);
    assert.equal(failed.json().error.code, 'send_failed');
    assert.ok(failed.headers['retry-after']);
    assert.deepEqual(await messagesOf(phone), []);

    await api.ctx.gate.pause('operator', 'test');
    try {
      const paused = await send(phone, { text: 'Oi' });
      assert.equal(paused.statusCode, 503);
      assert.equal(paused.json().error.code, 'sending_paused');
    } finally {
      await api.ctx.gate.resume(['operator']);
    }
    assert.equal(fake.deliveriesTo(phone).length, 0);
  });

  it("keeps the number's pace and daily cap (429 daily_cap with Retry-After when it is used up) but is not held by the sending window", async () => {
    // A window that is closed now, in the business time zone (Recife, UTC−3, no DST).
    const hour = (new Date().getUTCHours() + 21) % 24;
    const [start, end] = hour <= 20 ? [hour + 2, hour + 3] : [1, 2];
    const pad = (h: number) => `${String(h).padStart(2, '0')}:00`;
    const paced = await startRole({
      roles: ['api'],
      databaseUrl: testDb.url,
      env: {
        WEBHOOK_SECRET: SECRET,
        SENDING_WINDOW_ENABLED: 'true',
        SENDING_WINDOW_JITTER_MINUTES: '0',
        BUSINESS_HOURS_START: pad(start),
        BUSINESS_HOURS_END: pad(end),
        // Two per second: slots of 1 s, a send only in the first third of its slot.
        SEND_RATE_PER_MINUTE: '2',
        SEND_RATE_WINDOW_SECONDS: '1',
        SEND_DAILY_CAP: '3',
      },
      fake,
    });
    extra.push(paced);
    const phone = nextPhone();
    for (const text of ['Oi! Vi que você perguntou do clube.', 'Quer agendar uma visita?', 'Sábado às 10h serve?']) {
      const res = await send(phone, { text }, paced);
      assert.equal(res.statusCode, 201, `outside the window, still sent: ${res.body}`);
    }
    const at = fake.deliveriesTo(phone).map((d) => d.requestedAt ?? d.at.getTime());
    assert.equal(at.length, 3);
    for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! > 600, `paced: ${at[i]! - at[i - 1]!} ms apart`);

    const over = await send(phone, { text: 'Mais uma coisa…' }, paced);
    assert.equal(over.statusCode, 429, over.body);
    assert.equal(over.json().error.code, 'daily_cap');
    assert.ok(Number(over.headers['retry-after']) >= 1);
    assert.equal(fake.deliveriesTo(phone).length, 3);
    assert.equal((await messagesOf(phone)).length, 3, 'the refused one is not logged');
  });
});
