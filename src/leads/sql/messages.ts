/**
 * Statements on the conversation log (`messages`).
 *
 * Two statements on the send and receive paths also insert into `messages`, as one step of
 * a single round trip, and keep their own INSERT: the worker's completion
 * (markExecutedBatchSql in src/followups/sql/follow-ups.ts, one row per follow-up sent) and
 * the inbound log (logSql in src/leads/record-inbound.ts, which stamps the lead and stops
 * its enrollment in the same statement).
 */

/**
 * Logs one message. Once per provider message id for the lead (a repeat returns no row);
 * a message logged before it is sent has no provider id yet (NULLs never conflict), and a
 * repeated idempotency key is a unique violation (23505) for the caller to answer.
 * $1 lead id, $2 direction ('in' | 'out'), $3 source, $4 text, $5 message type,
 * $6 provider message id, $7 at, $8 idempotency key, $9 idempotency hash.
 */
export const insertMessageSql = `INSERT INTO messages (lead_id, direction, source, text, message_type, provider_message_id, at, idempotency_key, idempotency_hash)
VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::text, $6::text, $7::timestamptz, $8::text, $9::text)
ON CONFLICT (lead_id, provider_message_id) DO NOTHING
RETURNING id, lead_id, text, provider_message_id, idempotency_hash, at`;
