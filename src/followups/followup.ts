/** The follow-up as stored and as the API shows it. */

export const STATUSES = ['pending', 'queued', 'sending', 'executed', 'failed', 'cancelled'] as const;
export type FollowupStatus = (typeof STATUSES)[number];
export const TERMINAL_STATUSES: readonly FollowupStatus[] = ['executed', 'failed', 'cancelled'];

export interface FollowupRow {
  id: string;
  lead_id: string;
  enrollment_id: string | null;
  campaign: string | null;
  step: number | null;
  intent: string | null;
  message: string | null;
  due_at: Date;
  planned_at: Date;
  anchor_at: Date;
  status: FollowupStatus;
  attempts: number;
  last_error: string | null;
  cancel_reason: string | null;
  defer_reason: string | null;
  provider_message_id: string | null;
  sent_text: string | null;
  composer: string | null;
  sent_at: Date | null;
  sending_started_at: Date | null;
  reconcile_attempts: number;
  idempotency_key: string | null;
  claimed_until: Date | null;
  lease_until: Date | null;
  lead_info: Record<string, unknown> | null;
  /** Set by `followups send-now --ignore-window` (migration 010): the sending window does not hold it back. */
  ignore_window?: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface FollowupEventRow {
  id: number;
  follow_up_id: string;
  at: Date;
  from_status: FollowupStatus | null;
  to_status: FollowupStatus;
  reason: string | null;
  detail: Record<string, unknown> | null;
}

export interface Followup {
  id: string;
  leadId: string;
  phone: string | null;
  enrollmentId: string | null;
  campaign: string | null;
  step: number | null;
  intent: string | null;
  status: FollowupStatus;
  dueAt: string;
  plannedAt: string;
  message: string | null;
  sentText: string | null;
  composer: string | null;
  attempts: number;
  providerMessageId: string | null;
  cancelReason: string | null;
  deferReason: string | null;
  lastError: string | null;
  sentAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface FollowupEvent {
  at: string;
  from: FollowupStatus | null;
  to: FollowupStatus;
  reason: string | null;
  detail: Record<string, unknown> | null;
}

/** The answer of POST /v1/followups. */
export type ScheduledFollowup = Pick<Followup, 'id' | 'leadId' | 'status' | 'dueAt'>;
/** One follow-up with its audit trail (GET /v1/followups/:id, cancel, retry). */
export type FollowupWithEvents = Followup & { events: FollowupEvent[] };
/** A page of GET /v1/followups, newest first. */
export interface FollowupPage {
  items: Followup[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

/** Counts for operators (GET /v1/stats) and for the followups_by_status gauge. */
export interface Stats {
  /** Every status, zero when there is none. */
  byStatus: Record<FollowupStatus, number>;
}

export function toFollowup(row: FollowupRow & { phone?: string | null }): Followup {
  return {
    id: row.id,
    leadId: row.lead_id,
    phone: row.phone ?? null,
    enrollmentId: row.enrollment_id,
    campaign: row.campaign,
    step: row.step,
    intent: row.intent,
    status: row.status,
    dueAt: iso(row.due_at)!,
    plannedAt: iso(row.planned_at)!,
    message: row.message,
    sentText: row.sent_text,
    composer: row.composer,
    attempts: row.attempts,
    providerMessageId: row.provider_message_id,
    cancelReason: row.cancel_reason,
    deferReason: row.defer_reason,
    lastError: row.last_error,
    sentAt: iso(row.sent_at),
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
  };
}

export function toFollowupEvent(row: FollowupEventRow): FollowupEvent {
  return { at: iso(row.at)!, from: row.from_status, to: row.to_status, reason: row.reason, detail: row.detail };
}
