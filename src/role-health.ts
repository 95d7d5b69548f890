/**
 * How the loops of this process are doing: the relay and the worker note each turn's
 * success or failure here, and `/health/ready` reports a role that fails turn after turn
 * (a wrong password after a rotation, a pooler refusing us, a statement that always times
 * out) instead of saying `ok` while nothing is sent.
 */
import { readDbError } from './db/db-errors.js';

export type RoleName = 'relay' | 'worker';

/** A role counts as failing after this many turns in a row failed. */
export const FAILING_AFTER = 3;

export interface RoleState {
  status: 'ok' | 'failing';
  /** Turns failed in a row. */
  failures: number;
  /** When the current run of failures began. */
  since?: string;
  /** What kind of failure (never the message: the endpoint is public; the log has it). */
  reason?: 'database_auth' | 'database_unreachable' | 'timeout' | 'error';
  /** The SQLSTATE or driver code, when there is one. */
  code?: string;
}

export interface RoleHealth {
  succeeded(role: RoleName): void;
  failed(role: RoleName, error: unknown): void;
  /** The roles that reported at least once in this process. */
  read(): Partial<Record<RoleName, RoleState>>;
}

function reasonOf(meaning: ReturnType<typeof readDbError>): RoleState['reason'] {
  if (meaning.auth) return 'database_auth';
  if (meaning.timeout) return 'timeout';
  if (meaning.unreachable) return 'database_unreachable';
  return 'error';
}

export function makeRoleHealth(now: () => Date = () => new Date()): RoleHealth {
  const states = new Map<RoleName, { failures: number; since?: Date; reason?: RoleState['reason']; code?: string }>();
  return {
    succeeded(role) {
      states.set(role, { failures: 0 });
    },
    failed(role, error) {
      const previous = states.get(role);
      const meaning = readDbError(error);
      states.set(role, {
        failures: (previous?.failures ?? 0) + 1,
        since: previous?.since ?? now(),
        reason: reasonOf(meaning),
        code: meaning.code,
      });
    },
    read() {
      const out: Partial<Record<RoleName, RoleState>> = {};
      for (const [role, s] of states) {
        out[role] =
          s.failures >= FAILING_AFTER
            ? { status: 'failing', failures: s.failures, since: s.since!.toISOString(), reason: s.reason, ...(s.code ? { code: s.code } : {}) }
            : { status: 'ok', failures: s.failures };
      }
      return out;
    },
  };
}
