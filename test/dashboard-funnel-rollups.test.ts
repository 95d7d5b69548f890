/**
 * The funnel from daily roll-ups (migration 016, src/dashboard/funnel-rollups.ts) against the raw
 * query (funnelSql) on the same data: follow-ups over 100 days (planned, sent, some sent days late,
 * some planned in the future), replies within and after 24 h, opt-outs, hand-offs and conversions;
 * compared for 1 / 7 / 30 / 90 days, all campaigns and one, before any refresh, after one, and after
 * late events (a late send, a reply recorded late with its old time, a conversion attributed to a send
 * weeks old, a send in flight during a stop that takes it over, a backdated enrollment, an erasure),
 * each before and after the next refresh. Also:
 * several refreshers at once roll each day once, and the roll-ups hold counts only.
 * On PostgreSQL (directly and through PgBouncer in transaction mode) and on PGlite.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Db } from '../src/db/db.js';
import { migrate } from '../src/db/migrate.js';
import { startTestPglite } from './helpers/pglite.js';
import { compareRows, readFunnelRows, refreshFunnelRollups } from '../src/dashboard/funnel-rollups.js';
import { readFunnelRaw } from '../src/dashboard/read-dashboard.js';
import { eraseLead } from '../src/leads/erase-lead.js';
import { useErasureKey } from '../src/privacy/erasure-key.js';
import { systemClock } from '../src/clock.js';
import { makePgDb } from '../src/db/pg-db.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { type OwnPgBouncer, startOwnPgBouncer } from './helpers/pgbouncer.js';

const DAY = 86_400_000;
const PERIODS = [1, 7, 30, 90];

/** 300 leads, ~1,500 follow-ups over the last 100 days (and the next 3), replies, stops. */
async function seed(db: Db) {
  await db.query(
    `INSERT INTO leads (phone, name) SELECT '5581930' || lpad(g::text, 6, '0'), 'Fã ' || g FROM generate_series(1, 300) g`,
  );
  await db.query(
    `INSERT INTO follow_ups (lead_id, campaign, step, variant, composer, due_at, planned_at, anchor_at, status, sent_at, created_at, updated_at)
     SELECT l.id, x.campaign, x.step, x.variant, CASE WHEN x.sent_at IS NOT NULL THEN x.composer END,
            x.planned_at, x.planned_at, x.planned_at - interval '4 hours',
            CASE WHEN x.sent_at IS NOT NULL THEN 'executed' WHEN g % 11 = 0 THEN 'cancelled' ELSE 'pending' END,
            x.sent_at, now(), now()
       FROM generate_series(1, 1500) g
       JOIN leads l ON l.phone = '5581930' || lpad((1 + g % 300)::text, 6, '0')
      CROSS JOIN LATERAL (SELECT CASE WHEN g % 13 = 0 THEN NULL WHEN g % 4 = 0 THEN 'socios' ELSE 'nautico' END AS campaign,
                                 1 + g % 3 AS step, CASE WHEN g % 2 = 0 THEN (g / 2) % 3 END AS variant,
                                 CASE WHEN g % 5 = 0 THEN 'llm' ELSE 'template' END AS composer,
                                 now() - ((g::bigint * 7919) % (100 * 86400)) * interval '1 second' + CASE WHEN g % 50 = 0 THEN interval '3 days' ELSE interval '0' END AS planned_at) p0
      CROSS JOIN LATERAL (SELECT p0.*, CASE WHEN g % 11 <> 0 AND g % 9 <> 0 AND p0.planned_at + (g % 7) * interval '1 hour' + CASE WHEN g % 17 = 0 THEN interval '5 days' ELSE interval '0' END < now()
                                            THEN p0.planned_at + (g % 7) * interval '1 hour' + CASE WHEN g % 17 = 0 THEN interval '5 days' ELSE interval '0' END END AS sent_at) x`,
  );
  // Replies: one send in three, from 1 h to 39 h after it (within 24 h or not).
  await db.query(
    `INSERT INTO messages (lead_id, direction, source, text, at)
     SELECT lead_id, 'in', 'lead', 'oi', sent_at + (1 + abs(hashtext(id::text)) % 39) * interval '1 hour'
       FROM follow_ups WHERE sent_at IS NOT NULL AND abs(hashtext(id::text)) % 3 = 0
        AND sent_at + (1 + abs(hashtext(id::text)) % 39) * interval '1 hour' < now()`,
  );
  // Stops, some hours after a lead's sends, some before the period, some long after the send.
  await db.query(
    `UPDATE leads l SET opted_out_at = CASE WHEN s.n % 10 = 0 THEN s.last_sent + interval '2 hours' END,
                        handoff_at = CASE WHEN s.n % 10 = 1 THEN s.first_sent + interval '30 minutes' END,
                        converted_at = CASE WHEN s.n % 10 = 2 THEN s.last_sent + interval '20 days' WHEN s.n % 10 = 3 THEN s.first_sent END
       FROM (SELECT f.lead_id, substr(min(p.phone), 8)::int AS n, min(f.sent_at) AS first_sent, max(f.sent_at) AS last_sent
               FROM follow_ups f JOIN leads p ON p.id = f.lead_id WHERE f.sent_at IS NOT NULL GROUP BY f.lead_id) s
      WHERE s.lead_id = l.id`,
  );
  await db.query(`UPDATE leads SET converted_at = NULL WHERE converted_at > now()`);
}

function comparable(rows: Array<Record<string, unknown>>) {
  return [...rows]
    .map((r) => ({
      campaign: r.campaign as string,
      step: r.step as number | null,
      variant: r.variant as number | null,
      composer: r.composer as string | null,
      planned: Number(r.planned),
      sent: Number(r.sent),
      replied: Number(r.replied),
      optedOut: Number(r.optedOut),
      handedOff: Number(r.handedOff),
      converted: Number(r.converted),
    }))
    .sort(compareRows);
}

/** Both ways, every period, all campaigns and one; returns how many days came from roll-ups (90 days). */
async function assertSame(db: Db, label: string): Promise<number> {
  let rolledDays = -1;
  const now = Date.now();
  for (const days of PERIODS) {
    for (const campaign of [null, 'nautico']) {
      const since = new Date(now - days * DAY);
      const viaRollups = await readFunnelRows(db, { since, campaign });
      const raw = await readFunnelRaw(db, { since, campaign });
      assert.deepEqual(comparable(viaRollups.rows as never), comparable(raw as never), `${label}: ${days} days, campaign ${campaign ?? 'all'}`);
      if (days === 90 && campaign === null) rolledDays = viaRollups.rolledDays;
    }
  }
  return rolledDays;
}

async function totals(db: Db) {
  const { rows } = await readFunnelRows(db, { since: new Date(Date.now() - 90 * DAY) });
  const t = { planned: 0, sent: 0, replied: 0, optedOut: 0, handedOff: 0, converted: 0 };
  for (const r of rows) for (const k of Object.keys(t) as Array<keyof typeof t>) t[k] += r[k];
  return t;
}

const cleanDays = async (db: Db) =>
  (
    await db.query<{ day: string }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day FROM funnel_rollup_days d WHERE rolled_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM funnel_rollup_marks m WHERE m.day = d.day)`,
    )
  ).rows.map((r) => r.day);

function suite(name: string, open: () => Promise<{ db: Db; close(): Promise<void> }>) {
  describe(`funnel roll-ups (${name})`, () => {
    let db: Db;
    let close: () => Promise<void>;
    before(async () => {
      useErasureKey('test-erasure-key-0123456789abcdef-0123456789');
      ({ db, close } = await open());
      await seed(db);
    });
    after(async () => close?.());

    test('equal to the raw query before any refresh (all live), after one (rolled), and after late events', async () => {
      assert.equal(await assertSame(db, 'before any refresh'), 0, 'nothing rolled yet');
      const first = await refreshFunnelRollups(db);
      assert.ok(first.rolled >= 88, `the closed days of the horizon are rolled (${first.rolled})`);
      const rolled = await assertSame(db, 'after a refresh');
      assert.ok(rolled > 80, `a 90-day period reads mostly roll-ups (${rolled} days)`);
      assert.equal((await refreshFunnelRollups(db)).rolled, 0, 'nothing changed: nothing to roll again');
      const before = await totals(db);

      // 1. A late send: a follow-up planned 40 days ago goes out now.
      const late = await db.query<{ id: string; day: string }>(
        `UPDATE follow_ups SET status = 'executed', sent_at = now(), composer = 'template'
          WHERE id = (SELECT id FROM follow_ups WHERE campaign = 'nautico' AND sent_at IS NULL AND planned_at < now() - interval '40 days' ORDER BY planned_at DESC LIMIT 1)
          RETURNING id, to_char(planned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day`,
      );
      assert.equal(late.rowCount, 1);
      assert.ok(!(await cleanDays(db)).includes(late.rows[0]!.day), 'the late send marks its day');
      await assertSame(db, 'after a late send, before the refresh');

      // 2. A reply recorded late, with the time WhatsApp gave it (20 days ago, 3 h after a send).
      const sent = await db.query<{ lead_id: string; sent_at: Date; day: string }>(
        `SELECT f.lead_id, f.sent_at, to_char(f.planned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day FROM follow_ups f
          WHERE f.campaign = 'nautico' AND f.sent_at BETWEEN now() - interval '25 days' AND now() - interval '20 days'
            AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.lead_id = f.lead_id AND m.direction = 'in' AND m.at > f.sent_at AND m.at <= f.sent_at + interval '24 hours')
          ORDER BY f.sent_at LIMIT 1`,
      );
      const s = sent.rows[0]!;
      await db.query(`INSERT INTO messages (lead_id, direction, source, text, at) VALUES ($1::uuid, 'in', 'lead', 'oi', $2::timestamptz + interval '3 hours')`, [s.lead_id, s.sent_at]);
      assert.ok(!(await cleanDays(db)).includes(s.day), 'the late reply marks the day of the send it answers');
      await assertSame(db, 'after a late reply, before the refresh');

      // 3. A conversion recorded today, at the time of the fan's message: a minute after a send weeks old.
      const quiet = await db.query<{ id: string; sent_at: Date }>(
        `SELECT l.id, f.sent_at FROM leads l JOIN follow_ups f ON f.lead_id = l.id AND f.campaign IS NOT NULL
          WHERE l.converted_at IS NULL AND l.opted_out_at IS NULL AND l.handoff_at IS NULL
            AND f.planned_at < now() - interval '30 days' AND f.sent_at < now() - interval '30 days'
          ORDER BY f.sent_at DESC LIMIT 1`,
      );
      await db.query(`UPDATE leads SET converted_at = $2::timestamptz + interval '1 minute' WHERE id = $1::uuid`, [quiet.rows[0]!.id, quiet.rows[0]!.sent_at]);
      await assertSame(db, 'after a late conversion');
      await refreshFunnelRollups(db);
      await assertSame(db, 'after a late conversion and a refresh');
      const converted = (await totals(db)).converted;

      // 3b. A send recorded for that fan after the stop, with a time before it (it was in flight): the
      // conversion now counts for that send (not a campaign one), not for the weeks-old one. As the worker
      // records a send: sent_at and the lead's last_outbound_at in one statement.
      await db.query(
        `WITH d AS (INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at, status, sent_at)
                    VALUES ($1::uuid, 'oi', now(), now(), now(), 'executed', $2::timestamptz + interval '30 seconds') RETURNING lead_id, sent_at)
         UPDATE leads l SET last_outbound_at = d.sent_at FROM d WHERE l.id = d.lead_id`,
        [quiet.rows[0]!.id, quiet.rows[0]!.sent_at],
      );
      await assertSame(db, 'after a send in flight during the stop');
      assert.equal((await totals(db)).converted, converted - 1, 'the conversion moved to a send outside the funnel');

      // 4. A backdated enrollment: follow-ups planned 30 days ago, one sent.
      await db.query(
        `INSERT INTO follow_ups (lead_id, campaign, step, variant, composer, due_at, planned_at, anchor_at, status, sent_at)
         SELECT id, 'nautico', 2, 1, CASE WHEN k = 1 THEN 'llm' END, now() - interval '30 days', now() - interval '30 days', now() - interval '31 days',
                CASE WHEN k = 1 THEN 'executed' ELSE 'pending' END, CASE WHEN k = 1 THEN now() - interval '29 days' END
           FROM leads, generate_series(1, 2) k WHERE phone = '5581930000007'`,
      );
      await assertSame(db, 'after a backdated enrollment, before the refresh');
      const after = await totals(db);
      assert.equal(after.planned, before.planned + 2);
      assert.equal(after.sent, before.sent + 2);
      assert.equal(after.replied, before.replied + 1);
      assert.equal(after.converted, before.converted);

      const again = await refreshFunnelRollups(db);
      assert.ok(again.rolled >= 3 && again.rolled <= 12, `only the marked days are rolled again (${again.rolled})`);
      assert.ok((await assertSame(db, 'after the late events and a refresh')) > 80);
      assert.deepEqual(await totals(db), after);

      // 5. An erasure changes no count; the roll-ups hold counts only.
      const erased = await db.query<{ phone: string }>(
        `SELECT l.phone FROM leads l WHERE EXISTS (SELECT 1 FROM follow_ups f WHERE f.lead_id = l.id AND f.sent_at < now() - interval '10 days')
            AND l.opted_out_at IS NOT NULL LIMIT 1`,
      );
      assert.ok(await eraseLead(db, erased.rows[0]!.phone, systemClock));
      await refreshFunnelRollups(db);
      await assertSame(db, 'after an erasure');
      assert.deepEqual(await totals(db), after);
      const { rows: columns } = await db.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns WHERE table_name IN ('funnel_rollups', 'funnel_rollup_days', 'funnel_rollup_marks') ORDER BY 1`,
      );
      assert.deepEqual(
        [...new Set(columns.map((c) => c.column_name))].sort(),
        ['campaign', 'composer', 'converted', 'day', 'handed_off', 'id', 'opted_out', 'planned', 'replied', 'rolled_at', 'sent', 'step', 'variant'],
      );
    });

    test('several refreshers at once roll each marked day once, and agree', async () => {
      await db.query(`UPDATE follow_ups SET sent_at = sent_at + interval '1 second' WHERE campaign IS NOT NULL AND planned_at < now() - interval '10 days' AND sent_at IS NOT NULL`);
      const marked = (await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM funnel_rollup_days d WHERE EXISTS (SELECT 1 FROM funnel_rollup_marks m WHERE m.day = d.day)`,
      )).rows[0]!.n;
      assert.ok(marked >= 80, `the moved sends mark their days (${marked})`);
      await assertSame(db, 'marked, before the refresh');
      const results = await Promise.all([refreshFunnelRollups(db), refreshFunnelRollups(db), refreshFunnelRollups(db)]);
      assert.equal(results.reduce((n, r) => n + r.rolled, 0), marked, 'each marked day rolled by one refresher');
      assert.ok((await assertSame(db, 'after concurrent refreshes')) > 80);
    });
  });
}

suite('PostgreSQL', async () => {
  const t: TestDatabase = await createTestDatabase({ poolSize: 4 });
  return { db: t.db, close: () => t.drop() };
});

suite('PostgreSQL through PgBouncer, transaction mode', async () => {
  const t: TestDatabase = await createTestDatabase({ poolSize: 1 });
  const bouncer: OwnPgBouncer = await startOwnPgBouncer({ mode: 'transaction', poolSize: 3 });
  const db = makePgDb({ url: bouncer.url(t.name), poolSize: 4, pooler: 'transaction', log: createLogger({ level: 'silent' }) });
  return {
    db,
    close: async () => {
      await db.close();
      await bouncer.stop();
      await t.drop();
    },
  };
});

suite('PGlite', async () => {
  const db = await startTestPglite();
  await migrate(db);
  return { db, close: () => db.close() };
});
