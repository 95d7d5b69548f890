/**
 * Whether sending is paused, and why, shared by every process through the
 * database: a configuration fault (Evolution 401/404) or a closed WhatsApp
 * connection pauses all workers at once, nothing is burned meanwhile, and
 * `/health/ready` on any API replica shows the reason.
 */
import type { Clock } from '../clock.js';
import type { Queryable } from '../db/db.js';

export interface PauseState {
  paused: boolean;
  reason?: string;
  detail?: string;
  since?: string;
}

export interface SendingGate {
  /** Cached for `cacheMs`; cheap enough to call per follow-up. */
  state(): Promise<PauseState>;
  pause(reason: string, detail?: string): Promise<void>;
  /** Clears the pause if (and only if) it was for one of `reasons` (all when omitted). */
  resume(reasons?: string[]): Promise<boolean>;
}

const KEY = 'sending_pause';

export function makeSendingGate(options: { db: Queryable; clock: Clock; cacheMs?: number }): SendingGate {
  const cacheMs = options.cacheMs ?? 1_000;
  let cached: { at: number; value: PauseState } | undefined;

  async function read(): Promise<PauseState> {
    const { rows } = await options.db.query<{ value: PauseState }>(
      { name: 'gate_read', text: 'SELECT value FROM system_state WHERE key = $1::text' },
      [KEY],
    );
    return rows[0]?.value ?? { paused: false };
  }

  return {
    async state() {
      const now = Date.now();
      if (cached && now - cached.at < cacheMs) return cached.value;
      const value = await read();
      cached = { at: now, value };
      return value;
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
