/**
 * `followups cancel --lead <phone>`: cancels every pending or queued follow-up of
 * one lead, with reason `operator`, and stops its active enrollment. Unlike an
 * opt-out or a hand-off the lead is not stamped: the agent may schedule again later.
 * The same lock order and cancel transition as stopLead (leads/stop-lead.ts), so a
 * worker's claim racing this either sees the row cancelled or already has it in flight.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { findLeadByPhone } from '../followups/lead.js';
import { cancelLocked, lockOpenFollowups } from '../leads/stop-lead.js';
import { normalizePhone } from '../whatsapp/phone.js';
import { EXIT, OperatorError } from './exit-codes.js';

export interface CancelLeadResult {
  phone: string;
  leadId: string;
  cancelled: string[];
  /** Follow-ups being sent right now: past the point of cancelling. */
  inFlight: string[];
}

export async function cancelLeadFollowups(
  ctx: { db: Db; clock: Clock },
  rawPhone: string,
  /** Who asks (the event's detail.source) and the field a bad phone is named as: the CLI by default, the MCP tool 'agent'. */
  options: { source?: string; field?: string; reason?: string } = {},
): Promise<CancelLeadResult> {
  const phone = normalizePhone(rawPhone, options.field ?? 'lead');
  const now = ctx.clock.now();
  return ctx.db.transaction(async (tx) => {
    const lead = await findLeadByPhone(tx, phone);
    if (!lead) throw new OperatorError(`no lead with phone ${phone}`, EXIT.failed, 'lead_not_found');
    const ids = await lockOpenFollowups(tx, lead.id);
    // Locked while pending or queued, so each of them moves to cancelled.
    await cancelLocked(tx, { leadId: lead.id, ids, reason: options.reason ?? 'operator', now, detail: { source: options.source ?? 'cli' } });
    const inFlight = await tx.query<{ id: string }>(
      `SELECT id FROM follow_ups WHERE lead_id = $1::uuid AND status = 'sending' ORDER BY id`,
      [lead.id],
    );
    return { phone, leadId: lead.id, cancelled: ids, inFlight: inFlight.rows.map((r) => r.id) };
  });
}

export function formatCancelLead(r: CancelLeadResult): string {
  const lines = [`lead ${r.phone}: ${r.cancelled.length} follow-up(s) cancelled (reason: operator)`];
  for (const id of r.cancelled) lines.push(`  cancelled ${id}`);
  for (const id of r.inFlight) lines.push(`  ${id} is being sent right now and cannot be cancelled`);
  return lines.join('\n');
}
