/**
 * Every URL-like token in a text, with the exact host it would take a reader to.
 *
 * A model steered by a lead (or just inventing) writes links the way spammers
 * do: `socio.nautico-pe.com.br.evil.ru/pagar`, a `.xyz` domain, a bare IP,
 * full-width dots (`bit．ly`), `bit . ly / x`, `hxxp://`, `nautico[.]com`,
 * `site ponto com`, zero-width characters inside a name, a user-info prefix
 * (`https://socio.nautico-pe.com.br@evil.ru`). So we do not look for known
 * endings: the text is first folded (NFKC, dot look-alikes, obfuscated dots and
 * schemes undone, invisible characters dropped), then every token shaped like a
 * host (labels joined by dots, the last one letters; or an IPv4 address), with
 * or without a scheme, is parsed by WHATWG URL, and its host (punycode, port
 * included) is what the guardrail compares, exactly, with the hosts of the
 * campaign's facts.
 *
 * Blunt on purpose: "Oi, Ana.Tudo bem?" (no space after the dot) reads as a host
 * and the template is sent instead — a cheap false rejection.
 */

export interface FoundLink {
  /** The token as a reader would type it: lower case, no scheme, no trailing punctuation. */
  url: string;
  /** WHATWG host (punycode, `:port` when one was given); '' when it cannot be parsed. */
  host: string;
  /** The token was written to dodge a filter (hxxp, [.], "ponto com", spaced dots, look-alike dots). */
  obfuscated: boolean;
}

// Invisible characters that split a word without showing: zero-width space/joiners, word joiner, BOM, soft hyphen.
const INVISIBLE = /[\u200B-\u200D\u2060\uFEFF\u00AD\u180E]/g;
// Dot look-alikes NFKC leaves alone (ideographic full stop and friends, middle dot).
const DOT_LOOKALIKES = /[\u3002\uFF61\u2024\u00B7\u2027\u0701\u0702\u2E33\u30FB\uFF65]/g;
// Written-out dots: "[.]", "(.)", "{.}", "[dot]", "(dot)", "(ponto)".
const BRACKETED_DOT = /\s*[[({]\s*(?:\.|dot|ponto)\s*[\])}]\s*/gi;
// Common top-level domains that obfuscated links spell out after a word dot or a spaced dot.
const SPELLED_TLD =
  'com|net|org|br|io|me|ly|gl|co|app|link|xyz|click|info|site|online|store|shop|top|ru|cn|tk|ml|ga|cf|gq|biz|us|uk|de|pt|ar|es|fr|it|nl|eu|in|pw|cc|ws|to|tv|live|vip|club|win|bid|icu|buzz|fun|space|website|page|dev|ai|sh|gg|im|is|ee|ws';
const WORD_DOT = new RegExp(String.raw`([\p{L}\p{N}])\s+(?:dot|ponto)\s+(${SPELLED_TLD})(?![\p{L}\p{N}])`, 'giu');
// "bit . ly", "nautico .com", "site. br" — a dot with space around it, before a TLD.
const SPACED_DOT = new RegExp(String.raw`([\p{L}\p{N}])(?:\s+\.\s*|\s*\.\s+)(${SPELLED_TLD})(?![\p{L}\p{N}])`, 'giu');
// "bit.ly / x" → "bit.ly/x" once the host is whole.
const SPACED_SLASH = /([\p{L}\p{N}])\s+\/\s*([\p{L}\p{N}])|([\p{L}\p{N}])\/\s+([\p{L}\p{N}])/gu;
// hxxp, hXXps, h**p, http[:]//, https : //
const OBFUSCATED_SCHEME = /\bh(?:xx|\*\*|tt)p(s?)\s*(?:\[:\]|\(:\)|:)\s*\/\s*\//gi;

/** The text as a link would be read out of it. */
export function foldForLinks(text: string): string {
  let folded = text.normalize('NFKC').replace(INVISIBLE, '').replace(DOT_LOOKALIKES, '.').replace(OBFUSCATED_SCHEME, (_m, s: string) => `http${s}://`);
  // Repeated: "nautico . com . br" needs two passes (matches cannot overlap).
  for (let pass = 0; pass < 4; pass++) {
    const next = folded.replace(BRACKETED_DOT, '.').replace(WORD_DOT, '$1.$2').replace(SPACED_DOT, '$1.$2');
    if (next === folded) break;
    folded = next;
  }
  return folded.replace(SPACED_SLASH, (_m, a, b, c, d) => (a ? `${a}/${b}` : `${c}/${d}`));
}

const LABEL = String.raw`[\p{L}\p{N}](?:[\p{L}\p{N}_-]*[\p{L}\p{N}])?`;
// scheme://anything | user@host... is handled by URL | host.tld[:port][/path] | IPv4[:port][/path]
const LINK_PATTERN = new RegExp(
  String.raw`[a-z][a-z0-9+.-]*:\/\/[^\s<>"'\x60]+` +
    String.raw`|(?<![\p{L}\p{N}@._-])(?:${LABEL}\.)+\p{L}{2,}\.?(?::\d{1,5})?(?:[/?#][^\s<>"'\x60]*)?` +
    String.raw`|(?<![\p{L}\p{N}.])\d{1,3}(?:\.\d{1,3}){3}(?![\p{N}])(?::\d{1,5})?(?:[/?#][^\s<>"'\x60]*)?`,
  'giu',
);
const TRAILING = /[.,;:!?)\]}>»”"'…]+$/u;

export function findLinks(text: string): FoundLink[] {
  const folded = foldForLinks(text);
  const obfuscated = folded !== text;
  const links: FoundLink[] = [];
  for (const match of folded.matchAll(LINK_PATTERN)) {
    const token = match[0].replace(TRAILING, '');
    if (!token) continue;
    const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(token);
    let host = '';
    try {
      const parsed = new URL(hasScheme ? token : `http://${token}`);
      host = parsed.host.replace(/\.$/, '').replace(/\.(?=:\d+$)/, '');
      // A scheme other than http(s) (javascript:, ftp://, data:) is never one of ours.
      if (!/^https?:$/.test(parsed.protocol)) host = '';
    } catch {
      host = '';
    }
    links.push({
      url: token.toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, '').replace(/^www\./, '').replace(/\/+$/, ''),
      host,
      obfuscated,
    });
  }
  return links;
}

/** The exact hosts of the links in the facts (a fact is written plainly, so its host is what a reader sees). */
export function hostsOf(text: string): string[] {
  return findLinks(text)
    .map((l) => l.host)
    .filter((h) => h.length > 0);
}
