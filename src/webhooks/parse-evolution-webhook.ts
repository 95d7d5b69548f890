/**
 * Evolution API webhook bodies → the few events this system acts on. Defensive
 * on purpose: servers differ in small ways (see evolution-api.md), so what can be
 * read is read, what cannot be acted on is "ignored" (2xx, Evolution must not
 * retry it), and only a body that cannot be an Evolution event at all, or a
 * known event without its essential fields, is malformed (ValidationError → 400,
 * which Evolution does not retry either).
 *
 * Event names come as `messages.upsert`, `MESSAGES_UPSERT` or, in by-events mode,
 * in the URL as `messages-upsert`; all are folded to the dotted lower-case form.
 */
import { ValidationError } from '../errors.js';
import { tryNormalizePhone } from '../whatsapp/phone.js';

export interface WebhookMessage {
  providerMessageId: string;
  fromMe: boolean;
  /** Canonical digits of the other party. */
  phone: string;
  text: string | null;
  messageType: string | null;
  /** From data.messageTimestamp; null when absent or unreadable. */
  at: Date | null;
  /** The `…@lid` privacy JID the message came under, when it did (the phone is then from remoteJidAlt). */
  lid?: string;
}

export type WebhookEvent =
  | { kind: 'message'; event: string; message: WebhookMessage }
  | { kind: 'connection'; event: string; state: string; statusReason: number | null }
  | { kind: 'ignored'; event: string; reason: string };

const MAX_ID = 200;
const MAX_TEXT = 4096;
const MAX_EVENT = 100;
/** Anything before this is not a WhatsApp message time (seconds since epoch, 2009-02-13). */
const EARLIEST_SECONDS = 1_234_567_890;

type Obj = Record<string, unknown>;
const isObject = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

export function normalizeEventName(name: string): string {
  return name.trim().toLowerCase().replace(/[_-]/g, '.');
}

/** PostgreSQL text cannot hold NUL; everything stored passes through here. */
function clean(value: string, max: number): string {
  const stripped = value.includes('\u0000') ? value.replace(/\u0000/g, '') : value;
  return stripped.length > max ? stripped.slice(0, max) : stripped;
}

function malformed(field: string, message: string): never {
  throw new ValidationError(`${field}: ${message}`, field);
}

export function parseEvolutionWebhook(body: unknown, pathEvent?: string): WebhookEvent[] {
  if (!isObject(body)) malformed('(body)', 'must be a JSON object (an Evolution webhook event)');
  const rawEvent = body.event ?? pathEvent;
  if (typeof rawEvent !== 'string' || rawEvent.trim() === '') malformed('event', 'is required (e.g. "messages.upsert")');
  if (rawEvent.length > MAX_EVENT) malformed('event', `must be at most ${MAX_EVENT} characters`);
  const event = normalizeEventName(rawEvent);

  switch (event) {
    case 'messages.upsert': {
      const data = body.data;
      // One message per event in v2; a list is read item by item, as older servers batched them.
      const items = Array.isArray(data) ? data : [data];
      if (items.length === 0) return [{ kind: 'ignored', event, reason: 'no_messages' }];
      if (items.length > 100) malformed('data', 'must hold at most 100 messages');
      return items.map((item, i) => parseMessage(item, Array.isArray(data) ? `data.${i}` : 'data', event));
    }
    case 'connection.update': {
      const data = body.data;
      if (!isObject(data)) malformed('data', 'must be an object with a state');
      if (typeof data.state !== 'string') malformed('data.state', 'must be a string (open, connecting, close, refused)');
      const statusReason = typeof data.statusReason === 'number' && Number.isFinite(data.statusReason) ? data.statusReason : null;
      return [{ kind: 'connection', event, state: clean(data.state, 40).toLowerCase(), statusReason }];
    }
    default:
      // messages.update (receipts), send.message, contacts.*, chats.*, presence.update, qrcode.updated, ...
      return [{ kind: 'ignored', event: clean(event, MAX_EVENT), reason: 'event_not_used' }];
  }
}

function parseMessage(data: unknown, at: string, event: string): WebhookEvent {
  if (!isObject(data)) malformed(at, 'must be an object (one message)');
  const key = data.key;
  if (!isObject(key)) malformed(`${at}.key`, 'must be an object with remoteJid, fromMe and id');
  if (typeof key.id !== 'string' || key.id.trim() === '') malformed(`${at}.key.id`, 'must be a non-empty string');
  if (key.id.length > MAX_ID) malformed(`${at}.key.id`, `must be at most ${MAX_ID} characters`);
  if (typeof key.remoteJid !== 'string' || key.remoteJid === '') malformed(`${at}.key.remoteJid`, 'must be a non-empty string');
  if (key.fromMe !== undefined && typeof key.fromMe !== 'boolean') malformed(`${at}.key.fromMe`, 'must be a boolean');

  const jid = key.remoteJid.toLowerCase();
  if (jid.endsWith('@g.us')) return { kind: 'ignored', event, reason: 'group' };
  if (jid.endsWith('@broadcast')) return { kind: 'ignored', event, reason: 'broadcast' };
  if (jid.endsWith('@newsletter')) return { kind: 'ignored', event, reason: 'newsletter' };

  let phoneJid: unknown = key.remoteJid;
  if (jid.endsWith('@lid')) {
    // A privacy id, not a number: the phone comes in remoteJidAlt (or senderPn on some versions).
    phoneJid = [key.remoteJidAlt, key.senderPn, data.remoteJidAlt, data.senderPn].find((v) => typeof v === 'string' && v.includes('@s.whatsapp.net'));
    if (typeof phoneJid !== 'string') return { kind: 'ignored', event, reason: 'lid_without_phone' };
  }
  const phone = phoneOfJid(phoneJid as string);
  if (!phone) return { kind: 'ignored', event, reason: 'not_a_phone_number' };

  const message = isObject(data.message) ? data.message : {};
  const text = textOf(message);
  const messageType = typeof data.messageType === 'string' && data.messageType ? clean(data.messageType, 64) : firstKey(message);
  return {
    kind: 'message',
    event,
    message: {
      providerMessageId: clean(key.id, MAX_ID),
      fromMe: key.fromMe === true,
      phone,
      text: text === null ? null : clean(text, MAX_TEXT),
      messageType,
      at: timestampOf(data.messageTimestamp),
      ...(jid.endsWith('@lid') ? { lid: clean(jid, MAX_ID) } : {}),
    },
  };
}

/** `558199998888@s.whatsapp.net` (or `…:12@…` with a device suffix) → canonical digits. A JID always carries the country code. */
function phoneOfJid(jid: string): string | null {
  const user = jid.split('@')[0]!.split(':')[0]!;
  if (!/^\d{8,15}$/.test(user)) return null;
  return tryNormalizePhone(`+${user}`);
}

const TEXT_PATHS: Array<[string, string]> = [
  ['extendedTextMessage', 'text'],
  ['imageMessage', 'caption'],
  ['videoMessage', 'caption'],
  ['documentMessage', 'caption'],
  ['buttonsResponseMessage', 'selectedDisplayText'],
  ['listResponseMessage', 'title'],
  ['templateButtonReplyMessage', 'selectedDisplayText'],
];
const WRAPPERS = ['ephemeralMessage', 'viewOnceMessage', 'viewOnceMessageV2', 'documentWithCaptionMessage', 'editedMessage'];

function textOf(message: Obj, depth = 0): string | null {
  if (typeof message.conversation === 'string') return message.conversation;
  for (const [field, property] of TEXT_PATHS) {
    const inner = message[field];
    if (isObject(inner) && typeof inner[property] === 'string') return inner[property] as string;
  }
  if (depth < 3) {
    for (const wrapper of WRAPPERS) {
      const inner = message[wrapper];
      if (isObject(inner) && isObject(inner.message)) return textOf(inner.message, depth + 1);
    }
  }
  return null;
}

function firstKey(message: Obj): string | null {
  const key = Object.keys(message).find((k) => k !== 'messageContextInfo');
  return key ? clean(key, 64) : null;
}

/** Epoch seconds as a number, a numeric string or a protobuf Long `{low, high}`; null when unreadable. */
function timestampOf(value: unknown): Date | null {
  let seconds = NaN;
  if (typeof value === 'number') seconds = value;
  else if (typeof value === 'string' && /^\d{1,16}$/.test(value.trim())) seconds = Number(value);
  else if (isObject(value) && typeof value.low === 'number') {
    seconds = (typeof value.high === 'number' ? value.high : 0) * 2 ** 32 + (value.low >>> 0);
  }
  if (!Number.isFinite(seconds)) return null;
  if (seconds > 1e12) seconds /= 1000; // some stores keep milliseconds
  if (seconds < EARLIEST_SECONDS || seconds > 1e11) return null;
  return new Date(Math.floor(seconds) * 1000);
}
