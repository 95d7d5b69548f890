/**
 * The claims in a text that only the campaign's facts may make: money amounts
 * (in digits or in words, with slang: "9,90 mangos", "dez reais", "trinta
 * conto"), percentages about a price, offers and free-of-charge claims ("de
 * graça", "grátis", "metade do preço", "50% off"), PIX keys, phone numbers and
 * e-mail addresses. Each finder returns comparable keys; the guardrail allows a
 * key only when the same finder found it in the facts.
 */
import { foldForLinks } from './find-links.js';

/** Lower case, no accents, NFKC (full-width digits and letters folded), invisible characters dropped. */
function plain(text: string): string {
  return foldForLinks(text)
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase();
}

/** "29,90" → 2990; "1.299,90" → 129990; "29.90" → 2990; "1.299" → 129900 (Brazilian thousands). */
function toCents(raw: string): number | null {
  let s = raw.replace(/\s/g, '');
  if (s.includes(',')) s = s.replace(/\./g, '').replace(',', '.');
  else if (!/^\d+\.\d{1,2}$/.test(s)) s = s.replace(/\./g, ''); // dots as thousands, unless "29.90"
  const value = Number(s);
  return Number.isFinite(value) ? Math.round(value * 100) : null;
}

const UNITS: Record<string, number> = {
  zero: 0, um: 1, uma: 1, dois: 2, duas: 2, tres: 3, quatro: 4, cinco: 5, seis: 6, sete: 7, oito: 8, nove: 9,
  dez: 10, onze: 11, doze: 12, treze: 13, quatorze: 14, catorze: 14, quinze: 15, dezesseis: 16, dezessete: 17,
  dezoito: 18, dezenove: 19, vinte: 20, trinta: 30, quarenta: 40, cinquenta: 50, sessenta: 60, setenta: 70,
  oitenta: 80, noventa: 90, cem: 100, cento: 100, duzentos: 200, duzentas: 200, trezentos: 300, quatrocentos: 400,
  quinhentos: 500, seiscentos: 600, setecentos: 700, oitocentos: 800, novecentos: 900,
};
const NUMBER_WORD = `(?:${Object.keys(UNITS).join('|')}|mil)`;
const WORDS = `${NUMBER_WORD}(?:(?:\\s+e\\s+|\\s+)${NUMBER_WORD})*`;

/** "vinte e nove" → 29, "mil e duzentos" → 1200; null when it is not a number we can read. */
function wordsToNumber(words: string): number | null {
  let total = 0;
  let group = 0;
  for (const word of words.split(/\s+/)) {
    if (word === 'e') continue;
    if (word === 'mil') {
      total += (group || 1) * 1000;
      group = 0;
    } else if (word in UNITS) group += UNITS[word]!;
    else return null;
  }
  return total + group;
}

// "1.299,90" | "1299,90" | "29.90" | "29"
const NUMBER = String.raw`\d+(?:\.\d{3})+(?:,\d{1,2})?|\d+(?:[.,]\d{1,2})?(?!\d)|\d+`;
const CURRENCY = String.raw`(?:reais|real|contos?|pilas?|mangos?|paus?|pratas?|merreca|dinheiros?|grana|bufunfa|dilmas?|temers?)`;
const PER_PERIOD = String.raw`(?:por\s+mes|\/\s*mes|ao\s+mes|mensais|mensal|por\s+ano|\/\s*ano|ao\s+ano|anuais|anual|por\s+dia|\/\s*dia)`;
const MONEY_PATTERNS: Array<[RegExp, (m: RegExpMatchArray) => string]> = [
  [new RegExp(String.raw`(?:r\s*\$|brl|us\s*\$|usd|\$|€|eur)\s*(${NUMBER})`, 'g'), (m) => cents(toCents(m[1]!))],
  [new RegExp(String.raw`(${NUMBER})\s*(?:${CURRENCY})\b`, 'g'), (m) => cents(toCents(m[1]!))],
  [
    new RegExp(String.raw`\b(${WORDS})\s+${CURRENCY}\b(?:\s+e\s+(${WORDS})\s+centavos?\b)?`, 'g'),
    (m) => {
      const whole = wordsToNumber(m[1]!);
      const fraction = m[2] ? wordsToNumber(m[2]) : 0;
      return whole === null || fraction === null ? 'brl:?' : `brl:${whole * 100 + fraction}`;
    },
  ],
  [new RegExp(String.raw`\b(${WORDS})\s+centavos?\b`, 'g'), (m) => cents(wordsToNumber(m[1]!))],
  [new RegExp(String.raw`(${NUMBER})\s*centavos?\b`, 'g'), (m) => cents(Number(m[1]!.replace(',', '.')))],
  // An amount with a period but no currency: "por 19,90 por mês", "9,90/mês".
  [new RegExp(String.raw`(${NUMBER})\s*${PER_PERIOD}`, 'g'), (m) => cents(toCents(m[1]!))],
  // Two decimals after a comma are money in Brazilian writing ("só 9,90!").
  [/(?<![\d.,])(\d{1,3}(?:\.\d{3})*,\d{2})(?![\d,])/g, (m) => cents(toCents(m[1]!))],
];
const cents = (value: number | null) => (value === null || !Number.isFinite(value) ? 'brl:?' : `brl:${Math.round(value)}`);

const PERCENT = new RegExp(String.raw`(${NUMBER})\s*(?:%|por\s*cento)|\b(${WORDS})\s+por\s*cento`, 'g');
const PRICE_CONTEXT = /descont|\boff\b|promo|cashback|economi|abatimento|mais barat|mensalidade|preco|valor|pagar|paga|plano|taxa|gratis|free/;
// A currency word no amount above accounted for ("por poucos reais", "uns trocados").
const BARE_CURRENCY = /r\s*\$|\breais\b|\bbrl\b|\btrocados\b|\bcentavos?\b/g;

/**
 * Every amount mentioned: `brl:<cents>` for money, `pct:<value×100>` for a
 * percentage about a price, and `brl:?` / `pct:?` for one we cannot read —
 * never allowed, since the facts can't vouch for it.
 */
export function findAmounts(text: string): string[] {
  let rest = plain(text);
  const found: string[] = [];
  const blank = (m: RegExpMatchArray) => {
    rest = rest.slice(0, m.index!) + ' '.repeat(m[0].length) + rest.slice(m.index! + m[0].length);
  };
  // Percentages first, so "50 por cento" is not read as money; only one about a price counts ("100% alvirrubro" does not).
  for (const m of [...rest.matchAll(PERCENT)]) {
    const around = rest.slice(Math.max(0, m.index! - 40), m.index! + m[0].length + 40);
    const value = m[1] !== undefined ? toCents(m[1]) : (wordsToNumber(m[2]!) ?? NaN) * 100;
    if (PRICE_CONTEXT.test(around)) found.push(value === null || Number.isNaN(value) ? 'pct:?' : `pct:${value}`);
    blank(m);
  }
  for (const [pattern, key] of MONEY_PATTERNS) {
    for (const m of [...rest.matchAll(pattern)]) {
      found.push(key(m));
      blank(m);
    }
  }
  for (const _ of rest.matchAll(BARE_CURRENCY)) found.push('brl:?');
  return found;
}

/** Offers and free-of-charge claims, by kind: the facts must make a claim of the same kind. */
const OFFERS: Array<[string, RegExp]> = [
  ['free', /\bgratis\b|\bgratuit[oa]s?\b|\bde graca\b|\bna faixa\b|\bsem (?:custo|pagar|cobrar|cobranca)\b|\bfree\b|\bde gratis\b|\bnao paga(?:r)? nada\b|\bsai de graca\b|\bcusto zero\b|\bzero reais\b|\bisent[oa]s?\b|\bisencao\b|\bcortesia\b|\bbrinde\b|\bganh(?:a|e|ar) (?:um|uma|o|a)\b/],
  ['discount', /\bdescont|\bdesconto|\boff\b|\babatimento|\bcashback|\bcupo(?:m|ns)\b|\bvoucher|\bcodigo promocional|\bmetade do (?:preco|valor)|\bpela metade\b|\bmeio preco\b|\bpreco de banana\b|\bmais barat|\bbaratinh|\bpreco especial\b|\bcondicao especial\b|\bvalor especial\b|\bleve \d+ pague\b|\b\d+ por 1\b|\bdois por um\b/],
  ['promotion', /\bpromo(?:cao|coes|cional)?\b|\boferta|\bliquidacao\b|\bqueima\b|\bblack ?friday\b|\bso hoje\b|\bultimas? vagas?\b|\bexclusiv[oa] pra voce\b/],
  ['installments', /\bparcel|\bsem juros\b|\bx de r\s*\$|\b\d+\s*x\s*(?:de|sem)\b/],
];

export function findOffers(text: string): string[] {
  const t = plain(text);
  return OFFERS.filter(([, pattern]) => pattern.test(t)).map(([kind]) => kind);
}

/** PIX: any mention of it, or a key-shaped token (random EVP key, CPF, CNPJ). */
const PIX_PATTERNS = [
  /\bpix\b/,
  /\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b/, // EVP (random key)
  /(?<!\d)\d{3}\.?\d{3}\.?\d{3}-\d{2}(?!\d)/, // CPF
  /(?<!\d)\d{2}\.?\d{3}\.?\d{3}\/?\d{4}-?\d{2}(?!\d)/, // CNPJ
];

export function findPix(text: string): string[] {
  const t = plain(text);
  return PIX_PATTERNS.flatMap((pattern) => {
    const m = t.match(pattern);
    return m ? [`pix:${m[0].replace(/[^a-z0-9]/g, '')}`] : [];
  });
}

/** Phone numbers: 8 to 13 digits with the usual separators, or 8+ digits spelled out ("nove nove oito ..."). */
const PHONE_DIGITS = /(?<![\d,])\+?\d(?:[\s().-]{0,3}\d){7,12}(?![\d,])/g;
const DIGIT_WORDS = '(?:zero|um|uma|dois|duas|tres|quatro|cinco|seis|meia|sete|oito|nove)';
const PHONE_WORDS = new RegExp(`\\b${DIGIT_WORDS}(?:[\\s,.-]+${DIGIT_WORDS}){7,}\\b`, 'g');

export function findPhones(text: string): string[] {
  const t = plain(text);
  const phones: string[] = [];
  for (const m of t.matchAll(PHONE_DIGITS)) {
    // An IPv4 address is a link, not a phone (the link check refuses it).
    if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(m[0])) continue;
    phones.push(`tel:${m[0].replace(/\D/g, '').replace(/^55(?=\d{10,11}$)/, '')}`);
  }
  for (const m of t.matchAll(PHONE_WORDS)) phones.push(`tel:${m[0].replace(/[\s,.-]+/g, ' ')}`);
  return phones;
}

/** E-mail addresses, also written "fulano (at) x.com" or "fulano arroba x ponto com". */
const EMAIL = /(?<![\p{L}\p{N}._%+/:-])[\p{L}\p{N}._%+-]+\s*(?:@|\(at\)|\[at\]|\{at\}|\s+arroba\s+|\s+at\s+)\s*[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+/gu;

export function findEmails(text: string): string[] {
  return [...plain(text).matchAll(EMAIL)].map((m) => `email:${m[0].replace(/\s*(?:\(at\)|\[at\]|\{at\}|\s+arroba\s+|\s+at\s+)\s*/, '@').replace(/\s+/g, '')}`);
}
