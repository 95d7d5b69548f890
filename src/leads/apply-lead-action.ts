/**
 * Opt-out, hand-off or conversion of one lead as a caller reports it (a request body:
 * when, through which message, who says so): POST /v1/leads/:phone/opt-out | handoff |
 * converted and the agent tools opt_out_lead, handoff_to_human, mark_converted.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { parseInput } from '../validation.js';
import { normalizePhone } from '../whatsapp/phone.js';
import { toLead } from '../followups/lead.js';
import { stopLeadSchema, type StoppedLead } from './lead-schemas.js';
import { type StopReason, stopLead } from './stop-lead.js';

const FUTURE_TOLERANCE_MS = 60_000;


/** An opt-out must hold even for a number never seen (it is recorded); the others need the lead. */
export const CREATE_IF_MISSING: Record<StopReason, boolean> = { opted_out: true, handoff: false, converted: false };

/** 400 naming the field for a bad body or phone; 404 when the lead is unknown (except for an opt-out). */
export async function applyLeadAction(ctx: { db: Db; clock: Clock }, reason: StopReason, rawPhone: string, rawBody: unknown, defaultSource = 'api'): Promise<StoppedLead> {
  const phone = normalizePhone(rawPhone, 'phone');
  const body = parseInput(stopLeadSchema, rawBody);
  const now = ctx.clock.now();
  const at = body?.at ? new Date(body.at) : now;
  if (at.getTime() > now.getTime() + FUTURE_TOLERANCE_MS) throw new ValidationError('at: is in the future', 'at');
  const result = await stopLead(
    ctx.db,
    { phone, reason, at, messageId: body?.messageId ?? null, source: body?.source ?? defaultSource, createIfMissing: CREATE_IF_MISSING[reason] },
    ctx.clock,
  );
  if (!result) throw new NotFoundError(`no lead with phone ${phone}`);
  return { lead: toLead(result.lead), changed: result.changed, cancelled: result.cancelled };
}
