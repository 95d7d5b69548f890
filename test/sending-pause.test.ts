/**
 * The operator's pause (README "Dashboard"): POST /v1/sending/pause|resume validate their input (errors
 * name the field), the pause lives in PostgreSQL and holds a sending process started separately
 * (a `followups start` child process) — due follow-ups are deferred `operator_paused`, never
 * dropped — it shows in that process's /health/ready and /metrics, and after the resume they go
 * out. A campaign's pause holds that campaign only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { spawnFollowups, type FollowupsProcess } from './helpers/followups-processes.js';
import { insertDueFollowups, type RoleHandle, startRole, TEST_TOKEN, waitFor } from './helpers/pipeline.js';

const auth = { authorization: `Bearer ${TEST_TOKEN}` };
const ERASURE_KEY = 'test-erasure-key-0123456789abcdef-0123456789';

describe('operator pause', () => {
  let testDb: TestDatabase;
  let api: RoleHandle;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    api = await startRole({ roles: ['api'], databaseUrl: testDb.url });
  });
  after(async () => {
    await api.stop();
    await testDb.drop();
  });

  const post = (url: string, payload: unknown) => api.running.app!.inject({ method: 'POST', url, headers: auth, payload: payload as object });

  test('bad input is refused with the field named, and nothing is written', async () => {
    const cases: Array<[unknown, string]> = [
      [{}, 'reason'],
      [{ reason: '   ' }, 'reason'],
      [{ reason: 'x', scope: 'everything' }, 'scope'],
      [{ reason: 'x', scope: 'campaign' }, 'campaign'],
      [{ reason: 'x', scope: 'campaign', campaign: 'no-such-campaign' }, 'campaign'],
      [{ reason: 'x', campaign: 'nautico' }, 'campaign'],
      [{ reason: 'x', scope: 'number' }, 'scope'],
      [{ reason: 'x', colour: 'red' }, 'colour'],
    ];
    for (const [payload, field] of cases) {
      const res = await post('/v1/sending/pause', payload);
      assert.equal(res.statusCode, 400, `${JSON.stringify(payload)} → ${res.body}`);
      const body = res.json() as { error: { code: string; message: string; details?: Array<{ field: string }> } };
      assert.equal(body.error.code, 'validation_error');
      assert.match(body.error.message, new RegExp(`^${field}: `), body.error.message);
    }
    const resume = await post('/v1/sending/resume', { scope: 'campaign' });
    assert.equal(resume.statusCode, 400);
    assert.match(resume.json().error.message, /^campaign: /);
    const { rows } = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM sending_pauses');
    assert.equal(rows[0]!.n, 0);
    const notPaused = await post('/v1/sending/resume', {});
    assert.equal(notPaused.statusCode, 409);
    assert.equal(notPaused.json().error.code, 'not_paused');
    const unauthenticated = await api.running.app!.inject({ method: 'POST', url: '/v1/sending/pause', payload: { reason: 'x' } });
    assert.equal(unauthenticated.statusCode, 401);
  });

  test('a pause holds a separate sending process (deferred operator_paused), shows in its /health/ready and /metrics; resume sends them', async () => {
    const paused = await post('/v1/sending/pause', { reason: 'revisão do texto', who: 'ana' });
    assert.equal(paused.statusCode, 201, paused.body);
    assert.equal(paused.json().pause.scope, 'all');
    const again = await post('/v1/sending/pause', { reason: 'outra vez' });
    assert.equal(again.statusCode, 200, 'pausing again answers the existing pause');
    assert.equal(again.json().pause.reason, 'revisão do texto');

    // A process started after the pause (as after a restart) reads it from the database.
    const sender: FollowupsProcess = await spawnFollowups('start', {
      DATABASE_URL: testDb.url,
      FOLLOWUPS_API_TOKEN: TEST_TOKEN,
      ERASURE_KEY,
      MIGRATE_ON_START: 'false',
      PAUSE_RETRY_SECONDS: '1',
      RELAY_MAX_SLEEP_MS: '200',
      SENDING_WINDOW_ENABLED: 'false',
      SEND_RATE_PER_MINUTE: '0',
      SEND_DAILY_CAP: '0',
      MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: '0',
      TYPING_DELAY_ENABLED: 'false',
      LOG_LEVEL: 'warn',
    });
    try {
      await waitFor('child process up', async () => (await fetch(`${sender.base}/health/live`).catch(() => null))?.ok, { timeoutMs: 60_000, intervalMs: 200 }).catch(
        (error: Error) => {
          throw new Error(`${error.message}\n${sender.output().slice(-2_000)}`);
        },
      );
      const ids = await insertDueFollowups(testDb.db, { count: 3, phonePrefix: '55811' });
      await waitFor(
        'all three held with operator_paused',
        async () => {
          const { rows } = await testDb.db.query<{ n: number }>(
            `SELECT count(DISTINCT follow_up_id)::int AS n FROM follow_up_events WHERE follow_up_id = ANY($1::uuid[]) AND reason = 'operator_paused'`,
            [ids],
          );
          return rows[0]!.n === 3;
        },
        { timeoutMs: 60_000 },
      );
      const held = await testDb.db.query<{ status: string; defer_reason: string | null }>('SELECT status, defer_reason FROM follow_ups WHERE id = ANY($1::uuid[])', [ids]);
      for (const row of held.rows) assert.notEqual(row.status, 'executed');
      const sent = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM dry_run_messages');
      assert.equal(sent.rows[0]!.n, 0, 'nothing went out while paused');

      const ready = (await (await fetch(`${sender.base}/health/ready`, { headers: auth })).json()) as {
        status: string;
        checks: { sending: { status: string; reason: string; detail: string; by: string; operatorPauses: unknown[] } };
      };
      assert.equal(ready.status, 'degraded');
      assert.equal(ready.checks.sending.status, 'paused');
      assert.equal(ready.checks.sending.reason, 'operator_paused');
      assert.equal(ready.checks.sending.detail, 'revisão do texto');
      assert.equal(ready.checks.sending.by, 'ana');
      assert.equal(ready.checks.sending.operatorPauses.length, 1);
      const metrics = await (await fetch(`${sender.base}/metrics`)).text();
      assert.match(metrics, /followups_sending_paused\{scope="all",campaign="",reason="operator_paused"\} 1/);

      const resumed = await post('/v1/sending/resume', { reason: 'texto ok', who: 'ana' });
      assert.equal(resumed.statusCode, 200, resumed.body);
      assert.equal(resumed.json().pause.resumeReason, 'texto ok');
      await waitFor(
        'all three sent after the resume',
        async () => {
          const { rows } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status = 'executed'`, [ids]);
          return rows[0]!.n === 3;
        },
        { timeoutMs: 60_000 },
      );
      const record = (await (await api.running.app!.inject({ method: 'GET', url: '/v1/sending/pauses', headers: auth })).json()) as {
        active: unknown[];
        recent: Array<{ reason: string; who: string; at: string; resumedAt: string; resumedBy: string }>;
      };
      assert.equal(record.active.length, 0);
      assert.equal(record.recent[0]!.who, 'ana');
      assert.ok(record.recent[0]!.resumedAt && record.recent[0]!.at);
      const readyAfter = (await (await fetch(`${sender.base}/health/ready`, { headers: auth })).json()) as { checks: { sending: { status: string } } };
      assert.equal(readyAfter.checks.sending.status, 'active');
    } finally {
      await sender.stop();
    }
  });

  test("a campaign's pause holds that campaign's follow-ups only", async () => {
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url });
    try {
      const paused = await post('/v1/sending/pause', { scope: 'campaign', campaign: 'nautico', reason: 'preço mudou' });
      assert.equal(paused.statusCode, 201, paused.body);
      await waitFor('the relay sees the pause', async () => (await relay.ctx.gate.operatorPauses()).some((p) => p.campaign === 'nautico'));
      const [inCampaign] = await insertDueFollowups(testDb.db, { count: 1, phonePrefix: '55812' });
      await testDb.db.query(`UPDATE follow_ups SET campaign = 'nautico', step = 1 WHERE id = $1::uuid`, [inCampaign]);
      const [other] = await insertDueFollowups(testDb.db, { count: 1, phonePrefix: '55813' });
      await waitFor('the other one sent', async () => {
        const { rows } = await testDb.db.query<{ status: string }>('SELECT status FROM follow_ups WHERE id = $1::uuid', [other]);
        return rows[0]!.status === 'executed';
      });
      await waitFor('the campaign one held', async () => {
        const { rows } = await testDb.db.query<{ status: string; defer_reason: string }>('SELECT status, defer_reason FROM follow_ups WHERE id = $1::uuid', [inCampaign]);
        return rows[0]!.defer_reason === 'operator_paused' && rows[0]!.status !== 'executed';
      });
      const resumed = await post('/v1/sending/resume', { scope: 'campaign', campaign: 'nautico' });
      assert.equal(resumed.statusCode, 200, resumed.body);
      await waitFor('the campaign one sent after the resume', async () => {
        const { rows } = await testDb.db.query<{ status: string }>('SELECT status FROM follow_ups WHERE id = $1::uuid', [inCampaign]);
        return rows[0]!.status === 'executed';
      });
    } finally {
      await relay.stop();
    }
  });
});
