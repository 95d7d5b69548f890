import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { makeFakeClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { type Context, createContext } from '../src/context.js';
import { createLogger } from '../src/log.js';
import { leadTimeZone } from '../src/policy/lead-time-zone.js';
import { makeSendLimits } from '../src/policy/send-limits.js';
import { makeSendingWindow } from '../src/policy/sending-window.js';
import { instantOf, wallTimeIn } from '../src/time/zoned-time.js';
import { executorDeps } from '../src/roles.js';
import { executeFollowup } from '../src/worker/execute-followup.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import type { Campaign } from '../src/campaigns/campaign.js';
import { leadWithFollowups, makeRecordingTransport, type RecordingTransport, testCampaign } from './helpers/webhook-app.js';

const RECIFE = '5581991234567';
const MANAUS = '5592991234567';
const RIO_BRANCO = '5568991234567';
const MONDAY_0830_RECIFE = '2026-01-05T11:30:00.000Z'; // 07:30 in Manaus, 06:30 in Rio Branco
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('which clock a lead lives by', () => {
  test('the area code picks the zone; an explicit zone wins; anything else gets the business zone', () => {
    assert.equal(leadTimeZone({ phone: RECIFE, timeZone: null }, 'America/Sao_Paulo'), 'America/Recife');
    assert.equal(leadTimeZone({ phone: MANAUS, timeZone: null }, 'America/Recife'), 'America/Manaus');
    assert.equal(leadTimeZone({ phone: RIO_BRANCO, timeZone: null }, 'America/Recife'), 'America/Rio_Branco');
    assert.equal(leadTimeZone({ phone: '5511991234567', timeZone: null }, 'America/Recife'), 'America/Sao_Paulo');
    assert.equal(leadTimeZone({ phone: '5565991234567', timeZone: null }, 'America/Recife'), 'America/Cuiaba');
    assert.equal(leadTimeZone({ phone: RECIFE, timeZone: 'America/Noronha' }, 'America/Recife'), 'America/Noronha');
    assert.equal(leadTimeZone({ phone: RECIFE, timeZone: 'Not/AZone' }, 'America/Fortaleza'), 'America/Recife');
    assert.equal(leadTimeZone({ phone: '14155550123', timeZone: null }, 'America/Recife'), 'America/Recife');
  });
});

describe('the sending window, on the lead’s own clock', () => {
  const settings = { enabled: true, start: '08:00', end: '20:00', sundays: false, jitterMs: 45 * 60_000 };
  const window = makeSendingWindow(settings, () => 0);

  test('at 08:30 in Recife, Recife is open, Manaus opens at 12:00 UTC and Rio Branco at 13:00 UTC', () => {
    const at = new Date(MONDAY_0830_RECIFE);
    assert.equal(window.isOpen(at, 'America/Recife'), true);
    assert.equal(window.isOpen(at, 'America/Manaus'), false);
    assert.equal(window.nextOpening(at, 'America/Manaus').toISOString(), '2026-01-05T12:00:00.000Z');
    assert.equal(window.nextOpening(at, 'America/Rio_Branco').toISOString(), '2026-01-05T13:00:00.000Z');
  });

  test('after 20:00 it waits for the next morning; Saturday night waits for Monday unless Sundays are on', () => {
    assert.equal(window.nextOpening(new Date('2026-01-05T23:00:00.000Z'), 'America/Recife').toISOString(), '2026-01-06T11:00:00.000Z');
    const saturdayNight = new Date('2026-01-10T23:30:00.000Z'); // 20:30 Saturday in Recife
    assert.equal(window.nextOpening(saturdayNight, 'America/Recife').toISOString(), '2026-01-12T11:00:00.000Z');
    const sundays = makeSendingWindow({ ...settings, sundays: true }, () => 0);
    assert.equal(sundays.nextOpening(saturdayNight, 'America/Recife').toISOString(), '2026-01-11T11:00:00.000Z');
    assert.equal(window.isOpen(new Date('2026-01-11T14:00:00.000Z'), 'America/Recife'), false, 'Sunday 11:00 is closed');
    assert.equal(sundays.isOpen(new Date('2026-01-11T14:00:00.000Z'), 'America/Recife'), true);
  });

  test('the boundaries: 08:00 is open, 19:59 open, 20:00 closed', () => {
    assert.equal(window.isOpen(new Date('2026-01-05T11:00:00.000Z'), 'America/Recife'), true);
    assert.equal(window.isOpen(new Date('2026-01-05T22:59:59.000Z'), 'America/Recife'), true);
    assert.equal(window.isOpen(new Date('2026-01-05T23:00:00.000Z'), 'America/Recife'), false);
    assert.equal(window.isOpen(new Date('2026-01-05T10:59:59.000Z'), 'America/Recife'), false);
  });

  test('what the night held back is spread over the first 45 minutes, not burst at 08:00', () => {
    const spread = makeSendingWindow(settings);
    const opening = new Date('2026-01-06T11:00:00.000Z').getTime();
    const offsets = Array.from({ length: 2_000 }, () => spread.allowedAt(new Date('2026-01-06T02:00:00.000Z'), 'America/Recife').getTime() - opening);
    assert.ok(offsets.every((o) => o >= 0 && o < 45 * 60_000), 'within the first 45 minutes');
    const perMinute = new Array(45).fill(0);
    for (const o of offsets) perMinute[Math.floor(o / 60_000)] += 1;
    assert.ok(Math.max(...perMinute) < 2_000 * 0.06, `no minute takes more than ~2.5× its share: ${Math.max(...perMinute)}`);
    assert.ok(perMinute.every((n) => n > 0), 'every minute gets some');
  });

  test('a zone that still has daylight saving works too', () => {
    const w = makeSendingWindow(settings, () => 0);
    // New York in July is UTC−4: 08:00 there is 12:00 UTC.
    assert.equal(w.nextOpening(new Date('2026-07-06T05:00:00.000Z'), 'America/New_York').toISOString(), '2026-07-06T12:00:00.000Z');
  });

  test('one wall-clock-to-instant function: rollover, and across a DST change a skipped time maps past the jump, a repeated one to the earlier instant', () => {
    const at = (wall: Parameters<typeof instantOf>[0], zone: string) => instantOf(wall, zone).toISOString();
    assert.equal(at({ year: 2026, month: 1, day: 5, hour: 14, minute: 30 }, 'America/Recife'), '2026-01-05T17:30:00.000Z');
    assert.equal(at({ year: 2026, month: 1, day: 31, hour: 24 }, 'America/Recife'), '2026-02-01T03:00:00.000Z');
    // Berlin, 29 March 2026: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist; 03:30 CEST is 01:30 UTC.
    assert.equal(at({ year: 2026, month: 3, day: 29, hour: 2, minute: 30 }, 'Europe/Berlin'), '2026-03-29T01:30:00.000Z');
    // New York, 1 November 2026: 01:30 happens twice (EDT, then EST); the earlier is 05:30 UTC.
    assert.equal(at({ year: 2026, month: 11, day: 1, hour: 1, minute: 30 }, 'America/New_York'), '2026-11-01T05:30:00.000Z');
    assert.equal(at({ year: 2026, month: 11, day: 1, hour: 2, minute: 0 }, 'America/New_York'), '2026-11-01T07:00:00.000Z');
  });
});

describe('pace per WhatsApp instance (the slot algorithm, simulated time)', () => {
  test('never more than N sends in any window of W, gaps vary, a backlog drains at the pace', async () => {
    const N = 20;
    const W = 60_000;
    let simulated = 0;
    const limits = makeSendLimits({
      ratePerWindow: N, windowMs: W, dailyCap: 0, timeZone: 'America/Recife', instance: 'sim', keyPrefix: `sim${Date.now()}`,
      maxWaitMs: 5_000, log: createLogger({ level: 'silent' }),
      clock: () => new Date(simulated),
      sleep: async (ms) => {
        simulated += ms;
      },
    });
    // 300 follow-ups, all due at once, each coming back when told (plus a little relay latency).
    let queue = Array.from({ length: 300 }, (_, i) => ({ id: i, at: 1_800_000_000_000 + Math.random() * 200 }));
    const sends: number[] = [];
    let deferrals = 0;
    while (queue.length > 0) {
      queue.sort((a, b) => a.at - b.at);
      const next = queue.shift()!;
      simulated = Math.max(simulated, next.at);
      const r = await limits.reserve(new Date(simulated));
      if (r.ok) sends.push(simulated);
      else {
        deferrals += 1;
        queue.push({ id: next.id, at: r.retryAt.getTime() + Math.random() * 50 });
      }
    }
    await limits.close();
    sends.sort((a, b) => a - b);
    for (let i = 0; i + N < sends.length; i++) assert.ok(sends[i + N]! - sends[i]! > W, `sends ${i}..${i + N} span ${sends[i + N]! - sends[i]!} ms`);
    const gaps = sends.slice(1).map((t, i) => t - sends[i]!);
    assert.ok(Math.min(...gaps) > ((W / (N - 1)) * 2) / 3 - 60, `min gap ${Math.min(...gaps)}`);
    assert.ok(Math.max(...gaps) - Math.min(...gaps) > 500, 'gaps are not machine-regular');
    const minutes = (sends.at(-1)! - sends[0]!) / 60_000;
    assert.ok(minutes < (300 / (N - 1)) * 1.1, `drained in ${minutes.toFixed(1)} min`);
    assert.ok(deferrals < 300 * 4, `few retries per follow-up: ${deferrals}`);
  });
});

describe('the respectful policy in the executor (fake clock, real PostgreSQL)', () => {
  let testDb: TestDatabase;
  const clock = makeFakeClock(MONDAY_0830_RECIFE);
  const contexts: Context[] = [];
  let transport: RecordingTransport;

  async function contextWith(env: Record<string, string>, campaigns?: Map<string, Campaign>) {
    const config = loadConfig({ DATABASE_URL: 'postgresql://unused@127.0.0.1/x', FOLLOWUPS_API_TOKEN: 'test-token-123-abcdefghijkl', ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789', TYPING_DELAY_ENABLED: 'false', SEND_RATE_PER_MINUTE: '0', ...env });
    const ctx = await createContext(config, createLogger({ level: 'silent' }), { db: testDb.db, queue: null, skipMigrations: true, clock, transport, ...(campaigns ? { campaigns } : {}) });
    contexts.push(ctx);
    return { ctx, deps: executorDeps(ctx, 'test') };
  }
  async function row(id: string) {
    const { rows } = await testDb.db.query<{ status: string; due_at: Date; defer_reason: string | null; cancel_reason: string | null; attempts: number; sent_at: Date | null }>(
      'SELECT status, due_at, defer_reason, cancel_reason, attempts, sent_at FROM follow_ups WHERE id = $1',
      [id],
    );
    return rows[0]!;
  }
  /** What the relay does: a due follow-up becomes queued (and due now, for the tests that start mid-sequence). */
  async function queue(id: string, dueNow = true) {
    await testDb.db.query(
      `UPDATE follow_ups SET status = 'queued', due_at = CASE WHEN $2 THEN $3::timestamptz ELSE due_at END,
              planned_at = CASE WHEN $2 THEN $3::timestamptz ELSE planned_at END WHERE id = $1`,
      [id, dueNow, clock.now()],
    );
  }

  before(async () => {
    testDb = await createTestDatabase();
  });
  beforeEach(() => {
    transport = makeRecordingTransport();
    clock.set(MONDAY_0830_RECIFE);
  });
  after(async () => {
    for (const ctx of contexts) await ctx.close();
    await testDb.drop();
  });

  test('at 08:30 Recife time: Recife is sent, Manaus and Rio Branco wait for their own 08:00 (with jitter), later steps move with them', async () => {
    const { deps } = await contextWith({ SENDING_WINDOW_ENABLED: 'true' });
    const now = clock.now();
    const recife = await leadWithFollowups(testDb.db, { phone: RECIFE, now, count: 1 });
    const manaus = await leadWithFollowups(testDb.db, { phone: MANAUS, now, count: 2, enrollment: 'nautico' });
    const acre = await leadWithFollowups(testDb.db, { phone: RIO_BRANCO, now, count: 1 });
    for (const id of [recife.followupIds[0]!, manaus.followupIds[0]!, acre.followupIds[0]!]) await queue(id);
    const step2Before = (await row(manaus.followupIds[1]!)).due_at.getTime();

    assert.equal(await executeFollowup(deps, recife.followupIds[0]!), 'executed');
    assert.equal(await executeFollowup(deps, manaus.followupIds[0]!), 'deferred');
    assert.equal(await executeFollowup(deps, acre.followupIds[0]!), 'deferred');

    const m = await row(manaus.followupIds[0]!);
    assert.equal(m.status, 'pending');
    assert.equal(m.defer_reason, 'window');
    assert.equal(m.attempts, 0, 'the attempt is given back');
    const manausOpen = new Date('2026-01-05T12:00:00.000Z').getTime();
    assert.ok(m.due_at.getTime() >= manausOpen && m.due_at.getTime() < manausOpen + 45 * 60_000, m.due_at.toISOString());
    const shift = m.due_at.getTime() - now.getTime();
    assert.equal((await row(manaus.followupIds[1]!)).due_at.getTime(), step2Before + shift, 'step 2 moved by the same amount');
    const a = await row(acre.followupIds[0]!);
    const acreOpen = new Date('2026-01-05T13:00:00.000Z').getTime();
    assert.ok(a.due_at.getTime() >= acreOpen && a.due_at.getTime() < acreOpen + 45 * 60_000, a.due_at.toISOString());
    assert.deepEqual(transport.sent.map((s) => s.number), [RECIFE]);

    // At the Manaus opening it goes.
    clock.set(m.due_at);
    await queue(manaus.followupIds[0]!, false);
    assert.equal(await executeFollowup(deps, manaus.followupIds[0]!), 'executed');
    assert.equal(wallTimeIn(clock.now(), 'America/Manaus').hour, 8);
  });

  test('Sundays: held until Monday unless SEND_ON_SUNDAY', async () => {
    clock.set('2026-01-11T14:00:00.000Z'); // Sunday 11:00 in Recife
    const closed = await contextWith({ SENDING_WINDOW_ENABLED: 'true', SEND_ON_SUNDAY: 'false' });
    const open = await contextWith({ SENDING_WINDOW_ENABLED: 'true', SEND_ON_SUNDAY: 'true' });
    const a = await leadWithFollowups(testDb.db, { phone: '5581991110001', now: clock.now(), count: 1 });
    const b = await leadWithFollowups(testDb.db, { phone: '5581991110002', now: clock.now(), count: 1 });
    await queue(a.followupIds[0]!);
    await queue(b.followupIds[0]!);
    assert.equal(await executeFollowup(closed.deps, a.followupIds[0]!), 'deferred');
    const due = (await row(a.followupIds[0]!)).due_at.getTime();
    const monday = new Date('2026-01-12T11:00:00.000Z').getTime();
    assert.ok(due >= monday && due < monday + 45 * 60_000);
    assert.equal(await executeFollowup(open.deps, b.followupIds[0]!), 'executed');
  });

  test('at most MAX_FOLLOWUPS_PER_LEAD_PER_WEEK in any rolling 7 days: the 4th waits until the 1st is a week old', async () => {
    const { deps } = await contextWith({ SENDING_WINDOW_ENABLED: 'false', MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: '3' });
    const start = clock.now().getTime();
    const { followupIds } = await leadWithFollowups(testDb.db, { phone: '5581992220001', now: clock.now(), count: 6 });
    const sentAt: number[] = [];
    // Days 0, 1, 2 go out; day 3 hits the cap.
    for (let i = 0; i < 3; i++) {
      clock.set(new Date(start + i * DAY));
      await queue(followupIds[i]!);
      assert.equal(await executeFollowup(deps, followupIds[i]!), 'executed');
      sentAt.push(clock.now().getTime());
    }
    clock.set(new Date(start + 3 * DAY));
    await queue(followupIds[3]!);
    assert.equal(await executeFollowup(deps, followupIds[3]!), 'deferred');
    const held = await row(followupIds[3]!);
    assert.equal(held.defer_reason, 'lead_cap');
    assert.equal(held.due_at.getTime(), start + 7 * DAY + 1_000, 'when the first send drops out of the 7 days');
    // Still capped a moment before, free at its time.
    clock.set(new Date(start + 7 * DAY - 1_000));
    await queue(followupIds[3]!, false);
    assert.equal(await executeFollowup(deps, followupIds[3]!), 'deferred');
    clock.set(held.due_at);
    await queue(followupIds[3]!, false);
    assert.equal(await executeFollowup(deps, followupIds[3]!), 'executed');
    sentAt.push(clock.now().getTime());
    // And the 5th must wait for the 2nd to age out.
    await queue(followupIds[4]!);
    assert.equal(await executeFollowup(deps, followupIds[4]!), 'deferred');
    assert.equal((await row(followupIds[4]!)).due_at.getTime(), start + 8 * DAY + 1_000);
    for (let i = 0; i < sentAt.length; i++) {
      const inWeek = sentAt.filter((t) => t >= sentAt[i]! && t < sentAt[i]! + 7 * DAY).length;
      assert.ok(inWeek <= 3, `${inWeek} sends in the week from send ${i}`);
    }
  });

  test('each number is checked once, lazily; a number not on WhatsApp is cancelled as invalid_number', async () => {
    const { deps } = await contextWith({ SENDING_WINDOW_ENABLED: 'false' });
    const good = await leadWithFollowups(testDb.db, { phone: '5581993330001', now: clock.now(), count: 2 });
    const bad = await leadWithFollowups(testDb.db, { phone: '5581993330002', now: clock.now(), count: 2 });
    transport.invalid.add('5581993330002');
    assert.equal(transport.checks.length, 0, 'nothing checked before a send');
    for (const id of good.followupIds) {
      await queue(id);
      assert.equal(await executeFollowup(deps, id), 'executed');
    }
    await queue(bad.followupIds[0]!);
    assert.equal(await executeFollowup(deps, bad.followupIds[0]!), 'cancelled');
    assert.equal((await row(bad.followupIds[0]!)).cancel_reason, 'invalid_number');
    await queue(bad.followupIds[1]!);
    assert.equal(await executeFollowup(deps, bad.followupIds[1]!), 'cancelled');
    assert.deepEqual(transport.checks, ['5581993330001', '5581993330002'], 'one check per lead');
    const { rows } = await testDb.db.query('SELECT phone, number_valid, whatsapp_jid FROM leads WHERE phone = ANY($1) ORDER BY phone', [['5581993330001', '5581993330002']]);
    assert.deepEqual(rows, [
      { phone: '5581993330001', number_valid: true, whatsapp_jid: '5581993330001@s.whatsapp.net' },
      { phone: '5581993330002', number_valid: false, whatsapp_jid: null },
    ]);
    assert.ok(!transport.sent.some((s) => s.number === '5581993330002'));
  });

  test('SEND_DAILY_CAP: over it, a follow-up waits for the next day (never failed or dropped)', async () => {
    const { deps } = await contextWith({ SENDING_WINDOW_ENABLED: 'false', SEND_DAILY_CAP: '2' });
    const leads = await Promise.all([1, 2, 3].map((i) => leadWithFollowups(testDb.db, { phone: `558199444000${i}`, now: clock.now(), count: 1 })));
    const outcomes = [];
    for (const l of leads) {
      await queue(l.followupIds[0]!);
      outcomes.push(await executeFollowup(deps, l.followupIds[0]!));
    }
    assert.deepEqual(outcomes, ['executed', 'executed', 'deferred']);
    const third = await row(leads[2]!.followupIds[0]!);
    assert.equal(third.defer_reason, 'daily_cap');
    assert.equal(third.due_at.toISOString(), '2026-01-06T03:00:00.000Z', 'midnight in Recife');
  });

  test("a campaign's own sending rules refine the environment's; the environment's off switch wins", async () => {
    const evening: Campaign = { ...testCampaign('tarde'), sending: { hoursStart: '10:00', hoursEnd: '22:00', sundays: false, maxPerLeadPerWeek: 1 } };
    const campaigns = new Map([['tarde', evening]]);
    const { deps } = await contextWith({ SENDING_WINDOW_ENABLED: 'true', MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: '3' }, campaigns);
    const lead = await leadWithFollowups(testDb.db, { phone: '5581995550001', now: clock.now(), count: 2, enrollment: 'tarde' });
    await queue(lead.followupIds[0]!);
    assert.equal(await executeFollowup(deps, lead.followupIds[0]!), 'deferred', '08:30 is before the campaign opens at 10:00');
    const held = await row(lead.followupIds[0]!);
    const opens = new Date('2026-01-05T13:00:00.000Z').getTime();
    assert.ok(held.due_at.getTime() >= opens && held.due_at.getTime() < opens + 45 * 60_000, held.due_at.toISOString());
    clock.set(held.due_at);
    await queue(lead.followupIds[0]!, false);
    assert.equal(await executeFollowup(deps, lead.followupIds[0]!), 'executed');
    await queue(lead.followupIds[1]!);
    assert.equal(await executeFollowup(deps, lead.followupIds[1]!), 'deferred');
    assert.equal((await row(lead.followupIds[1]!)).defer_reason, 'lead_cap', "the campaign's cap of 1 a week");

    const off = await contextWith({ SENDING_WINDOW_ENABLED: 'false', MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: '0' }, campaigns);
    clock.set(MONDAY_0830_RECIFE);
    const other = await leadWithFollowups(testDb.db, { phone: '5581995550002', now: clock.now(), count: 2, enrollment: 'tarde' });
    for (const id of other.followupIds) {
      await queue(id);
      assert.equal(await executeFollowup(off.deps, id), 'executed');
    }
  });
});
