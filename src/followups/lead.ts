import { ValidationError } from '../errors.js';
import type { Queryable } from '../db/db.js';
import { phoneHmac } from '../privacy/erasure-key.js';

export interface LeadRow {
  id: string;
  phone: string;
  name: string | null;
  time_zone: string | null;
  opted_out_at: Date | null;
  opt_out_message_id: string | null;
  opt_out_source: string | null;
  handoff_at: Date | null;
  converted_at: Date | null;
  last_inbound_at: Date | null;
  last_outbound_at: Date | null;
  whatsapp_jid: string | null;
  whatsapp_lid?: string | null;
  /** The WhatsApp number (instance) the lead is bound to; null: not bound yet (or the one number). */
  whatsapp_number?: string | null;
  number_checked_at: Date | null;
  number_valid: boolean | null;
  erased_at: Date | null;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

export interface Lead {
  id: string;
  phone: string;
  name: string | null;
  timeZone: string | null;
  optedOutAt: string | null;
  handoffAt: string | null;
  convertedAt: string | null;
  lastInboundAt: string | null;
  lastOutboundAt: string | null;
  numberValid: boolean | null;
  /** The WhatsApp number the lead talks with (null: not bound yet). */
  whatsappNumber: string | null;
  erasedAt: string | null;
  metadata: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function toLead(row: LeadRow): Lead {
  return {
    id: row.id,
    phone: row.phone,
    name: row.name,
    timeZone: row.time_zone,
    optedOutAt: iso(row.opted_out_at),
    handoffAt: iso(row.handoff_at),
    convertedAt: iso(row.converted_at),
    lastInboundAt: iso(row.last_inbound_at),
    lastOutboundAt: iso(row.last_outbound_at),
    numberValid: row.number_valid,
    whatsappNumber: row.whatsapp_number ?? null,
    erasedAt: iso(row.erased_at),
    metadata: row.metadata,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
  };
}

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
  const { rows } = await db.query<LeadRow>('SELECT * FROM leads WHERE phone = $1::text', [phone]);
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
