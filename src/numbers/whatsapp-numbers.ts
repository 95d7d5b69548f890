/**
 * The WhatsApp numbers as data (table whatsapp_numbers, migration 015): seeded from the
 * configuration at start (idempotent), each with a state the executor honours:
 *   active           — sends;
 *   paused_whatsapp  — WhatsApp disconnected (connection.update close) or Evolution refused the
 *                      instance or its key; lifted when the instance answers `open` again;
 *   paused_operator  — an operator paused it (PATCH /v1/numbers/:name, `followups numbers pause`);
 *   retired          — never used again; its leads moved to the other numbers, each once.
 * A lead is bound to the number it last talked with (leads.whatsapp_number): the webhook's
 * instance, or the number the agent or a follow-up used. A lead not bound yet gets the active
 * number with the most room left today — daily cap minus the larger of what it sent today and
 * the leads it was given today — ties to the fewest leads. While its number is paused, the
 * lead's follow-ups wait (deferred with the reason, never sent from another number).
 *
 * The states are read once a second per process (one query), never per follow-up.
 */
import type { Clock } from '../clock.js';
import type { WhatsappNumberConfig } from '../config.js';
import type { Db, Queryable } from '../db/db.js';
import { ConflictError } from '../errors.js';
import type { Logger } from '../log.js';
import { wallTimeIn } from '../time/zoned-time.js';
import { makeMicroBatcher } from '../micro-batch.js';

export const NUMBER_STATES = ['active', 'paused_whatsapp', 'paused_operator', 'retired'] as const;
export type NumberState = (typeof NUMBER_STATES)[number];

export interface NumberRow {
  name: string;
  state: NumberState;
  state_reason: string | null;
  state_since: Date;
  rate_per_minute: number;
  daily_cap: number;
  configured: boolean;
  lead_count: number;
}

export interface WhatsappNumber {
  name: string;
  state: NumberState;
  stateReason: string | null;
  stateSince: string;
  ratePerMinute: number;
  dailyCap: number;
  /** Counted against the daily cap today (null: unknown, or no cap). */
  sentToday: number | null;
  leads: number;
  configured: boolean;
}

export interface Numbers {
  /** The configured numbers, the default first. */
  readonly names: readonly string[];
  readonly defaultName: string;
  /** More than one number configured: leads are bound and moved; connection pauses are per number. */
  readonly several: boolean;
  /** Every row, cached for a second (cheap enough per follow-up). */
  rows(): Promise<ReadonlyMap<string, NumberRow>>;
  /** Forgets the cache (after a change made by this process). */
  invalidate(): void;
  /** Inserts the configured numbers (rates and caps from the configuration), marks the others unconfigured. */
  seed(): Promise<void>;
  /** A number unbound lead gets (most room left today, ties: fewest leads); null when no number is active. */
  assign(leadId: string, now: Date): Promise<string | null>;
  /** The lead talked with `name` (webhook, agent): bind it there, with a timeline event when it moves. */
  bind(db: Queryable, leadId: string, name: string, now: Date, reason: string): Promise<void>;
  /** paused_whatsapp (from active only) / back to active (from paused_whatsapp only). True when it changed. */
  setWhatsappPause(name: string, paused: boolean, reason?: string): Promise<boolean>;
  sentToday(name: string, now: Date): Promise<number | null>;
}

export interface NumbersOptions {
  db: Queryable;
  clock: Clock;
  log: Logger;
  numbers: readonly WhatsappNumberConfig[];
  /** Business time zone: "today" for the room left. */
  timeZone: string;
  /** Sent today per number (the limiter's daily counter). */
  sentToday?: (name: string, now: Date) => Promise<number | null>;
  cacheMs?: number;
}

function businessDay(now: Date, timeZone: string): string {
  const w = wallTimeIn(now, timeZone);
  return `${w.year}-${String(w.month).padStart(2, '0')}-${String(w.day).padStart(2, '0')}`;
}

// One statement per batch of unbound leads (a micro-batch of the executors of one process): binds
// each to its chosen number unless it got one meanwhile, counts them on the numbers, and answers
// every lead's number. Locks leads before numbers, as bind and moveLeadsOff do.
const assignBatchSql = {
  name: 'numbers_assign_batch',
  // Lost in a crash: the leads are unbound again and get a number at their next send.
  relaxedDurability: true,
  text: `
WITH bound AS (
  UPDATE leads l SET whatsapp_number = v.name
    FROM unnest($1::uuid[], $2::text[]) AS v(id, name)
   WHERE l.id = v.id AND l.whatsapp_number IS NULL
  RETURNING l.id, l.whatsapp_number
), counted AS (
  UPDATE whatsapp_numbers w
     SET assigned_today = CASE WHEN w.assigned_on = $3::date THEN w.assigned_today + c.n ELSE c.n END,
         assigned_on = $3::date, lead_count = w.lead_count + c.n
    FROM (SELECT whatsapp_number AS name, count(*)::int AS n FROM bound GROUP BY 1 ORDER BY 1) c
   WHERE w.name = c.name
)
SELECT id, whatsapp_number FROM bound
UNION ALL
SELECT id, whatsapp_number FROM leads WHERE id = ANY($1::uuid[]) AND id NOT IN (SELECT id FROM bound)`,
};

const bindSql = {
  name: 'numbers_bind',
  text: `
WITH old AS (
  SELECT id, whatsapp_number AS from_number FROM leads
   WHERE id = $1::uuid AND whatsapp_number IS DISTINCT FROM $2::text AND erased_at IS NULL
     AND EXISTS (SELECT 1 FROM whatsapp_numbers WHERE name = $2::text AND state <> 'retired')
     FOR UPDATE
), moved AS (
  UPDATE leads l SET whatsapp_number = $2::text FROM old WHERE l.id = old.id RETURNING l.id, old.from_number
), counts AS (
  UPDATE whatsapp_numbers n
     SET lead_count = GREATEST(0, n.lead_count + CASE WHEN n.name = $2::text THEN 1 ELSE -1 END)
    FROM moved WHERE n.name = $2::text OR n.name = moved.from_number
)
INSERT INTO lead_number_events (lead_id, at, from_number, to_number, reason)
SELECT id, $3::timestamptz, from_number, $2::text, $4::text FROM moved WHERE from_number IS NOT NULL`,
};

export function makeNumbers(options: NumbersOptions): Numbers {
  const { db } = options;
  const cacheMs = options.cacheMs ?? 1_000;
  const names = options.numbers.map((n) => n.name);
  let cached: { at: number; rows: Map<string, NumberRow> } | undefined;
  let reading: Promise<Map<string, NumberRow>> | undefined;

  /**
   * Binds unbound leads, greedily: each to the active number with the most room left today
   * (daily cap minus the larger of its sends today and the leads it was given today), ties to
   * the fewest leads. The counters are read fresh for each batch (no lock: two processes
   * assigning at once may both count on the same room; the daily cap itself is enforced by the
   * send limits, never exceeded).
   */
  async function assignBatch(items: Array<{ leadId: string; now: Date }>): Promise<Array<string | null>> {
    const now = items[0]!.now;
    const day = businessDay(now, options.timeZone);
    const { rows } = await db.query<{ name: string; daily_cap: number; assigned_on: string | null; assigned_today: number; lead_count: number }>(
      {
        name: 'numbers_room',
        text: `SELECT name, daily_cap, to_char(assigned_on, 'YYYY-MM-DD') AS assigned_on, assigned_today, lead_count
                 FROM whatsapp_numbers WHERE state = 'active' AND configured AND name = ANY($1::text[])`,
      },
      [names],
    );
    const sent = await Promise.all(rows.map(async (r) => (await sentToday(r.name, now)) ?? 0));
    const pool = rows.map((r, i) => ({
      name: r.name,
      cap: r.daily_cap === 0 ? Number.MAX_SAFE_INTEGER : r.daily_cap,
      sent: sent[i]!,
      today: r.assigned_on === day ? r.assigned_today : 0,
      leads: r.lead_count,
    }));
    const ids = [...new Set(items.map((i) => i.leadId))];
    const choice = ids.map(() => {
      let best: (typeof pool)[number] | undefined;
      for (const n of pool) {
        const room = n.cap - Math.max(n.sent, n.today);
        const bestRoom = best ? best.cap - Math.max(best.sent, best.today) : -Infinity;
        if (!best || room > bestRoom || (room === bestRoom && (n.leads < best.leads || (n.leads === best.leads && n.name < best.name)))) best = n;
      }
      if (!best) return null;
      best.today += 1;
      best.leads += 1;
      return best.name;
    });
    const { rows: answered } = await db.query<{ id: string; whatsapp_number: string | null }>(assignBatchSql, [
      ids.filter((_, i) => choice[i] !== null),
      choice.filter((c): c is string => c !== null),
      day,
    ]);
    const byLead = new Map(answered.map((r) => [r.id, r.whatsapp_number]));
    return items.map((i) => byLead.get(i.leadId) ?? null);
  }
  const assigner = makeMicroBatcher<{ leadId: string; now: Date }, string | null>({
    run: assignBatch,
    runOne: async (item) => (await assignBatch([item]))[0]!,
    maxBatch: 200,
    maxInFlight: 1,
  });

  async function read(): Promise<Map<string, NumberRow>> {
    const { rows } = await db.query<NumberRow>({ name: 'numbers_read', text: 'SELECT * FROM whatsapp_numbers ORDER BY name' }, []);
    return new Map(rows.map((r) => [r.name, r]));
  }

  const sentToday = async (name: string, now: Date) => (options.sentToday ? options.sentToday(name, now).catch(() => null) : null);

  return {
    names,
    defaultName: names[0]!,
    several: names.length > 1,
    async rows() {
      const now = Date.now();
      if (cached && now - cached.at < cacheMs) return cached.rows;
      // One read in flight per process, however many executors ask at once.
      reading ??= read().finally(() => (reading = undefined));
      const rows = await reading;
      cached = { at: Date.now(), rows };
      return rows;
    },
    invalidate() {
      cached = undefined;
    },
    async seed() {
      await db.query(
        `INSERT INTO whatsapp_numbers (name, rate_per_minute, daily_cap, configured)
         SELECT * , true FROM unnest($1::text[], $2::int[], $3::int[])
         ON CONFLICT (name) DO UPDATE
            SET rate_per_minute = EXCLUDED.rate_per_minute, daily_cap = EXCLUDED.daily_cap, configured = true,
                updated_at = now()
          WHERE (whatsapp_numbers.rate_per_minute, whatsapp_numbers.daily_cap, whatsapp_numbers.configured)
                IS DISTINCT FROM (EXCLUDED.rate_per_minute, EXCLUDED.daily_cap, true)`,
        [names, options.numbers.map((n) => n.ratePerMinute), options.numbers.map((n) => n.dailyCap)],
      );
      await db.query(`UPDATE whatsapp_numbers SET configured = false, updated_at = now() WHERE configured AND NOT (name = ANY($1::text[]))`, [names]);
      if (names.length > 1) {
        // Leads that talked with the one number of before (EVOLUTION_INSTANCE_NAME, listed first
        // in EVOLUTION_INSTANCES) stay with it.
        const { rowCount } = await db.query(
          `WITH bound AS (
             UPDATE leads SET whatsapp_number = $1::text
              WHERE whatsapp_number IS NULL AND (last_inbound_at IS NOT NULL OR last_outbound_at IS NOT NULL) AND erased_at IS NULL
             RETURNING 1)
           UPDATE whatsapp_numbers SET lead_count = lead_count + (SELECT count(*) FROM bound) WHERE name = $1::text
                  AND (SELECT count(*) FROM bound) > 0`,
          [names[0]],
        );
        if (rowCount > 0) options.log.info({ number: names[0] }, 'leads that talked with the first number bound to it');
      }
      cached = undefined;
    },
    assign(leadId, now) {
      // Batched with the other executors of this process: one statement for many new leads.
      return assigner.submit({ leadId, now });
    },
    async bind(tx, leadId, name, now, reason) {
      await tx.query(bindSql, [leadId, name, now, reason]);
    },
    async setWhatsappPause(name, paused, reason) {
      const { rowCount } = await db.query(
        paused
          ? `UPDATE whatsapp_numbers SET state = 'paused_whatsapp', state_reason = $2::text, state_since = now(), updated_at = now()
              WHERE name = $1::text AND state = 'active'`
          : `UPDATE whatsapp_numbers SET state = 'active', state_reason = NULL, state_since = now(), updated_at = now()
              WHERE name = $1::text AND state = 'paused_whatsapp'`,
        paused ? [name, reason ?? 'whatsapp_disconnected'] : [name],
      );
      cached = undefined;
      return rowCount > 0;
    },
    sentToday,
  };
}

/** The numbers as the API and the CLI show them. */
export async function listNumbers(numbers: Numbers, db: Queryable, now: Date): Promise<WhatsappNumber[]> {
  const { rows } = await db.query<NumberRow>('SELECT * FROM whatsapp_numbers ORDER BY configured DESC, name');
  const order = new Map(numbers.names.map((n, i) => [n, i]));
  rows.sort((a, b) => (order.get(a.name) ?? 1e9) - (order.get(b.name) ?? 1e9) || a.name.localeCompare(b.name));
  return Promise.all(rows.map(async (r) => toNumber(r, await numbers.sentToday(r.name, now))));
}

export function toNumber(r: NumberRow, sentToday: number | null): WhatsappNumber {
  return {
    name: r.name,
    state: r.state,
    stateReason: r.state_reason,
    stateSince: new Date(r.state_since).toISOString(),
    ratePerMinute: r.rate_per_minute,
    dailyCap: r.daily_cap,
    sentToday,
    leads: r.lead_count,
    configured: r.configured,
  };
}

/**
 * An operator's change: pause (paused_operator), resume (back to active from either pause) or
 * retire (for good: its leads move to the active numbers, spread evenly, each once, with an
 * event on its timeline). Returns the row and how many leads moved; null: no such number.
 */
export async function changeNumberState(
  db: Db,
  input: { name: string; action: 'pause' | 'resume' | 'retire'; reason?: string; now: Date },
): Promise<{ row: NumberRow; moved: number } | null> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<NumberRow>('SELECT * FROM whatsapp_numbers WHERE name = $1::text FOR UPDATE', [input.name]);
    const row = rows[0];
    if (!row) return null;
    if (row.state === 'retired') {
      if (input.action !== 'retire') throw new ConflictError(`number ${input.name} is retired`, 'number_retired');
      return { row, moved: await moveLeadsOff(tx, input.name, input.now) };
    }
    const next = input.action === 'pause' ? 'paused_operator' : input.action === 'retire' ? 'retired' : 'active';
    const { rows: changed } = await tx.query<NumberRow>(
      `UPDATE whatsapp_numbers
          SET state = $2::text, state_reason = $3::text,
              state_since = CASE WHEN state = $2::text THEN state_since ELSE $4::timestamptz END, updated_at = $4::timestamptz
        WHERE name = $1::text RETURNING *`,
      [input.name, next, next === 'active' ? null : (input.reason ?? 'operator'), input.now],
    );
    const moved = next === 'retired' ? await moveLeadsOff(tx, input.name, input.now) : 0;
    return { row: changed[0]!, moved };
  });
}

/**
 * Moves every lead still bound to `from` (retired) to the active configured numbers, round
 * robin over them in one statement; each move is an event on the lead's timeline. Leads
 * already moved are not bound to it any more, so a second call moves nothing.
 */
export async function moveLeadsOff(tx: Queryable, from: string, now: Date): Promise<number> {
  const { rows } = await tx.query<{ moved: number }>(
    `WITH targets AS (
       SELECT name, (row_number() OVER (ORDER BY lead_count, name) - 1)::int AS i, count(*) OVER ()::int AS k
         FROM whatsapp_numbers WHERE state = 'active' AND configured AND name <> $1::text
     ), locked AS (
       SELECT id FROM leads WHERE whatsapp_number = $1::text ORDER BY id FOR UPDATE
     ), numbered AS (
       SELECT id, (row_number() OVER (ORDER BY id) - 1)::int AS i FROM locked
     ), moved AS (
       UPDATE leads l SET whatsapp_number = t.name
         FROM numbered n JOIN targets t ON t.i = n.i % t.k
        WHERE l.id = n.id
       RETURNING l.id, t.name
     ), events AS (
       INSERT INTO lead_number_events (lead_id, at, from_number, to_number, reason)
       SELECT id, $2::timestamptz, $1::text, name, 'number_retired' FROM moved
     ), counts AS (
       UPDATE whatsapp_numbers w SET lead_count = w.lead_count + c.n
         FROM (SELECT name, count(*)::int AS n FROM moved GROUP BY name) c WHERE w.name = c.name
     ), emptied AS (
       UPDATE whatsapp_numbers SET lead_count = 0 WHERE name = $1::text AND EXISTS (SELECT 1 FROM moved)
     )
     SELECT count(*)::int AS moved FROM moved`,
    [from, now],
  );
  return rows[0]?.moved ?? 0;
}
