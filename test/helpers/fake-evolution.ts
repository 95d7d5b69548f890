/**
 * A fake Evolution API v2 for tests, benchmarks and the chaos run: a real HTTP
 * server on 127.0.0.1 speaking the routes, guards and answer shapes of the real
 * one (test/fixtures/evolution/), with faults that can be switched on at any time.
 *
 * What it imitates on purpose:
 * - guards run in the real order: unknown instance (404) before a bad key (401);
 * - sendText waits the `delay` before answering, and keeps going when the client
 *   gives up: a client timeout during the delay still delivers the message, which
 *   is exactly why a timeout is ambiguous;
 * - sendText answers 500 Connection Closed while the state is not 'open';
 * - messages are filed under the JID WhatsApp uses (Brazilian mobiles of area
 *   codes ≥ 31 lose their 9th digit), and findMessages matches remoteJid exactly.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { phoneVariants, toJid, tryNormalizePhone } from '../../src/whatsapp/phone.js';

export type FakeFaultMode =
  | 'connection-closed'
  | 'server-error'
  | 'unauthorized'
  | 'instance-not-found'
  | 'timeout-after-delivery'
  | 'timeout-before-delivery'
  | 'slow'
  | 'drop-connection';

export interface FakeFaultOptions {
  /** Apply to the next N sendText calls only (default: until cleared). */
  count?: number;
  /** Apply to this share (0–1) of the calls, at random. */
  probability?: number;
  /** 'slow': extra latency before answering. */
  ms?: number;
}

export interface FakeEvolutionOptions {
  apiKey?: string;
  instance?: string;
  /** 0 = any free port. */
  port?: number;
  /** Multiplies every `delay` (1 = real time, 0 = answer at once). Default 1. */
  delayScale?: number;
  /** Keep every request in `requests` (default true); a long benchmark may turn it off. */
  recordRequests?: boolean;
  /** More instance names this server answers for (several WhatsApp numbers on one Evolution): same key and state. */
  moreInstances?: string[];
}

export interface FakeDelivery {
  id: string;
  /** As received in the request body. */
  number: string;
  jid: string;
  text: string;
  delay: number;
  at: Date;
  /** When the sendText request arrived (ms since epoch); `at` may be later (delay, a slow answer). */
  requestedAt?: number;
  /** The instance (WhatsApp number) it was sent from. */
  instance?: string;
}

export interface FakeRequest {
  method: string;
  path: string;
  /** Parsed JSON, the raw text when it was not JSON, undefined when empty. */
  body: unknown;
  headers: IncomingHttpHeaders;
  at: Date;
}

export interface FakeEvolution {
  url: string;
  apiKey: string;
  instance: string;
  delivered: FakeDelivery[];
  requests: FakeRequest[];
  /** Numbers (either spelling) that answer exists:false. */
  notOnWhatsApp: Set<string>;
  /** How many answers each fault shaped, by mode (plus `not-on-whatsapp`), since the start. */
  faultCounts: Record<string, number>;
  fail(mode: FakeFaultMode, options?: FakeFaultOptions): void;
  clearFaults(): void;
  setConnectionState(state: string): void;
  /** The instance's stored webhook (null: none set), as `GET /webhook/find` answers it. */
  readonly webhook: FakeWebhookRow | null;
  /** Stores a webhook as if someone had set it through `POST /webhook/set` (partial: defaults for the rest). */
  presetWebhook(webhook: Partial<FakeWebhookRow> & { url: string }): void;
  setDelayScale(scale: number): void;
  /** Deliveries to a number, whichever spelling was used to send or to ask. */
  deliveriesTo(number: string): FakeDelivery[];
  /** Most deliveries in any window [t, t + windowMs), optionally to one number only. */
  maxPerWindow(windowMs: number, number?: string): number;
  close(): Promise<void>;
  // --- fans writing, webhook delivery and its faults (see the part at the end of this file) ---
  /** Messages fans sent to our number, in arrival order. */
  inbound: FakeInbound[];
  /** A fan writes to our number: stored (findMessages shows it) and, unless lost, delivered as a webhook. */
  receiveFromLead(input: FakeInboundInput): FakeInbound;
  /** Where webhooks go (as Evolution's /webhook/set): a URL with headers, or a function (app.inject). Null: nowhere. */
  deliverWebhooksTo(target: WebhookTarget | null): void;
  /** Lose webhooks: all (share 1) or a share of them, of every kind or only inbound ones / only echoes. */
  loseWebhooks(options?: { share?: number; kinds?: 'all' | 'inbound' | 'echo' }): void;
  /** Every webhook is delivered again. */
  restoreWebhooks(): void;
  /** Webhooks delivered (2xx), lost on purpose, and failed (not 2xx after the retries), by kind. */
  webhookCounts: { delivered: number; lost: number; failed: number; lostInbound: number; lostEcho: number };
  /** When findMessages was last asked for a chat's inbound messages (any JID of that number), ms since epoch. */
  inboundLooksAt(number: string): number[];
  /** Waits until every webhook handed over so far has been delivered, lost or given up. */
  webhooksSettled(): Promise<void>;
  /** findMessages only: answer 500, or answer `ms` late (null: healthy again). */
  failFindMessages(fault: { mode: 'error' } | { mode: 'slow'; ms: number } | null): void;
}

// Faults that hit every route, as a revoked key or a dropped WhatsApp socket would.
const ROUTE_WIDE: ReadonlySet<FakeFaultMode> = new Set(['unauthorized', 'instance-not-found', 'connection-closed']);
// Faults decided by the guards, before the body is even looked at.
const GUARD_FAULTS: ReadonlySet<FakeFaultMode> = new Set(['unauthorized', 'instance-not-found']);
const INSTANCE_ID = '6f1c2a4e-0d7b-4a43-9c55-2f1f5b0b7a10';
const MAX_BODY_BYTES = 1_000_000;
const PAGE_SIZE = 50;

type Route = 'sendText' | 'findMessages' | 'whatsappNumbers' | 'connectionState' | 'findWebhook' | 'setWebhook';
const ROUTES: Record<string, Route> = {
  'POST message/sendText': 'sendText',
  'POST chat/findMessages': 'findMessages',
  'POST chat/whatsappNumbers': 'whatsappNumbers',
  'GET instance/connectionState': 'connectionState',
  'GET webhook/find': 'findWebhook',
  'POST webhook/set': 'setWebhook',
};

/** The instance's webhook as Evolution v2 stores and answers it (its Prisma `Webhook` row). */
export interface FakeWebhookRow {
  id: string;
  url: string;
  headers: Record<string, string> | null;
  enabled: boolean;
  events: string[];
  webhookByEvents: boolean;
  webhookBase64: boolean;
  createdAt: string;
  updatedAt: string;
  instanceId: string;
}

// The events Evolution v2's webhook schema accepts (an empty list when enabled means all of them).
const WEBHOOK_EVENTS = [
  'APPLICATION_STARTUP', 'QRCODE_UPDATED', 'MESSAGES_SET', 'MESSAGES_UPSERT', 'MESSAGES_EDITED', 'MESSAGES_UPDATE',
  'MESSAGES_DELETE', 'SEND_MESSAGE', 'CONTACTS_SET', 'CONTACTS_UPSERT', 'CONTACTS_UPDATE', 'PRESENCE_UPDATE',
  'CHATS_SET', 'CHATS_UPSERT', 'CHATS_UPDATE', 'CHATS_DELETE', 'GROUPS_UPSERT', 'GROUP_UPDATE',
  'GROUP_PARTICIPANTS_UPDATE', 'CONNECTION_UPDATE', 'LABELS_EDIT', 'LABELS_ASSOCIATION', 'CALL', 'TYPEBOT_START',
  'TYPEBOT_CHANGE_STATUS', 'REMOVE_INSTANCE', 'LOGOUT_INSTANCE',
];

interface ActiveFault {
  remaining?: number;
  probability?: number;
  ms: number;
}

/** The JID WhatsApp files a number under, or null when it is no phone number at all. */
export function whatsappJid(number: string): string | null {
  const canonical = tryNormalizePhone(number);
  if (!canonical) {
    const digits = number.split('@')[0]!.replace(/\D/g, '');
    return digits.length >= 8 && digits.length <= 15 ? toJid(digits) : null;
  }
  const variants = phoneVariants(canonical);
  const area = Number(canonical.slice(2, 4));
  return toJid(variants.length === 2 && area >= 31 ? variants[1]! : canonical);
}

export async function startFakeEvolution(options: FakeEvolutionOptions = {}): Promise<FakeEvolution> {
  const apiKey = options.apiKey ?? 'test-api-key';
  const instance = options.instance ?? 'nautico';
  const recordRequests = options.recordRequests ?? true;
  let delayScale = options.delayScale ?? 1;
  let state = 'open';
  let closed = false;
  let closedShapeToggle = 0;
  let webhook: FakeWebhookRow | null = null;
  let sequence = 0;

  const delivered: FakeDelivery[] = [];
  const byJid = new Map<string, FakeDelivery[]>();
  const requests: FakeRequest[] = [];
  const notOnWhatsApp = new Set<string>();
  const faults = new Map<FakeFaultMode, ActiveFault>();
  const faultCounts: Record<string, number> = {};
  const count = (what: string) => {
    faultCounts[what] = (faultCounts[what] ?? 0) + 1;
  };
  const timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  const fans = makeFans(instance);

  /** Waits `ms`, or less if the server closes first (then the caller checks `closed`). */
  function wait(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = {
        resolve,
        timer: setTimeout(() => {
          timers.delete(entry);
          resolve();
        }, ms),
      };
      timers.add(entry);
    });
  }

  /** The first active fault among `modes` that fires for this call; counts down on sendText only. */
  function takeFault(route: Route, modes: ReadonlySet<FakeFaultMode>): [FakeFaultMode, ActiveFault] | undefined {
    for (const [mode, fault] of faults) {
      if (!modes.has(mode)) continue;
      if (route !== 'sendText' && !ROUTE_WIDE.has(mode)) continue;
      if (fault.probability !== undefined && Math.random() >= fault.probability) continue;
      if (route === 'sendText' && fault.remaining !== undefined) {
        fault.remaining -= 1;
        if (fault.remaining <= 0) faults.delete(mode);
      }
      count(mode);
      return [mode, fault];
    }
    return undefined;
  }

  function isNotOnWhatsApp(number: string): boolean {
    if (notOnWhatsApp.has(number)) return true;
    const jid = whatsappJid(number);
    for (const entry of notOnWhatsApp) if (whatsappJid(entry) === jid) return true;
    return false;
  }

  function deliver(number: string, jid: string, text: string, delay: number, from: string = instance): FakeDelivery {
    sequence += 1;
    const id = `3EB0${randomBytes(4).toString('hex').toUpperCase()}${sequence.toString(16).toUpperCase().padStart(8, '0')}`;
    const delivery = { id, number, jid, text, delay, at: new Date(), instance: from };
    delivered.push(delivery);
    const list = byJid.get(jid);
    if (list) list.push(delivery);
    else byJid.set(jid, [delivery]);
    return delivery;
  }

  function deliveriesTo(number: string): FakeDelivery[] {
    const jid = whatsappJid(number);
    return jid ? [...(byJid.get(jid) ?? [])] : [];
  }

  function record(delivery: FakeDelivery) {
    return {
      id: `cm${delivery.id.toLowerCase()}`,
      key: { id: delivery.id, fromMe: true, remoteJid: delivery.jid },
      pushName: 'Você',
      messageType: 'conversation',
      message: { conversation: delivery.text },
      messageTimestamp: Math.floor(delivery.at.getTime() / 1000),
      instanceId: INSTANCE_ID,
      source: 'unknown',
    };
  }

  async function faultAnswer(mode: FakeFaultMode, fault: ActiveFault, res: ServerResponse): Promise<boolean> {
    switch (mode) {
      case 'unauthorized':
        reply(res, 401, envelope(401, 'Unauthorized', 'Unauthorized'));
        return true;
      case 'instance-not-found':
        reply(res, 404, envelope(404, 'Not Found', [`The "${instance}" instance does not exist`]));
        return true;
      case 'connection-closed': {
        // The real server answers both shapes, depending on where the socket error surfaced.
        const message = closedShapeToggle++ % 2 === 0 ? 'Connection Closed' : ['Error: Connection Closed'];
        reply(res, 500, envelope(500, 'Internal Server Error', message));
        return true;
      }
      case 'server-error':
        reply(res, 500, envelope(500, 'Internal Server Error', 'Internal Server Error'));
        return true;
      case 'drop-connection':
        res.socket?.destroy();
        return true;
      case 'timeout-before-delivery':
        // Never answer; the socket stays open until the client aborts or close().
        return true;
      case 'slow':
        await wait(fault.ms);
        return false;
      default:
        return false;
    }
  }

  async function sendText(body: Record<string, unknown>, res: ServerResponse, from: string = instance): Promise<void> {
    const requestedAt = Date.now();
    const errors = validateSendText(body);
    if (errors.length > 0) return reply(res, 400, envelope(400, 'Bad Request', [errors]));
    const number = body.number as string;
    const text = body.text as string;
    const delay = (body.delay as number | undefined) ?? 0;
    const jid = whatsappJid(number);
    if (!jid || isNotOnWhatsApp(number)) {
      const answerJid = jid ?? `${number.split('@')[0]!.replace(/\D/g, '')}@s.whatsapp.net`;
      count('not-on-whatsapp');
      return reply(res, 400, envelope(400, 'Bad Request', [{ jid: answerJid, exists: false, number }]));
    }
    if (state !== 'open') return reply(res, 500, envelope(500, 'Internal Server Error', 'Connection Closed'));

    const fault = takeFault('sendText', ALL_FAULTS);
    if (fault && (await faultAnswer(fault[0], fault[1], res))) return;
    await wait(delay * delayScale);
    if (closed) return;
    const delivery = deliver(number, jid, text, delay, from);
    fans.echo(delivery, requestedAt);
    // Answering is skipped on purpose: the client times out and must reconcile.
    if (fault?.[0] === 'timeout-after-delivery') return;
    reply(res, 201, {
      key: { remoteJid: jid, fromMe: true, id: delivery.id },
      pushName: 'Você',
      status: 'PENDING',
      message: { conversation: text },
      contextInfo: null,
      messageType: 'conversation',
      messageTimestamp: Math.floor(delivery.at.getTime() / 1000),
      instanceId: INSTANCE_ID,
      source: 'unknown',
    });
  }

  async function findMessages(body: Record<string, unknown>, res: ServerResponse): Promise<void> {
    if (await fans.findFault(res, wait)) return;
    const where = isObject(body.where) ? body.where : {};
    const key = isObject(where.key) ? where.key : {};
    if (key.fromMe !== true) fans.noteLook(typeof key.remoteJid === 'string' ? key.remoteJid : null);
    const sent = typeof key.remoteJid === 'string' ? (byJid.get(key.remoteJid) ?? []) : delivered;
    // The fans' messages are part of the chat too (fromMe false); the filter on fromMe is honoured.
    let list: Array<FakeDelivery | FakeInbound> =
      key.fromMe === true ? sent : key.fromMe === false ? fans.chat(key.remoteJid) : fans.merged(sent, key.remoteJid);
    const offset = positiveInteger(body.offset) ?? PAGE_SIZE;
    const page = positiveInteger(body.page) ?? 1;
    const total = list.length;
    // Newest first, as the real server orders by messageTimestamp desc.
    const end = total - (page - 1) * offset;
    const slice = end > 0 ? list.slice(Math.max(0, end - offset), end).reverse() : [];
    reply(res, 200, {
      messages: {
        total,
        pages: Math.ceil(total / offset),
        currentPage: page,
        records: slice.map((m) => ('fromLead' in m ? inboundRecord(m) : record(m))),
      },
    });
  }

  function whatsappNumbers(body: Record<string, unknown>, res: ServerResponse): void {
    const numbers = body.numbers;
    if (!Array.isArray(numbers) || numbers.some((n) => typeof n !== 'string')) {
      return reply(res, 400, envelope(400, 'Bad Request', [['instance requires property "numbers"']]));
    }
    reply(
      res,
      200,
      (numbers as string[]).map((number) => {
        const jid = whatsappJid(number);
        const exists = jid !== null && !isNotOnWhatsApp(number);
        if (!exists) count('not-on-whatsapp (whatsappNumbers)');
        return { jid: jid ?? `${number.replace(/\D/g, '')}@s.whatsapp.net`, exists, number };
      }),
    );
  }

  function storeWebhook(input: Partial<FakeWebhookRow> & { url: string }): FakeWebhookRow {
    const now = new Date().toISOString();
    webhook = {
      id: webhook?.id ?? `cm${randomBytes(10).toString('hex')}`,
      url: input.url,
      headers: input.headers ?? null,
      enabled: input.enabled ?? true,
      events: input.events ?? [],
      webhookByEvents: input.webhookByEvents ?? false,
      webhookBase64: input.webhookBase64 ?? false,
      createdAt: webhook?.createdAt ?? now,
      updatedAt: now,
      instanceId: INSTANCE_ID,
    };
    return webhook;
  }

  /** POST /webhook/set: `{webhook: {enabled, url, headers?, byEvents?, base64?, events?}}`, validated as Evolution v2 does. */
  function setWebhook(body: Record<string, unknown>, res: ServerResponse): void {
    const input = body.webhook;
    if (!isObject(input)) return reply(res, 400, envelope(400, 'Bad Request', [['instance requires property "webhook"']]));
    const errors: string[] = [];
    if (typeof input.enabled !== 'boolean') errors.push('instance.webhook requires property "enabled"');
    if (typeof input.url !== 'string' || input.url === '') errors.push('instance.webhook requires property "url"');
    if (input.events !== undefined && (!Array.isArray(input.events) || input.events.some((e) => !WEBHOOK_EVENTS.includes(e as string)))) {
      errors.push('instance.webhook.events[0] is not one of enum values');
    }
    if (input.headers !== undefined && !isObject(input.headers)) errors.push('instance.webhook.headers is not of a type(s) object');
    if (errors.length > 0) return reply(res, 400, envelope(400, 'Bad Request', [errors]));
    let valid = false;
    try {
      valid = ['http:', 'https:'].includes(new URL(input.url as string).protocol);
    } catch {
      valid = false;
    }
    if (!valid) return reply(res, 400, envelope(400, 'Bad Request', ['Invalid "url" property']));
    const enabled = input.enabled as boolean;
    const events = (input.events as string[] | undefined) ?? [];
    // As Evolution: disabled clears the events, enabled with none subscribes to all of them.
    reply(
      res,
      201,
      storeWebhook({
        url: input.url as string,
        enabled,
        events: !enabled ? [] : events.length === 0 ? [...WEBHOOK_EVENTS] : events,
        headers: isObject(input.headers) ? (input.headers as Record<string, string>) : (webhook?.headers ?? null),
        webhookByEvents: input.byEvents === true,
        webhookBase64: input.base64 === true,
      }),
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = new Date();
    const raw = await readBody(req);
    if (raw === null) return reply(res, 413, envelope(413, 'Payload Too Large', 'request entity too large'));
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    let body: unknown;
    let badJson: string | undefined;
    if (raw.trim() !== '') {
      try {
        body = JSON.parse(raw);
      } catch (error) {
        body = raw;
        badJson = (error as Error).message;
      }
    }
    if (recordRequests) requests.push({ method: req.method ?? 'GET', path, body, headers: { ...req.headers }, at });
    // The JSON body parser runs before any route, as in Express.
    if (badJson) return reply(res, 400, envelope(400, 'Bad Request', badJson));

    const match = /^\/([^/]+)\/([^/]+)\/([^/]+)\/?$/.exec(path);
    const route = match ? ROUTES[`${req.method} ${match[1]}/${match[2]}`] : undefined;
    if (!match || !route) return reply(res, 404, envelope(404, 'Not Found', [`Cannot ${req.method} ${path}`]));
    const asked = decodeURIComponent(match[3]!);
    if (asked !== instance && !(options.moreInstances ?? []).includes(asked)) {
      return reply(res, 404, envelope(404, 'Not Found', [`The "${decodeURIComponent(match[3]!)}" instance does not exist`]));
    }
    if (req.headers.apikey !== apiKey) return reply(res, 401, envelope(401, 'Unauthorized', 'Unauthorized'));
    const guard = takeFault(route, GUARD_FAULTS);
    if (guard) {
      await faultAnswer(guard[0], guard[1], res);
      return;
    }

    const input = isObject(body) ? body : {};
    if (route === 'sendText') return sendText(input, res, asked);
    const fault = takeFault(route, ROUTE_WIDE);
    if (fault) {
      await faultAnswer(fault[0], fault[1], res);
      return;
    }
    if (route === 'findMessages') return findMessages(input, res);
    if (route === 'whatsappNumbers') return whatsappNumbers(input, res);
    if (route === 'setWebhook') return setWebhook(input, res);
    // No webhook set: Evolution answers 200 with a JSON null.
    if (route === 'findWebhook') return reply(res, 200, webhook);
    reply(res, 200, { instance: { instanceName: instance, state } });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: Error) => {
      if (!res.headersSent && !res.destroyed) reply(res, 500, envelope(500, 'Internal Server Error', error.message));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    instance,
    delivered,
    requests,
    notOnWhatsApp,
    faultCounts,
    fail(mode, faultOptions = {}) {
      faults.delete(mode);
      faults.set(mode, { remaining: faultOptions.count, probability: faultOptions.probability, ms: faultOptions.ms ?? 1000 });
    },
    clearFaults() {
      faults.clear();
    },
    setConnectionState(next) {
      state = next;
    },
    get webhook() {
      return webhook;
    },
    presetWebhook(input) {
      storeWebhook(input);
    },
    setDelayScale(scale) {
      delayScale = scale;
    },
    deliveriesTo,
    maxPerWindow(windowMs, number) {
      const list = number === undefined ? delivered : deliveriesTo(number);
      const times = list.map((d) => d.at.getTime()).sort((a, b) => a - b);
      let best = 0;
      let left = 0;
      for (let right = 0; right < times.length; right++) {
        while (times[right]! - times[left]! >= windowMs) left++;
        best = Math.max(best, right - left + 1);
      }
      return best;
    },
    inbound: fans.inbound,
    receiveFromLead: (input) => fans.receive(input),
    deliverWebhooksTo: (target) => fans.setTarget(target),
    loseWebhooks: (options) => fans.lose(options),
    restoreWebhooks: () => fans.lose({ share: 0 }),
    webhookCounts: fans.counts,
    inboundLooksAt: (number) => fans.looksAt(number),
    webhooksSettled: () => fans.settled(),
    failFindMessages: (fault) => fans.setFindFault(fault),
    async close() {
      if (closed) return;
      fans.close();
      closed = true;
      for (const entry of timers) {
        clearTimeout(entry.timer);
        entry.resolve();
      }
      timers.clear();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      // Held sockets (timeouts) and keep-alive connections would keep close() waiting.
      server.closeAllConnections();
      await done;
    },
  };
}

const ALL_FAULTS: ReadonlySet<FakeFaultMode> = new Set<FakeFaultMode>([
  'connection-closed',
  'server-error',
  'timeout-after-delivery',
  'timeout-before-delivery',
  'slow',
  'drop-connection',
]);

/** Evolution's schema errors, worded as its jsonschema validator words them. */
function validateSendText(body: Record<string, unknown>): string[] {
  const errors: string[] = [];
  if (!('number' in body)) errors.push('instance requires property "number"');
  else if (typeof body.number !== 'string') errors.push('Invalid format');
  if (!('text' in body)) errors.push('instance requires property "text"');
  else if (typeof body.text !== 'string') errors.push('text is not of a type(s) string');
  else if (body.text.trim() === '') errors.push('The "text" cannot be empty');
  if (body.delay !== undefined && !Number.isInteger(body.delay)) errors.push('Enter a value in milliseconds');
  if (body.linkPreview !== undefined && typeof body.linkPreview !== 'boolean') {
    errors.push('linkPreview is not of a type(s) boolean');
  }
  return errors;
}

function envelope(status: number, error: string, message: unknown) {
  return { status, error, response: { message } };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

/** The body as text, or null when it is too large. */
async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positiveInteger(value: unknown): number | undefined {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}


// =============================================================================================
// Fans writing to our number, webhook delivery, and the webhook faults (lost, late, repeated webhooks).
// Kept apart from the routes above so other additions to this file merge cleanly.
//
// What it imitates: a fan's message is stored in the chat at once (findMessages shows it,
// filed under the JID WhatsApp uses, or under the fan's @lid), and Evolution then POSTs it as a
// messages.upsert webhook; each message we send comes back as a send.message webhook (its
// echo). Evolution is known to lose webhooks, or to stop sending them altogether: `loseWebhooks`
// drops all or a share of them, and the message still exists on WhatsApp (findMessages).
// =============================================================================================

export interface FakeInboundInput {
  /** Any spelling of the fan's number. */
  phone: string;
  text: string;
  /** When the fan wrote (default now). */
  at?: Date;
  id?: string;
  /** The chat is filed under this @lid (WhatsApp's privacy id); the webhook carries the phone in remoteJidAlt. */
  lid?: string;
  /** false: stored on WhatsApp only, no webhook is even attempted. Default true. */
  webhook?: boolean;
}

export interface FakeInbound {
  fromLead: true;
  id: string;
  phone: string;
  /** The JID the chat is filed under (the @lid when given). */
  jid: string;
  phoneJid: string;
  text: string;
  /** WhatsApp's time of the message. */
  at: Date;
  /** When it was stored on "WhatsApp" (the fake's own clock). */
  storedAt: number;
  /** 'delivered' | 'lost' | 'failed' | 'none' (no target, or webhook: false) | 'pending'. */
  webhook: 'delivered' | 'lost' | 'failed' | 'none' | 'pending';
}

export type WebhookTarget = { url: string; headers?: Record<string, string> } | ((body: Record<string, unknown>) => Promise<number>);

const WEBHOOK_ATTEMPTS = 4;

function inboundRecord(message: FakeInbound) {
  return {
    id: `cm${message.id.toLowerCase()}`,
    key: {
      id: message.id,
      fromMe: false,
      remoteJid: message.jid,
      ...(message.jid.endsWith('@lid') ? { remoteJidAlt: message.phoneJid, addressingMode: 'lid' } : {}),
    },
    pushName: 'Torcedor',
    messageType: 'conversation',
    message: { conversation: message.text },
    messageTimestamp: Math.floor(message.at.getTime() / 1000),
    instanceId: INSTANCE_ID,
    source: 'android',
  };
}

function makeFans(instance: string) {
  const inbound: FakeInbound[] = [];
  const byJid = new Map<string, FakeInbound[]>();
  const looks = new Map<string, number[]>();
  const counts: { delivered: number; lost: number; failed: number; lostInbound: number; lostEcho: number; findFaults?: number } = {
    delivered: 0,
    lost: 0,
    failed: 0,
    lostInbound: 0,
    lostEcho: 0,
  };
  let target: WebhookTarget | null = null;
  let loss = { share: 0, kinds: 'all' as 'all' | 'inbound' | 'echo' };
  let sequence = 0;
  let closed = false;
  let findFault: { mode: 'error' } | { mode: 'slow'; ms: number } | null = null;
  const inFlight = new Set<Promise<void>>();

  /** Every JID a number's chat can be filed under: WhatsApp's own spelling. */
  const jidOf = (number: string) => whatsappJid(number) ?? number;

  function lost(kind: 'inbound' | 'echo'): boolean {
    if (loss.share <= 0 || (loss.kinds !== 'all' && loss.kinds !== kind)) return false;
    return loss.share >= 1 || Math.random() < loss.share;
  }

  async function post(body: Record<string, unknown>): Promise<boolean> {
    for (let attempt = 1; attempt <= WEBHOOK_ATTEMPTS && !closed; attempt++) {
      const to = target;
      if (!to) return false;
      try {
        let status: number;
        if (typeof to === 'function') status = await to(body);
        else {
          const response = await fetch(to.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...to.headers },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(10_000),
          });
          await response.arrayBuffer().catch(() => undefined);
          status = response.status;
        }
        if (status >= 200 && status < 300) return true;
        // Evolution does not retry these.
        if ([400, 401, 403, 404, 422].includes(status)) return false;
      } catch {
        // network error: retried
      }
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
    return false;
  }

  function send(kind: 'inbound' | 'echo', body: Record<string, unknown>, onDone?: (state: 'delivered' | 'lost' | 'failed' | 'none') => void) {
    if (!target) return onDone?.('none');
    if (lost(kind)) {
      counts.lost += 1;
      if (kind === 'inbound') counts.lostInbound += 1;
      else counts.lostEcho += 1;
      return onDone?.('lost');
    }
    const job = post(body).then((ok) => {
      if (ok) counts.delivered += 1;
      else counts.failed += 1;
      onDone?.(ok ? 'delivered' : 'failed');
    });
    inFlight.add(job);
    void job.finally(() => inFlight.delete(job));
  }

  const envelope = (event: string, data: Record<string, unknown>) => ({
    event,
    instance,
    data,
    destination: 'http://127.0.0.1/webhooks/evolution',
    date_time: new Date().toISOString(),
    sender: '558133334444@s.whatsapp.net',
    server_url: 'http://127.0.0.1',
    apikey: null,
  });

  return {
    inbound,
    counts,
    setTarget(next: WebhookTarget | null) {
      target = next;
    },
    lose(options: { share?: number; kinds?: 'all' | 'inbound' | 'echo' } = {}) {
      loss = { share: options.share ?? 1, kinds: options.kinds ?? 'all' };
    },
    receive(input: FakeInboundInput): FakeInbound {
      sequence += 1;
      const phoneJid = jidOf(input.phone);
      const message: FakeInbound = {
        fromLead: true,
        id: input.id ?? `3AFAN${randomBytes(4).toString('hex').toUpperCase()}${sequence.toString(16).toUpperCase().padStart(6, '0')}`,
        phone: input.phone,
        jid: input.lid ?? phoneJid,
        phoneJid,
        text: input.text,
        at: input.at ?? new Date(),
        storedAt: Date.now(),
        webhook: 'pending',
      };
      inbound.push(message);
      const list = byJid.get(message.jid);
      if (list) list.push(message);
      else byJid.set(message.jid, [message]);
      if (input.webhook === false) message.webhook = 'none';
      else send('inbound', envelope('messages.upsert', { ...inboundRecord(message), status: 'DELIVERY_ACK' }), (state) => (message.webhook = state));
      return message;
    },
    /** The echo of a message we sent (Evolution's send.message). */
    echo(delivery: FakeDelivery, requestedAt: number) {
      delivery.requestedAt = requestedAt;
      if (!target) return;
      send(
        'echo',
        envelope('send.message', {
          key: { remoteJid: delivery.jid, fromMe: true, id: delivery.id },
          pushName: 'Você',
          status: 'PENDING',
          message: { conversation: delivery.text },
          messageType: 'conversation',
          messageTimestamp: Math.floor(delivery.at.getTime() / 1000),
          instanceId: INSTANCE_ID,
          source: 'unknown',
        }),
      );
    },
    chat(remoteJid: unknown): FakeInbound[] {
      return typeof remoteJid === 'string' ? [...(byJid.get(remoteJid) ?? [])] : [...inbound];
    },
    /** A chat's messages both ways, oldest first (findMessages pages newest first from the end). */
    merged(sent: FakeDelivery[], remoteJid: unknown): Array<FakeDelivery | FakeInbound> {
      const fromFans = this.chat(remoteJid);
      if (fromFans.length === 0) return sent;
      const time = (m: FakeDelivery | FakeInbound) => m.at.getTime();
      return [...sent, ...fromFans].sort((a, b) => time(a) - time(b));
    },
    setFindFault(next: typeof findFault) {
      findFault = next;
    },
    /** True when the fault answered (500); a slow fault waits and lets the answer go on. */
    async findFault(res: ServerResponse, wait: (ms: number) => Promise<void>): Promise<boolean> {
      const fault = findFault;
      if (!fault) return false;
      counts.findFaults = (counts.findFaults ?? 0) + 1;
      if (fault.mode === 'slow') {
        await wait(fault.ms);
        return false;
      }
      const payload = JSON.stringify({ status: 500, error: 'Internal Server Error', response: { message: 'Internal Server Error' } });
      res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
      return true;
    },
    noteLook(remoteJid: string | null) {
      if (!remoteJid) return;
      // Under a lid, the look is for the number whose chat it is.
      const owner = byJid.get(remoteJid)?.[0]?.phoneJid ?? remoteJid;
      const list = looks.get(owner);
      if (list) list.push(Date.now());
      else looks.set(owner, [Date.now()]);
    },
    looksAt(number: string): number[] {
      return [...(looks.get(jidOf(number)) ?? [])];
    },
    async settled() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    close() {
      closed = true;
    },
  };
}
