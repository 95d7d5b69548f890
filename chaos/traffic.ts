/**
 * The traffic of a chaos run: follow-ups coming due (most written in bulk, some
 * scheduled through the API as the agent would), and leads answering through
 * Evolution webhooks — duplicated and out of order, as Evolution delivers them,
 * retried while the API cannot take them, as Evolution retries.
 */
import type { Db } from '../src/db/db.js';
import { type FakeEvolution, whatsappJid } from '../test/helpers/fake-evolution.js';

export interface PlannedLead {
  index: number;
  phone: string;
  text: string;
  dueAt: Date;
  viaApi: boolean;
  notOnWhatsApp: boolean;
  /** 'reply' | 'opt-out' | undefined: what the lead sends around its due time. */
  answer?: 'reply' | 'opt-out';
  answerAt?: Date;
  /** The API refused to schedule it (409: the lead had opted out or is not on WhatsApp by then). */
  refused?: string;
}

export function planLeads(options: {
  runId: string;
  count: number;
  viaApi: number;
  start: Date;
  windowMs: number;
  replyShare: number;
  optOutShare: number;
  notOnWhatsAppShare: number;
  replyJitterMs: [number, number];
  random: () => number;
}): PlannedLead[] {
  const { random } = options;
  const leads: PlannedLead[] = [];
  const apiEvery = options.viaApi > 0 ? Math.floor(options.count / options.viaApi) : Infinity;
  let apiCount = 0;
  for (let i = 0; i < options.count; i++) {
    // 55 81 9 9xxxxxxx: a Recife mobile, which WhatsApp files without the 9th digit (558199xxxxxxx → 55819xxxxxxx).
    const phone = `558199${String(1_000_000 + i)}`;
    const dueAt = new Date(options.start.getTime() + Math.floor(random() * options.windowMs));
    const roll = random();
    const answer = roll < options.replyShare ? 'reply' : roll < options.replyShare + options.optOutShare ? 'opt-out' : undefined;
    const [lo, hi] = options.replyJitterMs;
    const viaApi = i % apiEvery === apiEvery - 1 && apiCount < options.viaApi;
    if (viaApi) apiCount += 1;
    leads.push({
      index: i,
      phone,
      text: `Chaos ${options.runId} #${i}: Opa! Ainda pensando no Sócio Mais Fiel do Nordeste?`,
      dueAt,
      viaApi,
      notOnWhatsApp: !answer && random() < options.notOnWhatsAppShare,
      answer,
      answerAt: answer ? new Date(dueAt.getTime() + lo + random() * (hi - lo)) : undefined,
    });
  }
  return leads;
}

/** Writes the non-API follow-ups (and their leads) in one statement, with their first event. */
export async function insertPlanned(db: Db, leads: PlannedLead[]): Promise<number> {
  const rows = leads.filter((l) => !l.viaApi);
  let inserted = 0;
  for (let from = 0; from < rows.length; from += 5_000) {
    const chunk = rows.slice(from, from + 5_000);
    const { rows: ids } = await db.query<{ id: string }>(
      `WITH l AS (
         INSERT INTO leads (phone) SELECT unnest($1::text[])
         ON CONFLICT (phone) DO UPDATE SET updated_at = now() RETURNING id, phone
       ), input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS p(phone, text, due_at)
       ), f AS (
         INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at)
         SELECT l.id, input.text, input.due_at, input.due_at, now() - interval '1 hour'
           FROM input JOIN l ON l.phone = input.phone
         RETURNING id
       ), ev AS (
         INSERT INTO follow_up_events (follow_up_id, at, to_status, reason) SELECT id, now(), 'pending', 'scheduled' FROM f
       )
       SELECT id FROM f`,
      [chunk.map((l) => l.phone), chunk.map((l) => l.text), chunk.map((l) => l.dueAt)],
    );
    inserted += ids.length;
  }
  return inserted;
}

/** Retries a call the way Evolution retries a webhook: with backoff, until `deadline`. */
async function persist<T>(what: () => Promise<T | undefined>, deadline: number, stats: { retries: number }): Promise<T | undefined> {
  let wait = 250;
  for (;;) {
    const result = await what().catch(() => undefined);
    if (result !== undefined) return result;
    if (Date.now() + wait > deadline) return undefined;
    stats.retries += 1;
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 4_000);
  }
}

export async function scheduleThroughApi(
  apiUrl: string,
  token: string,
  lead: PlannedLead,
  stats: { scheduledViaApi: number; apiScheduleFailures: number; apiScheduleRefused: number; retries: number },
): Promise<void> {
  const ok = await persist(
    async () => {
      const response = await fetch(`${apiUrl}/v1/followups`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ phone: lead.phone, message: lead.text, dueAt: lead.dueAt.toISOString(), idempotencyKey: `chaos-${lead.phone}` }),
        signal: AbortSignal.timeout(5_000),
      });
      if (response.status === 201 || response.status === 200) return true;
      if (response.status === 409) {
        // The lead opted out (or proved not on WhatsApp) before this call got through: refusing is right.
        lead.refused = await response.text();
        return false;
      }
      if (response.status >= 400 && response.status < 500) {
        throw new Error(`POST /v1/followups answered ${response.status}: ${await response.text()}`);
      }
      return undefined;
    },
    Date.now() + 120_000,
    stats,
  );
  if (ok) stats.scheduledViaApi += 1;
  else if (lead.refused) stats.apiScheduleRefused += 1;
  else stats.apiScheduleFailures += 1;
}

export interface WebhookStats {
  sent: number;
  duplicates: number;
  outOfOrder: number;
  accepted: number;
  refused: number;
  retries: number;
  /** Phones whose webhook was never accepted (the API never took it within the retry budget). */
  undelivered: string[];
  /** Answers whose webhooks Evolution lost on purpose (the "webhooks lost" phase): on WhatsApp only. */
  lost: number;
  lostPhones: string[];
}

let webhookSequence = 0;

function upsertBody(options: { phone: string; id: string; text: string; at: Date }) {
  return {
    event: 'messages.upsert',
    instance: 'nautico',
    data: {
      key: { remoteJid: whatsappJid(options.phone), fromMe: false, id: options.id },
      pushName: 'Torcedor',
      status: 'DELIVERY_ACK',
      message: { conversation: options.text },
      messageType: 'conversation',
      messageTimestamp: Math.floor(options.at.getTime() / 1000),
      source: 'android',
    },
    destination: 'http://127.0.0.1/webhooks/evolution',
    date_time: options.at.toISOString(),
    sender: '558133334444@s.whatsapp.net',
    server_url: 'http://127.0.0.1',
    apikey: null,
  };
}

/** True once the API took the webhook (2xx); retries 5xx and network errors like Evolution. */
async function postWebhook(apiUrl: string, secret: string, body: unknown, stats: WebhookStats): Promise<boolean> {
  stats.sent += 1;
  const result = await persist(
    async () => {
      const response = await fetch(`${apiUrl}/webhooks/evolution`, {
        method: 'POST',
        headers: { 'x-webhook-secret': secret, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return 'accepted' as const;
      // Evolution does not retry these.
      if ([400, 401, 403, 404, 422].includes(response.status)) return 'refused' as const;
      return undefined;
    },
    Date.now() + 120_000,
    stats,
  );
  if (result === 'accepted') stats.accepted += 1;
  else stats.refused += 1;
  return result === 'accepted';
}

/**
 * The lead answers: a reply or an opt-out, sometimes delivered two or three times,
 * sometimes followed by an older message that arrives late (out of order).
 */
export async function answerAsLead(
  options: {
    apiUrl: string;
    secret: string;
    runId: string;
    lead: PlannedLead;
    duplicate: boolean;
    outOfOrder: boolean;
    /** The fake Evolution: the answer is stored there (WhatsApp) before any webhook. */
    fake?: FakeEvolution;
    /** Evolution loses this answer's webhooks (all of them). */
    lost?: boolean;
  },
  stats: WebhookStats,
): Promise<void> {
  const { lead } = options;
  const at = lead.answerAt ?? new Date();
  const seq = ++webhookSequence;
  const id = `3ACHAOS${options.runId.toUpperCase()}${seq.toString(16).toUpperCase().padStart(6, '0')}`;
  const text = lead.answer === 'opt-out' ? 'Pode parar de me mandar mensagem, não quero mais' : 'Opa Marina, ainda tô pensando, visse?';
  const body = upsertBody({ phone: lead.phone, id, text, at });
  const older = options.outOfOrder ? { id: `${id}0LD`, at: new Date(at.getTime() - 20_000) } : undefined;
  // The message exists on WhatsApp first (findMessages shows it), whatever becomes of its webhook.
  options.fake?.receiveFromLead({ phone: lead.phone, text, at, id, webhook: false });
  if (older) options.fake?.receiveFromLead({ phone: lead.phone, text: 'oi', at: older.at, id: older.id, webhook: false });
  if (options.lost) {
    // Evolution lost this answer's webhooks: only the pre-send check can see it now.
    stats.lost += 1;
    stats.lostPhones.push(lead.phone);
    return;
  }
  const deliveries: Array<Promise<boolean>> = [postWebhook(options.apiUrl, options.secret, body, stats)];
  if (options.duplicate) {
    const copies = 1 + Math.floor(Math.random() * 2);
    for (let c = 0; c < copies; c++) {
      stats.duplicates += 1;
      deliveries.push(
        new Promise((r) => setTimeout(r, Math.random() * 1_500)).then(() => postWebhook(options.apiUrl, options.secret, body, stats)),
      );
    }
  }
  if (older) {
    // An earlier message of the same lead ("oi") that Evolution delivers after the later one.
    stats.outOfOrder += 1;
    const olderBody = upsertBody({ phone: lead.phone, id: older.id, text: 'oi', at: older.at });
    deliveries.push(new Promise((r) => setTimeout(r, 200 + Math.random() * 800)).then(() => postWebhook(options.apiUrl, options.secret, olderBody, stats)));
  }
  const results = await Promise.all(deliveries);
  if (!results.some(Boolean)) stats.undelivered.push(lead.phone);
}

/** Whether the API serves the Evolution webhook route (another issue builds it). */
export async function webhookRouteExists(apiUrl: string, secret: string): Promise<boolean> {
  const response = await fetch(`${apiUrl}/webhooks/evolution`, {
    method: 'POST',
    headers: { 'x-webhook-secret': secret, 'content-type': 'application/json' },
    body: JSON.stringify({ event: 'chaos.probe', instance: 'nautico', data: {} }),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await response.text();
  return !(response.status === 404 && /no route/.test(text));
}
