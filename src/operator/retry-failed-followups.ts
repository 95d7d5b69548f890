/**
 * `followups retry --failed [--reason R] [--since D]`: every failed follow-up that
 * matches goes back to pending, due now, its attempts reset — the same transition
 * as `POST /v1/followups/:id/retry` (event reason `operator_retry`), one row at a
 * time so each keeps its own conditional move and event. `--reason` matches the
 * reason it failed with (retries_exhausted, ambiguous_send, rejected, …), `--since`
 * when it failed.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { ValidationError } from '../errors.js';
import { retryFailed } from '../followups/transitions.js';

export interface RetryFailedOptions {
  reason?: string;
  since?: Date;
  limit: number;
  /** List what would be retried, change nothing. */
  dryRun?: boolean;
}

export interface RetryFailedResult {
  matched: number;
  retried: string[];
  dryRun: boolean;
  followups: Array<{ id: string; failedAt: string; reason: string | null; lastError: string | null }>;
}

export async function retryFailedFollowups(ctx: { db: Db; clock: Clock }, options: RetryFailedOptions): Promise<RetryFailedResult> {
  const { rows } = await ctx.db.query<{ id: string; failed_at: Date; reason: string | null; last_error: string | null }>(
    `SELECT f.id, e.at AS failed_at, e.reason, f.last_error
       FROM follow_ups f
       JOIN LATERAL (
         SELECT at, reason FROM follow_up_events
          WHERE follow_up_id = f.id AND to_status = 'failed' ORDER BY id DESC LIMIT 1
       ) e ON true
      WHERE f.status = 'failed'
        AND ($1::text IS NULL OR e.reason = $1::text)
        AND ($2::timestamptz IS NULL OR e.at >= $2::timestamptz)
      ORDER BY e.at, f.id
      LIMIT $3::int`,
    [options.reason ?? null, options.since ?? null, options.limit],
  );
  const retried: string[] = [];
  if (!options.dryRun) {
    for (const row of rows) {
      if (await retryFailed(ctx.db, { id: row.id, now: ctx.clock.now(), detail: { source: 'cli' } })) retried.push(row.id);
    }
  }
  return {
    matched: rows.length,
    retried,
    dryRun: options.dryRun === true,
    followups: rows.map((r) => ({ id: r.id, failedAt: new Date(r.failed_at).toISOString(), reason: r.reason, lastError: r.last_error })),
  };
}

/** `--since`: an ISO-8601 date or date-time, or a span back from now (`90m`, `6h`, `2d`). */
export function parseSince(value: string, now: Date): Date {
  const span = /^(\d+)\s*(m|min|h|d)$/i.exec(value.trim());
  if (span) {
    const unit = { m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }[span[2]!.toLowerCase() as 'm' | 'min' | 'h' | 'd'];
    return new Date(now.getTime() - Number(span[1]) * unit);
  }
  const at = /^\d{4}-\d\d-\d\d/.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(at.getTime())) {
    throw new ValidationError(`--since: must be an ISO-8601 date (2026-05-01, 2026-05-01T08:00:00Z) or a span such as 90m, 6h, 2d; got "${value}"`, 'since');
  }
  return at;
}

export function formatRetryFailed(r: RetryFailedResult): string {
  if (r.matched === 0) return 'no failed follow-up matches';
  const head = r.dryRun ? `${r.matched} failed follow-up(s) would be retried (dry run)` : `${r.retried.length} of ${r.matched} failed follow-up(s) retried: pending, due now`;
  const lines = r.followups.slice(0, 50).map((f) => `  ${f.id}  failed ${f.failedAt}  ${f.reason ?? ''}${f.lastError ? `: ${f.lastError.slice(0, 80)}` : ''}`);
  if (r.followups.length > 50) lines.push(`  … and ${r.followups.length - 50} more`);
  return [head, ...lines].join('\n');
}
