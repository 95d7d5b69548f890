import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { markExecuted, recordComposedText } from '../src/followups/transitions.js';
import { makeDryRunTransport } from '../src/whatsapp/dry-run-transport.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, fixture, secretHeader, startWebhookApp, type WebhookApp } from './helpers/webhook-app.js';

const PHONE = '5581999998888';
const SHORT = '558199998888';
const NAME = 'Joaquim Nabuco Alvirrubro';
const ERASURE_KEY = 'test-erasure-key-0123456789abcdef-0123456789';
// Free text and ids that point at the person: the client's own message id, an operator's cancel reason, WhatsApp ids.
const CLIENT_MESSAGE_ID = 'crm-joaquim-msg-777';
const OPERATOR_REASON = 'pediu pelo telefone fixo';
const WHATSAPP_IDS = ['3A554E20ECABF3D45BB2', '3A0PT0UT00000000AAAA'];
const SECRETS = [PHONE, SHORT, '99998888', NAME, 'Nabuco', 'Aflitos no domingo', 'Rua do Leão 42', 'Oi Joaquim, tudo certo', 'Joaquim, ainda dá tempo', CLIENT_MESSAGE_ID, OPERATOR_REASON, ...WHATSAPP_IDS];

let testDb: TestDatabase;
let w: WebhookApp;

before(async () => {
  testDb = await createTestDatabase();
  w = await startWebhookApp(testDb.db, { start: '2025-11-26T06:00:00.000Z' });
});
after(async () => {
  await w?.close();
  await testDb?.drop();
});

/** Every text, varchar and json(b) column of every table, searched for each needle. */
async function personalDataLeft(needles: string[]): Promise<string[]> {
  const { rows: columns } = await testDb.db.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')`,
  );
  assert.ok(columns.length > 10, 'the scan sees the schema');
  const found: string[] = [];
  for (const { table_name: table, column_name: column } of columns) {
    for (const needle of needles) {
      const { rows } = await testDb.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${table}" WHERE strpos(lower("${column}"::text), lower($1)) > 0`,
        [needle],
      );
      if (rows[0]!.n > 0) found.push(`${table}.${column} holds "${needle}" (${rows[0]!.n} rows)`);
    }
  }
  return found;
}

describe('LGPD erasure', () => {
  test('DELETE /v1/leads/:phone leaves no personal data in any table, keeps the counts and the opt-out proof', async () => {
    // A lead with a full history: scheduled follow-ups (one with lead_info and an idempotency key), an executed
    // one sent through the dry-run transport, a reply, an agent message, an error mentioning the number, an opt-out.
    const api = (method: 'POST' | 'DELETE' | 'GET', url: string, payload?: unknown) =>
      w.app.inject({ method, url, headers: bearer, ...(payload === undefined ? {} : { payload: payload as object }) });
    const first = await api('POST', '/v1/followups', {
      phone: SHORT, message: 'Oi Joaquim, tudo certo? Te vejo no Aflitos no domingo', delayHours: 1,
      lead: { name: NAME, address: 'Rua do Leão 42' }, idempotencyKey: `agent-${PHONE}-1`,
    });
    assert.equal(first.statusCode, 201, first.body);
    const second = await api('POST', '/v1/followups', { phone: PHONE, message: 'Joaquim, ainda dá tempo de ser sócio', delayHours: 24 });
    assert.equal(second.statusCode, 201);
    const sent = first.json().id as string;
    const dryRun = makeDryRunTransport({ db: testDb.db, log: createLogger({ level: 'silent' }), clock: w.clock });
    await testDb.db.query(`UPDATE follow_ups SET status = 'sending', sending_started_at = now(), attempts = 1 WHERE id = $1`, [sent]);
    const delivered = await dryRun.sendText({ number: PHONE, text: 'Oi Joaquim, tudo certo? Te vejo no Aflitos no domingo', delayMs: 0 });
    await markExecuted(testDb.db, { id: sent, providerMessageId: delivered.providerMessageId, text: 'Oi Joaquim, tudo certo? Te vejo no Aflitos no domingo', composer: 'explicit', now: w.clock.now() });
    await testDb.db.query(
      `INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
       VALUES ($1, now(), 'sending', 'pending', 'server_error', $2)`,
      [second.json().id, { error: `Evolution answered 500 for ${SHORT}@s.whatsapp.net`, dueAt: '2025-11-27T06:00:00.000Z' }],
    );
    await testDb.db.query(`INSERT INTO idempotency_keys (key, route, response) VALUES ('bulk-1', 'enrollments', $1)`, [{ phones: [PHONE] }]);
    await testDb.db.query(`INSERT INTO idempotency_keys (key, route, response) VALUES ('bulk-2', 'enrollments', $1)`, [{ phones: ['5581900001111'] }]);
    await api('POST', `/v1/leads/${PHONE}/messages`, { direction: 'out', text: 'Joaquim, ainda dá tempo? Posso te mandar o link', source: 'agent', providerMessageId: CLIENT_MESSAGE_ID });
    const third = await api('POST', '/v1/followups', { phone: PHONE, message: 'Outra mensagem', delayHours: 48 });
    assert.equal((await api('POST', `/v1/followups/${third.json().id}/cancel`, { reason: OPERATOR_REASON })).statusCode, 200);
    w.clock.set('2025-11-26T12:00:00.000Z');
    const reply = await w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: secretHeader, payload: fixture('messages-upsert-reply') });
    assert.equal(reply.statusCode, 200);
    const optOut = fixture('messages-upsert-optout');
    const data = optOut.data as { key: { remoteJid: string } };
    data.key.remoteJid = `${SHORT}@s.whatsapp.net`;
    assert.equal((await w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: secretHeader, payload: optOut })).json().results[0].outcome, 'opted_out');
    // No opt-out confirmation is due here (its text is a campaign's, and this lead has none), so nothing
    // is left to happen in the background before the counts below.

    const before = await counts();
    assert.ok((await personalDataLeft(SECRETS)).length > 0, 'the scan finds the data before');

    const erased = await api('DELETE', `/v1/leads/${SHORT}`);
    assert.equal(erased.statusCode, 200, erased.body);
    assert.equal(erased.json().alreadyErased, false);

    assert.deepEqual(await personalDataLeft(SECRETS), [], 'no personal data left anywhere');
    assert.deepEqual(await counts(), before, 'every row is still there for the statistics');

    const { rows } = await testDb.db.query<Record<string, unknown>>('SELECT * FROM leads WHERE id = $1', [erased.json().leadId]);
    const lead = rows[0]!;
    assert.equal(lead.phone, `erased:${createHmac('sha256', ERASURE_KEY).update(PHONE).digest('hex')}`, 'a keyed hash of the number');
    assert.notEqual(lead.phone, `erased:${createHash('sha256').update(PHONE).digest('hex')}`, 'not the plain sha256 anyone can brute-force');
    assert.ok(lead.erased_at);
    assert.equal((lead.opted_out_at as Date).toISOString(), '2025-11-26T10:08:20.000Z', 'when the opt-out happened is kept');
    assert.equal(lead.opt_out_message_id, null, 'but not the WhatsApp id of the message');
    const cancels = await testDb.db.query<{ cancel_reason: string }>(`SELECT cancel_reason FROM follow_ups WHERE id = $1`, [third.json().id]);
    assert.deepEqual(cancels.rows, [{ cancel_reason: 'operator' }], "the operator's words are gone, the fact of the cancel stays");
    const open = await testDb.db.query(`SELECT count(*)::int AS n FROM follow_ups WHERE lead_id = $1 AND status IN ('pending', 'queued')`, [lead.id]);
    assert.equal(open.rows[0]!.n, 0);
    const kept = await testDb.db.query(`SELECT key FROM idempotency_keys ORDER BY key`);
    assert.deepEqual(kept.rows, [{ key: 'bulk-2' }], "someone else's stored answer stays");

    const again = await api('DELETE', `/v1/leads/${PHONE}`);
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().alreadyErased, true);
    assert.equal((await api('DELETE', '/v1/leads/5581900002222')).statusCode, 404);

    // The same number writes again: a new lead, recognised through the hash, still opted out.
    const back = fixture('messages-upsert-uppercase-event');
    const res = await w.app.inject({ method: 'POST', url: '/webhooks/evolution', headers: secretHeader, payload: back });
    assert.equal(res.statusCode, 200);
    const fresh = await testDb.db.query<Record<string, unknown>>('SELECT * FROM leads WHERE phone = $1', [PHONE]);
    assert.ok(fresh.rows[0]!.opted_out_at, 'an opt-out survives erasure');
    assert.equal(fresh.rows[0]!.opt_out_source, 'erased_lead');
    const refused = await api('POST', '/v1/followups', { phone: PHONE, message: 'Oi de novo' });
    assert.equal(refused.statusCode, 409);
    // Erased twice: the older row steps aside, the plain hash names the latest.
    assert.equal((await api('DELETE', `/v1/leads/${PHONE}`)).statusCode, 200);
    const hashed = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM leads WHERE phone LIKE 'erased:%'`);
    assert.equal(hashed.rows[0]!.n, 2);
  });

  test('a follow-up already being sent when the lead is erased does not write its text back', async () => {
    const phone = '5581988776655';
    const made = await w.app.inject({ method: 'POST', url: '/v1/followups', headers: bearer, payload: { phone, delayHours: 1 } });
    const id = made.json().id as string;
    await testDb.db.query(`UPDATE follow_ups SET status = 'sending', sending_started_at = now() WHERE id = $1`, [id]);
    assert.equal((await w.app.inject({ method: 'DELETE', url: `/v1/leads/${phone}`, headers: bearer })).statusCode, 200);
    // The worker carries on with the send it had started.
    await recordComposedText(testDb.db, { id, text: 'Opa, Severina! Passando pra saber...', composer: 'template' });
    await markExecuted(testDb.db, { id, providerMessageId: 'LATE1', text: 'Opa, Severina! Passando pra saber...', composer: 'template', now: w.clock.now() });
    assert.deepEqual(await personalDataLeft(['Severina', phone]), []);
    const { rows } = await testDb.db.query('SELECT status, sent_text FROM follow_ups WHERE id = $1', [id]);
    assert.deepEqual(rows[0], { status: 'executed', sent_text: null });
  });
});

describe('the erased-phone key', () => {
  test('an opt-out erased under the old unkeyed hash still carries over, and the old hash is replaced by the keyed one', async () => {
    const phone = '5581977665544';
    const legacy = `erased:sha256:${createHash('sha256').update(phone).digest('hex')}`; // what migration 006 made of an old erasure
    await testDb.db.query(`INSERT INTO leads (phone, opted_out_at, erased_at) VALUES ($1, '2025-01-01T00:00:00Z', '2025-02-01T00:00:00Z')`, [legacy]);
    const wrote = await w.app.inject({ method: 'POST', url: `/v1/leads/${phone}/messages`, headers: bearer, payload: { direction: 'in', text: 'Oi, sou eu de novo' } });
    assert.equal(wrote.statusCode, 201, wrote.body);
    const fresh = await testDb.db.query<{ opted_out_at: Date; opt_out_source: string }>('SELECT opted_out_at, opt_out_source FROM leads WHERE phone = $1', [phone]);
    assert.equal(fresh.rows[0]!.opted_out_at.toISOString(), '2025-01-01T00:00:00.000Z', 'the number comes back opted out');
    const refused = await w.app.inject({ method: 'POST', url: '/v1/followups', headers: bearer, payload: { phone, message: 'Oi de novo' } });
    assert.equal(refused.statusCode, 409);
    const { rows } = await testDb.db.query<{ phone: string }>(`SELECT phone FROM leads WHERE erased_at IS NOT NULL AND opted_out_at = '2025-01-01T00:00:00Z'`);
    assert.deepEqual(rows, [{ phone: `erased:${createHmac('sha256', ERASURE_KEY).update(phone).digest('hex')}` }]);
  });

  test('the embedded default keeps its key in the data folder (0600) and reads the same one back', async () => {
    const { mkdtemp, rm, stat } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { embeddedErasureKey } = await import('../src/privacy/erasure-key.js');
    const dir = await mkdtemp(join(tmpdir(), 'erasure-key-'));
    try {
      const first = await embeddedErasureKey(join(dir, 'data'));
      assert.match(first, /^[0-9a-f]{64}$/);
      assert.equal((await stat(join(dir, 'data', 'erasure.key'))).mode & 0o777, 0o600);
      assert.equal(await embeddedErasureKey(join(dir, 'data')), first);
      assert.notEqual(await embeddedErasureKey('memory://'), await embeddedErasureKey('memory://'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function counts() {
  const { rows } = await testDb.db.query(
    `SELECT (SELECT count(*) FROM leads)::int AS leads, (SELECT count(*) FROM messages)::int AS messages,
            (SELECT count(*) FROM follow_ups)::int AS followups, (SELECT count(*) FROM follow_up_events)::int AS events,
            (SELECT count(*) FROM dry_run_messages)::int AS dry_run`,
  );
  return rows[0];
}
