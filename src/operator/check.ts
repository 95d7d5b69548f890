/** One line of `followups doctor`: what was checked, what was found, and the fix when it is not right. */
export interface Check {
  /** e.g. `postgres.migrations`, `redis.eviction`, `evolution.webhook`. */
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  /** What to do about it (fail and warn only). */
  fix?: string;
  /** The dependency did not answer at all (exit code 3 rather than 1). */
  unreachable?: boolean;
}

export const ok = (name: string, detail: string): Check => ({ name, status: 'ok', detail });
export const skip = (name: string, detail: string): Check => ({ name, status: 'skip', detail });
export const warn = (name: string, detail: string, fix: string): Check => ({ name, status: 'warn', detail, fix });
export const fail = (name: string, detail: string, fix: string, unreachable = false): Check =>
  unreachable ? { name, status: 'fail', detail, fix, unreachable } : { name, status: 'fail', detail, fix };
