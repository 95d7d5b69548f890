import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_CAMPAIGNS_DIR, loadCampaigns } from '../src/campaigns/load-campaigns.js';
import { makeFakeClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { type Context, createContext } from '../src/context.js';
import { claimDueFollowups, deferFollowup, markQueued } from '../src/followups/transitions.js';
import { buildApp } from '../src/http/build-app.js';
import { createLogger } from '../src/log.js';
import { executorDeps } from '../src/roles.js';
import { executeFollowup } from '../src/worker/execute-followup.js';
import { makeBasicPolicy } from '../src/policy/send-policy.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const TOKEN = 'test-token-123-abcdefghijkl';
const auth = { authorization: `Bearer ${TOKEN}` };
const START = '2026-01-05T12:00:00.000Z';
const HOUR = 3_600_000;
const silent = createLogger({ level: 'silent' });

let testDb: TestDatabase;
let ctx: Context;
let app: FastifyInstance;
const clock = makeFakeClock(START);

before(async () => {
  testDb = await createTestDatabase();
  ctx = await createContext(loadConfig({ DATABASE_URL: testDb.url, FOLLOWUPS_API_TOKEN: TOKEN, ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789', TYPING_DELAY_ENABLED: 'false' }), silent, {
    db: testDb.db,
    queue: null,
    skipMigrations: true,
    clock,
    // The sending window and caps are another feature's; here time only moves when we say.
    policy: makeBasicPolicy({ typingDelay: false }),
  });
  app = await buildApp(ctx);
});

after(async () => {
  await app?.close();
  await ctx?.close();
  await testDb?.drop();
});

let phoneSeq = 0;
function newPhone() {
  phoneSeq += 1;
  return `55819${String(60_000_000 + phoneSeq).padStart(8, '0')}`;
}
function post(url: string, payload?: unknown) {
  return app.inject({ method: 'POST', url, headers: auth, payload: payload as object });
}
function get(url: string) {
  return app.inject({ method: 'GET', url, headers: auth });
}
const at = (iso: string, plusHours = 0) => new Date(new Date(iso).getTime() + plusHours * HOUR).toISOString();

/** What the relay and worker would do at the fake clock's current time: send everything due. */
async function runDue(): Promise<number> {
  const { claimed } = await claimDueFollowups(ctx.db, { now: clock.now(), limit: 1000, claimMs: 60_000 });
  await markQueued(ctx.db, claimed.map((c) => c.id), clock.now(), 60_000);
  const deps = executorDeps(ctx, 'test');
  for (const c of claimed) await executeFollowup(deps, c.id);
  return claimed.length;
}

describe('campaign definitions', () => {
  it('ships nautico: 3 steps at 4 h, 24 h and 48 h, at least 4 variants each, Marina by default', () => {
    const nautico = ctx.campaigns.get('nautico')!;
    assert.deepEqual(
      nautico.steps.map((s) => [s.step, s.delayHours, s.intent]),
      [
        [1, 4, 'check_in'],
        [2, 24, 'nudge'],
        [3, 48, 'last_call'],
      ],
    );
    for (const step of nautico.steps) assert.ok(step.variants.length >= 4, `step ${step.step} has ${step.variants.length} variants`);
    assert.equal(nautico.persona.name, 'Marina Campelo');
    assert.match(readFileSync(join(DEFAULT_CAMPAIGNS_DIR, 'nautico.json'), 'utf8'), /EXAMPLE DATA/, 'the facts are marked as example data');
  });

  it('takes the persona name from PERSONA_NAME (the club has renamed her before)', () => {
    const campaigns = loadCampaigns(DEFAULT_CAMPAIGNS_DIR, { personaName: 'Joana Aflitos', maxChars: 300 });
    assert.equal(campaigns.get('nautico')!.persona.name, 'Joana Aflitos');
  });

  it('refuses broken files at start-up, naming every file and field at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'campaigns-'));
    try {
      const good = JSON.parse(readFileSync(join(DEFAULT_CAMPAIGNS_DIR, 'nautico.json'), 'utf8'));
      const bad = structuredClone(good);
      bad.name = 'broken';
      bad.steps[1].delayHours = -3;
      bad.steps[0].variants[2].withName = 'Opa! Sem nome aqui.';
      bad.steps[2].variants[0].withoutName = 'Oi, {nome}! Por apenas R$ 9,90 em https://example.com';
      bad.facts.colour = 'alvirrubro';
      bad.steps[0].intent = 'opt_out_confirmation';
      writeFileSync(join(dir, 'broken.json'), JSON.stringify(bad));
      writeFileSync(join(dir, 'typo.json'), '{ "name": "typo", ');
      const misnamed = structuredClone(good);
      writeFileSync(join(dir, 'other.json'), JSON.stringify(misnamed));

      const error = (() => {
        try {
          loadCampaigns(dir, { personaName: 'Marina Campelo', maxChars: 300 });
        } catch (e) {
          return e as Error & { problems: string[] };
        }
        assert.fail('loadCampaigns accepted broken files');
      })();
      const problems = error.problems.join('\n');
      assert.match(problems, /broken\.json: steps\.1\.delayHours: must be more than 0/);
      assert.match(problems, /broken\.json: facts\.colour: unknown field/);
      assert.match(problems, /broken\.json: steps\.0\.intent: opt_out_confirmation is reserved/);
      assert.match(problems, /typo\.json: is not valid JSON/);
      assert.match(problems, /other\.json: name: must be "other", as the file is named/);
      // Semantic checks run only once a file is well formed, so the schema errors above come first;
      // fix them and the template problems are reported, again all at once.
      bad.steps[1].delayHours = 24;
      bad.steps[0].intent = 'check_in';
      delete bad.facts.colour;
      writeFileSync(join(dir, 'broken.json'), JSON.stringify(bad));
      rmSync(join(dir, 'typo.json'));
      rmSync(join(dir, 'other.json'));
      const again = (() => {
        try {
          loadCampaigns(dir, { personaName: 'Marina Campelo', maxChars: 300 });
        } catch (e) {
          return (e as { problems: string[] }).problems.join('\n');
        }
        assert.fail('accepted');
      })();
      assert.match(again, /broken\.json: steps\.0\.variants\.2\.withName: must contain \{firstName\}/);
      assert.match(again, /broken\.json: steps\.2\.variants\.0\.withoutName: unknown slot \{nome\}/);
      assert.match(again, /broken\.json: steps\.2\.variants\.0\.withoutName: has a link the facts don't contain \(example\.com\)/);

      // CAMPAIGNS_DIR points start-up at the folder; a broken one fails it with the file named.
      await assert.rejects(
        createContext(loadConfig({ CAMPAIGNS_DIR: dir, DATABASE_URL: testDb.url, FOLLOWUPS_API_TOKEN: TOKEN, ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789' }), silent, { db: testDb.db, queue: null, skipMigrations: true }),
        /Invalid campaign definitions:[\s\S]*broken\.json: steps\.0\.variants\.2\.withName/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('POST /v1/enrollments', () => {
  it('plans the steps at anchor +4 h, +24 h and +48 h', async () => {
    const anchorAt = at(START, -1);
    const res = await post('/v1/enrollments', { phone: newPhone(), campaign: 'nautico', lead: { name: 'Ana Souza' }, anchorAt });
    assert.equal(res.statusCode, 201);
    const body = res.json();
    assert.equal(body.campaign, 'nautico');
    assert.equal(body.status, 'active');
    assert.deepEqual(
      body.followups.map((f: { step: number; intent: string; dueAt: string }) => [f.step, f.intent, f.dueAt]),
      [
        [1, 'check_in', at(anchorAt, 4)],
        [2, 'nudge', at(anchorAt, 24)],
        [3, 'last_call', at(anchorAt, 48)],
      ],
    );
    const { rows } = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM follow_ups WHERE enrollment_id = $1', [body.id]);
    assert.equal(rows[0]!.n, 3, 'nothing after step 3');
  });

  it('anchors at now when anchorAt is absent', async () => {
    const res = await post('/v1/enrollments', { phone: newPhone(), campaign: 'nautico' });
    assert.equal(res.statusCode, 201);
    assert.equal(res.json().followups[0].dueAt, at(START, 4));
  });

  it('slides an overdue sequence so step 1 goes now and the others keep their spacing', async () => {
    const anchorAt = at(START, -30); // step 1 was due 26 h ago, step 2 6 h ago, step 3 in 18 h
    const res = await post('/v1/enrollments', { phone: newPhone(), campaign: 'nautico', anchorAt });
    const body = res.json();
    assert.deepEqual(
      body.followups.map((f: { dueAt: string }) => f.dueAt),
      [START, at(START, 20), at(START, 44)],
    );
    assert.equal(body.shiftMs, 26 * HOUR);
    for (const [i, f] of body.followups.entries()) {
      assert.ok(new Date(f.dueAt) >= new Date(at(anchorAt, [4, 24, 48][i]!)), 'never earlier than anchor + delay');
    }
  });

  it('answers a repeated enrollment with the active one (200), never a second sequence', async () => {
    const phone = newPhone();
    const first = await post('/v1/enrollments', { phone, campaign: 'nautico', lead: { name: 'Biu' } });
    assert.equal(first.statusCode, 201);
    // The same lead in another spelling (no 9th digit), another anchor: still the same enrollment.
    const again = await post('/v1/enrollments', { phone: `55${phone.slice(2, 4)}${phone.slice(5)}`, campaign: 'nautico', anchorAt: at(START, -2) });
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().id, first.json().id);
    assert.deepEqual(again.json().followups, first.json().followups);
    const { rows } = await testDb.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM enrollments e JOIN leads l ON l.id = e.lead_id WHERE l.phone = $1',
      [phone],
    );
    assert.equal(rows[0]!.n, 1);
  });

  it('makes one enrollment when ten requests for the same lead race', async () => {
    const phone = newPhone();
    const answers = await Promise.all(Array.from({ length: 10 }, () => post('/v1/enrollments', { phone, campaign: 'nautico' })));
    assert.deepEqual(answers.map((a) => a.statusCode).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    assert.equal(new Set(answers.map((a) => a.json().id)).size, 1);
    const { rows } = await testDb.db.query<{ enrollments: number; followups: number }>(
      `SELECT (SELECT count(*) FROM enrollments e WHERE e.lead_id = l.id)::int AS enrollments,
              (SELECT count(*) FROM follow_ups f WHERE f.lead_id = l.id)::int AS followups
         FROM leads l WHERE l.phone = $1`,
      [phone],
    );
    assert.deepEqual(rows[0], { enrollments: 1, followups: 3 });
  });

  it('refuses opted-out, erased and not-on-WhatsApp leads with 409', async () => {
    const cases: Array<[string, string]> = [
      ['opted_out_at = now()', 'lead_opted_out'],
      ['erased_at = now()', 'lead_erased'],
      ['number_valid = false', 'lead_invalid_number'],
    ];
    for (const [set, code] of cases) {
      const phone = newPhone();
      await testDb.db.query(`INSERT INTO leads (phone) VALUES ($1)`, [phone]);
      await testDb.db.query(`UPDATE leads SET ${set} WHERE phone = $1`, [phone]);
      const res = await post('/v1/enrollments', { phone, campaign: 'nautico' });
      assert.equal(res.statusCode, 409, code);
      assert.equal(res.json().error.code, code);
    }
  });

  it('says which field is wrong', async () => {
    const unknown = await post('/v1/enrollments', { phone: newPhone(), campaign: 'flamengo' });
    assert.equal(unknown.statusCode, 400);
    assert.match(unknown.json().error.message, /campaign: unknown campaign "flamengo" \(known: nautico\)/);
    const future = await post('/v1/enrollments', { phone: newPhone(), campaign: 'nautico', anchorAt: at(START, 2) });
    assert.equal(future.statusCode, 400);
    assert.match(future.json().error.message, /anchorAt: is in the future/);
    const phone = await post('/v1/enrollments', { phone: '123', campaign: 'nautico' });
    assert.equal(phone.statusCode, 400);
    assert.equal(phone.json().error.details[0].field, 'phone');
  });
});

describe('the sequence over time', () => {
  it('moves steps 2 and 3 by 10 h when step 1 is deferred by 10 h', async () => {
    const anchorAt = START;
    const res = await post('/v1/enrollments', { phone: newPhone(), campaign: 'nautico', anchorAt });
    const [step1, step2, step3] = res.json().followups;
    const moved = await deferFollowup(ctx.db, {
      id: step1.id,
      from: ['pending'],
      now: clock.now(),
      dueAt: new Date(at(anchorAt, 14)),
      reason: 'outside_window',
    });
    assert.ok(moved);
    const { rows } = await testDb.db.query<{ step: number; due_at: Date; planned_at: Date }>(
      'SELECT step, due_at, planned_at FROM follow_ups WHERE enrollment_id = $1 ORDER BY step',
      [res.json().id],
    );
    assert.deepEqual(
      rows.map((r) => [r.step, r.due_at.toISOString()]),
      [
        [1, at(anchorAt, 14)],
        [2, at(anchorAt, 34)],
        [3, at(anchorAt, 58)],
      ],
    );
    for (const r of rows) assert.ok(r.due_at >= r.planned_at, 'never earlier than planned');
    const enrollment = await testDb.db.query<{ shift_ms: number }>('SELECT shift_ms FROM enrollments WHERE id = $1', [res.json().id]);
    assert.equal(Number(enrollment.rows[0]!.shift_ms), 10 * HOUR);
    assert.ok(step2 && step3);
  });

  it('sends the three steps at their times, then completes the enrollment and sends nothing more', async () => {
    clock.set(START);
    const phone = newPhone();
    const res = await post('/v1/enrollments', { phone, campaign: 'nautico', lead: { name: 'Carla' }, anchorAt: START });
    const id = res.json().id;
    // Only this lead's follow-ups are due in this window (earlier tests used other anchors).
    await testDb.db.query(`UPDATE follow_ups SET status = 'cancelled', cancel_reason = 'test' WHERE enrollment_id <> $1 AND status = 'pending'`, [id]);

    const sentAt: string[] = [];
    for (const hours of [3, 4, 23, 24, 47, 48, 96, 24 * 30]) {
      clock.set(at(START, hours));
      const n = await runDue();
      for (let i = 0; i < n; i++) sentAt.push(at(START, hours));
    }
    assert.deepEqual(sentAt, [at(START, 4), at(START, 24), at(START, 48)], 'each step at its time, none before, nothing after step 3');
    const { rows } = await testDb.db.query<{ status: string; stop_reason: string | null }>('SELECT status, stop_reason FROM enrollments WHERE id = $1', [id]);
    assert.deepEqual(rows[0], { status: 'completed', stop_reason: null });
    const texts = await testDb.db.query<{ text: string }>(
      `SELECT m.text FROM messages m JOIN leads l ON l.id = m.lead_id WHERE l.phone = $1 ORDER BY m.at`,
      [phone],
    );
    assert.equal(texts.rows.length, 3);
    assert.equal(new Set(texts.rows.map((r) => r.text)).size, 3);
    for (const { text } of texts.rows) assert.match(text, /Carla/);
    const composers = await testDb.db.query<{ composer: string }>('SELECT DISTINCT composer FROM follow_ups WHERE enrollment_id = $1', [id]);
    assert.deepEqual(composers.rows, [{ composer: 'template' }]);
    clock.set(START);
  });
});

describe('POST /v1/enrollments/bulk', () => {
  it('enrolls the good rows and lists the others with their index and reason', async () => {
    const [a, b, c, opted] = [newPhone(), newPhone(), newPhone(), newPhone()];
    await testDb.db.query(`INSERT INTO leads (phone, opted_out_at) VALUES ($1, now())`, [opted]);
    await post('/v1/enrollments', { phone: c, campaign: 'nautico' });
    const res = await post('/v1/enrollments/bulk', {
      campaign: 'nautico',
      leads: [
        { phone: a, name: 'Ana' },
        { phone: 'not a phone' },
        { phone: b, anchorAt: at(START, -50) },
        { phone: c },
        { phone: a },
        { phone: opted },
        { phone: newPhone(), anchorAt: 'yesterday' },
      ],
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), {
      enrolled: 2,
      alreadyActive: 1,
      rejected: [
        { index: 1, phone: 'not a phone', reason: 'bad_phone' },
        { index: 4, phone: a, reason: 'duplicate' },
        { index: 5, phone: opted, reason: 'opted_out' },
        { index: 6, phone: res.json().rejected[3].phone, reason: 'bad_anchor' },
      ],
    });
  });

  it('refuses more than 10,000 leads in one request', async () => {
    const leads = Array.from({ length: 10_001 }, (_, i) => ({ phone: `55819${String(10_000_000 + i)}` }));
    const res = await post('/v1/enrollments/bulk', { campaign: 'nautico', leads });
    assert.equal(res.statusCode, 400);
    assert.match(res.json().error.message, /leads: must hold at most 10000 leads/);
  });

  it('enrolls each lead once when overlapping batches race', async () => {
    const phones = Array.from({ length: 300 }, () => newPhone());
    const batches = [phones.slice(0, 200), phones.slice(100, 300), phones.slice(50, 250)];
    const results = await Promise.all(batches.map((batch) => post('/v1/enrollments/bulk', { campaign: 'nautico', leads: batch.map((phone) => ({ phone })) })));
    const enrolled = results.reduce((sum, r) => sum + r.json().enrolled, 0);
    const already = results.reduce((sum, r) => sum + r.json().alreadyActive, 0);
    assert.equal(enrolled, 300);
    assert.equal(already, 300);
    const { rows } = await testDb.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE l.phone = ANY($1::text[])`,
      [phones],
    );
    assert.equal(rows[0]!.n, 900);
  });
});

describe('the conversation log', () => {
  it('records an inbound message, stops the sequence (lead_replied) and shows it all on the timeline', async () => {
    clock.set(START);
    const phone = newPhone();
    const enrolled = (await post('/v1/enrollments', { phone, campaign: 'nautico', lead: { name: 'Dani' }, anchorAt: START })).json();
    const out = await post(`/v1/leads/${phone}/messages`, { direction: 'out', text: 'Oi Dani, aqui é a Marina!', at: at(START, -1) });
    assert.equal(out.statusCode, 201);
    assert.equal(out.json().direction, 'out');

    clock.set(at(START, 2));
    const reply = await post(`/v1/leads/${phone}/messages`, { direction: 'in', text: 'Quanto custa?', providerMessageId: 'WAMSG-1' });
    assert.equal(reply.statusCode, 201);
    const recorded = reply.json() as { messageId: string };
    assert.match(recorded.messageId, /^[0-9a-f-]{36}$/);
    assert.deepEqual({ ...recorded, messageId: 'm' }, { leadId: enrolled.leadId, messageId: 'm', direction: 'in', duplicate: false, cancelled: 3 });

    const again = await post(`/v1/leads/${phone}/messages`, { direction: 'in', text: 'Quanto custa?', providerMessageId: 'WAMSG-1' });
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().duplicate, true);
    assert.equal(again.json().cancelled, 0);

    const timeline = await get(`/v1/leads/${phone}`);
    assert.equal(timeline.statusCode, 200);
    const body = timeline.json();
    assert.equal(body.lead.phone, phone);
    assert.equal(body.lead.lastInboundAt, at(START, 2));
    assert.deepEqual(body.enrollments.map((e: { status: string; stopReason: string }) => [e.status, e.stopReason]), [['stopped', 'lead_replied']]);
    assert.deepEqual(body.followups.map((f: { status: string; cancelReason: string }) => [f.status, f.cancelReason]), [
      ['cancelled', 'lead_replied'],
      ['cancelled', 'lead_replied'],
      ['cancelled', 'lead_replied'],
    ]);
    const times = body.timeline.map((i: { at: string }) => i.at);
    assert.deepEqual(times, [...times].sort(), 'in time order');
    assert.deepEqual(
      body.timeline.map((i: { type: string; reason?: string; text?: string; step?: number }) => (i.type === 'message' ? `msg:${i.text}` : `${i.reason}:${i.step}`)),
      ['msg:Oi Dani, aqui é a Marina!', 'enrolled:1', 'enrolled:2', 'enrolled:3', 'msg:Quanto custa?', 'lead_replied:1', 'lead_replied:2', 'lead_replied:3'],
    );
    clock.set(START);
  });

  it('leaves a follow-up planned after the message alone (a message recorded late)', async () => {
    clock.set(START);
    const phone = newPhone();
    await post('/v1/enrollments', { phone, campaign: 'nautico' });
    const late = await post(`/v1/leads/${phone}/messages`, { direction: 'in', text: 'vou pensar', at: at(START, -3) });
    assert.equal(late.json().cancelled, 0);
  });

  it('stops an enrollment whose last step is already in flight when the lead replies', async () => {
    clock.set(START);
    const phone = newPhone();
    const enrolled = (await post('/v1/enrollments', { phone, campaign: 'nautico' })).json();
    // Test set-up shortcut: steps 1 and 2 went out, step 3 is being sent right now.
    await testDb.db.query(`UPDATE follow_ups SET status = CASE WHEN step < 3 THEN 'executed' ELSE 'sending' END WHERE enrollment_id = $1`, [enrolled.id]);
    clock.set(at(START, 49));
    const reply = await post(`/v1/leads/${phone}/messages`, { direction: 'in', text: 'Opa, vou me associar!' });
    assert.equal(reply.json().cancelled, 0, 'nothing left to cancel');
    const { rows } = await testDb.db.query<{ status: string; stop_reason: string }>('SELECT status, stop_reason FROM enrollments WHERE id = $1', [enrolled.id]);
    assert.deepEqual(rows[0], { status: 'stopped', stop_reason: 'lead_replied' });
    clock.set(START);
  });

  it('refuses an inbound message from anyone but the lead, and a lead it does not know', async () => {
    const phone = newPhone();
    const wrong = await post(`/v1/leads/${phone}/messages`, { direction: 'in', source: 'agent', text: 'oi' });
    assert.equal(wrong.statusCode, 400);
    assert.match(wrong.json().error.message, /source:/);
    const missing = await get(`/v1/leads/${newPhone()}`);
    assert.equal(missing.statusCode, 404);
    const bad = await get('/v1/leads/12');
    assert.equal(bad.statusCode, 400);
  });
});
