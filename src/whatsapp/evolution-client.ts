/**
 * The production Transport: Evolution API v2 over HTTP (the answers it parses
 * are in test/fixtures/evolution/). Every failure leaves here
 * as a SendError whose kind tells the worker what to do; the classification is
 * the contract, so it lives in one place (`httpError`, `thrownError`).
 */
import { Agent, request } from 'undici';
import { SendError } from '../errors.js';
import { type Logger, maskPhonesIn } from '../log.js';
import { phoneVariants, toJid, tryNormalizePhone } from './phone.js';
import type {
  ConnectionState,
  FindRepliesInput,
  FindSentInput,
  NumberCheck,
  SendTextInput,
  SendTextResult,
  StoredInbound,
  Transport,
} from './transport.js';

export interface EvolutionTransportOptions {
  url: string;
  apiKey: string;
  instance: string;
  /** Timeout of every call; sendText gets at least its typing delay plus a margin. */
  timeoutMs: number;
  log: Logger;
  /**
   * A fetch-compatible function to call Evolution with (tests cut connections or hang with it).
   * By default calls go through undici's `request` on a keep-alive connection pool, which costs
   * a fraction of the CPU of `fetch` per call (no WHATWG streams, no AbortSignal per request).
   */
  fetch?: typeof fetch;
}

// Our claim time and WhatsApp's timestamp come from different clocks.
const RECONCILE_SKEW_MS = 60_000;
// findMessages pages newest first (50 a page); a reconciliation looks back minutes,
// so a few pages are plenty even in a busy chat.
const FIND_MAX_PAGES = 5;
const STATES = new Set<ConnectionState>(['open', 'connecting', 'close', 'refused']);

type Operation = 'send' | 'check' | 'state';

interface Answer {
  status: number;
  body: unknown;
  text: string;
}

export function makeEvolutionTransport(options: EvolutionTransportOptions): Transport {
  const base = options.url.replace(/\/+$/, '');
  const instance = encodeURIComponent(options.instance);
  const doFetch = options.fetch;
  const { log } = options;
  // HTTP/1.1 only (undici 8 would negotiate HTTP/2 over TLS): the timeouts and the error codes
  // classified below (UND_ERR_HEADERS_TIMEOUT, resets per connection) are HTTP/1.1's, as tested.
  const pool = doFetch ? undefined : new Agent({ keepAliveTimeout: 30_000, connect: { timeout: 10_000 }, allowH2: false });

  async function call(method: 'GET' | 'POST', action: string, body: unknown, timeoutMs: number): Promise<Answer> {
    const headers: Record<string, string> = { apikey: options.apiKey, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (!doFetch) {
      // The whole answer within timeoutMs of the request (a send's includes its typing delay).
      const response = await request(`${base}/${action}/${instance}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: pool,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      let text = '';
      try {
        text = await response.body.text();
      } catch (error) {
        if (isTimeout(error)) throw error;
      }
      return { status: response.statusCode, body: parseJson(text), text };
    }
    const response = await doFetch(`${base}/${action}/${instance}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Read as text first: proxies answer HTML, and a parse error must not hide the status.
    let text = '';
    try {
      text = await response.text();
    } catch (error) {
      // The status arrived but the body did not: the status still decides, and a send
      // answered 2xx without a body becomes ambiguous (no key.id) rather than transient.
      if (isTimeout(error)) throw error;
    }
    return { status: response.status, body: parseJson(text), text };
  }

  function httpError(answer: Answer, operation: Operation): SendError {
    const error = classifyHttpError(answer, options.instance);
    // A failed connection-state query says nothing about any lead, so nothing about it is permanent.
    if (operation === 'state' && error.kind === 'permanent') {
      return new SendError('transient', error.reason, error.message, error.status);
    }
    return error;
  }

  return {
    async close() {
      // Idle keep-alive connections would hold the process open.
      await pool?.destroy();
    },
    name: 'evolution',

    async sendText({ number, text, delayMs }: SendTextInput): Promise<SendTextResult> {
      // Evolution's schema wants an integer delay.
      const delay = Math.max(0, Math.round(delayMs));
      // The call blocks for the typing delay, so the timeout is the delay plus the normal budget.
      const timeoutMs = delay + options.timeoutMs;
      const started = Date.now();
      log.debug({ phone: number, delayMs: delay, chars: text.length, timeoutMs }, 'evolution: sending text');
      let answer: Answer;
      try {
        answer = await call('POST', 'message/sendText', { number, text, delay, linkPreview: false }, timeoutMs);
      } catch (error) {
        throw logFailure(log, number, thrownError(error, 'send', timeoutMs));
      }
      if (!isOk(answer.status)) throw logFailure(log, number, httpError(answer, 'send'));
      const key = readKey(answer.body);
      if (!key.id) {
        // Evolution took the request, so it may well have gone out: reconcile, don't resend.
        throw logFailure(
          log,
          number,
          new SendError('ambiguous', 'no_message_id', `Evolution answered ${answer.status} without key.id`, answer.status),
        );
      }
      log.debug(
        { phone: number, status: answer.status, providerMessageId: key.id, ms: Date.now() - started },
        'evolution: text sent',
      );
      return key.remoteJid ? { providerMessageId: key.id, remoteJid: key.remoteJid } : { providerMessageId: key.id };
    },

    async findSent({ number, text, since }: FindSentInput) {
      const wanted = text.trim();
      const cutoffMs = since.getTime() - RECONCILE_SKEW_MS;
      log.debug({ phone: number, since: since.toISOString() }, 'evolution: looking for a sent text');
      try {
        // WhatsApp files many Brazilian mobiles under the JID without the 9th digit, and
        // findMessages matches remoteJid exactly: ask under both spellings.
        for (const variant of spellingsOf(number)) {
          const where = { key: { remoteJid: toJid(variant) } };
          for (let page = 1; page <= FIND_MAX_PAGES; page++) {
            const answer = await call(
              'POST',
              'chat/findMessages',
              page === 1 ? { where } : { where, page },
              options.timeoutMs,
            );
            if (!isOk(answer.status)) throw httpError(answer, 'check');
            const found = readRecords(answer.body);
            if (!found) throw new SendError('transient', 'bad_response', 'unexpected findMessages answer', answer.status);
            const match = found.records.find((record) => isOurText(record, wanted, cutoffMs));
            if (match) {
              log.debug({ phone: number, providerMessageId: match.key.id }, 'evolution: sent text found');
              return { providerMessageId: match.key.id };
            }
            // Pages run newest first: once a page reaches back past the cutoff, older pages cannot match.
            const reachedCutoff = found.records.some((record) => timestampMs(record.messageTimestamp) < cutoffMs);
            if (found.records.length === 0 || reachedCutoff || page >= found.pages) break;
          }
        }
        log.debug({ phone: number }, 'evolution: sent text not found');
        return null;
      } catch (error) {
        const cause = error instanceof SendError ? error : thrownError(error, 'check', options.timeoutMs);
        throw logFailure(
          log,
          number,
          new SendError('transient', 'reconcile_failed', `cannot reconcile with Evolution: ${cause.message}`, cause.status),
        );
      }
    },

    async findReplies({ number, jid, lid, since, timeoutMs }: FindRepliesInput): Promise<StoredInbound[]> {
      // Whole seconds on WhatsApp's side: a message in the anchor's own second counts (the
      // caller decides what is new), and no clock-skew allowance is taken here on purpose —
      // an older message would stop a follow-up planned after it.
      const cutoffMs = Math.floor(since.getTime() / 1000) * 1000;
      const budgetMs = timeoutMs ?? options.timeoutMs;
      const found = new Map<string, StoredInbound>();
      log.debug({ phone: number, since: since.toISOString() }, 'evolution: looking for replies');
      try {
        // The JID WhatsApp gave for the number when it was checked, else both spellings (one of them is right).
        const phoneJids = jid && jid.endsWith('@s.whatsapp.net') ? [jid] : spellingsOf(number).map(toJid);
        const jids = [...phoneJids, ...(lid ? [lid] : [])];
        // The spellings are asked at once: the check adds one round trip to a send, not three.
        await Promise.all([...new Set(jids)].map(async (remoteJid) => {
          const where = { key: { remoteJid, fromMe: false } };
          for (let page = 1; page <= FIND_MAX_PAGES; page++) {
            const answer = await call('POST', 'chat/findMessages', page === 1 ? { where } : { where, page }, budgetMs);
            if (!isOk(answer.status)) throw httpError(answer, 'check');
            const stored = readRecords(answer.body);
            if (!stored) throw new SendError('transient', 'bad_response', 'unexpected findMessages answer', answer.status);
            for (const record of stored.records) {
              // Servers that ignore `fromMe` in the filter still mark each record.
              if (record.key.fromMe === true) continue;
              const atMs = timestampMs(record.messageTimestamp);
              if (!(atMs >= cutoffMs)) continue;
              found.set(record.key.id, { providerMessageId: record.key.id, at: new Date(atMs), record: record as unknown as Record<string, unknown> });
            }
            const reachedCutoff = stored.records.some((record) => timestampMs(record.messageTimestamp) < cutoffMs);
            if (stored.records.length === 0 || reachedCutoff || page >= stored.pages) break;
          }
        }));
      } catch (error) {
        const cause = error instanceof SendError ? error : thrownError(error, 'check', budgetMs);
        // A bad key or unknown instance stays a configuration fault (sending pauses); the rest is transient.
        const kind = cause.kind === 'configuration' ? 'configuration' : 'transient';
        throw logFailure(log, number, new SendError(kind, cause.reason, `cannot look for replies: ${cause.message}`, cause.status));
      }
      log.debug({ phone: number, found: found.size }, 'evolution: replies looked for');
      return [...found.values()].sort((a, b) => b.at.getTime() - a.at.getTime());
    },

    async checkNumber(number: string): Promise<NumberCheck> {
      log.debug({ phone: number }, 'evolution: checking number');
      let answer: Answer;
      try {
        answer = await call('POST', 'chat/whatsappNumbers', { numbers: [number] }, options.timeoutMs);
      } catch (error) {
        throw logFailure(log, number, thrownError(error, 'check', options.timeoutMs));
      }
      if (!isOk(answer.status)) throw logFailure(log, number, httpError(answer, 'check'));
      const entries = Array.isArray(answer.body) ? (answer.body as unknown[]).filter(isObject) : null;
      const spellings = new Set(spellingsOf(number));
      const entry =
        entries?.find((e) => spellings.has(digitsOf(e.number)) || spellings.has(digitsOf(e.jid))) ??
        (entries?.length === 1 ? entries[0] : undefined);
      if (!entry) {
        throw logFailure(
          log,
          number,
          new SendError('transient', 'bad_response', 'whatsappNumbers answered without this number', answer.status),
        );
      }
      const result: NumberCheck = { exists: entry.exists === true };
      if (typeof entry.jid === 'string') result.jid = entry.jid;
      log.debug({ phone: number, exists: result.exists }, 'evolution: number checked');
      return result;
    },

    async checkNumbers(numbers: readonly string[]): Promise<Map<string, NumberCheck>> {
      log.debug({ count: numbers.length }, 'evolution: checking numbers');
      let answer: Answer;
      try {
        answer = await call('POST', 'chat/whatsappNumbers', { numbers }, options.timeoutMs);
      } catch (error) {
        throw logFailure(log, undefined, thrownError(error, 'check', options.timeoutMs));
      }
      if (!isOk(answer.status)) throw logFailure(log, undefined, httpError(answer, 'check'));
      const entries = Array.isArray(answer.body) ? (answer.body as unknown[]).filter(isObject) : [];
      const found = new Map<string, NumberCheck>();
      for (const number of numbers) {
        const spellings = new Set(spellingsOf(number));
        const entry = entries.find((e) => spellings.has(digitsOf(e.number)) || spellings.has(digitsOf(e.jid)));
        if (!entry) continue;
        const result: NumberCheck = { exists: entry.exists === true };
        if (typeof entry.jid === 'string') result.jid = entry.jid;
        found.set(number, result);
      }
      return found;
    },

    async connectionState(): Promise<ConnectionState> {
      let answer: Answer;
      try {
        answer = await call('GET', 'instance/connectionState', undefined, options.timeoutMs);
      } catch (error) {
        throw logFailure(log, undefined, thrownError(error, 'state', options.timeoutMs));
      }
      if (!isOk(answer.status)) throw logFailure(log, undefined, httpError(answer, 'state'));
      const body = isObject(answer.body) ? answer.body : {};
      const state = isObject(body.instance) ? body.instance.state : body.state;
      const result = STATES.has(state as ConnectionState) ? (state as ConnectionState) : 'unknown';
      log.debug({ state: result }, 'evolution: connection state');
      return result;
    },
  };
}

/** Maps an HTTP answer that is not 2xx to the SendError the worker acts on. */
function classifyHttpError(answer: Answer, instance: string): SendError {
  const { status } = answer;
  const detail = describe(answer);
  if (status === 400) {
    if (mentionsMissingNumber(answer.body)) {
      return new SendError('permanent', 'invalid_number', 'number is not on WhatsApp', status);
    }
    return new SendError('permanent', 'rejected', `Evolution rejected the request: ${detail}`, status);
  }
  if (status === 401) return new SendError('configuration', 'unauthorized', 'Evolution refused the API key', status);
  if (status === 403) return new SendError('configuration', 'forbidden', `Evolution forbade the call: ${detail}`, status);
  if (status === 404) {
    return new SendError('configuration', 'instance_not_found', `Evolution instance "${instance}" not found: ${detail}`, status);
  }
  if (status === 429) return new SendError('transient', 'rate_limited', 'Evolution is rate limiting', status);
  if (status >= 500) {
    if (/connection closed/i.test(detail)) {
      return new SendError('transient', 'connection_closed', `WhatsApp connection closed: ${detail}`, status);
    }
    return new SendError('transient', 'server_error', `Evolution answered ${status}: ${detail}`, status);
  }
  if (status >= 400 && status !== 408) {
    return new SendError('permanent', 'rejected', `Evolution answered ${status}: ${detail}`, status);
  }
  return new SendError('transient', 'server_error', `Evolution answered ${status}: ${detail}`, status);
}

/** Maps a thrown fetch error (timeout, refused, reset, DNS) to a SendError. */
function thrownError(error: unknown, operation: Operation, timeoutMs: number): SendError {
  if (error instanceof SendError) return error;
  const e = error as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } };
  if (isTimeout(error)) {
    // The request reached Evolution (or may have): for a send we cannot tell whether it went out.
    return operation === 'send'
      ? new SendError('ambiguous', 'timeout', `no answer from Evolution within ${timeoutMs} ms; the message may have been sent`)
      : new SendError('transient', 'timeout', `no answer from Evolution within ${timeoutMs} ms`);
  }
  const code = e?.cause?.code ?? e?.code;
  const reason = code ?? e?.cause?.message ?? e?.message ?? String(error);
  return new SendError('transient', 'network_error', `cannot reach Evolution: ${reason}`);
}

function isTimeout(error: unknown): boolean {
  const e = error as { name?: string; code?: string } | undefined;
  return (
    e?.name === 'TimeoutError' ||
    e?.name === 'AbortError' ||
    // undici's request: no answer (headers) or no body within the timeout.
    e?.code === 'UND_ERR_HEADERS_TIMEOUT' ||
    e?.code === 'UND_ERR_BODY_TIMEOUT'
  );
}

function logFailure(log: Logger, phone: string | undefined, error: SendError): SendError {
  log.debug({ phone, kind: error.kind, reason: error.reason, status: error.status }, 'evolution: call failed');
  return error;
}

function isOk(status: number): boolean {
  return status >= 200 && status < 300;
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The error text of an answer: `response.message` flattened (string, array, nested arrays,
 * objects), never the body as-is: bounded, with numbers and JIDs masked, because it ends up
 * in logs and on the follow-up (`last_error`), and Evolution echoes what it was sent.
 */
function describe(answer: Answer): string {
  const body = isObject(answer.body) ? answer.body : undefined;
  const response = body && isObject(body.response) ? body.response : undefined;
  const parts = flatten(response?.message ?? body?.message ?? body?.error);
  const text = parts.length > 0 ? parts.join('; ') : answer.text.replace(/\s+/g, ' ').trim();
  if (!text) return `HTTP ${answer.status}`;
  const bounded = maskPhonesIn(text);
  return bounded.length > 160 ? `${bounded.slice(0, 160)}…` : bounded;
}

function flatten(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return value ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(flatten);
  if (typeof value === 'object') return [JSON.stringify(value)];
  return [String(value)];
}

/** Evolution's "not on WhatsApp" answer: `response.message` holds `{exists: false, jid, number}`. */
function mentionsMissingNumber(body: unknown): boolean {
  const response = isObject(body) && isObject(body.response) ? body.response : undefined;
  const visit = (value: unknown): boolean =>
    Array.isArray(value) ? value.some(visit) : isObject(value) && value.exists === false;
  return visit(response?.message);
}

function readKey(body: unknown): { id?: string; remoteJid?: string } {
  const root = isObject(body) ? body : {};
  const key = isObject(root.key) ? root.key : isObject(root.data) && isObject(root.data.key) ? root.data.key : {};
  return {
    id: typeof key.id === 'string' && key.id ? key.id : undefined,
    remoteJid: typeof key.remoteJid === 'string' ? key.remoteJid : undefined,
  };
}

interface StoredMessage {
  key: { id: string; fromMe?: unknown };
  message?: unknown;
  messageTimestamp?: unknown;
}

/** v2.3 answers `{messages: {records, pages}}`; older servers a bare array. */
function readRecords(body: unknown): { records: StoredMessage[]; pages: number } | null {
  let list: unknown;
  let pages = 1;
  if (Array.isArray(body)) list = body;
  else if (isObject(body) && Array.isArray(body.messages)) list = body.messages;
  else if (isObject(body) && isObject(body.messages) && Array.isArray(body.messages.records)) {
    list = body.messages.records;
    pages = Number(body.messages.pages) || 1;
  } else return null;
  const records = (list as unknown[]).filter(
    (r): r is StoredMessage => isObject(r) && isObject(r.key) && typeof r.key.id === 'string',
  );
  return { records, pages };
}

function isOurText(record: StoredMessage, wanted: string, cutoffMs: number): boolean {
  if (record.key.fromMe !== true) return false;
  const message = isObject(record.message) ? record.message : {};
  const extended = isObject(message.extendedTextMessage) ? message.extendedTextMessage : {};
  const text = typeof message.conversation === 'string' ? message.conversation : extended.text;
  if (typeof text !== 'string' || text.trim() !== wanted) return false;
  return timestampMs(record.messageTimestamp) >= cutoffMs;
}

/** Epoch seconds as a number, a string or a protobuf Long `{low, high}`; NaN when unreadable. */
function timestampMs(value: unknown): number {
  let seconds = NaN;
  if (typeof value === 'number') seconds = value;
  else if (typeof value === 'string' && value.trim() !== '') seconds = Number(value);
  else if (isObject(value) && typeof value.low === 'number') {
    seconds = (typeof value.high === 'number' ? value.high : 0) * 2 ** 32 + (value.low >>> 0);
  }
  // Some stores keep milliseconds; no second-based timestamp reaches 1e12 before the year 33658.
  return seconds > 1e12 ? seconds : seconds * 1000;
}

/** Both spellings of a Brazilian mobile (with and without the 9th digit), whichever one was given. */
function spellingsOf(number: string): string[] {
  return [...new Set([...phoneVariants(tryNormalizePhone(number) ?? number), number])];
}

function digitsOf(value: unknown): string {
  return typeof value === 'string' ? value.split('@')[0]!.replace(/\D/g, '') : '';
}
