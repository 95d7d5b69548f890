/**
 * Checks on a JSON body before any route sees it:
 *   - nesting depth: a 5,000-level body used to reach PostgreSQL's jsonb and fail
 *     there (500); counted on the raw text, without recursion, before parsing;
 *   - NUL characters (U+0000): PostgreSQL text cannot hold them, so a NUL in a
 *     name or a message failed the INSERT (500, with the row in the error). The
 *     API refuses them (400 naming the field); webhooks strip them instead,
 *     because refusing a lead's reply would leave its follow-ups running.
 */
import { ValidationError } from '../errors.js';

export const MAX_JSON_DEPTH = 32;

/** Throws a ValidationError when `text` nests arrays/objects deeper than `max`. */
export function assertJsonDepth(text: string, max = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > max) throw new ValidationError(`body: nests deeper than ${max} levels`, 'body');
    } else if (c === 125 || c === 93) depth--;
  }
}

/** The path (`lead.name`, `leads.3.phone`) of the first string or key holding a NUL, or null. */
export function findNul(value: unknown, path: string[] = []): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path.join('.') || '(body)' : null;
  if (value === null || typeof value !== 'object') return null;
  const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  for (const [key, child] of entries) {
    if (key.includes('\u0000')) return [...path, key.replace(/\u0000/g, '\\u0000')].join('.');
    const found = findNul(child, [...path, key]);
    if (found) return found;
  }
  return null;
}

/** A UTF-16 surrogate without its pair: JSON.stringify writes it as `\udXXX`, which PostgreSQL's jsonb refuses. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function cleanString(text: string): string {
  return text.replace(/\u0000/g, '').replace(LONE_SURROGATE, '\ufffd');
}

/**
 * The same value with every NUL removed from strings and keys, and every lone surrogate
 * replaced by U+FFFD (as UTF-8 encoding of a text column does anyway), so that any part of
 * it can be stored as text or jsonb (the raw payload forwarded to the agent is).
 */
export function cleanStrings<T>(value: T): T {
  if (typeof value === 'string') return cleanString(value) as T;
  if (Array.isArray(value)) return value.map(cleanStrings) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [cleanString(k), cleanStrings(v)])) as T;
  }
  return value;
}

export function assertNoNul(value: unknown): void {
  const field = findNul(value);
  if (field !== null) throw new ValidationError(`${field}: must not contain NUL characters (\\u0000)`, field);
}
