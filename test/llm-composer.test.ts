import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { enrollLead } from '../src/campaigns/enroll-lead.js';
import { makeFakeClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { type Context, createContext } from '../src/context.js';
import { composeFromTemplate } from '../src/compose/compose-from-template.js';
import { allowancesOf, checkModelText, findAmounts, findUrls } from '../src/compose/guardrails.js';
import { getFollowup } from '../src/followups/find-followups.js';
import { claimDueFollowups, markQueued } from '../src/followups/transitions.js';
import { createLogger } from '../src/log.js';
import { executorDeps } from '../src/roles.js';
import { executeFollowup } from '../src/worker/execute-followup.js';
import { makeBasicPolicy } from '../src/policy/send-policy.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution } from './helpers/fake-evolution.js';
import { startFakeLlm, type FakeLlm, type FakeLlmAnswer } from './helpers/fake-llm.js';
import { startRole, waitFor } from './helpers/pipeline.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const START = '2026-01-05T12:00:00.000Z';
const HOUR = 3_600_000;
const silent = createLogger({ level: 'silent' });

let testDb: TestDatabase;
let llm: FakeLlm;
/** A model that answers is given all the time a busy machine needs: a fallback there would be the machine, not the composer. */
let ctx: Context;
/** LLM_TIMEOUT_MS=400, for the model that never answers. */
let impatient: Context;
const clock = makeFakeClock(START);

async function contextWith(llmTimeoutMs: number): Promise<Context> {
  const config = loadConfig({
    DATABASE_URL: testDb.url,
    FOLLOWUPS_API_TOKEN: 'test-token-123-abcdefghijkl',
    ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
    LLM_BASE_URL: llm.url,
    LLM_API_KEY: llm.apiKey,
    LLM_MODEL: 'fake-model-1',
    LLM_TIMEOUT_MS: String(llmTimeoutMs),
    LLM_HISTORY_MESSAGES: '5',
    TYPING_DELAY_ENABLED: 'false',
  });
  return createContext(config, silent, {
    db: testDb.db,
    queue: null,
    skipMigrations: true,
    clock,
    policy: makeBasicPolicy({ typingDelay: false }),
  });
}

before(async () => {
  testDb = await createTestDatabase();
  llm = await startFakeLlm();
  ctx = await contextWith(60_000);
  impatient = await contextWith(400);
});

after(async () => {
  await impatient?.close();
  await ctx?.close();
  await llm?.close();
  await testDb?.drop();
});

let phoneSeq = 0;
const newPhone = () => `55819${String(50_000_000 + ++phoneSeq).padStart(8, '0')}`;
const LAST_AGENT_MESSAGE = 'Que bom, Rafael! Posso te explicar os planos do Sócio Mais Fiel do Nordeste? São dois, bem tranquilos.';

/** A lead mid-conversation whose step 1 is due now; returns its step-1 follow-up id. */
async function leadWithHistory(name: string | null = 'Rafael Lins'): Promise<{ followupId: string; leadId: string }> {
  clock.set(START);
  const { enrollment } = await enrollLead(ctx, { phone: newPhone(), campaign: 'nautico', lead: name ? { name } : undefined, anchorAt: new Date(Date.parse(START) - 4 * HOUR).toISOString() });
  const history: Array<[string, string, string, number]> = [
    ['in', 'lead', 'Oi! Recebi o áudio do presidente, achei massa.', -5],
    ['out', 'agent', LAST_AGENT_MESSAGE, -4.5],
    ['in', 'lead', 'Pode sim, mas agora tô no trabalho. Depois vejo.', -4.2],
  ];
  for (const [direction, source, text, hours] of history) {
    await testDb.db.query(`INSERT INTO messages (lead_id, direction, source, text, at) VALUES ($1, $2, $3, $4, $5)`, [
      enrollment.leadId,
      direction,
      source,
      text,
      new Date(Date.parse(START) + hours * HOUR),
    ]);
  }
  return { followupId: enrollment.followups[0]!.id, leadId: enrollment.leadId };
}

async function sendDueNow(executor = ctx) {
  const { claimed } = await claimDueFollowups(ctx.db, { now: clock.now(), limit: 100, claimMs: 60_000 });
  await markQueued(ctx.db, claimed.map((c) => c.id), clock.now(), 60_000);
  for (const c of claimed) await executeFollowup(executorDeps(executor, 'test'), c.id);
}

/** Runs one step-1 follow-up with the model answering `answer`; returns the stored row, its events and the template it would fall back to. */
async function runWith(answer: FakeLlmAnswer, executor = ctx) {
  const { followupId, leadId } = await leadWithHistory();
  const campaign = ctx.campaigns.get('nautico')!;
  const template = composeFromTemplate({ campaign, step: campaign.steps[0]!, leadId, leadName: 'Rafael Lins', sentTexts: [LAST_AGENT_MESSAGE] });
  llm.answer(answer);
  const before = llm.requests.length;
  await sendDueNow(executor);
  const { followup, events } = await getFollowup(ctx.db, followupId);
  const fallback = events.find((e) => e.reason === 'llm_fallback');
  return { followup, events, fallback, template: template.text, request: llm.requests[before] };
}

describe('the LLM composer against an OpenAI-compatible server', () => {
  it('sends a good text as written, with the persona, the intent and the conversation in the prompt', async () => {
    const good = 'Oi, Rafael! Vi que você tava no trabalho. Ficou alguma dúvida sobre os planos do Sócio Mais Fiel do Nordeste? Tô por aqui, visse?';
    const { followup, fallback, request } = await runWith({ content: good });
    assert.equal(followup.status, 'executed');
    assert.equal(followup.sent_text, good);
    assert.equal(followup.composer, 'llm');
    assert.equal(fallback, undefined);

    assert.ok(request, 'the model was asked');
    assert.equal(request.path, '/v1/chat/completions');
    assert.equal(request.headers.authorization, `Bearer ${llm.apiKey}`);
    assert.equal(request.body.model, 'fake-model-1');
    const [system, user] = request.body.messages!;
    assert.equal(system!.role, 'system');
    assert.match(system!.content, /Marina Campelo/);
    assert.match(system!.content, /Nunca invente preços/);
    assert.match(system!.content, /R\$ 29,90/, 'the facts are in the system prompt');
    assert.equal(user!.role, 'user');
    assert.match(user!.content, /intenção "check_in"/);
    assert.match(user!.content, /Rafael/);
    assert.match(user!.content, /^\{"de":"torcedor","em":"[^"]+","texto":"Oi! Recebi o áudio do presidente, achei massa\."\}$/m);
    assert.match(user!.content, /^\{"de":"Marina Campelo","em":"[^"]+","texto":"Que bom, Rafael!/m);
    assert.match(user!.content, /^\{"de":"torcedor","em":"[^"]+","texto":"Pode sim, mas agora tô no trabalho\. Depois vejo\."\}$/m);
  });

  it('accepts a price and a link that the facts contain', async () => {
    const text = 'Rafael, o Plano Timbu (exemplo) sai por R$ 29,90 por mês. Dá uma olhada em https://socio.nautico-pe.com.br quando puder, visse?';
    const { followup } = await runWith({ content: text });
    assert.equal(followup.composer, 'llm');
    assert.equal(followup.sent_text, text);
  });

  const rejected: Array<[string, FakeLlmAnswer, string]> = [
    ['a price not in the facts', { content: 'Rafael, o plano sai por apenas R$ 19,90 por mês! Bora fortalecer o Timão?' }, 'price_not_in_facts'],
    ['a discount not in the facts', { content: 'Rafael, hoje tem 50% de desconto no plano! Bora?' }, 'price_not_in_facts'],
    ['a URL not in the facts', { content: 'Rafael, garante teu lugar em https://nautico-promo.com/oferta, visse?' }, 'url_not_in_facts'],
    ['600 characters', { content: `Rafael, ${'o Timbu é arretado e '.repeat(29)}visse?`.slice(0, 600) }, 'too_long'],
    ['a repeat of the last message', { content: LAST_AGENT_MESSAGE }, 'repeat'],
    ['a placeholder', { content: 'Opa, [Nome]! Ficou alguma dúvida?' }, 'placeholder'],
    ['nothing', { content: '   ' }, 'empty'],
    ['a 500', { status: 500 }, 'http_500'],
  ];
  for (const [what, answer, why] of rejected) {
    it(`falls back to the template when the model answers ${what} (${why})`, async () => {
      const { followup, fallback, template } = await runWith(answer);
      assert.equal(followup.status, 'executed');
      assert.equal(followup.composer, 'template');
      assert.equal(followup.sent_text, template, 'the template text went out');
      assert.ok(fallback, 'an llm_fallback event was recorded');
      assert.equal(fallback.detail?.why, why);
      assert.equal(fallback.detail?.model, 'fake-model-1');
    });
  }

  it('gives up on a model that hangs after the timeout, with no retry, and sends the template', async () => {
    const before = llm.requests.length;
    const { followup, fallback, template } = await runWith({ hang: true }, impatient);
    assert.equal(followup.composer, 'template');
    assert.equal(followup.sent_text, template);
    assert.equal(fallback?.detail?.why, 'timeout');
    // The fake model never answers (its socket stays open until the test closes it), so the template
    // going out at all is the proof that the 400 ms timeout cut it short; no wall-clock bound needed.
    assert.equal(llm.requests.length - before, 1, 'one attempt, no retry inside the timeout');
  });

  it('writes for a lead without a name without any name, and the prompt says so', async () => {
    const { followupId } = await leadWithHistory(null);
    llm.answer({ content: 'Oi! Tudo certo? Ficou alguma dúvida sobre os planos do Sócio Mais Fiel do Nordeste?' });
    const before = llm.requests.length;
    await sendDueNow();
    const { followup } = await getFollowup(ctx.db, followupId);
    assert.equal(followup.composer, 'llm');
    assert.match(llm.requests[before]!.body.messages![1]!.content, /Nome do torcedor: desconhecido/);
  });
});

describe('the guardrails', () => {
  const allowed = allowancesOf({ plans: [{ price: 'R$ 29,90 por mês' }, { price: 'R$ 1.299,00 por ano' }], links: { m: 'https://socio.nautico-pe.com.br/planos' } });
  const check = (text: string, previousTexts: string[] = []) => checkModelText(text, { maxChars: 300, allowed, previousTexts });

  it('reads amounts the way Brazilians write them', () => {
    assert.deepEqual(findAmounts('R$ 29,90 ou R$1.299,00, 30 reais, 29.90 reais'), ['brl:2990', 'brl:129900', 'brl:3000', 'brl:2990']);
    assert.deepEqual(findAmounts('100% alvirrubro, desde 1901, 48 horas'), [], 'numbers that are not prices');
    assert.deepEqual(findAmounts('10% de desconto'), ['pct:1000']);
    assert.deepEqual(findAmounts('por poucos reais'), ['brl:?']);
  });

  it('finds links with or without a scheme', () => {
    assert.deepEqual(findUrls('veja https://socio.nautico-pe.com.br/planos. ou www.x.com.br, ou nautico.com/promo'), [
      'socio.nautico-pe.com.br/planos',
      'x.com.br',
      'nautico.com/promo',
    ]);
  });

  it('lets through what the facts say and stops what they do not', () => {
    assert.equal(check('Plano anual: R$ 1.299,00. Detalhes em socio.nautico-pe.com.br/planos').ok, true);
    assert.equal(check('Sou 100% alvirrubro, visse?').ok, true);
    assert.deepEqual(check('Só R$ 9,90!'), { ok: false, why: 'price_not_in_facts', detail: { amount: 'brl:990' } });
    assert.deepEqual(check('Entra em bit.ly/timbu'), { ok: false, why: 'url_not_in_facts', detail: { url: 'bit.ly/timbu', host: 'bit.ly' } });
    for (const text of ['Oi, {firstName}!', 'Oi, undefined!', 'Opa, !', 'Oi <nome>, tudo bem?', 'Olá null']) {
      assert.equal((check(text) as { why?: string }).why, 'placeholder', text);
    }
    assert.equal((check('Oi, Ana! Tudo bem?', ['oi ana, tudo bem!']) as { why?: string }).why, 'repeat', 'same text up to case and punctuation');
    assert.equal((check('Oi, Ana! Tudo bem por aí?', ['Oi, Ana! Tudo bem por ai??']) as { why?: string }).why, 'repeat', 'near-exact');
    assert.equal(check('"Oi, Ana! Tudo certo?"').ok && (check('"Oi, Ana! Tudo certo?"') as { text: string }).text, 'Oi, Ana! Tudo certo?', 'wrapping quotes dropped');
  });
});

describe('through the real pipeline', () => {
  it('records the llm_fallback note on the follow-up and stores the text sent and its composer', async () => {
    const fake = await startFakeEvolution({ delayScale: 0 });
    const env = {
      REDIS_URL,
      QUEUE_NAME: `llm_e2e_${process.pid}_${Date.now()}`,
      LLM_BASE_URL: llm.url,
      LLM_API_KEY: llm.apiKey,
      LLM_MODEL: 'fake-model-1',
      LLM_TIMEOUT_MS: '60000', // the model answers: a busy machine must not turn it into a timeout
      SENDING_WINDOW_ENABLED: 'false',
    };
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
    try {
      const phone = newPhone();
      llm.setDefault({ content: 'Rafael, corre que é só hoje: https://promo-timbu.com' });
      // Anchored 5 h ago: step 1 is due now (real time), steps 2 and 3 later.
      const { enrollment } = await enrollLead(relay.ctx, {
        phone,
        campaign: 'nautico',
        lead: { name: 'Rafael' },
        anchorAt: new Date(Date.now() - 5 * HOUR).toISOString(),
      });
      const id = enrollment.followups[0]!.id;
      const done = await waitFor('step 1 executed', async () => {
        const f = await getFollowup(testDb.db, id);
        return f.followup.status === 'executed' && f;
      });
      assert.equal(done.followup.composer, 'template');
      assert.ok(done.followup.sent_text && /Rafael/.test(done.followup.sent_text));
      const fallback = done.events.find((e) => e.reason === 'llm_fallback');
      assert.equal(fallback?.detail?.why, 'url_not_in_facts');
      assert.equal(fallback?.detail?.url, 'promo-timbu.com');
      const delivered = fake.delivered.filter((d) => d.number === phone);
      assert.deepEqual(delivered.map((d) => d.text), [done.followup.sent_text], 'the template text reached WhatsApp, once');
      const later = await testDb.db.query<{ status: string }>(`SELECT status FROM follow_ups WHERE enrollment_id = $1 AND step > 1`, [enrollment.id]);
      assert.deepEqual(later.rows.map((r) => r.status), ['pending', 'pending']);
    } finally {
      llm.setDefault({ content: 'Oi! Ficou alguma dúvida sobre o Sócio Mais Fiel do Nordeste?' });
      await worker.stop();
      await relay.stop();
      await fake.close();
    }
  });
});
