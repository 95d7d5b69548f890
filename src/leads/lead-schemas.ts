/**
 * What the lead routes take and answer: POST /v1/leads/:phone/opt-out | handoff | converted
 * (the report of it), POST /v1/leads/:phone/messages and GET /v1/leads/:phone (the timeline). Only zod here, so the typed client
 * can take its types from this file without pulling in the server.
 */
import { z } from 'zod';
import type { Followup } from '../followups/followup.js';
import type { Lead } from '../followups/lead-view.js';

/** The body of an opt-out, hand-off or conversion (optional). */
export const stopLeadSchema = z
  .object({
    at: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with time zone' }).optional().describe('when it happened; absent = now'),
    messageId: z.string().trim().min(1).max(200).optional().describe('the WhatsApp message that carried it (kept for an opt-out)'),
    source: z.string().trim().min(1).max(64).regex(/^[a-z0-9_.-]+$/i, 'letters, digits, _ . - only').optional().describe("who reports it; default 'api'"),
  })
  .strict()
  .optional();

/** A message the agent said or heard, for the conversation log. */
export const recordMessageSchema = z
  .object({
    direction: z.enum(['in', 'out']),
    text: z.string().max(4096, 'must be at most 4096 characters').refine((s) => s.trim().length > 0, 'must not be blank'),
    source: z.enum(['lead', 'agent', 'human']).optional().describe("in: 'lead' (the default); out: 'agent' (the default) or 'human'"),
    at: z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with time zone' }).optional().describe('when it was said; absent = now'),
    providerMessageId: z.string().min(1).max(200).optional().describe('WhatsApp message id; a repeat is recorded once'),
    messageType: z.string().min(1).max(64).optional(),
  })
  .strict();

/** The answer of POST /v1/leads/:phone/messages. */
export interface RecordedMessage {
  leadId: string;
  messageId: string | null;
  direction: 'in' | 'out';
  /** providerMessageId was already recorded; nothing else was done. */
  duplicate: boolean;
  /** Follow-ups cancelled because the lead replied. */
  cancelled: number;
}

/** The answer of POST /v1/leads/:phone/opt-out | handoff | converted. */
export interface StoppedLead {
  lead: Lead;
  /** False when it had already happened (the first time is kept). */
  changed: boolean;
  /** Follow-ups cancelled now. */
  cancelled: number;
}

/** The answer of DELETE /v1/leads/:phone (LGPD erasure). */
export interface ErasedLead {
  leadId: string;
  erasedAt: string;
  alreadyErased: boolean;
  cancelled: number;
}

export type TimelineItem =
  | {
      type: 'message';
      at: string;
      id: string;
      direction: 'in' | 'out';
      source: string;
      text: string | null;
      messageType: string | null;
      providerMessageId: string | null;
      followupId: string | null;
    }
  | {
      type: 'followup_event';
      at: string;
      followupId: string;
      campaign: string | null;
      step: number | null;
      intent: string | null;
      from: string | null;
      to: string;
      reason: string | null;
      detail: Record<string, unknown> | null;
    }
  | {
      /** The lead moved to another WhatsApp number (its number retired, or it wrote to another one). */
      type: 'number_change';
      at: string;
      from: string | null;
      to: string;
      reason: string;
    };

export interface LeadTimeline {
  lead: Lead;
  enrollments: Array<{ id: string; campaign: string; status: string; stopReason: string | null; anchorAt: string; createdAt: string }>;
  followups: Followup[];
  timeline: TimelineItem[];
}
