import { ValidationError } from '../errors.js';
import type { Queryable } from '../db/db.js';
import { leadByPhoneSql } from '../leads/sql/leads.js';
import type { LeadRow } from './lead-view.js';
import { phoneHmac } from '../privacy/erasure-key.js';

export { type Lead, type LeadRow, toLead } from './lead-view.js';

/** The most a lead's merged metadata may hold, as JSON text. */
export const MAX_MERGED_METADATA_BYTES = 16 * 1024;

/**
 * Finds or creates the lead for a canonical phone. A name given now fills or
 * replaces the stored one; metadata is merged. Never matches another number.
 */
export async function upsertLead(
  db: Queryable,
  input: { phone: string; name?: string | null; timeZone?: string | null; metadata?: Record<string, unknown>; now: Date },
): Promise<LeadRow> {
  const { rows } = await db.query<LeadRow>(
    {
      name: 'leads_upsert',
      // The merge is bounded: metadata that would outgrow $7 bytes leaves the row untouched
      // (no row returned), and the caller answers 400. Every claim reads this column.
      text: `
INSERT INTO leads (phone, name, time_zone, metadata, created_at, updated_at, phone_hmac)
VALUES ($1::text, $2::text, $3::text, COALESCE($4::jsonb, '{}'::jsonb), $5::timestamptz, $5::timestamptz, $6::text)
ON CONFLICT (phone) DO UPDATE
   SET name = COALESCE(EXCLUDED.name, leads.name),
       time_zone = COALESCE(EXCLUDED.time_zone, leads.time_zone),
       metadata = leads.metadata || EXCLUDED.metadata,
       updated_at = EXCLUDED.updated_at
 WHERE EXCLUDED.metadata = '{}'::jsonb OR octet_length((leads.metadata || EXCLUDED.metadata)::text) <= $7::int
RETURNING *`,
    },
    // phone_hmac: for migration 006's trigger (an erased number's opt-out carries over); never stored.
    [input.phone, input.name ?? null, input.timeZone ?? null, input.metadata ?? null, input.now, phoneHmac(input.phone), MAX_MERGED_METADATA_BYTES],
  );
  if (!rows[0]) {
    throw new ValidationError(`lead: the lead's metadata would grow past ${MAX_MERGED_METADATA_BYTES / 1024} KB; send fewer or smaller fields`, 'lead');
  }
  return rows[0];
}

export async function findLeadByPhone(db: Queryable, phone: string): Promise<LeadRow | null> {
  const { rows } = await db.query<LeadRow>(leadByPhoneSql, [phone]);
  return rows[0] ?? null;
}

/** Why this lead must not be written to, or null. */
export function stopReasonOf(lead: LeadRow): string | null {
  if (lead.erased_at) return 'erased';
  if (lead.opted_out_at) return 'opted_out';
  if (lead.handoff_at) return 'handoff';
  if (lead.converted_at) return 'converted';
  if (lead.number_valid === false) return 'invalid_number';
  return null;
}
