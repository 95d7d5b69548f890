/**
 * Structured logs (pino) that carry no personal data. Every log line passes
 * through `scrubLogFields` before it is written:
 *   - errors become a fixed set of fields (type, message, code, stack, …):
 *     the statement and parameters a driver attaches (PGlite's `query` and
 *     `params`, pg's `detail`/`where`) never reach the log, and a cause is
 *     treated the same way;
 *   - message texts, names and metadata (keys such as `text`, `name`,
 *     `metadata`, `rejected`, `body`) are replaced by their length;
 *   - in every other string, anything that looks like a phone number (a run of
 *     10 to 13 digits, spaces and dashes allowed) or a WhatsApp JID is masked
 *     as 5581*****8888.
 * Child bindings (`log.child({ phone })`) go through the same scrub, and
 * secrets are redacted by path so a stray config object never leaks a key.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

/** `5581999998888` → `5581*****8888`: enough to tell leads apart, not enough to dial. */
export function maskPhone(phone: string | null | undefined): string {
  if (!phone) return '';
  const digits = String(phone);
  if (digits.length <= 8) return '*'.repeat(digits.length);
  return `${digits.slice(0, 4)}${'*'.repeat(digits.length - 8)}${digits.slice(-4)}`;
}

const SECRET_PATHS = [
  'apiKey', '*.apiKey', 'apiToken', '*.apiToken', 'token', '*.token', 'secret', '*.secret', 'jwtKey', '*.jwtKey',
  'password', '*.password', 'authorization', '*.authorization', 'req.headers.authorization', 'req.headers.apikey',
  'req.headers["x-webhook-secret"]', 'headers.apikey', 'headers.authorization',
];

/** Keys whose values are what people wrote or are called: logged as their length only. */
const TEXT_KEYS = new Set([
  'text', 'sentText', 'sent_text', 'message_text', 'name', 'leadName', 'lead_name', 'firstName', 'metadata', 'lead_info',
  'leadInfo', 'lead', 'body', 'rejected', 'content', 'conversation', 'caption', 'prompt', 'history', 'reason_text',
]);
/** A statement's text and parameters (a driver's error, a query object): never logged, wherever they are. */
const DROPPED_KEYS = new Set(['query', 'params', 'parameters', 'values', 'internalQuery']);
/** Of an error only these are logged: pg's `detail`/`where`, PGlite's `query`/`params`, HTTP bodies never are. */
const ERROR_FIELDS_KEPT = ['code', 'kind', 'reason', 'status', 'statusCode', 'field', 'severity', 'routine', 'constraint', 'table', 'column', 'schema', 'position'];

// A JID (digits, optional device, @server); a phone as people write it (+55 (81) 99999-8888,
// 81 9999-8888); a bare run of 10 to 13 digits. Longer runs (ids) are left alone.
const JID = /\+?(\d{6,20})(?::\d+)?@(s\.whatsapp\.net|c\.us|lid|g\.us|[a-z0-9.-]+\.[a-z]{2,})/gi;
const FORMATTED_PHONE = /(?<![\w+])(?:\+?\d{1,3}[\s.-]?)?\(?\d{2}\)?[\s.-]?\d{4,5}[\s.-]?\d{4}(?!\w)/g;
const DIGIT_RUN = /(?<!\w)\+?\d{10,13}(?!\w)/g;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

export function maskPhonesIn(text: string): string {
  if (!/\d{4}/.test(text)) return text;
  let masked = text.replace(JID, (_m, digits: string, server: string) => `${maskPhone(digits)}@${server}`);
  // Ids (uuids) can hold digit runs that look like a phone: leave them whole.
  const uuids = [...masked.matchAll(UUID)].map((m) => [m.index, m.index + m[0].length] as const);
  const inUuid = (offset: number, length: number) => uuids.some(([start, end]) => offset < end && offset + length > start);
  masked = masked.replace(FORMATTED_PHONE, (match: string, offset: number) => {
    const digits = match.replace(/\D/g, '');
    if (digits.length < 10 || digits.length > 13 || inUuid(offset, match.length)) return match;
    return maskPhone(digits);
  });
  return masked.replace(DIGIT_RUN, (match: string, offset: number) => (inUuid(offset, match.length) ? match : maskPhone(match.replace(/\D/g, ''))));
}

const isErrorLike = (value: object): value is Error & Record<string, unknown> =>
  value instanceof Error || (typeof (value as { message?: unknown }).message === 'string' && typeof (value as { stack?: unknown }).stack === 'string');

function scrubError(error: Error & Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { type: error.name ?? error.constructor?.name ?? 'Error', message: maskPhonesIn(String(error.message ?? '')) };
  for (const key of ERROR_FIELDS_KEPT) {
    const value = error[key];
    if (value !== undefined && (typeof value === 'string' || typeof value === 'number')) out[key] = typeof value === 'string' ? maskPhonesIn(value) : value;
  }
  if (typeof error.stack === 'string') out.stack = maskPhonesIn(error.stack);
  if (error.cause !== undefined && depth < 4) out.cause = scrubValue(error.cause, depth + 1);
  return out;
}

function scrubValue(value: unknown, depth: number, key?: string): unknown {
  if (value === null || value === undefined) return value;
  if (key !== undefined && TEXT_KEYS.has(key) && typeof value !== 'boolean' && typeof value !== 'number') {
    if (typeof value === 'string') return `[${value.length} chars]`;
    return '[redacted]';
  }
  if (typeof value === 'string') return maskPhonesIn(value);
  if (typeof value !== 'object') return value;
  if (value instanceof Date) return value;
  if (depth > 6) return '[deep]';
  if (isErrorLike(value)) return scrubError(value, depth);
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => scrubValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (DROPPED_KEYS.has(k)) continue;
    out[k] = scrubValue(v, depth + 1, k);
  }
  return out;
}

/** The scrub every log line's fields go through (exported for tests and for callers that build text). */
export function scrubLogFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    // The phone keys are masked by the redaction below (it also covers child bindings).
    if (key === 'phone') out[key] = value;
    else out[key] = scrubValue(value, 0, key);
  }
  return out;
}

export function createLogger(options: { level: string; pretty?: boolean; destination?: pino.DestinationStream }): Logger {
  const base: pino.LoggerOptions = {
    level: options.level,
    base: { service: 'nautico-followups' },
    // pino runs the bindings formatter for the root only, not for children: the
    // redaction below covers the text keys of child bindings.
    formatters: {
      log: scrubLogFields,
      bindings: scrubLogFields,
    },
    // The scrub has already made `err` a plain object of safe fields; pino's own err serializer would re-type it.
    serializers: { err: (value: unknown) => value },
    // Phones are masked by the redaction too, because pino applies it to child bindings
    // (`log.child({ phone })`), which the `log` formatter never sees; so are text keys.
    redact: {
      paths: [...SECRET_PATHS, 'phone', '*.phone', ...TEXT_KEYS],
      censor: (value, path) => {
        const key = path[path.length - 1]!;
        if (key === 'phone') return maskPhone(value == null ? '' : String(value));
        if (TEXT_KEYS.has(key)) {
          if (typeof value === 'string') return /^\[(\d+ chars|redacted)\]$/.test(value) ? value : `[${value.length} chars]`;
          return typeof value === 'number' || typeof value === 'boolean' || value == null ? value : '[redacted]';
        }
        return '[redacted]';
      },
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination) return pino(base, options.destination);
  if (options.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return pino(base);
}
