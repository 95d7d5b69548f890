/**
 * Claims a text makes that its facts must back: a link whose exact host is not one
 * of the facts' hosts, an amount, an offer or free-of-charge claim, a PIX key, a
 * phone number or an e-mail address (find-links.ts, find-claims.ts), and leftover
 * placeholders. Used on a model's text before it is sent (compose/guardrails.ts) and
 * on the campaign templates at start-up (campaigns/check-campaign.ts).
 */
import { findAmounts, findEmails, findOffers, findPhones, findPix } from './find-claims.js';
import { findLinks, hostsOf } from './find-links.js';

export type RejectionReason =
  | 'empty'
  | 'too_long'
  | 'url_not_in_facts'
  | 'price_not_in_facts'
  | 'offer_not_in_facts'
  | 'pix_not_in_facts'
  | 'phone_not_in_facts'
  | 'email_not_in_facts'
  | 'placeholder'
  | 'repeat';

export type CheckResult = { ok: true; text: string } | { ok: false; why: RejectionReason; detail?: Record<string, unknown> };

/** What the facts contain, in the finders' comparable keys. */
export interface Allowances {
  /** Exact hosts (WHATWG, punycode) of the facts' links. */
  hosts: ReadonlySet<string>;
  amounts: ReadonlySet<string>;
  offers: ReadonlySet<string>;
  pix: ReadonlySet<string>;
  phones: ReadonlySet<string>;
  emails: ReadonlySet<string>;
}

/** The links in a text, as "host/path" without scheme (for messages and tests). */
export function findUrls(text: string): string[] {
  return findLinks(text).map((l) => l.url);
}

/** Collects what every string of the facts (at any depth) contains. */
export function allowancesOf(facts: unknown): Allowances {
  const allowed = { hosts: new Set<string>(), amounts: new Set<string>(), offers: new Set<string>(), pix: new Set<string>(), phones: new Set<string>(), emails: new Set<string>() };
  const visit = (value: unknown, key?: string) => {
    if (key === '$comment') return;
    if (typeof value === 'string') {
      for (const host of hostsOf(value)) allowed.hosts.add(host);
      for (const amount of findAmounts(value)) if (!amount.endsWith('?')) allowed.amounts.add(amount);
      for (const offer of findOffers(value)) allowed.offers.add(offer);
      for (const pix of findPix(value)) allowed.pix.add(pix);
      for (const phone of findPhones(value)) allowed.phones.add(phone);
      for (const email of findEmails(value)) allowed.emails.add(email);
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item);
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) visit(v, k);
    }
  };
  visit(facts);
  return allowed;
}

/** Every claim in the text must be one the facts make; the first that is not is the reason. */
export function checkClaims(text: string, allowed: Allowances): CheckResult {
  // E-mails first: "fulano (at) x.com" also holds a host, and the e-mail is the better reason.
  const email = findEmails(text).find((e) => !allowed.emails.has(e));
  if (email) return { ok: false, why: 'email_not_in_facts', detail: { email } };
  const link = findLinks(text).find((l) => !allowed.hosts.has(l.host));
  if (link) return { ok: false, why: 'url_not_in_facts', detail: { url: link.url, host: link.host || null, ...(link.obfuscated ? { obfuscated: true } : {}) } };
  const pix = findPix(text).find((p) => !allowed.pix.has(p));
  if (pix) return { ok: false, why: 'pix_not_in_facts', detail: { pix } };
  const phone = findPhones(text).find((p) => !allowed.phones.has(p));
  if (phone) return { ok: false, why: 'phone_not_in_facts', detail: { phone } };
  const amount = findAmounts(text).find((a) => !allowed.amounts.has(a));
  if (amount) return { ok: false, why: 'price_not_in_facts', detail: { amount } };
  const offer = findOffers(text).find((o) => !allowed.offers.has(o));
  if (offer) return { ok: false, why: 'offer_not_in_facts', detail: { offer } };
  return { ok: true, text };
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

