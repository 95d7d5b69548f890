/**
 * A lead's story in one list, oldest first: what the lead, the agent, a person
 * and the follow-ups said (messages), and what happened to each follow-up (its
 * audit events: planned, published, sent, deferred, cancelled, why the LLM text
 * was rejected, ...). For GET /v1/leads/:phone.
 */
import type { Queryable } from '../db/db.js';
import { NotFoundError } from '../errors.js';
import { toFollowup, type FollowupRow } from '../followups/followup.js';
import { normalizePhone } from '../whatsapp/phone.js';
import { findLeadByPhone, type Lead, type LeadRow, toLead } from '../followups/lead.js';
import type { LeadTimeline, TimelineItem } from './lead-schemas.js';

export type { LeadTimeline, TimelineItem } from './lead-schemas.js';

/** Newest items kept when a lead's log is very long (the oldest are dropped first). */
export const TIMELINE_LIMIT = 1_000;

const iso = (d: Date | string) => new Date(d).toISOString();

export async function readLeadTimeline(db: Queryable, rawPhone: string): Promise<LeadTimeline> {
  const phone = normalizePhone(rawPhone, 'phone');
  const lead = await findLeadByPhone(db, phone);
  if (!lead) throw new NotFoundError(`no lead with phone ${phone}`);

  const [followups, messages, events, enrollments, numberChanges] = await Promise.all([
    db.query<FollowupRow>('SELECT * FROM follow_ups WHERE lead_id = $1::uuid ORDER BY created_at, step NULLS LAST', [lead.id]),
    db.query<{
      id: string; at: Date; direction: 'in' | 'out'; source: string; text: string | null;
      message_type: string | null; provider_message_id: string | null; follow_up_id: string | null;
    }>(
      `SELECT * FROM (SELECT * FROM messages WHERE lead_id = $1::uuid ORDER BY at DESC LIMIT $2::int) m ORDER BY at`,
      [lead.id, TIMELINE_LIMIT],
    ),
    db.query<{
      id: number; at: Date; follow_up_id: string; from_status: string | null; to_status: string; reason: string | null;
      detail: Record<string, unknown> | null; campaign: string | null; step: number | null; intent: string | null;
    }>(
      `SELECT * FROM (
         SELECT e.*, f.campaign, f.step, f.intent
           FROM follow_up_events e JOIN follow_ups f ON f.id = e.follow_up_id
          WHERE f.lead_id = $1::uuid
          ORDER BY e.id DESC LIMIT $2::int) x
        ORDER BY id`,
      [lead.id, TIMELINE_LIMIT],
    ),
    // Through follow_ups (indexed by lead) rather than a scan of every enrollment.
    db.query<{ id: string; campaign: string; status: string; stop_reason: string | null; anchor_at: Date; created_at: Date }>(
      `SELECT * FROM enrollments
        WHERE id IN (SELECT enrollment_id FROM follow_ups WHERE lead_id = $1::uuid AND enrollment_id IS NOT NULL)
           OR (lead_id = $1::uuid AND status = 'active')
        ORDER BY created_at`,
      [lead.id],
    ),
    db.query<{ at: Date; from_number: string | null; to_number: string; reason: string }>(
      'SELECT at, from_number, to_number, reason FROM lead_number_events WHERE lead_id = $1::uuid ORDER BY id DESC LIMIT $2::int',
      [lead.id, TIMELINE_LIMIT],
    ),
  ]);

  const timeline: TimelineItem[] = [
    ...messages.rows.map((m): TimelineItem => ({
      type: 'message',
      at: iso(m.at),
      id: m.id,
      direction: m.direction,
      source: m.source,
      text: m.text,
      messageType: m.message_type,
      providerMessageId: m.provider_message_id,
      followupId: m.follow_up_id,
    })),
    ...events.rows.map((e): TimelineItem => ({
      type: 'followup_event',
      at: iso(e.at),
      followupId: e.follow_up_id,
      campaign: e.campaign,
      step: e.step,
      intent: e.intent,
      from: e.from_status,
      to: e.to_status,
      reason: e.reason,
      detail: e.detail,
    })),
    ...numberChanges.rows.reverse().map((c): TimelineItem => ({ type: 'number_change', at: iso(c.at), from: c.from_number, to: c.to_number, reason: c.reason })),
  ];
  // Stable: at equal times, messages and events keep their own order, messages first
  // (a reply and the cancellations it causes share an instant; the reply came first).
  timeline.sort((a, b) => a.at.localeCompare(b.at) || (a.type === b.type ? 0 : a.type === 'message' ? -1 : 1));

  return {
    lead: toLead(lead),
    enrollments: enrollments.rows.map((e) => ({
      id: e.id,
      campaign: e.campaign,
      status: e.status,
      stopReason: e.stop_reason,
      anchorAt: iso(e.anchor_at),
      createdAt: iso(e.created_at),
    })),
    followups: followups.rows.map((f) => toFollowup({ ...f, phone: lead.phone })),
    timeline,
  };
}
