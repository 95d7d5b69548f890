/**
 * What the enrollment routes take and answer (POST /v1/enrollments, POST
 * /v1/enrollments/bulk). Only zod and types here, so the typed client can take its
 * types from this file without pulling in the server.
 */
import { z } from 'zod';
import { leadInputSchema, phoneField } from '../followups/followup-schemas.js';

export const MAX_BULK_LEADS = 10_000;
export const MAX_NAME_LENGTH = 120;

export const enrollLeadSchema = z
  .object({
    phone: phoneField,
    campaign: z.string().min(1).max(64),
    lead: leadInputSchema.optional(),
    anchorAt: z.iso
      .datetime({ offset: true, message: 'must be an ISO-8601 date-time with time zone' })
      .optional()
      .describe("the lead's last interaction; absent = now"),
  })
  .strict();

export interface EnrollmentView {
  id: string;
  leadId: string;
  campaign: string;
  status: 'active' | 'completed' | 'stopped';
  stopReason: string | null;
  anchorAt: string;
  shiftMs: number;
  createdAt: string;
  followups: Array<{ id: string; step: number; intent: string | null; status: string; dueAt: string }>;
}

export type RejectReason =
  | 'bad_phone'
  | 'duplicate'
  | 'empty_name'
  | 'bad_name'
  | 'bad_anchor'
  | 'anchor_in_future'
  | 'opted_out'
  | 'erased'
  | 'handoff'
  | 'converted'
  | 'invalid_number'
  | 'enrolled_in_other_campaign'
  // CSV import only: a row the parser could not read (a NUL, an unclosed quote running past
  // the record size limit), or one that is not valid UTF-8.
  | 'bad_row'
  | 'bad_encoding';

export const enrollRowSchema = z
  .object({
    phone: z.union([z.string(), z.number()]),
    name: z.string().nullish(),
    anchorAt: z.string().nullish().describe("the lead's last interaction (ISO-8601); absent = now"),
  })
  .strict();

export const bulkEnrollSchema = z
  .object({
    campaign: z.string().min(1).max(64),
    leads: z.array(enrollRowSchema).min(1, 'must hold at least one lead').max(MAX_BULK_LEADS, `must hold at most ${MAX_BULK_LEADS} leads`),
  })
  .strict();

export interface Rejection {
  index: number;
  phone: string;
  reason: RejectReason;
}

export interface BulkEnrollResult {
  enrolled: number;
  alreadyActive: number;
  rejected: Rejection[];
}
