/**
 * The agent answers a fan through the service (POST /v1/leads/:phone/send, the
 * MCP tool send_message): the same transport and per-number pace and daily cap
 * as the follow-ups, but not the sending window — it answers someone who just
 * wrote.
 *
 *   refuse (opted out, handed off, erased, not on WhatsApp: 409 with the reason)
 *   → pace → log the message as ours (source 'agent') → send → store Evolution's id
 *
 * The message is logged before it is sent, as the opt-out confirmation is, so
 * Evolution's fromMe echo (which may arrive before the send returns) is
 * recognised as ours by the webhook handler (sentByUs: same text, moments ago)
 * and never taken for a person taking over. Idempotent on `idempotencyKey`, as
 * follow-ups are: a repeat returns the first send; a repeat whose first send
 * timed out asks Evolution whether it went out before sending again.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Db } from '../db/db.js';
import { readDbError } from '../db/db-errors.js';
import { ConflictError, SendError, UnavailableError } from '../errors.js';
import type { SendingGate } from '../followups/sending-gate.js';
import type { Logger } from '../log.js';
import type { Numbers } from '../numbers/whatsapp-numbers.js';
import type { SendLimits } from '../policy/send-limits.js';
import { parseInput } from '../validation.js';
import type { SendPolicy } from '../policy/send-policy.js';
import { normalizePhone } from '../whatsapp/phone.js';
import type { Transport } from '../whatsapp/transport.js';
import { erasedPhone } from '../privacy/erasure-key.js';
import { findLeadByPhone, stopReasonOf, upsertLead } from '../followups/lead.js';
import { markNumberInvalid } from '../followups/mark-number-invalid.js';
import { sendMessageSchema, type SentMessage } from './send-message-schema.js';
import { insertMessageSql } from './sql/messages.js';


export interface SendMessageDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  transport: Transport;
  gate: SendingGate;
  policy: Pick<SendPolicy, 'typingDelayMs'>;
  sendLimits: SendLimits | null;
  /** How long to tell the caller to wait while sending is paused. */
  pauseRetryMs: number;
  /** The WhatsApp numbers: the message goes out from the lead's (unset: the default number). */
  numbers?: Numbers;
}

/** What sendAgentMessage needs, from the context (the route and the agent tool alike). */
export function sendDepsOf(
  ctx: Omit<SendMessageDeps, 'pauseRetryMs' | 'policy' | 'numbers'> & { policy: SendPolicy; numbers: Numbers; config: Pick<Config, 'pauseRetryMs'> },
): SendMessageDeps {
  return {
    db: ctx.db,
    clock: ctx.clock,
    log: ctx.log,
    transport: ctx.transport,
    gate: ctx.gate,
    policy: ctx.policy,
    sendLimits: ctx.sendLimits,
    pauseRetryMs: ctx.config.pauseRetryMs,
    numbers: ctx.numbers,
  };
}


/** What the agent may not write to, with the reason the 409 carries. */
const REFUSED: Record<string, string> = {
  opted_out: 'the lead opted out; nothing may be sent to it',
  handoff: 'a person took the conversation over (handoff); the agent must not write',
  erased: "the lead's data was erased (LGPD); nothing may be sent to it",
  invalid_number: 'the number is not on WhatsApp',
};

interface LoggedRow {
  id: string;
  lead_id: string;
  text: string | null;
  provider_message_id: string | null;
  idempotency_hash: string | null;
  at: Date;
}

export async function sendAgentMessage(deps: SendMessageDeps, rawPhone: string, rawInput: unknown, options: { idempotencyKey?: string } = {}): Promise<SentMessage> {
  const phone = normalizePhone(rawPhone, 'phone');
  const input = parseInput(sendMessageSchema, rawInput);
  const key = options.idempotencyKey ?? input.idempotencyKey ?? null;
  const hash = key ? createHash('sha256').update(JSON.stringify([phone, input.text, input.typing ?? true])).digest('hex') : null;

  if (key) {
    const earlier = await findByKey(deps.db, key);
    if (earlier) {
      const repeat = await repeatOf(deps, earlier, { phone, hash: hash!, key });
      if (repeat) return repeat;
    }
  }

  // Refusals first: they are cheap and final.
  const existing = await findLeadByPhone(deps.db, phone);
  if (existing) assertWritable(stopReasonOf(existing));
  else if (await findLeadByPhone(deps.db, erasedPhone(phone))) assertWritable('erased');

  const pause = await deps.gate.state();
  if (pause.paused) {
    throw new UnavailableError(`sending is paused (${pause.reason ?? 'paused'}); nothing was sent`, 'sending_paused', Math.ceil(deps.pauseRetryMs / 1000));
  }

  const now = deps.clock.now();
  const instance = deps.numbers ? await numberFor(deps, deps.numbers, phone, existing?.id ?? null, existing?.whatsapp_number ?? null, now) : undefined;
  if (deps.sendLimits) {
    const reservation = await deps.sendLimits.reserve(now, 'send', instance);
    if (!reservation.ok) {
      const seconds = Math.max(1, Math.ceil((reservation.retryAt.getTime() - deps.clock.now().getTime()) / 1000));
      throw new UnavailableError(
        reservation.reason === 'pace'
          ? `the number's sending pace is used up; try again in ${seconds} s (nothing was sent)`
          : `the number's daily cap is reached; try again after ${reservation.retryAt.toISOString()} (nothing was sent)`,
        reservation.reason,
        seconds,
        429,
      );
    }
  }

  // Logged before the send (source 'agent'): the echo may arrive before the send returns.
  let logged: LoggedRow;
  try {
    logged = await deps.db.transaction(async (tx) => {
      const lead = await upsertLead(tx, { phone, now });
      // Re-checked under the transaction: an opt-out may have landed meanwhile.
      assertWritable(stopReasonOf(lead));
      const { rows } = await tx.query<LoggedRow>(insertMessageSql, [lead.id, 'out', 'agent', input.text, 'conversation', null, now, key, hash]);
      return rows[0]!;
    });
  } catch (error) {
    // Two requests with one key raced: the loser answers as a repeat.
    if (readDbError(error).uniqueViolation && key) {
      const earlier = await findByKey(deps.db, key);
      if (earlier) {
        const repeat = await repeatOf(deps, earlier, { phone, hash: hash!, key });
        if (repeat) return repeat;
      }
    }
    throw error;
  }
  return deliver(deps, logged, phone, input.text, input.typing ?? true, instance);
}

/**
 * The lead's number (bound now when it has none: the active number with the most room left
 * today). 503 sending_paused while that number is paused: never sent from another number.
 */
async function numberFor(deps: SendMessageDeps, numbers: Numbers, phone: string, leadId: string | null, bound: string | null, now: Date): Promise<string> {
  let name = bound ?? (numbers.several ? null : numbers.defaultName);
  if (name === null) {
    const id = leadId ?? (await upsertLead(deps.db, { phone, now })).id;
    name = await numbers.assign(id, now);
  }
  const row = name === null ? undefined : (await numbers.rows()).get(name);
  const paused = name === null || !numbers.names.includes(name) || (row && row.state !== 'active');
  if (paused) {
    const why = name === null ? 'no active WhatsApp number' : `WhatsApp number ${name} is ${row?.state ?? 'not configured'}`;
    throw new UnavailableError(`sending is paused (${why}); nothing was sent`, 'sending_paused', Math.ceil(deps.pauseRetryMs / 1000));
  }
  return name!;
}

function assertWritable(reason: string | null): void {
  if (reason && reason in REFUSED) throw new ConflictError(REFUSED[reason]!, `lead_${reason}`);
}

async function deliver(deps: SendMessageDeps, logged: LoggedRow, phone: string, text: string, typing: boolean, instance?: string): Promise<SentMessage> {
  const log = deps.log.child({ leadId: logged.lead_id, messageId: logged.id });
  try {
    const sent = await deps.transport.sendText({ number: phone, text, delayMs: typing ? deps.policy.typingDelayMs(text) : 0, ...(instance ? { instance } : {}) });
    return await markSent(deps, logged, phone, sent.providerMessageId, true);
  } catch (error) {
    if (!(error instanceof SendError)) throw error;
    return handleSendError(deps, logged, phone, error, log, instance);
  }
}

async function markSent(deps: SendMessageDeps, logged: LoggedRow, phone: string, providerMessageId: string, created: boolean): Promise<SentMessage> {
  const now = deps.clock.now();
  await deps.db.transaction(async (tx) => {
    await tx.query('UPDATE messages SET provider_message_id = $2::text WHERE id = $1::uuid', [logged.id, providerMessageId]);
    await tx.query(
      `UPDATE leads SET last_outbound_at = GREATEST(COALESCE(last_outbound_at, $2::timestamptz), $2::timestamptz), updated_at = $3::timestamptz
        WHERE id = $1::uuid`,
      [logged.lead_id, logged.at, now],
    );
  });
  deps.log.info({ leadId: logged.lead_id, messageId: logged.id, providerMessageId, created }, 'agent message sent');
  return {
    messageId: logged.id,
    leadId: logged.lead_id,
    phone,
    providerMessageId,
    text: logged.text ?? '',
    sentAt: new Date(logged.at).toISOString(),
    created,
  };
}

async function handleSendError(deps: SendMessageDeps, logged: LoggedRow, phone: string, error: SendError, log: Logger, instance?: string): Promise<never> {
  if (error.kind === 'ambiguous') {
    // It may be on the fan's phone: the row stays, so a repeat with the same key asks Evolution first.
    log.warn({ err: error }, 'agent message: send timed out; outcome unknown');
    throw new UnavailableError(
      'the send timed out and may have gone out; repeat with the same idempotencyKey to find out (it is not sent twice)',
      'send_outcome_unknown',
      5,
      504,
    );
  }
  // Surely not sent: the log row goes, so the conversation shows only what the fan received.
  await deps.db.query('DELETE FROM messages WHERE id = $1::uuid', [logged.id]);
  if (error.kind === 'permanent' && error.reason === 'invalid_number') {
    const now = deps.clock.now();
    await markNumberInvalid(deps.db, { leadId: logged.lead_id, now, detail: { source: 'agent_send', followupsCancelled: 0 } });
    throw new ConflictError(REFUSED.invalid_number!, 'lead_invalid_number');
  }
  if (error.kind === 'configuration') {
    // As the worker does: our side is broken, every sender (of this number, with several) pauses until it is fixed.
    if (deps.numbers?.several && instance) await deps.numbers.setWhatsappPause(instance, true, `evolution_${error.reason}`);
    else await deps.gate.pause(`evolution_${error.reason}`, error.message);
    log.error({ reason: error.reason }, 'agent message: transport misconfigured; sending paused');
    throw new UnavailableError(`sending is paused (evolution_${error.reason}); nothing was sent`, 'sending_paused', Math.ceil(deps.pauseRetryMs / 1000));
  }
  if (error.kind === 'permanent') {
    log.warn({ err: error }, 'agent message rejected by WhatsApp');
    throw new UnavailableError(`WhatsApp rejected the message (${error.reason}); nothing was sent`, 'send_rejected', 0, 502);
  }
  log.warn({ err: error }, 'agent message: send failed; nothing was sent');
  throw new UnavailableError(`WhatsApp could not be reached (${error.reason}); nothing was sent, try again`, 'send_failed', 5);
}

async function findByKey(db: Db, key: string): Promise<(LoggedRow & { phone: string }) | null> {
  const { rows } = await db.query<LoggedRow & { phone: string }>(
    `SELECT m.id, m.lead_id, m.text, m.provider_message_id, m.idempotency_hash, m.at, l.phone
       FROM messages m JOIN leads l ON l.id = m.lead_id WHERE m.idempotency_key = $1::text`,
    [key],
  );
  return rows[0] ?? null;
}

/**
 * A request whose key was used before: the same request gets the first answer; another
 * request with that key is refused (409), as for follow-ups. Null when the first send
 * surely did not go out (its row is gone then) and this one should send.
 */
async function repeatOf(deps: SendMessageDeps, earlier: LoggedRow & { phone: string }, request: { phone: string; hash: string; key: string }): Promise<SentMessage | null> {
  if (earlier.phone !== request.phone || earlier.idempotency_hash !== request.hash) {
    throw new ConflictError(
      `idempotencyKey: "${request.key}" was already used for message ${earlier.id} with a different request (phone, text or typing differ); use a new key for a new request`,
      'idempotency_key_reused',
    );
  }
  if (earlier.provider_message_id) return markSent(deps, earlier, request.phone, earlier.provider_message_id, false);
  // No provider id: in flight now, or its send timed out. Ask Evolution before anything is resent.
  let found: { providerMessageId: string } | null;
  try {
    // On the lead's number, the one that sent it.
    const lead = deps.numbers?.several ? await findLeadByPhone(deps.db, request.phone) : null;
    const instance = lead?.whatsapp_number ?? undefined;
    found = await deps.transport.findSent({ number: request.phone, text: earlier.text ?? '', since: new Date(new Date(earlier.at).getTime() - 5_000), ...(instance ? { instance } : {}) });
  } catch {
    throw new UnavailableError('cannot tell yet whether the first send with this idempotencyKey went out; try again', 'send_outcome_unknown', 5, 504);
  }
  if (found) return markSent(deps, earlier, request.phone, found.providerMessageId, false);
  const ageMs = deps.clock.now().getTime() - new Date(earlier.at).getTime();
  if (ageMs < 60_000) {
    // Possibly still being sent by the first request: never two at once.
    throw new ConflictError('a send with this idempotencyKey is in progress; try again shortly', 'send_in_progress');
  }
  const { rowCount } = await deps.db.query('DELETE FROM messages WHERE id = $1::uuid AND provider_message_id IS NULL', [earlier.id]);
  return rowCount > 0 ? null : markSentAfterRace(deps, request);
}

async function markSentAfterRace(deps: SendMessageDeps, request: { phone: string; hash: string; key: string }): Promise<SentMessage | null> {
  const again = await findByKey(deps.db, request.key);
  if (again?.provider_message_id) return markSent(deps, again, request.phone, again.provider_message_id, false);
  return null;
}
