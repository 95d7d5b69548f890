/**
 * Enrolling one lead in a campaign (POST /v1/enrollments): validate → write the
 * lead (name, time zone, metadata) → the same set-based enrollment as the bulk
 * route → read back the enrollment with its follow-ups.
 *
 * Idempotent: asking again while the lead has an active enrollment in that
 * campaign answers with the existing one (`created: false`), never a second
 * sequence. Leads that must not be written to are refused (409).
 */
import type { Clock } from '../clock.js';
import type { Db, Queryable } from '../db/db.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { upsertLead } from '../followups/lead.js';
import { parseInput } from '../validation.js';
import { normalizePhone } from '../whatsapp/phone.js';
import type { Campaigns } from './campaign.js';
import { enrollPrepared, findCampaign, parseAnchor } from './enroll-leads.js';
import { enrollLeadSchema, type EnrollmentView } from './enrollment-schemas.js';



const REFUSALS: Record<string, string> = {
  opted_out: 'the lead opted out',
  erased: 'the lead was erased',
  invalid_number: 'the number is not on WhatsApp',
  handoff: 'the lead was handed to a person',
  converted: 'the lead is already a member',
};

export async function enrollLead(
  ctx: { db: Db; clock: Clock; campaigns: Campaigns },
  rawInput: unknown,
): Promise<{ enrollment: EnrollmentView; created: boolean }> {
  // validate
  const input = parseInput(enrollLeadSchema, rawInput);
  const campaign = findCampaign(ctx.campaigns, input.campaign);
  const phone = normalizePhone(input.phone, 'phone');
  const now = ctx.clock.now();
  const anchorAt = parseAnchor(input.anchorAt, now);
  if (anchorAt === 'anchor_in_future') throw new ValidationError("anchorAt: is in the future; give the lead's last interaction", 'anchorAt');
  if (anchorAt === 'bad_anchor') throw new ValidationError('anchorAt: must be an ISO-8601 date-time with time zone', 'anchorAt');
  const { name, timeZone, ...metadata } = input.lead ?? {};

  // execute
  const lead = await upsertLead(ctx.db, { phone, name: name || null, timeZone: timeZone ?? null, metadata, now });
  const [outcome] = await enrollPrepared(ctx.db, {
    campaign,
    rows: [{ index: 0, phone, name: null, anchorAt }],
    now,
    upsertLeads: false,
  });

  // map
  if (outcome!.outcome === 'rejected') {
    const reason = outcome!.reason!;
    if (reason === 'enrolled_in_other_campaign') {
      throw new ConflictError(`the lead already follows another campaign (enrollment ${outcome!.enrollmentId}); one active enrollment per lead`, 'already_enrolled');
    }
    throw new ConflictError(`${REFUSALS[reason] ?? reason}; enrollment refused`, `lead_${reason}`);
  }
  const enrollmentId = outcome!.enrollmentId ?? (await findActiveEnrollmentId(ctx.db, lead.id));
  if (!enrollmentId) throw new ConflictError('the active enrollment ended while this request ran; try again', 'enrollment_changed');
  return { enrollment: await getEnrollment(ctx.db, enrollmentId), created: outcome!.outcome === 'enrolled' };
}

async function findActiveEnrollmentId(db: Queryable, leadId: string): Promise<string | null> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM enrollments WHERE lead_id = $1::uuid AND status = 'active'`,
    [leadId],
  );
  return rows[0]?.id ?? null;
}

export async function getEnrollment(db: Queryable, id: string): Promise<EnrollmentView> {
  const { rows } = await db.query<{
    id: string;
    lead_id: string;
    campaign: string;
    status: EnrollmentView['status'];
    stop_reason: string | null;
    anchor_at: Date;
    shift_ms: number;
    created_at: Date;
    followups: Array<{ id: string; step: number; intent: string | null; status: string; due_at: string }>;
  }>(
    `SELECT e.*, COALESCE((SELECT json_agg(json_build_object('id', f.id, 'step', f.step, 'intent', f.intent,
                                                          'status', f.status, 'due_at', f.due_at) ORDER BY f.step)
                             FROM follow_ups f WHERE f.enrollment_id = e.id), '[]'::json) AS followups
       FROM enrollments e WHERE e.id = $1::uuid`,
    [id],
  );
  const row = rows[0];
  if (!row) throw new NotFoundError(`enrollment ${id} not found`);
  return {
    id: row.id,
    leadId: row.lead_id,
    campaign: row.campaign,
    status: row.status,
    stopReason: row.stop_reason,
    anchorAt: new Date(row.anchor_at).toISOString(),
    shiftMs: Number(row.shift_ms),
    createdAt: new Date(row.created_at).toISOString(),
    followups: row.followups.map((f) => ({ id: f.id, step: f.step, intent: f.intent, status: f.status, dueAt: new Date(f.due_at).toISOString() })),
  };
}
