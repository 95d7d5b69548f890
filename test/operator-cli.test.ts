/**
 * The operator CLI, spawned as an operator runs it (`node --import tsx src/cli.ts …`)
 * against the real PostgreSQL (a test database) and Redis (a queue name of its own),
 * the fake Evolution API and the fake LLM: what it prints (`--json`), the exit code,
 * and what it changed in the database or on Evolution.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import { makeSendingGate } from '../src/followups/sending-gate.js';
import { scheduleFollowup } from '../src/followups/schedule-followup.js';
import { claimForSending, markFailed } from '../src/followups/transitions.js';
import { createLogger } from '../src/log.js';
import { makeRespectfulPolicy } from '../src/policy/respectful-policy.js';
import { sendFollowupNow } from '../src/operator/send-followup-now.js';
import { makeQueueLink } from '../src/queue/queue-link.js';
import { makeDryRunTransport } from '../src/whatsapp/dry-run-transport.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { type FakeEvolution, startFakeEvolution } from './helpers/fake-evolution.js';
import { type FakeLlm, startFakeLlm } from './helpers/fake-llm.js';
import { freePort, type OwnRedis, startOwnRedis } from './helpers/redis-server.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const QUEUE_NAME = `operator_cli_${process.pid}_${Date.now()}`;
const SECRET = 'operator-cli-webhook-secret';
const PUBLIC_URL = 'https://followups.example.com';
const silent = createLogger({ level: 'silent' });

let testDb: TestDatabase;
let evolution: FakeEvolution;
let llm: FakeLlm;

before(async () => {
  [testDb, evolution, llm] = await Promise.all([createTestDatabase({ poolSize: 3 }), startFakeEvolution(), startFakeLlm()]);
});
after(async () => {
  await Promise.all([evolution?.close(), llm?.close()]);
  await testDb?.drop();
});

function baseEnv(): Record<string, string> {
  return {
    DATABASE_URL: testDb.url,
    FOLLOWUPS_API_TOKEN: 'operator-cli-token',
    REDIS_URL,
    QUEUE_NAME,
    EVOLUTION_API_URL: evolution.url,
    EVOLUTION_API_KEY: evolution.apiKey,
    EVOLUTION_INSTANCE_NAME: evolution.instance,
    WEBHOOK_SECRET: SECRET,
    PUBLIC_URL,
    LLM_BASE_URL: llm.url,
    LLM_API_KEY: llm.apiKey,
    LLM_MODEL: 'gpt-test',
    SEND_DAILY_CAP: '500',
    LOG_LEVEL: 'warn',
  };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

/** Runs the real CLI in a child process (asynchronously: the fakes answer from this process). */
function followups(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...baseEnv(), ...env })) if (value !== undefined) childEnv[key] = value;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env: childEnv, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

async function schedule(phone: string, options: { inMinutes?: number } = {}) {
  const { followup } = await scheduleFollowup({ db: testDb.db, clock: systemClock }, { phone, message: 'Oi! Ficou alguma dúvida?', delayMinutes: options.inMinutes ?? 300 });
  return followup;
}

async function row(id: string) {
  const { rows } = await testDb.db.query<{ status: string; due_at: Date; cancel_reason: string | null; ignore_window: boolean; defer_reason: string | null }>(
    'SELECT status, due_at, cancel_reason, ignore_window, defer_reason FROM follow_ups WHERE id = $1::uuid',
    [id],
  );
  return rows[0]!;
}

async function lastEvent(id: string) {
  const { rows } = await testDb.db.query<{ from_status: string; to_status: string; reason: string; detail: Record<string, unknown> }>(
    'SELECT from_status, to_status, reason, detail FROM follow_up_events WHERE follow_up_id = $1::uuid ORDER BY id DESC LIMIT 1',
    [id],
  );
  return rows[0]!;
}

describe('followups status', () => {
  it('reports counts, overdue and due-soon follow-ups, the queue depth, why sending is paused and the sends of today', async () => {
    const overdue = await schedule('5581990000001');
    await testDb.db.query(`UPDATE follow_ups SET due_at = now() - interval '10 minutes', defer_reason = 'window' WHERE id = $1::uuid`, [overdue.id]);
    await schedule('5581990000002', { inMinutes: 30 });
    await schedule('5581990000003', { inMinutes: 180 });
    const sent = await schedule('5581990000004');
    await testDb.db.query(`UPDATE follow_ups SET status = 'executed', sent_at = now() WHERE id = $1::uuid`, [sent.id]);
    await makeSendingGate({ db: testDb.db, clock: systemClock }).pause('whatsapp_disconnected', 'connection.update close');
    const link = makeQueueLink({ url: REDIS_URL, queueName: QUEUE_NAME, prefix: '{followups}', commandTimeoutMs: 2_000 }, silent);
    try {
      await link.publish([overdue.id]);
      const run = await followups(['status', '--json']);
      assert.equal(run.code, 0, run.stderr);
      const s = run.json;
      assert.equal(s.byStatus.pending, 3);
      assert.equal(s.byStatus.executed, 1);
      assert.equal(s.pending.overdue, 1);
      assert.equal(s.pending.dueNextHour, 1);
      assert.equal(s.pending.oldestOverdue.id, overdue.id);
      assert.equal(s.pending.oldestOverdue.deferReason, 'window');
      assert.ok(s.pending.oldestOverdue.overdueSeconds >= 590, `overdue by ${s.pending.oldestOverdue.overdueSeconds} s`);
      assert.equal(s.queue.mode, 'redis');
      assert.deepEqual(s.queue.depth, { waiting: 1, active: 0, delayed: 0 });
      assert.equal(s.sending.paused, true);
      assert.equal(s.sending.reason, 'whatsapp_disconnected');
      assert.equal(s.today.sent, 1);
      assert.equal(s.today.dailyCap, 500);

      const human = await followups(['status']);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /PAUSED: whatsapp_disconnected/);
      assert.match(human.stdout, /redis: 1 waiting, 0 active, 0 delayed/);
      assert.match(human.stdout, /sent today\s+1 of 500/);
    } finally {
      await link.queue.obliterate({ force: true }).catch(() => undefined);
      await link.close();
      await makeSendingGate({ db: testDb.db, clock: systemClock }).resume();
      await testDb.db.query(`UPDATE follow_ups SET status = 'cancelled' WHERE status = 'pending'`);
    }
  });

  it('says "direct" when there is no Redis, and exits 2 on a bad setting, naming it', async () => {
    const direct = await followups(['status', '--json'], { REDIS_URL: undefined });
    assert.equal(direct.code, 0, direct.stderr);
    assert.equal(direct.json.queue.mode, 'direct');
    assert.equal(direct.json.queue.depth, null);

    const bad = await followups(['status', '--json'], { REDIS_URL: 'not-a-url' });
    assert.equal(bad.code, 2);
    assert.equal(bad.json.error.code, 'invalid_configuration');
    assert.match(bad.stderr, /REDIS_URL/);
  });

  it('exits 3 when PostgreSQL does not answer', async () => {
    const run = await followups(['status', '--json'], { DATABASE_URL: `postgresql://root@127.0.0.1:${await freePort()}/nothing` });
    assert.equal(run.code, 3, run.stderr);
    assert.equal(run.json.error.code, 'database_unreachable');
  });
});

describe('followups cancel --lead', () => {
  it("cancels every open follow-up of that lead only, with reason operator, whatever the phone's spelling", async () => {
    const a1 = await schedule('5581991110001');
    const a2 = await schedule('5581991110001', { inMinutes: 600 });
    const other = await schedule('5581991110002');
    const run = await followups(['cancel', '--lead', '+55 (81) 99111-0001', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual([...run.json.cancelled].sort(), [a1.id, a2.id].sort());
    for (const id of [a1.id, a2.id]) {
      assert.equal((await row(id)).status, 'cancelled');
      assert.equal((await row(id)).cancel_reason, 'operator');
      assert.equal((await lastEvent(id)).reason, 'operator');
    }
    assert.equal((await row(other.id)).status, 'pending');

    const again = await followups(['cancel', '--lead', '5581991110001', '--json']);
    assert.equal(again.code, 1, 'nothing left to cancel');
    assert.deepEqual(again.json.cancelled, []);

    const unknown = await followups(['cancel', '--lead', '5581991119999', '--json']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.json.error.code, 'lead_not_found');

    const bad = await followups(['cancel', '--lead', 'abc', '--json']);
    assert.equal(bad.code, 2);
    assert.match(bad.json.error.message, /lead/);
  });
});

describe('followups retry --failed', () => {
  it('retries the failed follow-ups matching the reason and the time, and only those', async () => {
    const fail = async (phone: string, reason: string, failedAgo?: string) => {
      const f = await schedule(phone);
      await markFailed(testDb.db, { id: f.id, now: new Date(), reason, error: `${reason}: boom`, from: ['pending'] });
      if (failedAgo) await testDb.db.query(`UPDATE follow_up_events SET at = now() - $2::interval WHERE follow_up_id = $1::uuid AND to_status = 'failed'`, [f.id, failedAgo]);
      return f;
    };
    const recent = await fail('5581992220001', 'retries_exhausted');
    const old = await fail('5581992220002', 'retries_exhausted', '3 days');
    const rejected = await fail('5581992220003', 'rejected');

    const dry = await followups(['retry', '--failed', '--reason', 'retries_exhausted', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.json.matched, 2);
    assert.deepEqual(dry.json.retried, []);
    assert.equal((await row(recent.id)).status, 'failed');

    const run = await followups(['retry', '--failed', '--reason', 'retries_exhausted', '--since', '1d', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.json.retried, [recent.id]);
    const retried = await row(recent.id);
    assert.equal(retried.status, 'pending');
    assert.ok(retried.due_at.getTime() <= Date.now());
    assert.equal((await lastEvent(recent.id)).reason, 'operator_retry');
    assert.deepEqual((await lastEvent(recent.id)).detail, { source: 'cli' });
    assert.equal((await row(old.id)).status, 'failed');
    assert.equal((await row(rejected.id)).status, 'failed');

    const none = await followups(['retry', '--failed', '--reason', 'no_such_reason', '--json']);
    assert.equal(none.code, 1, 'nothing matched');
    assert.equal(none.json.matched, 0);

    const usage = await followups(['retry', '--json']);
    assert.equal(usage.code, 2, 'without --failed it is a usage error');
    const badSince = await followups(['retry', '--failed', '--since', 'yesterday', '--json']);
    assert.equal(badSince.code, 2);
    assert.match(badSince.json.error.message, /--since/);
  });
});

describe('followups send-now', () => {
  it('makes a pending follow-up due now, records it as an operator event, and keeps --ignore-window on the row', async () => {
    const plain = await schedule('5581993330001');
    const run = await followups(['send-now', plain.id, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.json.ignoreWindow, false);
    const moved = await row(plain.id);
    assert.ok(moved.due_at.getTime() <= Date.now(), 'due now');
    assert.equal(moved.ignore_window, false);
    const event = await lastEvent(plain.id);
    assert.equal(event.reason, 'operator');
    assert.equal(event.detail.action, 'send_now');
    assert.equal(new Date(event.detail.previousDueAt as string).getTime(), plain.due_at.getTime());

    const forced = await schedule('5581993330002');
    const run2 = await followups(['send-now', forced.id, '--ignore-window', '--json']);
    assert.equal(run2.code, 0, run2.stderr);
    assert.equal((await row(forced.id)).ignore_window, true);
    assert.equal((await lastEvent(forced.id)).detail.ignoreWindow, true);

    await testDb.db.query(`UPDATE follow_ups SET status = 'cancelled' WHERE id = $1::uuid`, [forced.id]);
    const refused = await followups(['send-now', forced.id, '--json']);
    assert.equal(refused.code, 1);
    assert.equal(refused.json.error.code, 'not_pending');

    const missing = await followups(['send-now', '00000000-0000-4000-8000-000000000000', '--json']);
    assert.equal(missing.code, 1);
    assert.equal(missing.json.error.code, 'not_found');
  });

  it("the worker's claim carries --ignore-window to the send policy, which then lets it out at night; without it, it waits for the opening", async () => {
    const policy = makeRespectfulPolicy({
      db: testDb.db,
      transport: makeDryRunTransport({ db: testDb.db, log: silent, clock: systemClock }),
      log: silent,
      limits: null,
      settings: {
        timeZone: 'America/Recife',
        window: { enabled: true, start: '08:00', end: '20:00', sundays: false, jitterMs: 0 },
        maxPerLeadPerWeek: 0,
        typingDelay: false,
        checkNumbers: false,
      },
    });
    const night = new Date('2026-03-03T05:00:00Z'); // 02:00 in Recife, a Tuesday
    const claimAfter = async (ignoreWindow: boolean) => {
      const f = await schedule(ignoreWindow ? '5581993330004' : '5581993330003');
      await sendFollowupNow({ db: testDb.db, clock: systemClock }, f.id, { ignoreWindow });
      await testDb.db.query('UPDATE follow_ups SET claimed_until = now() + interval \'1 minute\' WHERE id = $1::uuid', [f.id]); // the relay's claim
      const claimed = await claimForSending(testDb.db, { id: f.id, now: new Date(), leaseMs: 60_000 });
      assert.ok(claimed && claimed.status === 'sending');
      return { followup: claimed, lead: { id: claimed.lead_id, phone: claimed.phone, timeZone: claimed.lead_time_zone }, now: night };
    };
    const held = await policy.check(await claimAfter(false));
    assert.equal(held.ok, false);
    assert.equal(!held.ok && 'reason' in held ? held.reason : null, 'window');
    const forced = await claimAfter(true);
    assert.equal(forced.followup.ignore_window, true);
    assert.deepEqual(await policy.check(forced), { ok: true });
  });
});

describe('followups webhook setup', () => {
  it("points the instance's webhook at this service with the secret header and the events it acts on", async () => {
    evolution.presetWebhook({ url: 'https://old.example.com/hook', events: ['MESSAGES_UPDATE'] });
    const run = await followups(['webhook', 'setup', '--url', 'https://public.example.com/', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.json.url, 'https://public.example.com/webhooks/evolution');
    assert.equal(run.json.before.url, 'https://old.example.com/hook');
    const set = evolution.requests.find((r) => r.method === 'POST' && r.path === `/webhook/set/${evolution.instance}`);
    assert.deepEqual(set?.body, {
      webhook: {
        enabled: true,
        url: 'https://public.example.com/webhooks/evolution',
        headers: { 'x-webhook-secret': SECRET },
        byEvents: false,
        base64: false,
        events: ['MESSAGES_UPSERT', 'CONNECTION_UPDATE'],
      },
    });
    assert.equal(set?.headers.apikey, evolution.apiKey);
    assert.equal(evolution.webhook?.url, 'https://public.example.com/webhooks/evolution');
    assert.deepEqual(evolution.webhook?.headers, { 'x-webhook-secret': SECRET });
  });

  it('refuses without a webhook secret, or with a key Evolution refuses (exit 2): nothing is changed', async () => {
    const run = await followups(['webhook', 'setup', '--json'], { WEBHOOK_SECRET: undefined });
    assert.equal(run.code, 2);
    assert.equal(run.json.error.code, 'no_webhook_secret');
    const before = evolution.webhook;
    const refused = await followups(['webhook', 'setup', '--json'], { EVOLUTION_API_KEY: 'not-the-key' });
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.equal(refused.json.error.code, 'evolution_unauthorized');
    assert.match(refused.json.error.message, /EVOLUTION_API_KEY/);
    assert.deepEqual(evolution.webhook, before);
  });
});

describe('followups doctor', () => {
  let ownRedis: OwnRedis;
  before(async () => {
    ownRedis = await startOwnRedis();
  });
  after(async () => {
    await ownRedis?.stop();
  });

  it('passes every check when everything is right', async () => {
    evolution.presetWebhook({ url: `${PUBLIC_URL}/webhooks/evolution`, headers: { 'x-webhook-secret': SECRET }, events: ['MESSAGES_UPSERT', 'CONNECTION_UPDATE', 'SEND_MESSAGE'] });
    evolution.setConnectionState('open');
    const run = await followups(['doctor', '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const byName = new Map<string, any>(run.json.checks.map((c: any) => [c.name, c]));
    for (const name of ['postgres.reachable', 'postgres.migrations', 'postgres.pooler', 'postgres.notify', 'clock', 'redis.reachable', 'redis.eviction', 'redis.role', 'redis.cluster', 'evolution.connection', 'evolution.webhook', 'llm']) {
      assert.equal(byName.get(name)?.status, 'ok', `${name}: ${JSON.stringify(byName.get(name))}`);
    }
    assert.ok(llm.requests.some((r) => r.body.model === 'gpt-test'), 'one completion was asked of the LLM');
  });

  it('reports each failing check with its fix: webhook elsewhere, WhatsApp closed, an evicting Redis, a migration missing, a bad LLM key', async () => {
    evolution.presetWebhook({ url: 'https://someone-else.example.com/webhooks/evolution', headers: { 'x-webhook-secret': SECRET }, events: ['MESSAGES_UPSERT'] });
    evolution.setConnectionState('close');
    const probe = new (await import('ioredis')).Redis(ownRedis.url);
    await probe.config('SET', 'maxmemory-policy', 'allkeys-lru');
    probe.disconnect();
    const { rows: removed } = await testDb.db.query<{ version: number; name: string }>(
      'DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations) RETURNING version, name',
    );
    try {
      const run = await followups(['doctor', '--json'], { REDIS_URL: ownRedis.url, LLM_API_KEY: 'sk-wrong' });
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.equal(run.json.ok, false);
      const byName = new Map<string, any>(run.json.checks.map((c: any) => [c.name, c]));
      const webhook = byName.get('evolution.webhook');
      assert.equal(webhook.status, 'fail');
      assert.match(webhook.detail, /someone-else\.example\.com/);
      assert.match(webhook.detail, /CONNECTION_UPDATE/);
      assert.match(webhook.fix, /followups webhook setup --url https:\/\/followups\.example\.com/);
      assert.equal(byName.get('evolution.connection').status, 'fail');
      assert.match(byName.get('evolution.connection').detail, /close/);
      assert.match(byName.get('evolution.connection').fix, /QR code/);
      assert.equal(byName.get('redis.eviction').status, 'fail');
      assert.match(byName.get('redis.eviction').detail, /allkeys-lru/);
      assert.match(byName.get('redis.eviction').fix, /noeviction/);
      assert.equal(byName.get('postgres.migrations').status, 'fail');
      assert.match(byName.get('postgres.migrations').fix, /followups migrate/);
      assert.equal(byName.get('llm').status, 'fail');
      assert.match(byName.get('llm').fix, /LLM_API_KEY/);

      const human = await followups(['doctor'], { REDIS_URL: ownRedis.url, LLM_API_KEY: 'sk-wrong' });
      assert.equal(human.code, 1);
      assert.match(human.stdout, /FAIL\s+evolution\.webhook/);
      assert.match(human.stdout, /fix: run `followups webhook setup/);
    } finally {
      await testDb.db.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [removed[0]!.version, removed[0]!.name]);
    }
  });

  it('fails the role check on a replica (it refuses writes)', async () => {
    const replica = await startOwnRedis();
    try {
      const admin = new (await import('ioredis')).Redis(replica.url);
      await admin.call('REPLICAOF', '127.0.0.1', String(await freePort()));
      admin.disconnect();
      const run = await followups(['doctor', '--json'], { REDIS_URL: replica.url });
      const role = run.json.checks.find((c: any) => c.name === 'redis.role');
      assert.equal(role.status, 'fail', JSON.stringify(role));
      assert.match(role.detail, /slave|replica/);
      assert.match(role.fix, /primary/);
      assert.equal(run.code, 1);
    } finally {
      await replica.stop();
    }
  });

  it("names Redis's refusal when REDIS_URL has no password or the wrong one", async () => {
    const admin = new (await import('ioredis')).Redis(ownRedis.url);
    await admin.config('SET', 'requirepass', 'the-right-password');
    admin.disconnect();
    const run = await followups(['doctor', '--json'], { REDIS_URL: ownRedis.url });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const auth = run.json.checks.find((c: any) => c.name === 'redis.auth');
    assert.equal(auth.status, 'fail');
    assert.match(auth.detail, /NOAUTH/);
    assert.match(auth.fix, /REDIS_URL/);
  });

  it('exits 3 when a dependency does not answer (Evolution down)', async () => {
    const run = await followups(['doctor', '--json'], { EVOLUTION_API_URL: `http://127.0.0.1:${await freePort()}` });
    assert.equal(run.code, 3, run.stdout + run.stderr);
    const connection = run.json.checks.find((c: any) => c.name === 'evolution.connection');
    assert.equal(connection.status, 'fail');
    assert.equal(connection.unreachable, true);
  });
});
