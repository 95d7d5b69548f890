/**
 * What an Evolution webhook means for the follow-ups:
 *   - a message from the lead (any type: text, audio, image) is a reply: logged,
 *     last_inbound_at set, the lead's open follow-ups cancelled (`lead_replied`),
 *     the enrollment stopped (recordInboundMessage);
 *   - a reply that says "stop" (opt-out-intent.ts) opts the lead out for good
 *     first, then is logged as a reply; the campaign's confirmation, if it has
 *     one, is scheduled once, as a follow-up (followups/opt-out-confirmation.ts);
 *   - a message from our own number that this system did not send means a person
 *     took the conversation over: hand-off, everything cancelled;
 *   - connection.update close/refused pauses sending for every worker, open
 *     lifts that pause.
 * Everything else is ignored (2xx). Idempotent on the WhatsApp message id: a
 * message already in the conversation log is not acted on again.
 *
 * "Did we send it?" has a race: Evolution may deliver the webhook for our own
 * follow-up before the worker has recorded its provider id. So a fromMe message
 * is ours when its id is known, or when a follow-up of that lead is being sent
 * (or was sent in the last minutes) with the same text, or when we logged the
 * same text out to that lead moments ago (an opt-out confirmation). Only
 * otherwise is it a person. The agent sends through POST /v1/leads/:phone/send (or the
 * MCP tool send_message), which logs the message before sending it; a message it sends
 * some other way must be logged by it (POST /v1/leads/:phone/messages) or it looks like a person.
 */
import type { Clock } from '../clock.js';
import { readDbError } from '../db/db-errors.js';
import type { Db, Queryable } from '../db/db.js';
import { scheduleOptOutConfirmation } from '../followups/opt-out-confirmation.js';
import type { SendingGate } from '../followups/sending-gate.js';
import { recordInboundMessage } from '../leads/record-inbound.js';
import { recordOutboundMessage } from '../leads/record-outbound.js';
import { cancelLocked, stopLead } from '../leads/stop-lead.js';
import { leadByPhoneSql } from '../leads/sql/leads.js';
import type { Logger } from '../log.js';
import type { Numbers } from '../numbers/whatsapp-numbers.js';
import { isOptOutMessage } from './opt-out-intent.js';
import { parseEvolutionWebhook, type WebhookEvent, type WebhookMessage } from './parse-evolution-webhook.js';

export interface WebhookDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  gate: SendingGate;
  /** The text a campaign sends once when a lead opts out (as a follow-up); undefined = none. */
  optOutConfirmation?: (campaign: string) => string | undefined;
  /** The silence detector's ear (webhook-silence.ts): every webhook that arrives is noted, echoes apart. */
  webhookSilence?: { noteWebhook(echo: boolean): void };
  /**
   * The WhatsApp numbers, and the one this webhook came from (the payload's `instance`, checked
   * by the route): with several numbers, a fan who writes is bound to the number written to,
   * and connection.update pauses or resumes that number only.
   */
  numbers?: Numbers;
  instance?: string;
}

export interface WebhookOutcome {
  event: string;
  outcome: string;
  leadId?: string;
  cancelled?: number;
}

export const PAUSE_REASON = 'whatsapp_disconnected';
/** How long after a send an echo of it (same text) is still recognised as ours. */
const ECHO_WINDOW_MINUTES = 10;
const RETRIES = 3;

/** Throws ValidationError for a malformed body (→ 400); anything else it could not do is an error (→ 5xx, Evolution retries). */
export async function handleEvolutionWebhook(deps: WebhookDeps, body: unknown, pathEvent?: string): Promise<WebhookOutcome[]> {
  const events = parseEvolutionWebhook(body, pathEvent);
  if (deps.webhookSilence) for (const event of events) deps.webhookSilence.noteWebhook(isEcho(event));
  const outcomes: WebhookOutcome[] = [];
  const origin: MessageOrigin = { raw: body, instance: instanceOf(body) };
  for (const event of events) outcomes.push(await withRetry(() => handleEvent(deps, event, origin)));
  return outcomes;
}

/** Where a lead's message came from, for the agent (message.received): the instance, and the raw payload. */
export interface MessageOrigin {
  instance: string | null;
  raw?: unknown;
}

function instanceOf(body: unknown): string | null {
  const instance = (body as { instance?: unknown } | null)?.instance;
  return typeof instance === 'string' && instance.length > 0 && instance.length <= 200 ? instance : null;
}

/** An echo of a message sent from our number: fromMe upserts, send.message, messages.update (receipts). */
function isEcho(event: WebhookEvent): boolean {
  if (event.kind === 'message') return event.message.fromMe;
  return event.event === 'send.message' || event.event === 'messages.update';
}

/** A deadlock or serialisation failure is the database asking us to try again, not a fault. */
async function withRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= RETRIES || !readDbError(error).retry) throw error;
      await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 50));
    }
  }
}

async function handleEvent(deps: WebhookDeps, event: WebhookEvent, origin: MessageOrigin): Promise<WebhookOutcome> {
  switch (event.kind) {
    case 'ignored':
      deps.log.debug({ event: event.event, reason: event.reason }, 'webhook ignored');
      return { event: event.event, outcome: `ignored:${event.reason}` };
    case 'connection':
      return handleConnection(deps, event);
    case 'message':
      return event.message.fromMe ? handleOwnNumber(deps, event.event, event.message) : handleFromLead(deps, event.event, event.message, origin);
  }
}

async function handleConnection(deps: WebhookDeps, event: { event: string; state: string; statusReason: number | null }): Promise<WebhookOutcome> {
  if (deps.numbers?.several && deps.instance) {
    // Several numbers: this number's connection only; the others keep sending.
    const number = deps.instance;
    if (event.state === 'close' || event.state === 'refused') {
      const paused = await deps.numbers.setWhatsappPause(number, true, PAUSE_REASON);
      deps.log.warn({ number, state: event.state, statusReason: event.statusReason }, 'WhatsApp number disconnected; its follow-ups wait');
      return { event: event.event, outcome: paused ? 'paused' : 'paused_already' };
    }
    if (event.state === 'open') {
      const resumed = await deps.numbers.setWhatsappPause(number, false);
      if (resumed) deps.log.info({ number }, 'WhatsApp number connected again; its follow-ups resume');
      return { event: event.event, outcome: resumed ? 'resumed' : 'open' };
    }
    return { event: event.event, outcome: `ignored:state_${event.state}` };
  }
  if (event.state === 'close' || event.state === 'refused') {
    await deps.gate.pause(PAUSE_REASON, `Evolution reported the WhatsApp connection ${event.state}${event.statusReason ? ` (${event.statusReason})` : ''}`);
    deps.log.warn({ state: event.state, statusReason: event.statusReason }, 'WhatsApp disconnected; sending paused');
    return { event: event.event, outcome: 'paused' };
  }
  if (event.state === 'open') {
    const resumed = await deps.gate.resume([PAUSE_REASON]);
    if (resumed) deps.log.info('WhatsApp connected again; sending resumed');
    return { event: event.event, outcome: resumed ? 'resumed' : 'open' };
  }
  deps.log.debug({ state: event.state }, 'connection state noted');
  return { event: event.event, outcome: `ignored:state_${event.state}` };
}

/** A message time from WhatsApp, never ahead of our clock (a skewed or forged time must not stop later follow-ups). */
function messageTime(message: WebhookMessage, now: Date): Date {
  return message.at && message.at <= now ? message.at : now;
}

/** Known in this chat: a WhatsApp message id is unique within its chat, not across chats. */
async function alreadyLogged(db: Db, phone: string, providerMessageId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    {
      name: 'webhook_known_message',
      text: 'SELECT 1 FROM messages m JOIN leads l ON l.id = m.lead_id WHERE l.phone = $1::text AND m.provider_message_id = $2::text',
    },
    [phone, providerMessageId],
  );
  return rowCount > 0;
}

/**
 * A message from the lead, from a webhook or found by the pre-send check
 * (src/worker/check-reply-before-send.ts): both record it through here, so a
 * late webhook for a message the check found is a duplicate, not a second reply.
 */
export async function handleFromLead(deps: WebhookDeps, eventName: string, message: WebhookMessage, origin?: MessageOrigin): Promise<WebhookOutcome> {
  const { db, clock } = deps;
  const now = clock.now();
  const at = messageTime(message, now);
  if (await alreadyLogged(db, message.phone, message.providerMessageId)) return { event: eventName, outcome: 'duplicate' };
  const inbound = {
    phone: message.phone,
    text: message.text,
    messageType: message.messageType,
    providerMessageId: message.providerMessageId,
    at,
    // A reply that reached us after a follow-up was planned cancels it (record-inbound.ts).
    receivedAt: now,
    source: 'lead' as const,
    instance: origin?.instance ?? null,
    raw: origin?.raw,
  };

  if (isOptOutMessage(message.text)) {
    // Opt out first, so its follow-ups are cancelled as opted_out (not merely lead_replied); the
    // first time, the campaign's confirmation is scheduled in the same transaction.
    let confirmationId: string | null = null;
    const stopped = await stopLead(
      db,
      {
        phone: message.phone,
        reason: 'opted_out',
        at,
        messageId: message.providerMessageId,
        source: 'whatsapp',
        createIfMissing: true,
        inTransaction: async (tx, { leadId, changed }) => {
          confirmationId = changed ? await confirmOptOut(deps, tx, leadId, now) : null;
        },
      },
      clock,
    );
    const recorded = await recordInboundMessage(db, inbound, clock);
    deps.log.info({ leadId: recorded.leadId, phone: message.phone, firstTime: stopped?.changed, confirmationId }, 'lead opted out by message');
    return { event: eventName, outcome: 'opted_out', leadId: recorded.leadId, cancelled: (stopped?.cancelled ?? 0) + recorded.cancelled };
  }

  const recorded = await recordInboundMessage(db, inbound, clock);
  if (recorded.duplicate) return { event: eventName, outcome: 'duplicate', leadId: recorded.leadId };
  if (message.lid) await rememberLid(db, recorded.leadId, message.lid);
  // The fan wrote to this number: it is the lead's number from now on.
  if (deps.numbers?.several && deps.instance) await deps.numbers.bind(db, recorded.leadId, deps.instance, now, 'lead_wrote');
  // An enrollment whose last step is in flight has nothing left to cancel; it stops all the same.
  await cancelLocked(db, { leadId: recorded.leadId, ids: [], reason: 'lead_replied', now, anchoredBefore: recorded.stopAt });
  deps.log.info({ leadId: recorded.leadId, cancelled: recorded.cancelled, type: message.messageType }, 'lead replied');
  return { event: eventName, outcome: 'reply_recorded', leadId: recorded.leadId, cancelled: recorded.cancelled };
}

/** The fan's @lid, so the pre-send check can ask for the chat under it too. */
async function rememberLid(db: Db, leadId: string, lid: string): Promise<void> {
  await db.query(
    `UPDATE leads SET whatsapp_lid = $2::text WHERE id = $1::uuid AND erased_at IS NULL AND whatsapp_lid IS DISTINCT FROM $2::text`,
    [leadId, lid],
  );
}

async function handleOwnNumber(deps: WebhookDeps, eventName: string, message: WebhookMessage): Promise<WebhookOutcome> {
  const { db, clock } = deps;
  const now = clock.now();
  if (await alreadyLogged(db, message.phone, message.providerMessageId)) return { event: eventName, outcome: 'own_message' };
  const { rows } = await db.query<{ id: string }>(leadByPhoneSql, [message.phone]);
  const leadId = rows[0]?.id;
  // Nothing of ours to stop for a number that is no lead (and no lead is made from our own messages).
  if (!leadId) return { event: eventName, outcome: 'ignored:not_a_lead' };
  if (await sentByUs(db, { leadId, providerMessageId: message.providerMessageId, text: message.text, now })) {
    return { event: eventName, outcome: 'own_message', leadId };
  }
  const at = messageTime(message, now);
  const stopped = await stopLead(db, { phone: message.phone, reason: 'handoff', at, messageId: message.providerMessageId, source: 'whatsapp' }, clock);
  await recordOutboundMessage(
    db,
    { phone: message.phone, text: message.text ?? '', source: 'human', messageType: message.messageType, providerMessageId: message.providerMessageId, at },
    clock,
  );
  deps.log.info({ leadId, cancelled: stopped?.cancelled ?? 0 }, 'a person wrote from our number; lead handed off');
  return { event: eventName, outcome: 'handoff', leadId, cancelled: stopped?.cancelled ?? 0 };
}

const sentByUsSql = {
  name: 'webhook_sent_by_us',
  text: `
SELECT 1 FROM follow_ups
 WHERE lead_id = $1::uuid
   AND (provider_message_id = $2::text
        OR ($3::text IS NOT NULL AND btrim(COALESCE(sent_text, message)) = btrim($3::text)
            AND (status = 'sending' OR (status = 'executed' AND sent_at > $4::timestamptz - $5::int * interval '1 minute'))))
UNION ALL
SELECT 1 FROM messages
 WHERE lead_id = $1::uuid AND direction = 'out' AND source IN ('agent', 'followup')
   AND $3::text IS NOT NULL AND btrim(text) = btrim($3::text) AND at > $4::timestamptz - $5::int * interval '1 minute'
LIMIT 1`,
};

export async function sentByUs(
  db: Db,
  input: { leadId: string; providerMessageId: string; text: string | null; now: Date },
): Promise<boolean> {
  const { rowCount } = await db.query(sentByUsSql, [input.leadId, input.providerMessageId, input.text, input.now, ECHO_WINDOW_MINUTES]);
  return rowCount > 0;
}

/**
 * The campaign's optOutConfirmation, scheduled as a follow-up (intent `opt_out_confirmation`, due
 * now) in the opt-out's transaction: sent by the relay and the worker like every other message,
 * claimed, audited, in the timeline; once per lead (followups/opt-out-confirmation.ts says what
 * it is exempt from). With several numbers the fan is bound to the number written to, so the
 * confirmation goes out from it. Returns the follow-up's id, or null when there is none to send.
 */
async function confirmOptOut(deps: WebhookDeps, tx: Queryable, leadId: string, now: Date): Promise<string | null> {
  if (!deps.optOutConfirmation) return null;
  const id = await scheduleOptOutConfirmation(tx, { leadId, now, text: deps.optOutConfirmation });
  if (id && deps.numbers?.several && deps.instance) await deps.numbers.bind(tx, leadId, deps.instance, now, 'lead_wrote');
  return id;
}
