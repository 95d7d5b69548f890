/**
 * Checks every text a model wrote before it may be sent: length, no placeholder
 * left over, not empty, not a repeat of something this lead already got, and
 * no claim the campaign's facts do not make — a link whose exact host is not
 * one of the facts' hosts, an amount, an offer or free-of-charge claim, a PIX
 * key, a phone number or an e-mail address (src/claims/). The same claim checks
 * run on the campaign templates at start-up (campaigns/check-campaign.ts), so a
 * template cannot smuggle in a price the facts don't state either.
 *
 * The model's text may have been steered by the lead (prompt injection: the
 * conversation is data, see build-prompt.ts, but a model can still be talked
 * into things), so these checks assume a hostile author. They are deliberately
 * blunt: a false rejection costs a template text instead of a model text; a
 * false acceptance can put an invented price, a payment key or a phishing link
 * in front of a fan in the club's name.
 */
import { type Allowances, checkClaims, type CheckResult, findPlaceholder } from '../claims/check-claims.js';

export { allowancesOf, checkClaims, findPlaceholder, findUrls, type Allowances, type CheckResult, type RejectionReason } from '../claims/check-claims.js';
export { findAmounts } from '../claims/find-claims.js';

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

export function checkModelText(
  raw: string | null | undefined,
  options: { maxChars: number; allowed: Allowances; previousTexts: readonly string[] },
): CheckResult {
  const text = cleanModelText(raw ?? '');
  if (text.length === 0) return { ok: false, why: 'empty' };
  if ([...text].length > options.maxChars) return { ok: false, why: 'too_long', detail: { length: [...text].length, max: options.maxChars } };
  // Claims before placeholders: "nautico[.]com" is a link first, brackets second.
  const facts = checkClaims(text, options.allowed);
  if (!facts.ok) return facts;
  const placeholder = findPlaceholder(text);
  if (placeholder) return { ok: false, why: 'placeholder', detail: { kind: placeholder } };
  if (options.previousTexts.some((previous) => isNearRepeat(text, previous))) return { ok: false, why: 'repeat' };
  return { ok: true, text };
}
