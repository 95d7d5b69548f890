/**
 * The opt-out confirmation ("Tudo certo, não vou mais te mandar mensagens…"): the campaign's
 * `optOutConfirmation`, sent once when a fan opts out by writing to us. It is a follow-up like
 * every other message we send — intent `opt_out_confirmation`, due now, scheduled in the same
 * transaction that records the opt-out (leads/stop-lead.ts) — so it goes through the claim, the
 * executor, the audit trail (follow_up_events) and the lead's timeline.
 *
 * What it is exempt from, and why (an operator's choice: a fan who wrote "PARAR" expects the
 * answer at once, and exactly one):
 *   - the opt-out itself and the fan's replies: the claim does not cancel it as `opted_out` or
 *     `lead_replied`, and neither a repeated "parar" nor a later message cancels it (it is the
 *     answer to them);
 *   - the sending window, the weekly per-lead cap, the pace and the daily cap, and the number
 *     check (the fan just wrote from that number): the send policy is not asked — as before, when
 *     the webhook sent it directly; it does not take a point of the number's pace;
 *   - the pre-send reply check (a reply cannot stop it).
 * What still holds it:
 *   - exactly once: one per lead, ever (migration 017's unique index; a redelivered webhook or a
 *     second "parar" schedules nothing), and the claim (never sent twice);
 *   - an operator's pause, a paused or disconnected number, paused sending (bad key, silent
 *     webhooks): held and sent on resume, never dropped;
 *   - a lead erased, handed to a person, converted, or whose number is invalid: cancelled at claim;
 *   - an operator's cancel (`followups cancel --lead`, the API's cancel).
 * The API refuses the intent (followup-schemas.ts): nobody else can schedule an exempt follow-up.
 */
import type { Queryable } from '../db/db.js';

export const OPT_OUT_CONFIRMATION = 'opt_out_confirmation';

/** True for the opt-out confirmation (exempt from the send policy and the pre-send check). */
export function isOptOutConfirmation(followup: { intent: string | null }): boolean {
  return followup.intent === OPT_OUT_CONFIRMATION;
}

/** The campaign the lead heard from last: its enrollments and follow-ups, newest first. */
const lastCampaignSql = {
  name: 'optout_confirmation_campaign',
  text: `
SELECT campaign FROM (
  SELECT campaign, created_at FROM enrollments WHERE lead_id = $1::uuid
  UNION ALL
  SELECT campaign, created_at FROM follow_ups WHERE lead_id = $1::uuid AND campaign IS NOT NULL
) c ORDER BY created_at DESC LIMIT 1`,
};

// One per lead (the unique index of migration 017): a second one is not written. Campaign NULL:
// the confirmation is not a step of the campaign (no funnel count, no campaign pause); which
// campaign's text it is goes in its `scheduled` event.
const scheduleSql = {
  name: 'optout_confirmation_schedule',
  text: `
WITH made AS (
  INSERT INTO follow_ups (lead_id, intent, message, due_at, planned_at, anchor_at, created_at, updated_at)
  VALUES ($1::uuid, 'opt_out_confirmation', $2::text, $3::timestamptz, $3::timestamptz, $3::timestamptz, $3::timestamptz, $3::timestamptz)
  ON CONFLICT (lead_id) WHERE intent = 'opt_out_confirmation' DO NOTHING
  RETURNING id
), events AS (
  INSERT INTO follow_up_events (follow_up_id, at, from_status, to_status, reason, detail)
  SELECT id, $3::timestamptz, NULL, 'pending', 'scheduled', $4::jsonb FROM made
)
SELECT id FROM made`,
};

/**
 * Schedules the lead's opt-out confirmation, due now, in the caller's transaction (the one that
 * recorded the opt-out). `text` gets the campaign the lead heard from last; nothing is scheduled
 * when it has no confirmation (or the lead no campaign), or the lead already had one. Returns
 * the follow-up's id, or null.
 */
export async function scheduleOptOutConfirmation(
  tx: Queryable,
  options: { leadId: string; now: Date; text: (campaign: string) => string | undefined; detail?: Record<string, unknown> },
): Promise<string | null> {
  const { rows: last } = await tx.query<{ campaign: string }>(lastCampaignSql, [options.leadId]);
  const campaign = last[0]?.campaign;
  const text = campaign ? options.text(campaign) : undefined;
  if (!campaign || !text) return null;
  const detail = { dueAt: options.now.toISOString(), campaign, ...options.detail };
  const { rows } = await tx.query<{ id: string }>(scheduleSql, [options.leadId, text, options.now, detail]);
  return rows[0]?.id ?? null;
}
