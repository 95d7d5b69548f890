/**
 * No personal data in the logs: every line of a full run (scheduling, sending,
 * a reply, a refused request, a database error, a rejected LLM text, an Evolution
 * error), at debug level, is scanned for the test phones, names and texts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { type Context, createContext } from '../src/context.js';
import { createLogger } from '../src/log.js';
import { type Running, startRoles } from '../src/roles.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { startFakeLlm, type FakeLlm } from './helpers/fake-llm.js';
import { fixture } from './helpers/webhook-app.js';
import { waitFor } from './helpers/pipeline.js';
import { startTestPglite } from './helpers/pglite.js';

const TOKEN = 'log-privacy-api-token-000000001';
const SECRET = 'log-privacy-webhook-secret-0001';
const auth = { authorization: `Bearer ${TOKEN}` };

/** Everything personal the run uses; none of it may appear in a log line. */
const PHONE_A = '5581987651234';
const PHONE_B = '5581976549876';
const PHONE_C = '5581965432109';
const NAME_A = 'Josefa Cavalcanti';
const NAME_BOOM = 'Zé Explode Siqueira';
const TEXT_A = 'Oi Josefa, o ingresso dos Aflitos saiu hoje!';
const TEXT_REPLY = 'Quero sim, manda o boleto pra Rua das Pernambucanas';
const TEXT_INBOUND = 'Meu cunhado Severino também quer ser sócio';
const TEXT_LLM = 'Josefa, paga só 9,90 no link https://socio.nautico-pe.com.br.evil.ru/pagar';

function secretsIn(lines: string[]): string[] {
  const needles = [PHONE_A, PHONE_B, PHONE_C, NAME_A, NAME_BOOM, 'Josefa', 'Siqueira', TEXT_A, TEXT_REPLY, TEXT_INBOUND, TEXT_LLM, 'evil.ru', 'Pernambucanas', 'Severino'];
  // The 12-digit spelling WhatsApp uses (no 9th digit) counts too.
  for (const p of [PHONE_A, PHONE_B, PHONE_C]) needles.push(`${p.slice(0, 4)}${p.slice(5)}`);
  return lines.filter((line) => needles.some((n) => line.includes(n)));
}

function sink(lines: string[]) {
  return { write: (chunk: string) => void lines.push(...chunk.split('\n').filter(Boolean)) };
}

function replyWebhook(phone: string, text: string, id: string) {
  const body = fixture('messages-upsert-reply') as { data: { key: Record<string, unknown>; message: Record<string, unknown>; messageTimestamp: number; pushName: string } };
  body.data.key.remoteJid = `${phone}@s.whatsapp.net`;
  body.data.key.id = id;
  body.data.message = { conversation: text };
  body.data.pushName = NAME_A;
  body.data.messageTimestamp = Math.floor(Date.now() / 1000);
  return body;
}

describe('logs of a full run carry no phone, name or message text', () => {
  it('embedded (PGlite, dry-run): schedule, send, reply, a NUL refused, a database error', async () => {
    const lines: string[] = [];
    const config = loadConfig({
      DATA_DIR: 'memory://',
      LOG_LEVEL: 'debug',
      WEBHOOK_SECRET: SECRET,
      FOLLOWUPS_API_TOKEN: TOKEN,
      TYPING_DELAY_ENABLED: 'false',
      SENDING_WINDOW_ENABLED: 'false',
      RELAY_MAX_SLEEP_MS: '100',
    });
    // The embedded engine, started from the saved empty cluster (helpers/pglite.ts) rather than by initdb;
    // the context migrates it and logs that as with DATA_DIR alone.
    const embedded = await startTestPglite();
    const ctx: Context = await createContext(config, createLogger({ level: 'debug', destination: sink(lines) }), { db: embedded });
    // A database error carrying the row: PGlite puts the statement and its parameters on the error.
    await ctx.db.query(`ALTER TABLE leads ADD CONSTRAINT test_refuses_boom CHECK (name IS DISTINCT FROM '${NAME_BOOM}')`);
    const running: Running = await startRoles(ctx, ['api', 'relay'], { listen: false });
    const app = running.app!;
    try {
      const scheduled = await app.inject({ method: 'POST', url: '/v1/followups', headers: auth, payload: { phone: PHONE_A, message: TEXT_A, lead: { name: NAME_A } } });
      assert.equal(scheduled.statusCode, 201);
      await waitFor('sent', async () => {
        const { rows } = await ctx.db.query<{ status: string }>('SELECT status FROM follow_ups WHERE id = $1', [scheduled.json().id]);
        return rows[0]?.status === 'executed';
      });

      const nul = await app.inject({ method: 'POST', url: '/v1/followups', headers: auth, payload: { phone: PHONE_B, message: TEXT_A, lead: { name: `Jo\u0000sefa` } } });
      assert.equal(nul.statusCode, 400);
      assert.equal(nul.json().error.details[0].field, 'lead.name');

      const boom = await app.inject({ method: 'POST', url: '/v1/followups', headers: auth, payload: { phone: PHONE_C, message: TEXT_A, lead: { name: NAME_BOOM } } });
      assert.equal(boom.statusCode, 500);

      const inbound = await app.inject({ method: 'POST', url: `/v1/leads/${PHONE_A}/messages`, headers: auth, payload: { direction: 'in', text: TEXT_INBOUND } });
      assert.ok(inbound.statusCode < 300, inbound.body);
      const reply = await app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'x-webhook-secret': SECRET }, payload: replyWebhook(PHONE_A, `${TEXT_REPLY}\u0000`, 'LOGPRIV0001') });
      assert.equal(reply.statusCode, 200, reply.body);
      assert.equal(reply.json().results[0].outcome, 'reply_recorded', 'a NUL in a reply is stripped, the reply still counts');
    } finally {
      await running.stop();
      await ctx.close();
      await embedded.close();
    }
    assert.ok(lines.some((l) => /"level":50/.test(l) && /request failed/.test(l)), 'the database error was logged');
    assert.ok(lines.some((l) => /dry-run/.test(l)), 'the dry-run send was logged');
    const leaks = secretsIn(lines);
    assert.deepEqual(leaks, [], `leaked:\n${leaks.join('\n')}`);
  });

  describe('PostgreSQL, Evolution and an LLM', () => {
    let testDb: TestDatabase;
    let fake: FakeEvolution;
    let llm: FakeLlm;
    before(async () => {
      testDb = await createTestDatabase({ poolSize: 4 });
      fake = await startFakeEvolution({ delayScale: 0 });
      llm = await startFakeLlm();
    });
    after(async () => {
      await llm?.close();
      await fake?.close();
      await testDb?.drop();
    });

    it('an LLM text refused, an Evolution error, a database error with its row', async () => {
      const lines: string[] = [];
      const config = loadConfig({
        DATABASE_URL: testDb.url,
        FOLLOWUPS_API_TOKEN: TOKEN,
        ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
        WEBHOOK_SECRET: SECRET,
        EVOLUTION_API_URL: fake.url,
        EVOLUTION_API_KEY: fake.apiKey,
        EVOLUTION_INSTANCE_NAME: fake.instance,
        LLM_BASE_URL: llm.url,
        LLM_API_KEY: llm.apiKey,
        LLM_MODEL: 'fake-model-1',
        LOG_LEVEL: 'debug',
        MIGRATE_ON_START: 'false',
        TYPING_DELAY_ENABLED: 'false',
        SENDING_WINDOW_ENABLED: 'false',
        SEND_RATE_PER_MINUTE: '0',
        SEND_DAILY_CAP: '0',
        WHATSAPP_NUMBER_CHECK: 'false',
        RELAY_MAX_SLEEP_MS: '100',
        RETRY_BASE_SECONDS: '1',
      });
      const ctx = await createContext(config, createLogger({ level: 'debug', destination: sink(lines) }));
      // pg's error for a failed CHECK carries the whole row in `detail`.
      await ctx.db.query(`ALTER TABLE leads ADD CONSTRAINT test_refuses_boom CHECK (name IS DISTINCT FROM '${NAME_BOOM}')`);
      const running = await startRoles(ctx, ['api', 'relay'], { listen: false });
      const app = running.app!;
      try {
        llm.setDefault({ content: TEXT_LLM });
        fake.fail('server-error', { count: 1 });
        const anchorAt = new Date(Date.now() - 5 * 3_600_000).toISOString();
        const enrolled = await app.inject({ method: 'POST', url: '/v1/enrollments', headers: auth, payload: { phone: PHONE_A, campaign: 'nautico', lead: { name: NAME_A }, anchorAt } });
        assert.equal(enrolled.statusCode, 201, enrolled.body);
        const first = enrolled.json().followups[0].id as string;
        await waitFor('step 1 sent after one Evolution error', async () => {
          const { rows } = await ctx.db.query<{ status: string }>('SELECT status FROM follow_ups WHERE id = $1', [first]);
          return rows[0]?.status === 'executed';
        }, { timeoutMs: 20_000 });

        const boom = await app.inject({ method: 'POST', url: '/v1/followups', headers: auth, payload: { phone: PHONE_C, message: TEXT_A, lead: { name: NAME_BOOM } } });
        assert.equal(boom.statusCode, 500);
        const reply = await app.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'x-webhook-secret': SECRET }, payload: replyWebhook(PHONE_A, TEXT_REPLY, 'LOGPRIV0002') });
        assert.equal(reply.statusCode, 200);
      } finally {
        await running.stop();
        await ctx.close();
      }
      assert.ok(lines.some((l) => /LLM text not used/.test(l)), 'the refused LLM text was logged (without its text)');
      assert.ok(lines.some((l) => /"level":50/.test(l) && /request failed/.test(l)), 'the database error was logged');
      assert.ok(lines.some((l) => /send failed; will retry/.test(l)), 'the Evolution error was logged');
      const leaks = secretsIn(lines);
      assert.deepEqual(leaks, [], `leaked:\n${leaks.join('\n')}`);
    });
  });
});
