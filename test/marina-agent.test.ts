/**
 * The reference agent end to end (README "Agent integration" → "Reference agent"): the service (API, relay, worker)
 * on real PostgreSQL with the fake Evolution, examples/marina-agent.ts in-process on a
 * real port receiving the forwarded events (AGENT_WEBHOOK_URL), and the fake
 * OpenAI-compatible LLM scripted to answer with tool calls.
 *
 *   a fan writes → Evolution's webhook → the service → signed event → the agent → the model
 *   calls send_message (the fan gets the answer) and schedule_followup (4 h) → the fan goes
 *   quiet: the follow-up is made due by moving its due_at in the database (4 h do not
 *   pass in a test) → it goes out. A second fan answers before theirs is due: it is
 *   cancelled by the reply, and never sent even once its due time has come.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type MarinaAgent, startMarinaAgent } from '../examples/marina-agent.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { type FakeLlm, type FakeLlmAnswer, type FakeLlmRequest, startFakeLlm } from './helpers/fake-llm.js';
import { type RoleHandle, startRole, TEST_TOKEN, waitFor } from './helpers/pipeline.js';
import { freePort } from './helpers/redis-server.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const WEBHOOK_SECRET = 'webhook-secret-123-abcdefghijkl';
const AGENT_SECRET = 'agent-secret-0123456789abcdef';
const MODEL_LATENCY_MS = 1_100;
const ANA = '5581998100001';
const BETO = '5581998100002';

const ANSWER_ANA = 'Oxe, Ana, trabalho primeiro! Te chamo mais tarde pra falar do Sócio Mais Fiel do Nordeste, visse?';
const FOLLOWUP_ANA = 'Opa, Ana! Passando só pra saber se ficou alguma dúvida sobre o plano de sócio, visse?';
const ANSWER_BETO = 'Massa, Beto! Te chamo mais tarde pra gente conversar sobre o plano.';
const FOLLOWUP_BETO = 'E aí, Beto, tudo certo? Deu pra pensar em fortalecer o Timbu?';
const SECOND_ANSWER_BETO = 'Claro, Beto! Vou confirmar os detalhes do plano e já te falo.';

/**
 * The "model": to a fan's new message it answers with tool calls (send_message, and
 * schedule_followup in 4 hours the first time); once the tools' results are back, with a
 * short text and no tools (the agent's turn ends).
 *
 * It takes a little over a second to answer a fan, as a real model does (more, usually).
 * That matters: WhatsApp stamps messages in whole seconds, and a reply cancels the
 * follow-ups planned in the same second as it (the respectful side wins, see README "Where
 * this differs from DESIGN.md"), so a follow-up scheduled within that second would be
 * cancelled by the very message it answers.
 */
function marinaScript(request: FakeLlmRequest): FakeLlmAnswer | undefined {
  const messages = request.body.messages ?? [];
  const last = messages.at(-1);
  if (last?.role === 'tool') return { content: 'Pronto.' };
  const phone = /"telefone":"(\d+)"/.exec(messages[0]?.content ?? '')?.[1];
  const said = last?.content ?? '';
  if (phone === ANA) {
    return {
      delayMs: MODEL_LATENCY_MS,
      toolCalls: [
        { name: 'send_message', arguments: { phone, text: ANSWER_ANA } },
        { name: 'schedule_followup', arguments: { phone, delayHours: 4, message: FOLLOWUP_ANA } },
      ],
    };
  }
  if (phone === BETO && /link/.test(said)) return { delayMs: MODEL_LATENCY_MS, toolCalls: [{ name: 'send_message', arguments: { phone, text: SECOND_ANSWER_BETO } }] };
  if (phone === BETO) {
    return {
      delayMs: MODEL_LATENCY_MS,
      toolCalls: [
        { name: 'send_message', arguments: { phone, text: ANSWER_BETO } },
        { name: 'schedule_followup', arguments: { phone, delayHours: 4, message: FOLLOWUP_BETO } },
      ],
    };
  }
  return undefined;
}

describe('the reference agent (examples/marina-agent.ts), end to end', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  let llm: FakeLlm;
  let service: RoleHandle;
  let agent: MarinaAgent;
  const agentLog: Array<{ message: string; fields?: Record<string, unknown> }> = [];

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 6 });
    fake = await startFakeEvolution({ delayScale: 0 });
    llm = await startFakeLlm();
    llm.respond(marinaScript);
    // The agent's port is chosen first: the service is configured with its URL.
    const agentPort = await freePort();
    service = await startRole({
      roles: ['api', 'relay', 'worker'],
      databaseUrl: testDb.url,
      fake,
      env: {
        REDIS_URL,
        WEBHOOK_SECRET,
        AGENT_WEBHOOK_URL: `http://127.0.0.1:${agentPort}/events`,
        AGENT_WEBHOOK_SECRET: AGENT_SECRET,
        AGENT_WEBHOOK_RETRY_BASE_MS: '50',
        AGENT_WEBHOOK_RETRY_MAX_MS: '500',
      },
    });
    const apiUrl = await service.running.app!.listen({ port: 0, host: '127.0.0.1' });
    fake.deliverWebhooksTo(async (body) => {
      const res = await service.running.app!.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'x-webhook-secret': WEBHOOK_SECRET }, payload: body });
      return res.statusCode;
    });
    agent = await startMarinaAgent({
      followupsUrl: apiUrl,
      followupsToken: TEST_TOKEN,
      webhookSecret: AGENT_SECRET,
      openai: { apiKey: llm.apiKey, baseURL: llm.url, model: 'gpt-test' },
      port: agentPort,
      log: (message, fields) => agentLog.push({ message, fields }),
    });
  });
  after(async () => {
    await agent?.close();
    await service?.stop();
    await fake?.close();
    await llm?.close();
    await testDb?.drop();
  });

  const texts = (phone: string) => fake.deliveriesTo(phone).map((d) => d.text);
  async function followupsOf(phone: string) {
    const { rows } = await testDb.db.query<{ id: string; status: string; message: string; due_at: Date; created_at: Date; cancel_reason: string | null }>(
      `SELECT f.id, f.status, f.message, f.due_at, f.created_at, f.cancel_reason FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE l.phone = $1 ORDER BY f.created_at`,
      [phone],
    );
    return rows;
  }

  it('a fan writes: the agent answers through the service and schedules a follow-up in 4 hours, which goes out once the fan stays quiet', async () => {
    fake.receiveFromLead({ phone: ANA, text: 'Oi! Quero saber do plano de sócio, mas agora tô no trabalho' });

    // The answer reached WhatsApp, sent by the agent through POST /v1/agent/tools/send_message.
    await waitFor('the agent answers Ana', async () => texts(ANA).includes(ANSWER_ANA));
    const [scheduled] = await waitFor('Ana has a follow-up', async () => {
      const rows = await followupsOf(ANA);
      return rows.length === 1 ? rows : null;
    });
    assert.equal(scheduled!.status, 'pending');
    assert.equal(scheduled!.message, FOLLOWUP_ANA);
    const hours = (scheduled!.due_at.getTime() - scheduled!.created_at.getTime()) / 3_600_000;
    assert.ok(Math.abs(hours - 4) < 0.01, `due 4 hours after it was scheduled (${hours} h)`);

    // The model was asked with the service's tools and the fan's words, and got the tools' results back.
    const toModel = llm.requests.find((r) => r.body.messages?.some((m) => m.role === 'user' && m.content.includes('tô no trabalho')))!;
    assert.ok((toModel.body.tools as Array<{ function: { name: string } }>).some((t) => t.function.name === 'schedule_followup'));
    assert.match(toModel.body.messages![0]!.content, /Marina Campelo/);
    await waitFor('the results went back to the model', async () =>
      llm.requests.some((r) => r.body.messages?.some((m) => m.role === 'tool' && JSON.parse(m.content).id === scheduled!.id)),
    );

    // Ana goes quiet. Four hours pass: her follow-up is made due now.
    await testDb.db.query('UPDATE follow_ups SET due_at = now() WHERE id = $1::uuid', [scheduled!.id]);
    await waitFor('the follow-up goes out', async () => texts(ANA).includes(FOLLOWUP_ANA), { timeoutMs: 60_000 }).catch(async (error: Error) => {
      const { rows } = await testDb.db.query('SELECT to_status, reason, detail FROM follow_up_events WHERE follow_up_id = $1::uuid ORDER BY id', [scheduled!.id]);
      throw new Error(`${error.message}; its events: ${JSON.stringify(rows)}; messages: ${JSON.stringify((await testDb.db.query('SELECT m.direction, m.source, m.at, m.created_at FROM messages m JOIN leads l ON l.id = m.lead_id WHERE l.phone = $1 ORDER BY m.at', [ANA])).rows)}`);
    });
    const [sent] = await waitFor('executed', async () => {
      const rows = await followupsOf(ANA);
      return rows[0]?.status === 'executed' ? rows : null;
    });
    assert.equal(sent!.status, 'executed');
    assert.deepEqual(texts(ANA), [ANSWER_ANA, FOLLOWUP_ANA], 'the answer, then the follow-up, each once');

    // The agent heard about it (followup.sent delivered), and Evolution's echoes of our sends were not taken for a person.
    await waitFor('followup.sent reached the agent', async () => {
      const { rows } = await testDb.db.query<{ status: string }>(
        `SELECT o.status FROM agent_outbox o JOIN leads l ON l.id = o.lead_id WHERE l.phone = $1 AND o.type = 'followup.sent'`,
        [ANA],
      );
      return rows[0]?.status === 'delivered';
    });
    const { rows: lead } = await testDb.db.query<{ handoff_at: Date | null }>('SELECT handoff_at FROM leads WHERE phone = $1', [ANA]);
    assert.equal(lead[0]!.handoff_at, null);
    assert.deepEqual(agentLog.filter((l) => l.message === 'event failed'), []);
  });

  it('a fan who answers before the follow-up is due stops it: cancelled by the reply, never sent', async () => {
    fake.receiveFromLead({ phone: BETO, text: 'Opa, tenho interesse, mas me chama depois' });
    await waitFor('the agent answers Beto', async () => texts(BETO).includes(ANSWER_BETO));
    const [first] = await waitFor('Beto has a follow-up', async () => {
      const rows = await followupsOf(BETO);
      return rows.length === 1 ? rows : null;
    });
    assert.equal(first!.status, 'pending');

    // Beto writes again before it is due: the service cancels it, and the agent answers him.
    fake.receiveFromLead({ phone: BETO, text: 'Pode me mandar o link do plano?' });
    await waitFor('the reply cancels the follow-up', async () => (await followupsOf(BETO))[0]?.status === 'cancelled');
    await waitFor('the agent answers the new message', async () => texts(BETO).includes(SECOND_ANSWER_BETO));
    assert.equal((await followupsOf(BETO))[0]!.cancel_reason, 'lead_replied');

    // Its time comes, next to one that is still pending (a fresh one for Ana): only hers goes out.
    const fresh = await service.running.app!.inject({
      method: 'POST',
      url: '/v1/followups',
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
      payload: { phone: ANA, message: 'Oi de novo, Ana!', delayHours: 1 },
    });
    assert.equal(fresh.statusCode, 201, fresh.body);
    await testDb.db.query('UPDATE follow_ups SET due_at = now() WHERE id = ANY($1::uuid[])', [[first!.id, fresh.json().id]]);
    await waitFor('the pending one goes out', async () => texts(ANA).includes('Oi de novo, Ana!'), { timeoutMs: 60_000 });
    assert.equal((await followupsOf(BETO))[0]!.status, 'cancelled');
    assert.deepEqual(texts(BETO), [ANSWER_BETO, SECOND_ANSWER_BETO], 'Beto never got the follow-up');
    assert.deepEqual(agentLog.filter((l) => l.message === 'event failed'), []);
  });
});
