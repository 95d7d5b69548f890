/**
 * What delivers a text. Two implementations: the Evolution API client and the
 * dry-run transport (prints and records). Failures are thrown as `SendError`
 * (src/errors.ts) with a kind the worker maps to a state:
 *   permanent → failed/cancelled, configuration → pause sending, transient → retry,
 *   ambiguous → reconcile with `findSent` before any retry.
 */

export interface SendTextInput {
  /** Canonical digits, e.g. 5581999998888. */
  number: string;
  text: string;
  /** "typing…" shown before the message, in milliseconds (Evolution's `delay`). */
  delayMs: number;
  /** The WhatsApp number (Evolution instance) to send from; unset: the default number. */
  instance?: string;
}

export interface SendTextResult {
  providerMessageId: string;
  /** The JID WhatsApp answered with (may lack the 9th digit). */
  remoteJid?: string;
}

export interface FindSentInput {
  number: string;
  text: string;
  /** Only messages at or after this instant count (the claim time, minus a little clock skew). */
  since: Date;
  /** The number that sent it (reconciliation asks the instance that sent); unset: the default. */
  instance?: string;
}

export interface NumberCheck {
  exists: boolean;
  jid?: string;
}

export interface FindRepliesInput {
  /** Canonical digits; both spellings (with and without Brazil's 9th digit) are asked. */
  number: string;
  /** The JID WhatsApp files the number's chat under, when /chat/whatsappNumbers told: asked instead of both spellings. */
  jid?: string | null;
  /** The fan's `…@lid` privacy JID, when a webhook showed one. */
  lid?: string | null;
  /** Only messages at or after this instant count (WhatsApp's times are whole seconds). */
  since: Date;
  timeoutMs?: number;
  /** The lead's number (the instance whose chats are asked); unset: the default. */
  instance?: string;
}

/** A message from the fan as the provider stores it: the same `data` a messages.upsert webhook carries. */
export interface StoredInbound {
  providerMessageId: string;
  at: Date;
  /** The stored record ({key, message, messageType, messageTimestamp, ...}). */
  record: Record<string, unknown>;
}

export type ConnectionState = 'open' | 'connecting' | 'close' | 'refused' | 'unknown';

export interface Transport {
  readonly name: 'evolution' | 'dry-run' | string;
  sendText(input: SendTextInput): Promise<SendTextResult>;
  /**
   * Reconciliation after an ambiguous send: the provider id of a message we sent
   * to `number` with exactly `text` since `since`, or null when there is none.
   * Throws SendError('transient', ...) when the provider cannot be asked.
   */
  findSent(input: FindSentInput): Promise<{ providerMessageId: string } | null>;
  /**
   * The pre-send reply check: messages the fan sent to us since `since`, newest first.
   * Throws SendError('transient', ...) when the provider cannot be asked. A transport
   * without a conversation store (dry-run) leaves it out, and the check is off.
   */
  findReplies?(input: FindRepliesInput): Promise<StoredInbound[]>;
  /** `instance`: the WhatsApp number to ask from (unset: the default), here and below. */
  checkNumber(number: string, instance?: string): Promise<NumberCheck>;
  /**
   * Many numbers in one call (/chat/whatsappNumbers takes a list): the answer per
   * number asked; a number the provider left out is missing from the map.
   * Optional: without it, callers ask checkNumber for each.
   */
  checkNumbers?(numbers: readonly string[], instance?: string): Promise<Map<string, NumberCheck>>;
  connectionState(instance?: string): Promise<ConnectionState>;
  close?(): Promise<void>;
}
