/**
 * The operator's pause: hold every follow-up, or one campaign's, with a reason,
 * until an operator resumes (POST /v1/sending/pause|resume, the dashboard, the
 * CLI's `followups pause|resume`). Stored in sending_pauses, so it survives
 * restarts and every relay and worker sees it through the sending gate within
 * its cache (about a second); held follow-ups are deferred with
 * defer_reason `operator_paused` (src/worker/execute-followup.ts), never dropped.
 * On resume the follow-ups it held are made due at once.
 *
 * Each row is both the pause and its record: when and why it was paused and by
 * whom, when and why it was resumed and by whom.
 */
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { Queryable } from '../db/db.js';
import { ConflictError, ValidationError } from '../errors.js';
import { parseInput } from '../validation.js';
import { OPERATOR_PAUSED, type OperatorPause } from './sending-gate.js';

const who = z.string().trim().min(1).max(100).optional().describe("who asks (an operator's name or e-mail); default 'api'");
const scope = z.enum(['all', 'campaign', 'number']).default('all').describe("'all' (default) or 'campaign' (give `campaign`); one WhatsApp number is paused through PATCH /v1/numbers/{name}");
const campaign = z.string().trim().min(1).max(100).optional().describe("the campaign's name, with scope 'campaign'");

export const pauseSendingSchema = z
  .object({
    scope,
    campaign,
    reason: z.string().trim().min(1, 'must not be empty').max(500).describe('why (shown on the dashboard, in /health/ready and the record)'),
    who,
  })
  .strict();

export const resumeSendingSchema = z
  .object({
    scope,
    campaign,
    reason: z.string().trim().min(1, 'must not be empty').max(500).optional().describe('why it may send again'),
    who,
  })
  .strict();

/** A pause as recorded: the active pause the gate reads, and how it ended, if it has. */
export interface SendingPause extends OperatorPause {
  resumedAt: string | null;
  resumedBy: string | null;
  resumeReason: string | null;
}

interface PauseRow {
  id: string;
  scope: SendingPause['scope'];
  campaign: string | null;
  number: string | null;
  reason: string;
  who: string;
  at: Date;
  resumed_at: Date | null;
  resumed_by: string | null;
  resume_reason: string | null;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
const toPause = (r: PauseRow): SendingPause => ({
  id: String(r.id),
  scope: r.scope,
  campaign: r.campaign,
  number: r.number,
  reason: r.reason,
  who: r.who,
  at: iso(r.at)!,
  resumedAt: iso(r.resumed_at),
  resumedBy: r.resumed_by,
  resumeReason: r.resume_reason,
});

type Target = { scope: 'all' | 'campaign'; campaign: string | null };

/** The campaigns by name (the Campaigns map of campaigns/campaign.ts), to refuse an unknown one. */
type KnownCampaigns = ReadonlyMap<string, unknown>;

function targetOf(input: { scope: string; campaign?: string }, campaigns?: KnownCampaigns): Target {
  if (input.scope === 'number') {
    throw new ValidationError(
      "scope: one WhatsApp number is paused through PATCH /v1/numbers/{name} {\"action\": \"pause\"} (or `followups numbers pause <name>`); here use 'all' or 'campaign'",
      'scope',
    );
  }
  if (input.scope === 'campaign') {
    if (!input.campaign) throw new ValidationError("campaign: is required with scope 'campaign'", 'campaign');
    if (campaigns && !campaigns.has(input.campaign)) {
      throw new ValidationError(`campaign: unknown campaign '${input.campaign}' (known: ${[...campaigns.keys()].join(', ') || 'none'})`, 'campaign');
    }
    return { scope: 'campaign', campaign: input.campaign };
  }
  if (input.campaign) throw new ValidationError("campaign: only with scope 'campaign'", 'campaign');
  return { scope: 'all', campaign: null };
}

/** Pauses; pausing what is already paused answers the existing pause (`created: false`). */
export async function pauseSending(
  ctx: { db: Queryable; clock: Clock; campaigns?: KnownCampaigns },
  rawInput: unknown,
  defaultWho = 'api',
): Promise<{ pause: SendingPause; created: boolean }> {
  const input = parseInput(pauseSendingSchema, rawInput);
  const target = targetOf(input, ctx.campaigns);
  const { rows } = await ctx.db.query<PauseRow>(
    `INSERT INTO sending_pauses (scope, campaign, reason, who, at) VALUES ($1::text, $2::text, $3::text, $4::text, $5::timestamptz)
     ON CONFLICT (scope, COALESCE(campaign, ''), COALESCE(number, '')) WHERE resumed_at IS NULL DO NOTHING
     RETURNING *`,
    [target.scope, target.campaign, input.reason, input.who ?? defaultWho, ctx.clock.now()],
  );
  if (rows[0]) return { pause: toPause(rows[0]), created: true };
  const existing = await ctx.db.query<PauseRow>(
    `SELECT * FROM sending_pauses WHERE resumed_at IS NULL AND scope = $1::text AND campaign IS NOT DISTINCT FROM $2::text AND number IS NULL`,
    [target.scope, target.campaign],
  );
  return { pause: toPause(existing.rows[0]!), created: false };
}

/**
 * Lifts the pause of that target (409 `not_paused` when there is none) and makes the follow-ups
 * it held due now, so they go out at once instead of at their next look (PAUSE_RETRY_SECONDS).
 */
export async function resumeSending(
  ctx: { db: Queryable; clock: Clock; campaigns?: KnownCampaigns },
  rawInput: unknown,
  defaultWho = 'api',
): Promise<{ pause: SendingPause; released: number }> {
  const input = parseInput(resumeSendingSchema, rawInput);
  const target = targetOf(input); // a campaign removed from the definitions can still be resumed
  const now = ctx.clock.now();
  const { rows } = await ctx.db.query<PauseRow>(
    `UPDATE sending_pauses SET resumed_at = $3::timestamptz, resumed_by = $4::text, resume_reason = $5::text
      WHERE resumed_at IS NULL AND scope = $1::text AND campaign IS NOT DISTINCT FROM $2::text AND number IS NULL
      RETURNING *`,
    [target.scope, target.campaign, now, input.who ?? defaultWho, input.reason ?? null],
  );
  if (!rows[0]) {
    throw new ConflictError(target.scope === 'all' ? 'sending is not paused' : `campaign ${target.campaign} is not paused`, 'not_paused');
  }
  // Held rows were deferred by at most PAUSE_RETRY_SECONDS (≤ 1 h): a range of the pending index.
  const released = await ctx.db.query(
    `UPDATE follow_ups SET due_at = $1::timestamptz, updated_at = $1::timestamptz
      WHERE status = 'pending' AND due_at > $1::timestamptz AND due_at <= $1::timestamptz + interval '1 hour'
        AND defer_reason = $2::text AND ($3::text IS NULL OR campaign = $3::text)`,
    [now, OPERATOR_PAUSED, target.campaign],
  );
  return { pause: toPause(rows[0]), released: released.rowCount };
}

export async function listActivePauses(db: Queryable): Promise<SendingPause[]> {
  const { rows } = await db.query<PauseRow>('SELECT * FROM sending_pauses WHERE resumed_at IS NULL ORDER BY id');
  return rows.map(toPause);
}

/** The most recent pauses (each with its resume, if any): the record of who paused what, when and why. */
export async function listRecentPauses(db: Queryable, limit = 20): Promise<SendingPause[]> {
  const { rows } = await db.query<PauseRow>('SELECT * FROM sending_pauses ORDER BY at DESC, id DESC LIMIT $1::int', [limit]);
  return rows.map(toPause);
}
