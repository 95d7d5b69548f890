/**
 * Checks every text a model wrote before it may be sent: length, URLs and
 * amounts only from the campaign's facts, no placeholder left over, not empty,
 * not a repeat of something this lead already got. The same URL/amount checks
 * run on the campaign templates at start-up, so a template cannot smuggle in a
 * price the facts don't state either.
 *
 * The checks are deliberately blunt: a false rejection costs a template text
 * instead of a model text; a false acceptance can put an invented price in
 * front of a fan.
 */

export type RejectionReason = 'empty' | 'too_long' | 'url_not_in_facts' | 'price_not_in_facts' | 'placeholder' | 'repeat';

export type CheckResult = { ok: true; text: string } | { ok: false; why: RejectionReason; detail?: Record<string, unknown> };

/** The URLs and amounts the facts contain, normalised for comparison. */
export interface Allowances {
  urls: ReadonlySet<string>;
  amounts: ReadonlySet<string>;
}

// Explicit URLs, and bare domains with a common TLD (nautico.com.br/socio, wa.me/55..., bit.ly/x).
const URL_PATTERN =
  /\b(?:https?:\/\/|www\.)[^\s<>"'`]+|\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:com|net|org|br|io|me|app|link|ly|gl|co|info|site|store|shop|club|online|to|tv)\b(?:\/[^\s<>"'`]*)?/gi;

function normalizeUrl(url: string): string {
  return url
    .toLowerCase()
    .replace(/[.,;:!?)\]}>»”"']+$/u, '')
    .replace(/^https?:\/\//, '')
    .replace(/^www\./, '')
    .replace(/\/+$/, '');
}

export function findUrls(text: string): string[] {
  return [...text.matchAll(URL_PATTERN)].map((m) => normalizeUrl(m[0])).filter((u) => u.length > 0);
}

/** "29,90" → 2990; "1.299,90" → 129990; "29.90" → 2990; "1.299" → 129900 (Brazilian thousands). */
function toCents(raw: string): number | null {
  let s = raw.replace(/\s/g, '');
  if (s.includes(',')) s = s.replace(/\./g, '').replace(',', '.');
  else if (!/^\d+\.\d{1,2}$/.test(s)) s = s.replace(/\./g, ''); // dots as thousands, unless "29.90"
  const value = Number(s);
  return Number.isFinite(value) ? Math.round(value * 100) : null;
}

// "1.299,90" | "1299,90" | "29.90" | "29"
const NUMBER = String.raw`\d+(?:\.\d{3})+(?:,\d{1,2})?|\d+(?:[.,]\d{1,2})?(?!\d)|\d+`;
const MONEY_BEFORE = new RegExp(String.raw`(?:R\$|BRL|US\$|\$|€)\s*(${NUMBER})`, 'gi');
const MONEY_AFTER = new RegExp(String.raw`(${NUMBER})\s*(?:reais|real|conto[s]?|pila[s]?)\b`, 'gi');
const PERCENT = new RegExp(String.raw`(${NUMBER})\s*(?:%|por\s*cento)`, 'gi');
const MONEY_WORD = /R\$|\breais\b|\bBRL\b/gi;
const DISCOUNT_WORDS = /descont|\boff\b|promo|cashback|economi|abatimento|mais barat|mensalidade|pre[çc]o|valor/i;

/**
 * Every amount mentioned: `brl:<cents>` for money, `pct:<value×100>` for
 * percentages, and `brl:?` for a currency mention without a number we can read
 * ("por poucos reais") — never allowed, since the facts can't vouch for it.
 */
export function findAmounts(text: string): string[] {
  const found: string[] = [];
  let covered = 0;
  for (const pattern of [MONEY_BEFORE, MONEY_AFTER]) {
    for (const m of text.matchAll(pattern)) {
      const cents = toCents(m[1]!);
      found.push(cents === null ? 'brl:?' : `brl:${cents}`);
      covered += (m[0].match(MONEY_WORD) ?? []).length;
    }
  }
  for (const m of text.matchAll(PERCENT)) {
    // Only a percentage about a price counts ("10% de desconto"), not "100% alvirrubro".
    const around = text.slice(Math.max(0, m.index - 40), m.index + m[0].length + 40);
    if (!DISCOUNT_WORDS.test(around)) continue;
    const value = toCents(m[1]!);
    found.push(value === null ? 'pct:?' : `pct:${value}`);
  }
  // A currency word that no amount above accounted for.
  const words = (text.match(MONEY_WORD) ?? []).length;
  for (let i = covered; i < words; i++) found.push('brl:?');
  return found;
}

/** Collects every URL and amount found in any string of the facts (at any depth). */
export function allowancesOf(facts: unknown): Allowances {
  const urls = new Set<string>();
  const amounts = new Set<string>();
  const visit = (value: unknown, key?: string) => {
    if (key === '$comment') return;
    if (typeof value === 'string') {
      for (const url of findUrls(value)) {
        urls.add(url);
        urls.add(url.split('/')[0]!); // the bare host of a fact URL is as true as the URL
      }
      for (const amount of findAmounts(value)) if (!amount.endsWith('?')) amounts.add(amount);
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item);
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) visit(v, k);
    }
  };
  visit(facts);
  return { urls, amounts };
}

const PLACEHOLDERS: Array<[RegExp, string]> = [
  [/\[[^\]\n]{0,60}\]/, 'brackets'],
  [/\{[^}\n]{0,60}\}/, 'braces'],
  [/<[^>\n]{0,60}>/, 'angle_brackets'],
  [/\b(?:undefined|null|NaN)\b/i, 'literal'],
  [/\$\{|\{\{|\}\}/, 'template_syntax'],
  // An emptied slot: "Opa, !" / "E aí, ?"
  [/,\s*(?:[!?,]|\.(?!\.))/, 'empty_greeting'],
  [/\b(?:nome do (?:lead|torcedor|cliente)|seu nome aqui|NOME)\b/, 'name_token'],
];

export function findPlaceholder(text: string): string | null {
  for (const [pattern, kind] of PLACEHOLDERS) if (pattern.test(text)) return kind;
  return null;
}

/** Lower case, no accents, no punctuation or emoji, single spaces: for "is this the same text?". */
export function normalizeForComparison(text: string): string {
  return text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

function levenshtein(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      rowMin = Math.min(rowMin, current[j]!);
    }
    if (rowMin > limit) return limit + 1;
    previous = current;
  }
  return previous[b.length]!;
}

/** Same text, or one that differs in at most ~10% of its characters once normalised. */
export function isNearRepeat(a: string, b: string): boolean {
  const x = normalizeForComparison(a);
  const y = normalizeForComparison(b);
  if (x === y) return true;
  const limit = Math.floor(Math.max(x.length, y.length) * 0.1);
  return limit > 0 && levenshtein(x, y, limit) <= limit;
}

/** Trims, and drops the quotes a model likes to wrap its answer in. */
export function cleanModelText(raw: string): string {
  let text = raw.trim();
  for (const [open, close] of [['"', '"'], ['“', '”'], ["'", "'"], ['«', '»']] as const) {
    if (text.length >= 2 && text.startsWith(open) && text.endsWith(close)) text = text.slice(1, -1).trim();
  }
  return text.replace(/\n{3,}/g, '\n\n');
}

export function checkUrlsAndAmounts(text: string, allowed: Allowances): CheckResult {
  const url = findUrls(text).find((u) => !allowed.urls.has(u));
  if (url) return { ok: false, why: 'url_not_in_facts', detail: { url } };
  const amount = findAmounts(text).find((a) => !allowed.amounts.has(a));
  if (amount) return { ok: false, why: 'price_not_in_facts', detail: { amount } };
  return { ok: true, text };
}

export function checkModelText(
  raw: string | null | undefined,
  options: { maxChars: number; allowed: Allowances; previousTexts: readonly string[] },
): CheckResult {
  const text = cleanModelText(raw ?? '');
  if (text.length === 0) return { ok: false, why: 'empty' };
  if ([...text].length > options.maxChars) return { ok: false, why: 'too_long', detail: { length: [...text].length, max: options.maxChars } };
  const placeholder = findPlaceholder(text);
  if (placeholder) return { ok: false, why: 'placeholder', detail: { kind: placeholder } };
  const facts = checkUrlsAndAmounts(text, options.allowed);
  if (!facts.ok) return facts;
  if (options.previousTexts.some((previous) => isNearRepeat(text, previous))) return { ok: false, why: 'repeat' };
  return { ok: true, text };
}
