import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { scheduleFollowup } from '../src/followups/schedule-followup.js';
import { startRelay } from '../src/relay/start-relay.js';
import { executorDeps } from '../src/roles.js';
import { executeFollowup } from '../src/worker/execute-followup.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { waitFor } from './helpers/pipeline.js';
import {
  bearer,
  fixture,
  followupsOf,
  JWT_KEY,
  leadWithFollowups,
  secretHeader,
  startWebhookApp,
  webhookFixtureNames,
  type WebhookApp,
} from './helpers/webhook-app.js';

const JOAO = '5581999998888'; // fixtures write him as 558199998888 (no 9th digit)
const MARIA = '5581988887777';
const ZE = '5581997776666'; // behind the @lid
const SEVERINO = '5581987776655';
const SCHEDULED_AT = new Date('2025-11-26T06:00:00.000Z'); // before every fixture's messageTimestamp
const RECEIVED_AT = '2025-11-26T12:00:00.000Z';

let testDb: TestDatabase;
let w: WebhookApp;

before(async () => {
  testDb = await createTestDatabase();
  w = await startWebhookApp(testDb.db);
});
after(async () => {
  await w?.close();
  await testDb?.drop();
});
beforeEach(async () => {
  await testDb.db.query('DELETE FROM leads');
  await testDb.db.query('DELETE FROM system_state');
  w.transport.sent.length = 0;
  w.clock.set(SCHEDULED_AT);
});

function hook(body: unknown, headers: Record<string, string> = secretHeader, url = '/webhooks/evolution') {
  return w.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) });
}

async function count(table: string): Promise<number> {
  const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0]!.n;
}

async function lead(phone: string) {
  const { rows } = await testDb.db.query<Record<string, unknown>>('SELECT * FROM leads WHERE phone = $1', [phone]);
  return rows[0];
}

/** Gives the lead open follow-ups at the scheduling time, then moves the clock to when the webhook arrives. */
/**
 * Sends what is due as the relay does in direct mode (the opt-out confirmation is a follow-up),
 * until `done` holds; then stops, so the overdue follow-ups other tests prepare stay put.
 */
async function runRelayUntil(what: string, done: () => Promise<boolean> | boolean): Promise<void> {
  const deps = executorDeps(w.ctx, 'relay');
  const relay = await startRelay({
    db: testDb.db,
    clock: w.clock,
    log: w.ctx.log,
    queue: null,
    transport: w.transport,
    execute: (id) => executeFollowup(deps, id),
    settings: { batchSize: 10, maxSleepMs: 50, leaseMs: 60_000, directConcurrency: 2 },
  });
  try {
    await waitFor(what, async () => done());
  } finally {
    await relay.stop();
  }
}

async function prepare(phone: string, options: { enrollment?: string; statuses?: string[] } = {}) {
  const made = await leadWithFollowups(testDb.db, { phone, now: SCHEDULED_AT, enrollment: options.enrollment, statuses: options.statuses });
  w.clock.set(RECEIVED_AT);
  return made;
}

describe('every Evolution fixture does what its name says', () => {
  test('the fixtures in test/fixtures/evolution are all covered here', () => {
    const covered = [
      'connection-update-close.json', 'connection-update-open.json', 'messages-update-read.json', 'messages-upsert-audio.json',
      'messages-upsert-extended-text.json', 'messages-upsert-group.json', 'messages-upsert-human-takeover.json', 'messages-upsert-lid.json',
      'messages-upsert-optout.json', 'messages-upsert-reply.json', 'messages-upsert-status-broadcast.json', 'messages-upsert-uppercase-event.json',
    ];
    assert.deepEqual(webhookFixtureNames().sort(), covered.sort());
  });

  test('reply: the lead answering stops its sequence (12-digit JID matches the 13-digit lead)', async () => {
    const { leadId, enrollmentId } = await prepare(JOAO, { enrollment: 'nautico' });
    const res = await hook(fixture('messages-upsert-reply'));
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().results.map((r: { outcome: string }) => r.outcome), ['reply_recorded']);
    assert.deepEqual((await followupsOf(testDb.db, leadId)).map((f) => [f.status, f.cancel_reason]), [
      ['cancelled', 'lead_replied'],
      ['cancelled', 'lead_replied'],
    ]);
    const l = await lead(JOAO);
    assert.equal((l!.last_inbound_at as Date).toISOString(), '2025-11-26T10:00:00.000Z', 'from data.messageTimestamp');
    const { rows } = await testDb.db.query('SELECT direction, source, text, provider_message_id FROM messages WHERE lead_id = $1', [leadId]);
    assert.deepEqual(rows, [{ direction: 'in', source: 'lead', text: 'Opa Marina, ainda tô pensando, visse?', provider_message_id: '3A554E20ECABF3D45BB2' }]);
    const e = await testDb.db.query('SELECT status, stop_reason FROM enrollments WHERE id = $1', [enrollmentId]);
    assert.deepEqual(e.rows[0], { status: 'stopped', stop_reason: 'lead_replied' });
    assert.equal(await count('leads'), 1, 'no second lead for the 12-digit spelling');
  });

  test('audio: a voice note counts as a reply', async () => {
    const { leadId } = await prepare(JOAO);
    const res = await hook(fixture('messages-upsert-audio'));
    assert.equal(res.json().results[0].outcome, 'reply_recorded');
    assert.ok((await followupsOf(testDb.db, leadId)).every((f) => f.cancel_reason === 'lead_replied'));
    const { rows } = await testDb.db.query('SELECT text, message_type FROM messages WHERE lead_id = $1', [leadId]);
    assert.deepEqual(rows, [{ text: null, message_type: 'audioMessage' }]);
  });

  test('extended text: read from extendedTextMessage; an unknown number becomes a new lead, matched to no one else', async () => {
    const joao = await prepare(JOAO);
    const res = await hook(fixture('messages-upsert-extended-text'));
    assert.equal(res.json().results[0].outcome, 'reply_recorded');
    const maria = await lead(MARIA);
    assert.ok(maria, 'Maria is a new lead under her own number');
    const { rows } = await testDb.db.query<{ text: string }>('SELECT text FROM messages WHERE lead_id = $1', [maria!.id]);
    assert.equal(rows[0]!.text, 'Quero saber os planos de sócio https://nautico-pe.com.br');
    assert.ok((await followupsOf(testDb.db, joao.leadId)).every((f) => f.status === 'pending'), "João's follow-ups are untouched");
  });

  test('lid: the sender behind @lid is resolved through key.remoteJidAlt', async () => {
    const { leadId } = await prepare(ZE);
    const res = await hook(fixture('messages-upsert-lid'));
    assert.equal(res.json().results[0].outcome, 'reply_recorded');
    assert.ok((await followupsOf(testDb.db, leadId)).every((f) => f.cancel_reason === 'lead_replied'));
    assert.equal(await count('leads'), 1, 'no lead made of the lid digits');
  });

  test('group: a message in a group is ignored', async () => {
    const { leadId } = await prepare(JOAO);
    const res = await hook(fixture('messages-upsert-group'));
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().results[0].outcome, 'ignored:group');
    assert.equal(await count('messages'), 0);
    assert.ok((await followupsOf(testDb.db, leadId)).every((f) => f.status === 'pending'));
  });

  test('status broadcast: a status post is ignored', async () => {
    const { leadId } = await prepare(JOAO);
    const res = await hook(fixture('messages-upsert-status-broadcast'));
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().results[0].outcome, 'ignored:broadcast');
    assert.equal(await count('messages'), 0);
    assert.ok((await followupsOf(testDb.db, leadId)).every((f) => f.status === 'pending'));
  });

  test('uppercase event: MESSAGES_UPSERT is accepted like messages.upsert', async () => {
    const { leadId } = await prepare(JOAO);
    const res = await hook(fixture('messages-upsert-uppercase-event'));
    assert.equal(res.json().results[0].outcome, 'reply_recorded');
    assert.ok((await followupsOf(testDb.db, leadId)).every((f) => f.cancel_reason === 'lead_replied'));
  });

  test('human takeover: a message typed on our number by a person hands the lead off', async () => {
    const { leadId, enrollmentId } = await prepare(JOAO, { enrollment: 'nautico' });
    const res = await hook(fixture('messages-upsert-human-takeover'));
    assert.equal(res.json().results[0].outcome, 'handoff');
    assert.ok((await followupsOf(testDb.db, leadId)).every((f) => f.cancel_reason === 'handoff'));
    const l = await lead(JOAO);
    assert.ok(l!.handoff_at);
    const { rows } = await testDb.db.query('SELECT direction, source FROM messages WHERE lead_id = $1', [leadId]);
    assert.deepEqual(rows, [{ direction: 'out', source: 'human' }]);
    const e = await testDb.db.query('SELECT status, stop_reason FROM enrollments WHERE id = $1', [enrollmentId]);
    assert.deepEqual(e.rows[0], { status: 'stopped', stop_reason: 'handoff' });
  });

  test('optout: "pode parar ..., não quero mais" opts the lead out for good, with when and which message, and confirms once', async () => {
    const { leadId, followupIds } = await prepare(SEVERINO, { enrollment: 'nautico' });
    const res = await hook(fixture('messages-upsert-optout'));
    assert.equal(res.json().results[0].outcome, 'opted_out');
    // Every follow-up it had (the confirmation, a follow-up of its own, is another).
    assert.ok((await followupsOf(testDb.db, leadId)).filter((f) => followupIds.includes(f.id)).every((f) => f.cancel_reason === 'opted_out'));
    const l = await lead(SEVERINO);
    assert.equal((l!.opted_out_at as Date).toISOString(), '2025-11-26T10:08:20.000Z');
    assert.equal(l!.opt_out_message_id, '3A0PT0UT00000000AAAA');
    assert.equal(l!.opt_out_source, 'whatsapp');
    // The confirmation is a follow-up, due now: the relay sends it, once.
    const confirmation = 'Pronto, você não vai mais receber nossas mensagens. Obrigado!';
    await runRelayUntil('the opt-out confirmation', () => w.transport.sent.length > 0);
    await hook(fixture('messages-upsert-optout'));
    // Only after a later confirmation *was* sent (Maria opting out after Severino's repeat) is the
    // absence of a second one for Severino meaningful.
    await prepare(MARIA, { enrollment: 'nautico' });
    const maria = fixture('messages-upsert-optout') as { data: { key: { remoteJid: string; id: string } } };
    maria.data.key.remoteJid = '558188887777@s.whatsapp.net';
    maria.data.key.id = '3A0PT0UT00000000BBBB';
    assert.equal((await hook(maria)).json().results[0].outcome, 'opted_out');
    await runRelayUntil('the later opt-out confirmation', () => w.transport.sent.some((s) => s.number === MARIA));
    assert.deepEqual(w.transport.sent, [{ number: SEVERINO, text: confirmation }, { number: MARIA, text: confirmation }]);

    const refused = await w.app.inject({ method: 'POST', url: '/v1/followups', headers: bearer, payload: { phone: SEVERINO, message: 'Oi de novo' } });
    assert.equal(refused.statusCode, 409);
    assert.equal(refused.json().error.code, 'lead_opted_out');
    assert.match(refused.json().error.message, /opted out/);
  });

  test('the opt-out confirmation is a follow-up: sent once at night, with its events, in the timeline; redeliveries, a second "parar" and a later message change nothing', async () => {
    const { leadId } = await prepare(SEVERINO, { enrollment: 'nautico' });
    // 23:00 in Recife, outside the sending window: a fan who wrote "parar" is answered at once all the same.
    w.clock.set(new Date('2025-11-27T02:00:00.000Z'));
    const optOut = fixture('messages-upsert-optout') as { data: { key: { id: string }; message: { conversation: string } } };
    assert.equal((await hook(optOut)).json().results[0].outcome, 'opted_out');
    assert.equal((await hook(optOut)).json().results[0].outcome, 'duplicate', 'the webhook delivered again');
    const again = structuredClone(optOut);
    again.data.key.id = '3A0PT0UT00000000CCCC';
    again.data.message.conversation = 'parar';
    assert.equal((await hook(again)).json().results[0].outcome, 'opted_out', 'a second "parar"');
    const thanks = structuredClone(optOut);
    thanks.data.key.id = '3A0PT0UT00000000DDDD';
    thanks.data.message.conversation = 'ok, obrigado';
    assert.equal((await hook(thanks)).json().results[0].outcome, 'reply_recorded', 'a later message');

    const confirmations = async () =>
      (await testDb.db.query<{ id: string; status: string; due_at: Date; cancel_reason: string | null }>(
        `SELECT id, status, due_at, cancel_reason FROM follow_ups WHERE lead_id = $1 AND intent = 'opt_out_confirmation'`,
        [leadId],
      )).rows;
    const [pending, ...more] = await confirmations();
    assert.equal(more.length, 0, 'one confirmation, however often the fan said it');
    assert.equal(pending!.status, 'pending', `not cancelled (${pending!.cancel_reason})`);
    assert.equal(pending!.due_at.toISOString(), '2025-11-27T02:00:00.000Z', 'due now');

    await runRelayUntil('the confirmation sent', async () => (await confirmations())[0]!.status === 'executed');
    const confirmation = 'Pronto, você não vai mais receber nossas mensagens. Obrigado!';
    assert.deepEqual(w.transport.sent, [{ number: SEVERINO, text: confirmation }]);
    // Redelivered after it went out: still one follow-up, one send.
    assert.equal((await hook(optOut)).json().results[0].outcome, 'duplicate');
    assert.equal((await confirmations()).length, 1);

    const { rows: events } = await testDb.db.query<{ from_status: string | null; to_status: string; reason: string; detail: Record<string, unknown> | null }>(
      'SELECT from_status, to_status, reason, detail FROM follow_up_events WHERE follow_up_id = $1 ORDER BY id',
      [pending!.id],
    );
    assert.deepEqual(
      events.map((e) => [e.from_status, e.to_status, e.reason]),
      [[null, 'pending', 'scheduled'], ['pending', 'sending', 'claimed'], ['sending', 'executed', 'sent']],
    );
    assert.equal(events[0]!.detail!.campaign, 'nautico', 'whose text it is');

    const timeline = await w.app.inject({ method: 'GET', url: `/v1/leads/${SEVERINO}`, headers: bearer });
    assert.equal(timeline.statusCode, 200);
    const items = timeline.json().timeline as Array<Record<string, unknown>>;
    const sent = items.filter((i) => i.type === 'message' && i.direction === 'out');
    assert.deepEqual(sent.map((i) => [i.source, i.text, i.followupId]), [['followup', confirmation, pending!.id]]);
    assert.deepEqual(
      items.filter((i) => i.followupId === pending!.id && i.type === 'followup_event').map((i) => [i.intent, i.to, i.reason]),
      [['opt_out_confirmation', 'pending', 'scheduled'], ['opt_out_confirmation', 'sending', 'claimed'], ['opt_out_confirmation', 'executed', 'sent']],
    );
    assert.equal(timeline.json().followups.find((f: { id: string }) => f.id === pending!.id).intent, 'opt_out_confirmation');
  });

  test('nobody else schedules an opt_out_confirmation (it is exempt from the window and the caps)', async () => {
    const res = await w.app.inject({ method: 'POST', url: '/v1/followups', headers: bearer, payload: { phone: JOAO, message: 'Oi', intent: 'opt_out_confirmation' } });
    assert.equal(res.statusCode, 400, res.body);
    assert.match(JSON.stringify(res.json().error), /intent/);
  });

  test('connection close pauses sending (shown on /health/ready); open resumes it', async () => {
    const closed = await hook(fixture('connection-update-close'));
    assert.equal(closed.json().results[0].outcome, 'paused');
    const state = await w.ctx.gate.state();
    assert.equal(state.paused, true);
    assert.equal(state.reason, 'whatsapp_disconnected');
    const ready = await w.app.inject({ method: 'GET', url: '/health/ready', headers: bearer });
    assert.equal(ready.json().checks.sending.status, 'paused');
    assert.equal(ready.json().checks.sending.reason, 'whatsapp_disconnected');

    const open = await hook(fixture('connection-update-open'));
    assert.equal(open.json().results[0].outcome, 'resumed');
    assert.equal((await w.ctx.gate.state()).paused, false);
  });

  test('a connection "open" does not lift a pause that had another cause', async () => {
    await w.ctx.gate.pause('evolution_unauthorized', 'bad key');
    await hook(fixture('connection-update-open'));
    assert.equal((await w.ctx.gate.state()).reason, 'evolution_unauthorized');
  });

  test('messages.update (a read receipt) is accepted and ignored', async () => {
    const { leadId } = await prepare(JOAO);
    const res = await hook(fixture('messages-update-read'));
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().results[0].outcome, 'ignored:event_not_used');
    assert.ok((await followupsOf(testDb.db, leadId)).every((f) => f.status === 'pending'));
  });
});

describe('webhook delivery', () => {
  test('the same webhook delivered 10 times (4 of them at once) is processed once', async () => {
    const { leadId, followupIds } = await prepare(JOAO);
    const body = fixture('messages-upsert-reply');
    const first = await Promise.all([hook(body), hook(body), hook(body), hook(body)]);
    const rest = [];
    for (let i = 0; i < 6; i++) rest.push(await hook(body));
    assert.ok([...first, ...rest].every((r) => r.statusCode === 200));
    assert.equal(await count('messages'), 1);
    const { rows } = await testDb.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM follow_up_events WHERE follow_up_id = ANY($1) AND to_status = 'cancelled'`,
      [followupIds],
    );
    assert.equal(rows[0]!.n, 2, 'each follow-up cancelled once');
    assert.equal(rest.filter((r) => r.json().results[0].outcome === 'duplicate').length, 6);
    assert.ok((await followupsOf(testDb.db, leadId)).every((f) => f.cancel_reason === 'lead_replied'));
  });

  test('by-events mode: /webhooks/evolution/messages-upsert without an event field', async () => {
    const { leadId } = await prepare(JOAO);
    const { event: _event, ...body } = fixture('messages-upsert-reply');
    const res = await hook(body, secretHeader, '/webhooks/evolution/messages-upsert');
    assert.equal(res.json().results[0].outcome, 'reply_recorded');
    assert.ok((await followupsOf(testDb.db, leadId)).every((f) => f.cancel_reason === 'lead_replied'));
    const conn = await hook(fixture('connection-update-close'), secretHeader, '/webhooks/evolution/connection-update');
    assert.equal(conn.json().results[0].outcome, 'paused');
  });

  test('an older message arriving late never moves last_inbound_at back, nor cancels what was planned after it', async () => {
    await prepare(JOAO);
    const newer = fixture('messages-upsert-uppercase-event'); // 10:06:40
    const older = fixture('messages-upsert-reply'); // 10:00:00
    await hook(newer);
    // The agent answered and planned a new follow-up after the newer message.
    w.clock.set('2025-11-26T12:30:00.000Z');
    const { followup } = await scheduleFollowup(w.ctx, { phone: JOAO, message: 'Depois da conversa', delayHours: 4 });
    await hook(older);
    const l = await lead(JOAO);
    assert.equal((l!.last_inbound_at as Date).toISOString(), '2025-11-26T10:06:40.000Z');
    const { rows } = await testDb.db.query('SELECT status FROM follow_ups WHERE id = $1', [followup.id]);
    assert.equal(rows[0]!.status, 'pending', 'a follow-up anchored after the late message stays');
  });

  test('a reply stops an enrollment whose last step is already being sent (nothing left to cancel)', async () => {
    const { enrollmentId } = await prepare(JOAO, { enrollment: 'nautico', statuses: ['executed', 'sending'] });
    await hook(fixture('messages-upsert-reply'));
    const e = await testDb.db.query('SELECT status, stop_reason FROM enrollments WHERE id = $1', [enrollmentId]);
    assert.deepEqual(e.rows[0], { status: 'stopped', stop_reason: 'lead_replied' });
  });

  test('our own follow-up echoed back before the worker recorded its id is not a human takeover', async () => {
    const { leadId, followupIds } = await prepare(JOAO, { statuses: ['sending', 'pending'] });
    const { rows } = await testDb.db.query<{ sent_text: string }>('SELECT sent_text FROM follow_ups WHERE id = $1', [followupIds[0]]);
    const echo = fixture('messages-upsert-human-takeover');
    const data = echo.data as { key: { id: string }; message: { conversation: string } };
    data.key.id = '3EB0ECHO00000000AAAA';
    data.message.conversation = rows[0]!.sent_text;
    const res = await hook(echo);
    assert.equal(res.json().results[0].outcome, 'own_message');
    assert.equal((await lead(JOAO))!.handoff_at, null);
    assert.equal((await followupsOf(testDb.db, leadId))[1]!.status, 'pending');
  });

  test('our own follow-up echoed after it was recorded (known provider id) is ours too', async () => {
    const { leadId } = await prepare(JOAO);
    await testDb.db.query(
      `INSERT INTO messages (lead_id, direction, source, text, provider_message_id, at) VALUES ($1, 'out', 'followup', 'x', '3EB0AAAABBBBCCCCDDDD', now())`,
      [leadId],
    );
    const res = await hook(fixture('messages-upsert-human-takeover'));
    assert.equal(res.json().results[0].outcome, 'own_message');
    assert.equal((await lead(JOAO))!.handoff_at, null);
  });

  test('a message from our number to someone who is no lead creates nothing', async () => {
    const res = await hook(fixture('messages-upsert-human-takeover'));
    assert.equal(res.json().results[0].outcome, 'ignored:not_a_lead');
    assert.equal(await count('leads'), 0);
  });

  test('a message time in the future is taken as now (a skewed clock cannot stop later follow-ups)', async () => {
    await prepare(JOAO);
    const body = fixture('messages-upsert-reply');
    (body.data as { messageTimestamp: number }).messageTimestamp = 4_102_444_800; // 2100
    await hook(body);
    assert.equal(((await lead(JOAO))!.last_inbound_at as Date).toISOString(), RECEIVED_AT);
  });

  test('malformed bodies get 400, never 5xx', async () => {
    const cases: unknown[] = [
      [],
      'just text',
      { data: {} },
      { event: 'messages.upsert' },
      { event: 'messages.upsert', data: { key: { remoteJid: '558199998888@s.whatsapp.net', fromMe: false } } },
      { event: 'messages.upsert', data: { key: { id: 42, remoteJid: '558199998888@s.whatsapp.net' } } },
      { event: 'messages.upsert', data: { key: { id: 'X', remoteJid: '558199998888@s.whatsapp.net', fromMe: 'no' } } },
      { event: 'connection.update', data: { state: 5 } },
      { event: 7 },
    ];
    for (const body of cases) {
      const res = await hook(body);
      assert.equal(res.statusCode, 400, `${JSON.stringify(body)} → ${res.statusCode} ${res.body}`);
      assert.equal(res.json().error.code, 'validation_error');
    }
    const notJson = await w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { ...secretHeader, 'content-type': 'application/json' }, payload: '{"event":' });
    assert.equal(notJson.statusCode, 400);
    const plain = await w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { ...secretHeader, 'content-type': 'text/plain' }, payload: 'hello' });
    assert.equal(plain.statusCode, 415);
    assert.equal(await count('messages'), 0);
  });
});

describe('webhook authentication', () => {
  const now = () => Math.floor(new Date(RECEIVED_AT).getTime() / 1000);
  const sign = (claims: Record<string, unknown>, key = JWT_KEY) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(key));
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  async function refusedAndNothingRecorded(headers: Record<string, string>, what: string) {
    const res = await hook(fixture('messages-upsert-reply'), headers);
    assert.equal(res.statusCode, 401, `${what}: ${res.statusCode} ${res.body}`);
    assert.equal(res.json().error.code, 'unauthorized');
  }

  test('no secret, a wrong secret, a forged, expired, app-less or alg:none JWT → 401 and nothing recorded', async () => {
    await prepare(JOAO);
    await refusedAndNothingRecorded({}, 'no credentials');
    await refusedAndNothingRecorded({ 'x-webhook-secret': 'wrong-secret-123' }, 'wrong secret');
    await refusedAndNothingRecorded({ 'x-webhook-secret': '' }, 'empty secret');
    const t = now();
    await refusedAndNothingRecorded({ authorization: `Bearer ${await sign({ iat: t, exp: t + 600, app: 'evolution' }, 'some-other-key-123')}` }, 'forged JWT');
    await refusedAndNothingRecorded({ authorization: `Bearer ${await sign({ iat: t - 1200, exp: t - 600, app: 'evolution' })}` }, 'expired JWT');
    await refusedAndNothingRecorded({ authorization: `Bearer ${await sign({ iat: t, app: 'evolution' })}` }, 'JWT without exp');
    await refusedAndNothingRecorded({ authorization: `Bearer ${await sign({ iat: t, exp: t + 600, app: 'other' })}` }, 'JWT for another app');
    await refusedAndNothingRecorded({ authorization: `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iat: t, exp: t + 600, app: 'evolution' })}.` }, 'alg none');
    await refusedAndNothingRecorded({ authorization: 'Bearer not.a.jwt' }, 'garbage JWT');
    // No maximum age before: exp in 2100 or an iat ten years ahead were accepted.
    await refusedAndNothingRecorded({ authorization: `Bearer ${await sign({ iat: t, exp: 4_102_444_800, app: 'evolution' })}` }, 'JWT valid until 2100');
    await refusedAndNothingRecorded({ authorization: `Bearer ${await sign({ iat: t + 10 * 365 * 86_400, exp: t + 10 * 365 * 86_400 + 600, app: 'evolution' })}` }, 'JWT issued 10 years ahead');
    await refusedAndNothingRecorded({ authorization: `Bearer ${await sign({ iat: t + 120, exp: t + 720, app: 'evolution' })}` }, 'JWT issued 2 minutes ahead');
    await refusedAndNothingRecorded({ authorization: `Bearer ${await sign({ iat: t - 3_600, exp: t + 60, app: 'evolution' })}` }, 'JWT issued an hour ago');
    await refusedAndNothingRecorded({ authorization: `Bearer ${await sign({ exp: t + 600, app: 'evolution' })}` }, 'JWT without iat');
    assert.equal(await count('messages'), 0);
    assert.ok((await followupsOf(testDb.db, (await lead(JOAO))!.id as string)).every((f) => f.status === 'pending'));
  });

  test('a valid Evolution JWT (HS256, exp ahead, app evolution) is accepted; a just-expired one within the leeway too', async () => {
    await prepare(JOAO);
    const t = now();
    const res = await hook(fixture('messages-upsert-reply'), { authorization: `Bearer ${await sign({ iat: t, exp: t + 600, app: 'evolution', action: 'webhook' })}` });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().results[0].outcome, 'reply_recorded');
    const late = await hook(fixture('messages-update-read'), { authorization: `Bearer ${await sign({ iat: t - 610, exp: t - 10, app: 'evolution' })}` });
    assert.equal(late.statusCode, 200);
  });

  test('with neither WEBHOOK_SECRET nor WEBHOOK_JWT_KEY, webhooks are refused and start-up warns', async () => {
    const lines: string[] = [];
    const bare = await startWebhookApp(testDb.db, {
      env: { WEBHOOK_SECRET: undefined, WEBHOOK_JWT_KEY: undefined },
      logDestination: { write: (line: string) => void lines.push(line) },
    });
    try {
      const res = await bare.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'x-webhook-secret': 'anything-at-all' }, payload: fixture('messages-upsert-reply') });
      assert.equal(res.statusCode, 401);
      assert.match(res.json().error.message, /WEBHOOK_SECRET/);
      assert.ok(lines.some((l) => /"level":40/.test(l) && /WEBHOOK_SECRET/.test(l)), 'a warning at start-up');
      assert.equal(await count('messages'), 0);
    } finally {
      await bare.close();
    }
  });
});

describe('stopping a lead through the API', () => {
  test('POST /v1/leads/:phone/opt-out opts out (for good), cancels everything, and scheduling is then refused with 409', async () => {
    const { leadId } = await prepare(JOAO);
    const res = await w.app.inject({ method: 'POST', url: '/v1/leads/558199998888/opt-out', headers: bearer, payload: { messageId: 'ABC123' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().cancelled, 2);
    assert.equal(res.json().changed, true);
    assert.equal(res.json().lead.optedOutAt, RECEIVED_AT);
    assert.ok((await followupsOf(testDb.db, leadId)).every((f) => f.cancel_reason === 'opted_out'));
    const again = await w.app.inject({ method: 'POST', url: `/v1/leads/${JOAO}/opt-out`, headers: bearer });
    assert.equal(again.json().changed, false, 'the first opt-out is kept');
    const l = await lead(JOAO);
    assert.equal(l!.opt_out_message_id, 'ABC123');
    assert.equal(l!.opt_out_source, 'api');
    const refused = await w.app.inject({ method: 'POST', url: '/v1/followups', headers: bearer, payload: { phone: JOAO, message: 'Oi' } });
    assert.equal(refused.statusCode, 409);
    assert.equal(refused.json().error.code, 'lead_opted_out');
  });

  test('an opt-out for a number never seen is recorded, so it can never be scheduled', async () => {
    const res = await w.app.inject({ method: 'POST', url: '/v1/leads/5581977770000/opt-out', headers: bearer });
    assert.equal(res.statusCode, 200);
    const refused = await w.app.inject({ method: 'POST', url: '/v1/followups', headers: bearer, payload: { phone: '5581977770000', message: 'Oi' } });
    assert.equal(refused.statusCode, 409);
  });

  test('handoff and converted cancel with their reason; unknown numbers get 404; bad input 400; no token 401', async () => {
    const a = await prepare(JOAO);
    const b = await leadWithFollowups(testDb.db, { phone: MARIA, now: SCHEDULED_AT });
    const handoff = await w.app.inject({ method: 'POST', url: `/v1/leads/${JOAO}/handoff`, headers: bearer });
    assert.equal(handoff.statusCode, 200);
    assert.ok(handoff.json().lead.handoffAt);
    assert.ok((await followupsOf(testDb.db, a.leadId)).every((f) => f.cancel_reason === 'handoff'));
    const converted = await w.app.inject({ method: 'POST', url: `/v1/leads/${MARIA}/converted`, headers: bearer, payload: {} });
    assert.equal(converted.statusCode, 200);
    assert.ok((await followupsOf(testDb.db, b.leadId)).every((f) => f.cancel_reason === 'converted'));
    assert.equal((await w.app.inject({ method: 'POST', url: '/v1/leads/5581966660000/handoff', headers: bearer })).statusCode, 404);
    assert.equal((await w.app.inject({ method: 'POST', url: '/v1/leads/abc/converted', headers: bearer })).statusCode, 400);
    assert.equal((await w.app.inject({ method: 'POST', url: `/v1/leads/${JOAO}/handoff`, headers: bearer, payload: { nope: 1 } })).statusCode, 400);
    assert.equal((await w.app.inject({ method: 'POST', url: `/v1/leads/${JOAO}/handoff` })).statusCode, 401);
  });
});
