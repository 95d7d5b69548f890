/** The lead as stored (LeadRow) and as the API shows it (Lead). No imports: the typed client takes its types from here. */

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
