/**
 * Several WhatsApp numbers (Evolution instances): three fake Evolution servers, one instance each
 * (num1, num2, num3; num3 with its own API key), on one webhook URL. Each fan is bound
 * to one number and every follow-up goes out from it; pace, daily cap and pauses are
 * per number; a retired number's leads move once.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { countByStatus, insertDueFollowups, type RoleHandle, startRole, TEST_TOKEN, testEnv, waitFor } from './helpers/pipeline.js';
import { cliArgs } from './helpers/cli.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECRET = 'numbers-webhook-secret-0123456789';
const NAMES = ['num1', 'num2', 'num3'] as const;

/** The environment of a deployment with the three fakes as its numbers. */
function numbersEnv(fakes: FakeEvolution[], extra: Record<string, string> = {}): Record<string, string> {
  return {
    EVOLUTION_API_URL: fakes[0]!.url,
    EVOLUTION_API_KEY: fakes[0]!.apiKey,
    EVOLUTION_INSTANCES: NAMES.join(','),
    EVOLUTION_INSTANCE_NUM2_URL: fakes[1]!.url,
    EVOLUTION_INSTANCE_NUM3_URL: fakes[2]!.url,
    EVOLUTION_INSTANCE_NUM3_API_KEY: fakes[2]!.apiKey,
    WEBHOOK_SECRET: SECRET,
    REDIS_URL,
    // The pace and daily cap are keyed by instance name in Redis: a prefix of its own per run.
    QUEUE_PREFIX: `{numbers-${randomBytes(4).toString('hex')}}`,
    ...extra,
  };
}

async function startFakes(): Promise<FakeEvolution[]> {
  return Promise.all(NAMES.map((instance, i) => startFakeEvolution({ instance, delayScale: 0, ...(i === 2 ? { apiKey: 'num3-own-api-key-abcdef' } : {}) })));
}

describe('EVOLUTION_INSTANCES and its per-instance settings', () => {
  const base = testEnv({ EVOLUTION_API_URL: 'https://evo.example.com', EVOLUTION_API_KEY: 'shared-key' });
  const problems = (env: Record<string, string | undefined>) => {
    try {
      loadConfig(env);
      return [];
    } catch (error) {
      return (error as ConfigError).problems;
    }
  };

  test('several numbers, each with its own key, URL, pace and cap falling back on the shared ones', () => {
    const config = loadConfig({
      ...base,
      EVOLUTION_INSTANCES: 'nautico1, nautico-2',
      EVOLUTION_INSTANCE_NAUTICO_2_API_KEY: 'own-key',
      EVOLUTION_INSTANCE_NAUTICO_2_URL: 'https://evo2.example.com/',
      EVOLUTION_INSTANCE_NAUTICO_2_RATE_PER_MINUTE: '10',
      EVOLUTION_INSTANCE_NAUTICO1_DAILY_CAP: '300',
      SEND_RATE_PER_MINUTE: '20',
      SEND_DAILY_CAP: '1000',
    });
    assert.deepEqual(config.evolution!.instances, [
      { name: 'nautico1', url: 'https://evo.example.com', apiKey: 'shared-key' },
      { name: 'nautico-2', url: 'https://evo2.example.com', apiKey: 'own-key' },
    ]);
    assert.deepEqual(config.numbers, [
      { name: 'nautico1', ratePerMinute: 20, dailyCap: 300 },
      { name: 'nautico-2', ratePerMinute: 10, dailyCap: 1000 },
    ]);
    assert.equal(config.evolution!.instance, 'nautico1', 'the first is the default');
  });

  test('the one-number settings are unchanged; without Evolution there is one dry-run number', () => {
    const one = loadConfig({ ...base, EVOLUTION_INSTANCE_NAME: 'nautico', SEND_DAILY_CAP: '500' });
    assert.equal(one.evolution!.instance, 'nautico');
    assert.deepEqual(one.numbers, [{ name: 'nautico', ratePerMinute: 0, dailyCap: 500 }]);
    assert.deepEqual(loadConfig(testEnv()).numbers.map((n) => n.name), ['dry-run']);
  });

  test('each mistake is named by its setting', () => {
    assert.ok(problems({ ...base, EVOLUTION_INSTANCES: 'a,b', EVOLUTION_INSTANCE_NAME: 'a' }).some((p) => p.startsWith('EVOLUTION_INSTANCES: set either')));
    assert.ok(problems({ ...base, EVOLUTION_INSTANCES: 'a,b', EVOLUTION_INSTANCE_C_API_KEY: 'k' }).some((p) => p.startsWith('EVOLUTION_INSTANCE_C_API_KEY: no instance C')));
    assert.ok(problems({ ...base, EVOLUTION_INSTANCES: 'a,b', EVOLUTION_INSTANCE_B_DAILY_CAP: 'lots' }).some((p) => p.startsWith('EVOLUTION_INSTANCE_B_DAILY_CAP: must be a whole number')));
    assert.ok(problems({ ...base, EVOLUTION_INSTANCES: 'a,b', EVOLUTION_INSTANCE_A_URL: 'ftp://x' }).some((p) => p.startsWith('EVOLUTION_INSTANCE_A_URL: must be a URL')));
    assert.ok(problems({ ...base, EVOLUTION_INSTANCES: 'a,A' }).some((p) => p.includes('listed twice')));
    assert.ok(problems({ ...base, EVOLUTION_INSTANCES: 'a,b c' }).some((p) => p.includes('"b c" is not an instance name')));
  });
});

describe('three WhatsApp numbers, one service', () => {
  let testDb: TestDatabase;
  let fakes: FakeEvolution[];
  let api: RoleHandle;
  let relay: RoleHandle;
  let workers: RoleHandle[] = [];
  const CAP = 800;

  const inject = (method: 'GET' | 'PATCH', url: string, payload?: unknown) =>
    api.running.app!.inject({ method, url, headers: { authorization: `Bearer ${TEST_TOKEN}` }, ...(payload ? { payload: payload as object } : {}) });
  const webhook = (payload: Record<string, unknown>) =>
    api.running.app!.inject({ method: 'POST', url: '/webhooks/evolution', headers: { 'x-webhook-secret': SECRET }, payload });
  const fakeOf = (name: string) => fakes[NAMES.indexOf(name as (typeof NAMES)[number])]!;

  async function leadsByNumber(): Promise<Map<string, Array<{ id: string; phone: string }>>> {
    // Leads that never wrote (a reply would cancel what is planned for them).
    const { rows } = await testDb.db.query<{ id: string; phone: string; whatsapp_number: string }>(
      'SELECT id, phone, whatsapp_number FROM leads WHERE whatsapp_number IS NOT NULL AND last_inbound_at IS NULL ORDER BY phone',
    );
    const map = new Map<string, Array<{ id: string; phone: string }>>();
    for (const r of rows) map.set(r.whatsapp_number, [...(map.get(r.whatsapp_number) ?? []), { id: r.id, phone: r.phone }]);
    return map;
  }

  /** A new due follow-up for each of these leads. */
  async function followupsFor(leadIds: string[], text: string, dueAt = new Date()): Promise<string[]> {
    const { rows } = await testDb.db.query<{ id: string }>(
      `WITH f AS (
         INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at)
         SELECT id, $2::text || ' ' || id::text, $3::timestamptz, $3::timestamptz, now() - interval '1 minute' FROM leads WHERE id = ANY($1::uuid[])
         RETURNING id
       ), ev AS (INSERT INTO follow_up_events (follow_up_id, at, to_status, reason) SELECT id, now(), 'pending', 'scheduled' FROM f)
       SELECT id FROM f`,
      [leadIds, text, dueAt],
    );
    return rows.map((r) => r.id);
  }

  /** Every sending process sees the number in that state (each reads the states at most a second old). */
  async function workersSee(name: string, state: string): Promise<void> {
    await waitFor(`the workers see ${name} ${state}`, async () => {
      const seen = await Promise.all([relay, ...workers].map(async (w) => (await w.ctx.numbers.rows()).get(name)?.state));
      return seen.every((s) => s === state);
    });
  }

  async function statuses(ids: string[]): Promise<Record<string, number>> {
    const { rows } = await testDb.db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) GROUP BY status', [ids]);
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 6 });
    fakes = await startFakes();
    const env = numbersEnv(fakes, { SEND_DAILY_CAP: String(CAP), WORKER_CONCURRENCY: '20', RELAY_BATCH_SIZE: '500' });
    api = await startRole({ roles: ['api'], databaseUrl: testDb.url, env });
    const shared = { ...env, QUEUE_NAME: api.ctx.config.redis.queueName };
    relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env: shared });
    workers = await Promise.all([1, 2, 3].map(() => startRole({ roles: ['worker'], databaseUrl: testDb.url, env: shared })));
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await relay?.stop();
    await api?.stop();
    await Promise.all(fakes.map((f) => f.close()));
    await testDb.drop();
  });

  test('the numbers are seeded from the configuration (idempotent) and listed by GET /v1/numbers', async () => {
    const res = await inject('GET', '/v1/numbers');
    assert.equal(res.statusCode, 200);
    const body = res.json() as { numbers: Array<{ name: string; state: string; dailyCap: number; configured: boolean }> };
    assert.deepEqual(body.numbers.map((n) => [n.name, n.state, n.dailyCap, n.configured]), NAMES.map((n) => [n, 'active', CAP, true]));
  });

  test('2,000 leads are spread so no number exceeds its cap, and each follow-up goes out from its lead\'s number', async () => {
    const ids = await insertDueFollowups(testDb.db, { count: 2_000, phonePrefix: '55119', text: (i) => `Oi! Mensagem ${i}` });
    await waitFor('2,000 executed', async () => (await statuses(ids)).executed === ids.length, { timeoutMs: 150_000, intervalMs: 250 });
    const bound = await leadsByNumber();
    for (const name of NAMES) {
      const leads = bound.get(name) ?? [];
      assert.ok(leads.length <= CAP, `${name} has ${leads.length} leads, at most its cap ${CAP}`);
      assert.ok(leads.length >= 500, `${name} got its share: ${leads.length}`);
      const delivered = fakeOf(name).delivered.length;
      assert.ok(delivered <= CAP, `${name} sent ${delivered}, at most ${CAP}`);
      assert.equal(delivered, leads.length, `${name} sent one message to each of its leads`);
      const phones = new Set(leads.map((l) => l.phone));
      assert.ok(fakeOf(name).delivered.every((d) => phones.has(d.number)), `${name} sent only to its own leads`);
    }
    const total = fakes.reduce((n, f) => n + f.delivered.length, 0);
    assert.equal(total, 2_000, 'each exactly once');
    const listed = (await inject('GET', '/v1/numbers')).json() as { numbers: Array<{ name: string; sentToday: number; leads: number }> };
    for (const n of listed.numbers) assert.equal(n.sentToday, fakeOf(n.name).delivered.length, `${n.name}: sent today as WhatsApp saw it`);
    console.log(`# 2,000 leads: ${listed.numbers.map((n) => `${n.name} ${n.leads} leads / ${n.sentToday} sent`).join(', ')}`);
  });

  test('a reply on number 2 stops that lead only', async () => {
    fakes.forEach((f) => f.deliverWebhooksTo(async (body) => (await webhook(body)).statusCode));
    const [a, b] = (await leadsByNumber()).get('num2')!;
    const [fa, fb] = await Promise.all([followupsFor([a!.id], 'depois', new Date(Date.now() + 3_600_000)), followupsFor([b!.id], 'depois', new Date(Date.now() + 3_600_000))]);
    fakeOf('num2').receiveFromLead({ phone: a!.phone, text: 'Quero saber mais do plano' });
    await waitFor('the reply recorded', async () => (await statuses(fa!)).cancelled === 1);
    const { rows } = await testDb.db.query<{ cancel_reason: string }>('SELECT cancel_reason FROM follow_ups WHERE id = $1::uuid', [fa![0]]);
    assert.equal(rows[0]!.cancel_reason, 'lead_replied');
    assert.deepEqual(await statuses(fb!), { pending: 1 }, 'the other lead of number 2 keeps its follow-up');
    const lead = await testDb.db.query<{ whatsapp_number: string }>('SELECT whatsapp_number FROM leads WHERE id = $1::uuid', [a!.id]);
    assert.equal(lead.rows[0]!.whatsapp_number, 'num2', 'still bound to the number it wrote to');
  });

  test('the agent writes from the lead\'s number; a new fan gets a number at once', async () => {
    const [lead] = (await leadsByNumber()).get('num2')!;
    const before2 = fakeOf('num2').delivered.length;
    const sent = await api.running.app!.inject({
      method: 'POST',
      url: `/v1/leads/${lead!.phone}/send`,
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
      payload: { text: 'Oi! O plano família sai por R$ 390/mês.', typing: false },
    });
    assert.equal(sent.statusCode, 201, sent.body);
    assert.equal(fakeOf('num2').delivered.length, before2 + 1);
    assert.equal(fakeOf('num2').delivered.at(-1)!.number, lead!.phone);
    const fresh = await api.running.app!.inject({
      method: 'POST',
      url: '/v1/leads/5511987650001/send',
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
      payload: { text: 'Oi! Tudo bem?', typing: false },
    });
    assert.equal(fresh.statusCode, 201, fresh.body);
    const { rows } = await testDb.db.query<{ whatsapp_number: string }>(`SELECT whatsapp_number FROM leads WHERE phone = '5511987650001'`);
    const number = rows[0]!.whatsapp_number;
    assert.ok(NAMES.includes(number as (typeof NAMES)[number]));
    assert.ok(fakeOf(number).delivered.some((d) => d.number === '5511987650001'), 'sent from the number it was given');
  });

  test('a webhook from an instance that is not ours is refused and counted, nothing recorded', async () => {
    const before = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages');
    const res = await webhook({
      event: 'messages.upsert',
      instance: 'somebody-else',
      data: { key: { remoteJid: '558199990000@s.whatsapp.net', fromMe: false, id: 'UNKNOWNINSTANCE1' }, message: { conversation: 'oi' }, messageTimestamp: Math.floor(Date.now() / 1000) },
    });
    assert.equal(res.statusCode, 422);
    assert.equal((res.json() as { error: { code: string } }).error.code, 'unknown_instance');
    const afterCount = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages');
    assert.equal(afterCount.rows[0]!.n, before.rows[0]!.n);
    const metrics = await api.running.app!.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    assert.match(metrics.body, /followups_webhooks_unknown_instance_total 1/);
    assert.match(metrics.body, /followups_number_state\{number="num1",state="active"\} 1/);
  });

  test('number 3 disconnected: its leads wait while numbers 1 and 2 keep sending; retired: its leads move, once', async () => {
    const bound = await leadsByNumber();
    const sample = (name: string) => bound.get(name)!.slice(0, 20).map((l) => l.id);
    fakeOf('num3').setConnectionState('close');
    const closed = await webhook({ event: 'connection.update', instance: 'num3', data: { instance: 'num3', state: 'close', statusReason: 428 } });
    assert.equal(closed.statusCode, 200);
    await workersSee('num3', 'paused_whatsapp');
    const sentBefore = NAMES.map((n) => fakeOf(n).delivered.length);
    const [on1, on2, on3] = await Promise.all(['num1', 'num2', 'num3'].map((n) => followupsFor(sample(n), 'segunda')));
    await waitFor('numbers 1 and 2 sent theirs', async () => (await statuses([...on1!, ...on2!])).executed === 40);
    await waitFor('number 3\'s follow-ups held', async () => {
      const { rows } = await testDb.db.query<{ n: number }>(
        `SELECT count(DISTINCT follow_up_id)::int AS n FROM follow_up_events WHERE follow_up_id = ANY($1::uuid[]) AND reason = 'number_paused'`,
        [on3],
      );
      return rows[0]!.n === 20;
    });
    assert.equal((await statuses(on3!)).executed ?? 0, 0, 'none of number 3\'s sent');
    assert.equal(fakeOf('num3').delivered.length, sentBefore[2], 'nothing sent from number 3');
    const health = await api.running.app!.inject({ method: 'GET', url: '/health/ready', headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    const checks = (health.json() as { status: string; checks: { numbers: { status: string; numbers: Array<{ name: string; state: string }> } } });
    assert.equal(checks.status, 'degraded');
    // By name: the list's order is not part of what is checked (an update may move a row in the table).
    const stateOf = Object.fromEntries(checks.checks.numbers.numbers.map((n) => [n.name, n.state]));
    assert.deepEqual(stateOf, { num1: 'active', num2: 'active', num3: 'paused_whatsapp' });

    const { rows: three } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM leads WHERE whatsapp_number = 'num3'`);
    const onThree = three[0]!.n;
    const retired = await inject('PATCH', '/v1/numbers/num3', { state: 'retired', reason: 'banido' });
    assert.equal(retired.statusCode, 200);
    assert.deepEqual((retired.json() as { movedLeads: number }).movedLeads, onThree);
    const again = await inject('PATCH', '/v1/numbers/num3', { state: 'retired' });
    assert.equal((again.json() as { movedLeads: number }).movedLeads, 0, 'moved once');
    const { rows: events } = await testDb.db.query<{ n: number; leads: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT lead_id)::int AS leads FROM lead_number_events WHERE from_number = 'num3' AND reason = 'number_retired'`,
    );
    assert.deepEqual(events[0], { n: onThree, leads: onThree }, 'one timeline event per lead moved');
    const { rows: left } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM leads WHERE whatsapp_number = 'num3'`);
    assert.equal(left[0]!.n, 0, 'no lead left on number 3');
    await waitFor('number 3\'s held follow-ups went out from 1 and 2', async () => (await statuses(on3!)).executed === 20, { timeoutMs: 30_000 });
    assert.equal(fakeOf('num3').delivered.length, sentBefore[2], 'still nothing from number 3');
    const movedPhone = bound.get('num3')![0]!.phone;
    const timeline = await inject('GET', `/v1/leads/${movedPhone}`);
    const items = (timeline.json() as { timeline: Array<{ type: string; from?: string; reason?: string }> }).timeline.filter((i) => i.type === 'number_change');
    assert.equal(items.length, 1);
    assert.equal(items[0]!.from, 'num3');
    const counts = await countByStatus(testDb.db);
    assert.equal(counts.sending ?? 0, 0);
  });

  test('an operator pause holds the number\'s follow-ups (operator_paused) until resumed', async () => {
    const lead = (await leadsByNumber()).get('num1')!.slice(0, 5).map((l) => l.id);
    const paused = await inject('PATCH', '/v1/numbers/num1', { state: 'paused_operator' });
    assert.equal((paused.json() as { number: { state: string } }).number.state, 'paused_operator');
    await workersSee('num1', 'paused_operator');
    const ids = await followupsFor(lead, 'terceira');
    await waitFor('held by the operator', async () => {
      const { rows } = await testDb.db.query<{ n: number }>(
        `SELECT count(DISTINCT follow_up_id)::int AS n FROM follow_up_events WHERE follow_up_id = ANY($1::uuid[]) AND reason = 'operator_paused'`,
        [ids],
      );
      return rows[0]!.n === 5;
    });
    assert.equal((await statuses(ids)).executed ?? 0, 0, 'none sent while paused');
    assert.equal((await inject('PATCH', '/v1/numbers/num1', { state: 'active' })).statusCode, 200);
    await waitFor('sent after the resume', async () => (await statuses(ids)).executed === 5, { timeoutMs: 30_000 });
    // The same through the command line.
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string }>((resolve) => {
        const env = { ...process.env, ...testEnv(numbersEnv(fakes)), DATABASE_URL: testDb.url, LOG_LEVEL: 'warn' };
        execFile(process.execPath, [...cliArgs(), ...args], { env, timeout: 60_000 }, (error, stdout) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout }),
        );
      });
    const pausedByCli = await cli(['numbers', 'pause', 'num2', '--reason', 'teste', '--json']);
    assert.equal(pausedByCli.code, 0);
    assert.equal((JSON.parse(pausedByCli.stdout) as { number: { state: string } }).number.state, 'paused_operator');
    const listed = await cli(['numbers', 'list']);
    assert.match(listed.stdout, /num2\s+paused_operator \(teste\)/);
    assert.equal((await cli(['numbers', 'resume', 'num2'])).code, 0);
    assert.equal((await cli(['numbers', 'retire', 'nope'])).code, 1);
    // Each number's webhook is set up on its own instance; doctor checks every instance.
    const setup = await cli(['webhook', 'setup', '--url', 'https://followups.example.com', '--instance', 'num2', '--json']);
    assert.equal(setup.code, 0, setup.stdout);
    assert.equal(fakeOf('num2').webhook?.url, 'https://followups.example.com/webhooks/evolution');
    assert.equal(fakeOf('num1').webhook, null, 'the other numbers untouched');
    const doctor = JSON.parse((await cli(['doctor', '--json'])).stdout) as { checks: Array<{ name: string; status: string }> };
    const evolution = doctor.checks.filter((c) => c.name.startsWith('evolution.'));
    assert.deepEqual(evolution.map((c) => c.name).filter((n) => n.startsWith('evolution.connection')).sort(), NAMES.map((n) => `evolution.connection[${n}]`));
    assert.equal(evolution.find((c) => c.name === 'evolution.webhook[num1]')?.status, 'fail');

    const bad = await inject('PATCH', '/v1/numbers/num1', { state: 'paused_whatsapp' });
    assert.equal(bad.statusCode, 400);
    assert.equal((await inject('PATCH', '/v1/numbers/nope', { state: 'active' })).statusCode, 404);
  });
});

describe('the pace of each number, shared by three workers', () => {
  let testDb: TestDatabase;
  let fakes: FakeEvolution[];

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fakes = await startFakes();
    for (const f of fakes) f.fail('slow', { ms: 10 });
  });
  after(async () => {
    await Promise.all(fakes.map((f) => f.close()));
    await testDb.drop();
  });

  test('no number ever sends more than its pace in any window, whichever worker sends', async () => {
    const windowMs = 10_000;
    const env = numbersEnv(fakes, {
      SEND_RATE_PER_MINUTE: '10',
      EVOLUTION_INSTANCE_NUM2_RATE_PER_MINUTE: '6',
      SEND_RATE_WINDOW_SECONDS: String(windowMs / 1000),
      WORKER_CONCURRENCY: '10',
      LEASE_SECONDS: '20',
    });
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env });
    const queueName = relay.ctx.config.redis.queueName;
    const workers = await Promise.all([1, 2, 3].map(() => startRole({ roles: ['worker'], databaseUrl: testDb.url, env: { ...env, QUEUE_NAME: queueName } })));
    const ids = await insertDueFollowups(testDb.db, { count: 45, text: (i) => `ritmo ${i}` });
    try {
      await waitFor(
        'all 45 executed',
        async () => {
          const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1) AND status = 'executed'`, [ids]);
          return rows[0]!.n === ids.length;
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await relay.stop();
    }
    const limits = { num1: 10, num2: 6, num3: 10 };
    const seen: string[] = [];
    for (const [i, name] of NAMES.entries()) {
      const busiest = fakes[i]!.maxPerWindow(windowMs);
      assert.ok(busiest <= limits[name], `${name}: at most ${limits[name]} in any ${windowMs} ms window, saw ${busiest}`);
      seen.push(`${name} ${fakes[i]!.delivered.length} sent, busiest window ${busiest}`);
    }
    assert.equal(fakes.reduce((n, f) => n + f.delivered.length, 0), 45);
    console.log(`# pace per number: ${seen.join('; ')}`);
  });
});
