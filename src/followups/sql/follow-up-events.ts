/**
 * Statements on the audit trail alone. Most events are written by the transition that
 * causes them, in the same statement (./follow-ups.ts).
 */

/**
 * An audit event without a status change (e.g. why the LLM text was rejected).
 * $1 follow-up id, $2 at, $3 the current status, $4 reason, $5 detail.
 */
export const appendEventSql = `INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
     VALUES ($1::uuid, $2::timestamptz, $3::text, $3::text, $4::text, $5::jsonb)`;
