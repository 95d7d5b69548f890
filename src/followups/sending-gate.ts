/**
 * Whether sending is paused, and why, shared by every process through the
 * database: a configuration fault (Evolution 401/404) or a closed WhatsApp
 * connection pauses all workers at once, nothing is burned meanwhile, and
 * `/health/ready` on any API replica shows the reason.
 *
 * An operator's pause (table sending_pauses, src/followups/operator-pause.ts) is
 * read in the same cached statement: one for everything makes `state()` paused
 * with reason `operator_paused` (after any fault of our own, which wins), one per
 * campaign is in `operatorPauses()` for the executor to hold that campaign's
 * follow-ups. Neither is lifted by `resume()`: only an operator resumes them.
 */
import type { Clock } from '../clock.js';
import type { Queryable } from '../db/db.js';

export interface PauseState {
  paused: boolean;
  reason?: string;
  detail?: string;
  since?: string;
  /** Who asked for it (operator pauses only). */
  by?: string;
}

/** The reason of the gate and the follow-ups' defer_reason while an operator pause holds them. */
export const OPERATOR_PAUSED = 'operator_paused';

/** An active operator pause (a row of sending_pauses not yet resumed). */
export interface OperatorPause {
  id: string;
  scope: 'all' | 'campaign' | 'number';
  campaign: string | null;
  number: string | null;
  reason: string;
  who: string;
  at: string;
}

export interface SendingGate {
  /** Cached for `cacheMs`; cheap enough to call per follow-up. */
  state(): Promise<PauseState>;
  /** The active operator pauses (same cache as state()). */
  operatorPauses(): Promise<OperatorPause[]>;
  pause(reason: string, detail?: string): Promise<void>;
  /** Clears the pause if (and only if) it was for one of `reasons` (all when omitted). */
  resume(reasons?: string[]): Promise<boolean>;
}

const KEY = 'sending_pause';

export function makeSendingGate(options: { db: Queryable; clock: Clock; cacheMs?: number }): SendingGate {
  const cacheMs = options.cacheMs ?? 1_000;
  let cached: { at: number; value: { state: PauseState; operator: OperatorPause[] } } | undefined;

  async function read(): Promise<{ state: PauseState; operator: OperatorPause[] }> {
    const { rows } = await options.db.query<{ value: PauseState | null; operator: OperatorPause[] }>(
      {
        name: 'gate_read_with_operator',
        text: `SELECT (SELECT value FROM system_state WHERE key = $1::text) AS value,
                      COALESCE((SELECT json_agg(json_build_object('id', id::text, 'scope', scope, 'campaign', campaign, 'number', number,
                                                                  'reason', reason, 'who', who, 'at', at) ORDER BY id)
                                  FROM sending_pauses WHERE resumed_at IS NULL), '[]'::json) AS operator`,
      },
      [KEY],
    );
    const value = rows[0]?.value ?? { paused: false };
    const operator = rows[0]?.operator ?? [];
    const all = operator.find((p) => p.scope === 'all');
    const state: PauseState =
      value.paused || !all
        ? value
        : { paused: true, reason: OPERATOR_PAUSED, detail: all.reason, since: new Date(all.at).toISOString(), by: all.who };
    return { state, operator };
  }

  async function current() {
    const now = Date.now();
    if (cached && now - cached.at < cacheMs) return cached.value;
    const value = await read();
    cached = { at: now, value };
    return value;
  }

  return {
    async state() {
      return (await current()).state;
    },
    async operatorPauses() {
      return (await current()).operator;
    },
    async pause(reason, detail) {
      const value: PauseState = { paused: true, reason, detail, since: options.clock.now().toISOString() };
      await options.db.query(
        `INSERT INTO system_state (key, value, updated_at) VALUES ($1::text, $2::jsonb, now())
         ON CONFLICT (key) DO UPDATE SET value = CASE
             WHEN (system_state.value->>'paused')::boolean AND system_state.value->>'reason' = $3::text
             THEN system_state.value ELSE EXCLUDED.value END,
           updated_at = now()`,
        [KEY, value, reason],
      );
      cached = undefined;
    },
    async resume(reasons) {
      const { rowCount } = await options.db.query(
        `UPDATE system_state SET value = '{"paused": false}'::jsonb, updated_at = now()
          WHERE key = $1::text AND (value->>'paused')::boolean
            AND ($2::text[] IS NULL OR value->>'reason' = ANY($2::text[]))`,
        [KEY, reasons ?? null],
      );
      cached = undefined;
      return rowCount > 0;
    },
  };
}
