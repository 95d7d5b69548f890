/**
 * Forwarding to the agent (README "Agent integration" → "Forwarding to the agent"): every fan message and lifecycle event reaches
 * AGENT_WEBHOOK_URL signed, in order per lead, retried, parked after the last attempt;
 * with no URL nothing is written. A real relay role delivers to a fake agent (a local
 * HTTP server); the webhooks come through the real API, as Evolution sends them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { verifyAgentWebhookSignature, signAgentWebhook } from '../src/forwarding/webhook-signature.js';
import { markExecuted } from '../src/followups/transitions.js';
import { agentEventBody, backoffMs } from '../src/forwarding/dispatch-agent-events.js';
import { setAgentForwarding } from '../src/forwarding/record-agent-event.js';
import { loadConfig } from '../src/config.js';
import { markNumberInvalid } from '../src/followups/mark-number-invalid.js';
import { formatStatus, readStatus } from '../src/operator/read-status.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { type AgentDelivery, type FakeAgent, startFakeAgent } from './helpers/fake-agent.js';
import { startRole, type RoleHandle, waitFor } from './helpers/pipeline.js';
import { bearer, fixture, leadWithFollowups, secretHeader, startWebhookApp, type WebhookApp } from './helpers/webhook-app.js';

const AGENT_SECRET = 'agent-secret-0123456789abcdef';
const JOAO = '5581999998888'; // the fixtures write him as 558199998888
const SEVERINO = '5581987776655';
const SCHEDULED_AT = new Date('2025-11-26T06:00:00.000Z');

/** A fan's text message as Evolution posts it (messages.upsert). */
export function fanMessage(phone: string, id: string, text: string, at = new Date()): Record<string, unknown> {
  return {
    event: 'messages.upsert',
    instance: 'nautico',
    data: {
      key: { remoteJid: `${phone}@s.whatsapp.net`, fromMe: false, id },
      pushName: 'Torcedor',
      message: { conversation: text },
      messageType: 'conversation',
      messageTimestamp: Math.floor(at.getTime() / 1000),
      source: 'android',
    },
    sender: '558133334444@s.whatsapp.net',
  };
}

function agentEnv(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    METRICS_REFRESH_SECONDS: '1',
    AGENT_WEBHOOK_URL: url,
    AGENT_WEBHOOK_SECRET: AGENT_SECRET,
    AGENT_WEBHOOK_TIMEOUT_MS: '1000',
    AGENT_WEBHOOK_RETRY_BASE_MS: '50',
    AGENT_WEBHOOK_RETRY_MAX_MS: '200',
    AGENT_WEBHOOK_MAX_ATTEMPTS: '3',
    ...extra,
  };
}

describe('forwarding to the agent', () => {
  let testDb: TestDatabase;
  let agent: FakeAgent;
  let w: WebhookApp;
  let relay: RoleHandle;

  before(async () => {
    testDb = await createTestDatabase();
    agent = await startFakeAgent();
    // Real time: the relay runs due follow-ups, so the ones these tests make are due hours ahead.
    w = await startWebhookApp(testDb.db, { env: agentEnv(agent.url), start: new Date().toISOString() });
    relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env: agentEnv(agent.url) });
  });
  after(async () => {
    await relay?.stop();
    await w?.close();
    await agent?.close();
    await testDb?.drop();
  });

  const hook = (body: unknown) =>
    w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'content-type': 'application/json', ...secretHeader }, payload: JSON.stringify(body) });
  const acceptedFor = (phone: string) => agent.accepted().filter((d) => d.event.lead.phone === phone);
  const typesFor = (phone: string) => [...new Map(acceptedFor(phone).map((d) => [d.event.id, d.event.type])).values()];
  const statusesFor = async (phone: string) =>
    (await testDb.db.query<{ status: string }>('SELECT o.status FROM agent_outbox o JOIN leads l ON l.id = o.lead_id WHERE l.phone = $1', [phone])).rows.map((r) => r.status);
  const outboxRow = async (id: string) =>
    (await testDb.db.query<{ status: string; attempts: number }>('SELECT status, attempts FROM agent_outbox WHERE id = $1', [id])).rows[0];

  test("a fan's reply arrives signed, with the contract's headers and body, then lead.replied", async () => {
    const planned = new Date(Date.now() - 60_000);
    const { leadId } = await leadWithFollowups(testDb.db, { phone: JOAO, now: planned, enrollment: 'nautico', name: 'João' });
    const writtenAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 5_000);
    w.clock.set(new Date());
    const res = await hook(fanMessage('558199998888', '3A554E20ECABF3D45BB2', 'Opa Marina, ainda tô pensando, visse?', writtenAt));
    assert.equal(res.statusCode, 200, res.body);

    await waitFor('both events', async () => typesFor(JOAO).length >= 2);
    assert.deepEqual(typesFor(JOAO), ['message.received', 'lead.replied']);
    const [received, replied] = acceptedFor(JOAO);
    const { rows } = await testDb.db.query<{ id: string }>(`SELECT id FROM messages WHERE lead_id = $1 AND direction = 'in'`, [leadId]);

    assert.equal(received!.headers['content-type'], 'application/json');
    assert.equal(received!.headers['x-followups-event-id'], received!.event.id);
    assert.equal(received!.headers['x-followups-event-type'], 'message.received');
    assert.match(String(received!.headers['x-followups-signature']), /^t=\d+,v1=[0-9a-f]{64}$/);
    assert.ok(verifyAgentWebhookSignature({ secret: AGENT_SECRET, header: String(received!.headers['x-followups-signature']), body: received!.body }));

    const event = JSON.parse(received!.body);
    assert.match(event.id, /^[0-9a-f-]{36}$/);
    assert.equal(event.type, 'message.received');
    assert.equal(event.occurredAt, writtenAt.toISOString()); // WhatsApp's messageTimestamp
    assert.deepEqual(event.lead, { id: leadId, phone: JOAO, name: 'João' });
    assert.deepEqual(event.data, {
      messageId: rows[0]!.id,
      providerMessageId: '3A554E20ECABF3D45BB2',
      text: 'Opa Marina, ainda tô pensando, visse?',
      messageType: 'conversation',
      receivedAt: w.clock.now().toISOString(),
      instance: 'nautico',
    });
    assert.equal(event.data.raw, undefined, 'no raw payload unless AGENT_WEBHOOK_RAW=true');
    assert.deepEqual(replied!.event.data, { messageId: rows[0]!.id, followupsCancelled: 2, enrollmentStopped: true });
  });

  test('lifecycle events: opted out, handed off, converted, follow-up sent, number invalid', async () => {
    // Opt-out by message: the opt-out, then the message that carried it.
    assert.equal((await hook(fixture('messages-upsert-optout'))).statusCode, 200);
    await waitFor('opt-out events', async () => typesFor(SEVERINO).length >= 2);
    assert.deepEqual(typesFor(SEVERINO), ['lead.opted_out', 'message.received']);
    assert.deepEqual(acceptedFor(SEVERINO)[0]!.event.data, { source: 'whatsapp', messageId: '3A0PT0UT00000000AAAA', followupsCancelled: 0 });

    // A person writes from the club's number: hand-off.
    const maria = '5581988887777';
    const { leadId, followupIds } = await leadWithFollowups(testDb.db, { phone: maria, now: new Date(Date.now() - 60_000), count: 2, statuses: ['sending', 'pending'] });
    const sentAt = new Date(Date.now() - 30_000);
    assert.ok(await markExecuted(testDb.db, { id: followupIds[0]!, providerMessageId: 'PROV-1', text: 'Passo 1', composer: 'template', now: sentAt }));
    assert.equal((await hook({ ...fanMessage(maria, 'HUMAN-1', 'Oi, aqui é o Carlos'), data: { ...(fanMessage(maria, 'HUMAN-1', 'Oi, aqui é o Carlos').data as object), key: { remoteJid: `${maria}@s.whatsapp.net`, fromMe: true, id: 'HUMAN-1' } } })).statusCode, 200);
    const converted = await w.app.inject({ method: 'POST', url: `/v1/leads/${maria}/converted`, headers: { ...bearer, 'content-type': 'application/json' }, payload: '{}' });
    assert.equal(converted.statusCode, 200, converted.body);
    assert.ok(await markNumberInvalid(testDb.db, { leadId, now: sentAt, detail: { source: 'number_check' } }));
    assert.equal(await markNumberInvalid(testDb.db, { leadId, now: sentAt, detail: { source: 'number_check' } }), false, 'only the first time');

    await waitFor('four events', async () => typesFor(maria).length >= 4);
    assert.deepEqual(typesFor(maria), ['followup.sent', 'lead.handed_off', 'lead.converted', 'lead.number_invalid']);
    const [sent, handoff] = acceptedFor(maria);
    assert.deepEqual(sent!.event.data, { followupId: followupIds[0], text: 'Passo 1', providerMessageId: 'PROV-1', sentAt: sentAt.toISOString(), campaign: null, step: null });
    assert.equal(sent!.event.occurredAt, sentAt.toISOString());
    assert.equal((handoff!.event.data as { followupsCancelled: number }).followupsCancelled, 1);
  });

  test('a 500 and a timeout are retried until the agent answers 2xx', async () => {
    const phone = '5581991110001';
    agent.answerFor(phone, { status: 500 }, { hang: true });
    await hook(fanMessage(phone, 'RETRY-1', 'Quanto custa o plano?'));
    await waitFor('the event, delivered', async () => (await statusesFor(phone)).every((s) => s === 'delivered') && acceptedFor(phone).length > 0, { timeoutMs: 20_000 });
    const tries = agent.deliveries.filter((d) => d.event.lead.phone === phone);
    assert.deepEqual(tries.slice(0, 3).map((d) => d.status), [500, 'hang', 200]);
    assert.equal(new Set(tries.map((d) => d.event.id)).size, 1, 'the same event id on every attempt');
    // A 200 the dispatcher did not hear in time (a loaded machine) is one more attempt, never fewer.
    assert.equal((await outboxRow(tries[0]!.event.id))!.status, 'delivered');
    assert.ok((await outboxRow(tries[0]!.event.id))!.attempts >= 3);
    // The counters live in the relay's process (its own metrics).
    assert.ok((await relay.ctx.metrics.agentDeliveryFailures.get()).values.reduce((n, v) => n + v.value, 0) >= 2);
  });

  test('parked after the last attempt: visible in the API and /metrics, later events go on, a retry re-delivers it', async () => {
    const phone = '5581991110002';
    agent.answerFor(phone, { status: 500 }, { status: 503 }, { status: 502 }); // AGENT_WEBHOOK_MAX_ATTEMPTS=3
    await hook(fanMessage(phone, 'PARK-1', 'primeira'));
    const parked = await waitFor('the event parked', async () => {
      const res = await w.app.inject({ method: 'GET', url: '/v1/agent/outbox?status=parked', headers: bearer });
      return res.json().events.find((e: { lead: { phone: string } }) => e.lead.phone === phone);
    });
    assert.equal(parked.type, 'message.received');
    assert.equal(parked.status, 'parked');
    assert.equal(parked.attempts, 3);
    assert.equal(parked.lastError, 'HTTP 502');
    await waitFor('/metrics shows it', async () => (await metric(w, 'followups_agent_outbox_parked')) === 1, { timeoutMs: 10_000 });
    const ready = await w.app.inject({ method: 'GET', url: '/health/ready', headers: bearer });
    assert.equal(ready.json().checks.agentOutbox.parked, 1);
    const status = await readStatus(w.ctx);
    assert.deepEqual({ ...status.agentOutbox, pending: 0 }, { forwarding: true, pending: 0, parked: 1 });
    assert.match(formatStatus(status), /agent events .* 1 parked/);

    // One poison event does not silence the lead: the next one is delivered.
    await hook(fanMessage(phone, 'PARK-2', 'segunda'));
    await waitFor('the later event', async () => acceptedFor(phone).some((d) => d.event.data.text === 'segunda'));

    const bad = await w.app.inject({ method: 'GET', url: '/v1/agent/outbox?status=delivered', headers: bearer });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /status/);
    const notParked = await w.app.inject({ method: 'POST', url: `/v1/agent/outbox/${acceptedFor(phone)[0]!.event.id}/retry`, headers: bearer });
    assert.equal(notParked.statusCode, 409);
    const unknown = await w.app.inject({ method: 'POST', url: '/v1/agent/outbox/00000000-0000-4000-8000-000000000000/retry', headers: bearer });
    assert.equal(unknown.statusCode, 404);

    const retried = await w.app.inject({ method: 'POST', url: `/v1/agent/outbox/${parked.id}/retry`, headers: bearer });
    assert.equal(retried.statusCode, 200, retried.body);
    assert.deepEqual(retried.json(), { id: parked.id, status: 'pending' });
    await waitFor('the parked event, delivered', async () => (await outboxRow(parked.id))!.status === 'delivered');
    assert.ok(acceptedFor(phone).some((d) => d.event.id === parked.id));
    await waitFor('/metrics shows none', async () => (await metric(w, 'followups_agent_outbox_parked')) === 0, { timeoutMs: 10_000 });

    // Retry all: two more parked, both back.
    const fail3 = [{ status: 500 }, { status: 500 }, { status: 500 }];
    agent.answerFor('5581991110003', ...fail3);
    agent.answerFor('5581991110004', ...fail3);
    await hook(fanMessage('5581991110003', 'PARK-3', 'x'));
    await hook(fanMessage('5581991110004', 'PARK-4', 'y'));
    await waitFor('two parked', async () => (await w.app.inject({ method: 'GET', url: '/v1/agent/outbox?status=parked', headers: bearer })).json().counts.parked === 2);
    const all = await w.app.inject({ method: 'POST', url: '/v1/agent/outbox/retry', headers: bearer });
    assert.deepEqual(all.json(), { retried: 2 });
    await waitFor('both delivered', async () => [...(await statusesFor('5581991110003')), ...(await statusesFor('5581991110004'))].every((s) => s === 'delivered'));
    assert.ok(acceptedFor('5581991110003').length > 0 && acceptedFor('5581991110004').length > 0);
  });

  test('AGENT_WEBHOOK_RAW=true forwards the raw Evolution payload with message.received', async () => {
    // A process started with AGENT_WEBHOOK_RAW=true keeps the payload (for every writer).
    const rawApp = await startWebhookApp(testDb.db, { env: agentEnv(agent.url, { AGENT_WEBHOOK_RAW: 'true' }), start: new Date().toISOString() });
    try {
      const phone = '5581991110005';
      const body = fanMessage(phone, 'RAW-1', 'Manda o link do sócio');
      const res = await rawApp.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'content-type': 'application/json', ...secretHeader }, payload: JSON.stringify(body) });
      assert.equal(res.statusCode, 200, res.body);
      const [delivery] = await waitFor('the event', async () => (acceptedFor(phone).length > 0 ? acceptedFor(phone) : null));
      assert.deepEqual(delivery!.event.data.raw, body);
      assert.equal(delivery!.event.data.text, 'Manda o link do sócio');
    } finally {
      await rawApp.close();
      await setAgentForwarding(testDb.db, { enabled: true, raw: false });
    }
  });

  test('a relay stopped mid-delivery stops at once; the event goes out again after its lease', async () => {
    const phone = '5581991110006';
    await relay.stop();
    const impatient = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env: { ...agentEnv(agent.url), AGENT_WEBHOOK_TIMEOUT_MS: '3000', SHUTDOWN_TIMEOUT_MS: '100' } });
    agent.answerFor(phone, { hang: true });
    await hook(fanMessage(phone, 'STOP-1', 'alô?'));
    await waitFor('the delivery in flight', async () => agent.deliveries.some((d) => d.event.lead.phone === phone));
    const stopping = Date.now();
    await impatient.stop();
    assert.ok(Date.now() - stopping < 5_000, 'the stop does not wait for the agent');
    relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env: agentEnv(agent.url) });
    await waitFor('the event, delivered by the next relay', async () => (await statusesFor(phone))[0] === 'delivered', { timeoutMs: 120_000 });
    const tries = agent.deliveries.filter((d) => d.event.lead.phone === phone);
    assert.deepEqual(tries.map((d) => d.status), ['hang', 200]);
    assert.equal(tries[0]!.event.id, tries[1]!.event.id);
  });

  test('the OpenAPI document covers the outbox routes', async () => {
    const doc = (await w.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    assert.ok(doc.paths['/v1/agent/outbox'].get);
    assert.ok(doc.paths['/v1/agent/outbox/retry'].post);
    assert.ok(doc.paths['/v1/agent/outbox/{id}/retry'].post);
  });
});

describe('the signature', () => {
  const body = JSON.stringify({ id: 'e1', type: 'message.received', data: { text: 'Opa' } });
  const now = new Date('2026-11-29T12:00:00.000Z');
  const header = signAgentWebhook({ secret: AGENT_SECRET, body, now });

  test('verifies with the right secret, the exact body and a fresh timestamp', () => {
    assert.ok(verifyAgentWebhookSignature({ secret: AGENT_SECRET, header, body, now }));
    assert.ok(verifyAgentWebhookSignature({ secret: AGENT_SECRET, header, body: Buffer.from(body), now: new Date(now.getTime() + 299_000) }));
    assert.ok(verifyAgentWebhookSignature({ secret: AGENT_SECRET, header: `${header},v1=${'0'.repeat(64)}`, body, now }), 'one matching v1 is enough');
  });

  test('is rejected with a wrong secret, a tampered body, a stale timestamp or a malformed header', () => {
    assert.equal(verifyAgentWebhookSignature({ secret: 'another-secret-0123456789', header, body, now }), false);
    assert.equal(verifyAgentWebhookSignature({ secret: AGENT_SECRET, header, body: body.replace('Opa', 'Opa!'), now }), false);
    assert.equal(verifyAgentWebhookSignature({ secret: AGENT_SECRET, header, body, now: new Date(now.getTime() + 301_000) }), false);
    assert.equal(verifyAgentWebhookSignature({ secret: AGENT_SECRET, header, body, now: new Date(now.getTime() - 301_000) }), false);
    assert.equal(verifyAgentWebhookSignature({ secret: AGENT_SECRET, header, body, now: new Date(now.getTime() + 3_600_000), toleranceSeconds: 3_000 }), false);
    const t = header.split(',')[0]!;
    for (const bad of [undefined, '', 'garbage', t, `v1=${header.split('v1=')[1]}`, `t=${Number(t.slice(2)) + 1},v1=${header.split('v1=')[1]}`]) {
      assert.equal(verifyAgentWebhookSignature({ secret: AGENT_SECRET, header: bad, body, now }), false, String(bad));
    }
  });
});

describe('the backoff and the body', () => {
  test('doubles from the base up to the cap, with 50–100 % jitter', () => {
    const settings = { retryBaseMs: 1_000, retryMaxMs: 600_000 };
    assert.deepEqual([1, 2, 3, 10, 11, 40].map((n) => backoffMs(n, settings, () => 1)), [1_000, 2_000, 4_000, 512_000, 600_000, 600_000]);
    assert.equal(backoffMs(3, settings, () => 0), 2_000);
  });

  test('carries the contract: id, type, occurredAt, lead, data (raw only when kept)', () => {
    const row = { id: 'e1', type: 'message.received', occurred_at: new Date('2026-11-29T12:00:00Z'), lead_id: 'l1', phone: '5581999998888', name: null, data: { text: 'Opa' } };
    assert.deepEqual(JSON.parse(agentEventBody({ ...row, raw: null })), {
      id: 'e1', type: 'message.received', occurredAt: '2026-11-29T12:00:00.000Z', lead: { id: 'l1', phone: '5581999998888', name: null }, data: { text: 'Opa' },
    });
    assert.deepEqual(JSON.parse(agentEventBody({ ...row, raw: { event: 'messages.upsert' } })).data, { text: 'Opa', raw: { event: 'messages.upsert' } });
  });
});

describe('the settings', () => {
  test('AGENT_WEBHOOK_SECRET is required with AGENT_WEBHOOK_URL, and long enough', () => {
    assert.throws(() => loadConfig({ AGENT_WEBHOOK_URL: 'https://agent.example.com/events' }), /AGENT_WEBHOOK_SECRET: required when AGENT_WEBHOOK_URL is set/);
    assert.throws(() => loadConfig({ AGENT_WEBHOOK_URL: 'https://agent.example.com/events', AGENT_WEBHOOK_SECRET: 'short' }), /AGENT_WEBHOOK_SECRET: must be at least 16/);
    assert.throws(() => loadConfig({ AGENT_WEBHOOK_URL: 'ftp://agent.example.com' }), /AGENT_WEBHOOK_URL: must be a URL/);
    assert.throws(() => loadConfig({ AGENT_WEBHOOK_MAX_ATTEMPTS: '0' }), /AGENT_WEBHOOK_MAX_ATTEMPTS/);
    assert.equal(loadConfig({}).agentWebhook, undefined);
    const config = loadConfig({ AGENT_WEBHOOK_URL: 'https://agent.example.com/events', AGENT_WEBHOOK_SECRET: AGENT_SECRET });
    assert.deepEqual(config.agentWebhook, {
      url: 'https://agent.example.com/events', secret: AGENT_SECRET, maxAttempts: 12, raw: false, timeoutMs: 10_000,
      retryBaseMs: 1_000, retryMaxMs: 600_000, concurrency: 16,
    });
  });
});

describe('without AGENT_WEBHOOK_URL', () => {
  test('nothing is written to the outbox, even after forwarding was on', async () => {
    const testDb = await createTestDatabase();
    const w = await startWebhookApp(testDb.db);
    try {
      await setAgentForwarding(testDb.db, { enabled: true, raw: false });
      // A relay started without the URL switches forwarding off for every writer.
      const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url });
      await relay.stop();
      const { leadId, followupIds } = await leadWithFollowups(testDb.db, { phone: JOAO, now: SCHEDULED_AT, enrollment: 'nautico', statuses: ['sending', 'pending'] });
      await markExecuted(testDb.db, { id: followupIds[0]!, providerMessageId: 'P1', text: 'x', composer: 'template', now: new Date() });
      for (const name of ['messages-upsert-reply', 'messages-upsert-optout', 'messages-upsert-human-takeover']) {
        assert.equal((await w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'content-type': 'application/json', ...secretHeader }, payload: JSON.stringify(fixture(name)) })).statusCode, 200);
      }
      await markNumberInvalid(testDb.db, { leadId, now: new Date(), detail: {} });
      const { rows } = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM agent_outbox');
      assert.equal(rows[0]!.n, 0);
      const messages = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages');
      assert.ok(messages.rows[0]!.n >= 3, 'the events themselves were recorded');
    } finally {
      await w.close();
      await testDb.drop();
    }
  });
});

async function metric(w: WebhookApp, name: string): Promise<number | undefined> {
  const res = await w.app.inject({ method: 'GET', url: '/metrics', headers: bearer });
  const line = res.body.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : undefined;
}

export type { AgentDelivery };
