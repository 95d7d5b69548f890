/**
 * The per-lead cap: at most `max` follow-ups in any rolling 7 days. Counts the
 * lead's follow-ups sent in the last 7 days and those being sent right now (two
 * follow-ups of one lead in flight at once must not both slip under the cap).
 * When the cap is reached, the answer is the moment enough of them have dropped
 * out of the 7 days for one more to fit.
 */
import type { Queryable } from '../db/db.js';

export const WEEK_MS = 7 * 24 * 3_600_000;

const recentSendsSql = {
  name: 'policy_recent_sends',
  text: `
SELECT COALESCE(sent_at, sending_started_at, $3::timestamptz) AS at
  FROM follow_ups
 WHERE lead_id = $1::uuid AND id <> $2::uuid
   AND ((status = 'executed' AND sent_at > $3::timestamptz - interval '7 days') OR status = 'sending')
 ORDER BY at`,
};

/** Null when one more fits now; otherwise when it will. */
export async function weeklyCapFreesAt(
  db: Queryable,
  options: { leadId: string; followupId: string; now: Date; max: number },
): Promise<Date | null> {
  if (options.max <= 0) return null;
  const { rows } = await db.query<{ at: Date }>(recentSendsSql, [options.leadId, options.followupId, options.now]);
  if (rows.length < options.max) return null;
  // With n sends in the week and room for `max`, the (n − max + 1) oldest must drop out.
  const last = rows[rows.length - options.max]!;
  return new Date(new Date(last.at).getTime() + WEEK_MS + 1_000);
}
