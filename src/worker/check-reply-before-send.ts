/**
 * The pre-send reply check: right before a follow-up goes out (after the claim,
 * before composing), ask WhatsApp itself whether the fan wrote since the
 * follow-up's anchor. Every "nothing after the reply" guarantee otherwise rests
 * on the reply's webhook reaching us, and Evolution loses webhooks.
 *
 * What counts as "since the anchor" — the same rule as the claim's re-check
 * (`last_inbound_at > anchor_at`), the follow-up's own `anchor_at` (the fan's
 * last interaction the agent planned from; not `leads.last_outbound_at`, which a
 * follow-up of another sequence moves, nor the enrollment's anchor, which the
 * agent's own follow-ups don't have):
 *   - a message already in our log is judged by the time we logged it, exactly
 *     as the claim judges it (it may have been logged after the claim, while
 *     this follow-up was already `sending`, which a reply does not cancel);
 *   - a message we never heard of is judged by WhatsApp's time, in whole
 *     seconds: one in the anchor's own second counts as after it (the benefit of
 *     the doubt goes to not sending).
 * Found → recorded through the webhook's own path (handleFromLead: same
 * de-duplication by WhatsApp message id, so the late webhook is a duplicate;
 * opt-out words opt the fan out; the enrollment stops), and this follow-up is
 * cancelled `lead_replied` (or `opted_out`) with `source: presend_check`.
 *
 * Not charged to the number's pace: /chat/findMessages reads Evolution's own
 * message store and sends nothing to WhatsApp (unlike /chat/whatsappNumbers,
 * which asks WhatsApp's servers and is paced in policy/number-checks.ts), so it is
 * no ban risk; it costs at most one call per send, and the send it precedes
 * has already taken its point of the pace.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { SendError } from '../errors.js';
import type { SendingGate } from '../followups/sending-gate.js';
import { cancelFollowupRow, type ClaimedFollowup } from '../followups/transitions.js';
import type { Logger } from '../log.js';
import { handleFromLead } from '../webhooks/handle-evolution-webhook.js';
import { isOptOutMessage } from '../webhooks/opt-out-intent.js';
import { parseEvolutionWebhook, type WebhookMessage } from '../webhooks/parse-evolution-webhook.js';
import { toJid } from '../whatsapp/phone.js';
import type { StoredInbound, Transport } from '../whatsapp/transport.js';

export type PresendMode = 'off' | 'best_effort' | 'required';

export type PresendResult =
  /** Nothing from the fan since the anchor: go on. */
  | { kind: 'clear'; looked: number }
  /** Not asked: the check is off, or the transport has no conversation to look into (dry-run). */
  | { kind: 'skipped'; why: 'off' | 'unsupported' }
  /** The fan wrote: this follow-up is cancelled (false: it was no longer ours to cancel). */
  | { kind: 'replied'; reason: 'lead_replied' | 'opted_out'; providerMessageId: string; recorded: number; cancelled: boolean }
  /** Evolution could not be asked (error, too slow): never send blind. */
  | { kind: 'failed'; error: Error };

export interface PresendDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  transport: Transport;
  gate: SendingGate;
  mode: PresendMode;
  timeoutMs: number;
  /** The campaign's opt-out confirmation (as for a webhook): scheduled once when the reply opts the fan out. */
  optOutConfirmation?: (campaign: string) => string | undefined;
  /** The lead's WhatsApp number: its chats are the ones asked. */
  instance?: string;
}

type Claimed = Pick<ClaimedFollowup, 'id' | 'lead_id' | 'phone' | 'anchor_at'> & { lead_whatsapp_lid?: string | null; lead_whatsapp_jid?: string | null };

export async function checkReplyBeforeSend(deps: PresendDeps, claimed: Claimed): Promise<PresendResult> {
  if (deps.mode === 'off') return { kind: 'skipped', why: 'off' };
  if (!deps.transport.findReplies) return { kind: 'skipped', why: 'unsupported' };
  const anchor = new Date(claimed.anchor_at);
  let stored: StoredInbound[];
  try {
    stored = await deps.transport.findReplies({
      number: claimed.phone,
      jid: claimed.lead_whatsapp_jid ?? null,
      lid: claimed.lead_whatsapp_lid ?? null,
      since: anchor,
      timeoutMs: deps.timeoutMs,
      ...(deps.instance ? { instance: deps.instance } : {}),
    });
  } catch (error) {
    return { kind: 'failed', error: error instanceof Error ? error : new Error(String(error)) };
  }
  if (stored.length === 0) return { kind: 'clear', looked: 0 };

  const known = await loggedTimes(deps.db, stored.map((s) => s.providerMessageId));
  const replies = stored
    .filter((s) => {
      const loggedAt = known.get(s.providerMessageId);
      return loggedAt ? loggedAt > anchor : true;
    })
    .sort((a, b) => a.at.getTime() - b.at.getTime());
  if (replies.length === 0) return { kind: 'clear', looked: stored.length };

  // Oldest first, as the webhooks would have come; each through the webhook's own path. If
  // recording fails (a deadlock with the same reply's webhook, the database away), the check
  // failed: the follow-up is deferred and looked at again, never sent.
  let optedOut = false;
  let recorded = 0;
  try {
    for (const reply of replies) {
      const message = asWebhookMessage(reply, claimed.phone);
      if (!message) continue;
      const outcome = await handleFromLead(
        {
          db: deps.db,
          clock: deps.clock,
          log: deps.log,
          gate: deps.gate,
          optOutConfirmation: deps.optOutConfirmation,
        },
        'presend.check',
        message,
      );
      // A duplicate (its webhook came first) that said "stop" still names the cancel reason.
      if (outcome.outcome === 'opted_out' || (outcome.outcome === 'duplicate' && isOptOutMessage(message.text))) optedOut = true;
      if (outcome.outcome !== 'duplicate') recorded += 1;
    }
  } catch (error) {
    return { kind: 'failed', error: error instanceof Error ? error : new Error(String(error)) };
  }
  const newest = replies[replies.length - 1]!;
  const reason = optedOut ? 'opted_out' : 'lead_replied';
  // This follow-up is `sending` (ours, by the claim), which a recorded reply does not cancel: cancel it here.
  const cancelled = await cancelFollowupRow(deps.db, {
    id: claimed.id,
    now: deps.clock.now(),
    reason,
    from: ['sending'],
    detail: { source: 'presend_check', providerMessageId: newest.providerMessageId, messageAt: newest.at.toISOString(), recorded },
  });
  return { kind: 'replied', reason, providerMessageId: newest.providerMessageId, recorded, cancelled: cancelled !== null };
}

/** When each of these WhatsApp messages was logged by us, if it was. */
async function loggedTimes(db: Db, ids: string[]): Promise<Map<string, Date>> {
  const { rows } = await db.query<{ provider_message_id: string; at: Date }>(
    {
      name: 'presend_logged_messages',
      text: `SELECT provider_message_id, at FROM messages WHERE provider_message_id = ANY($1::text[]) AND direction = 'in'`,
    },
    [ids],
  );
  return new Map(rows.map((r) => [r.provider_message_id, new Date(r.at)]));
}

/**
 * The stored record read as the messages.upsert webhook carrying it would be. We asked for
 * this fan's chat, so the chat is the fan's whatever JID it is filed under (an @lid without a
 * phone alternative included). A record the parser cannot read still is a reply: it is
 * recorded with what is known (its id and time).
 */
function asWebhookMessage(reply: StoredInbound, phone: string): WebhookMessage | null {
  const key = isObject(reply.record.key) ? reply.record.key : {};
  const original = typeof key.remoteJid === 'string' ? key.remoteJid.toLowerCase() : '';
  const data = { ...reply.record, key: { ...key, id: reply.providerMessageId, fromMe: false, remoteJid: toJid(phone) } };
  let message: WebhookMessage | null = null;
  try {
    const [event] = parseEvolutionWebhook({ event: 'messages.upsert', data });
    if (event?.kind === 'message') message = event.message;
  } catch {
    message = null;
  }
  message ??= { providerMessageId: reply.providerMessageId, fromMe: false, phone, text: null, messageType: null, at: reply.at };
  return original.endsWith('@lid') ? { ...message, lid: original } : message;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isConfigurationFault(error: Error): error is SendError {
  return error instanceof SendError && error.kind === 'configuration';
}
