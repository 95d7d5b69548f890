/** Counts for operators (GET /v1/stats) and for the followups_by_status gauge. */
import type { Queryable } from '../db/db.js';
import { STATUSES, type FollowupStatus, type Stats } from './followup.js';

export type { Stats } from './followup.js';

export async function readStats(db: Queryable): Promise<Stats> {
  const { rows } = await db.query<{ status: FollowupStatus; count: number }>({
    name: 'stats_by_status',
    text: 'SELECT status, count(*)::int AS count FROM follow_ups GROUP BY status',
  });
  const byStatus = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<FollowupStatus, number>;
  for (const row of rows) byStatus[row.status] = row.count;
  return { byStatus };
}
