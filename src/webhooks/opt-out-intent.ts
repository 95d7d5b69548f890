/**
 * Does this message from a lead mean "stop writing to me, for good"?
 *
 * An opt-out must be honoured at once (LGPD: revoking consent is free and easy),
 * but it is permanent, so a sentence that merely contains a stop word must not
 * trigger it ("para quando é o jogo?", "vou sair do trabalho e te respondo",
 * "não quero parar de receber novidades"). Any message from the lead already stops
 * the current sequence as a reply; this decides only the permanent opt-out.
 *
 * Rules, applied to the normalised text (lower case, accents and punctuation
 * removed, chat spellings expanded: n/ñ/naum → nao, msg → mensagem, q → que,
 * pfv/pf → por favor):
 *   1. Command alone: the whole message, once polite filler ("por favor", "ok",
 *      "obrigado", "ja", "agora", "pode", "chega", ...) is set aside, is one of
 *      parar/pare/para/sair/stop/chega/basta/remover/descadastrar/cancelar (or
 *      repeats them: "para para para").
 *   2. Stop phrases anywhere: "parar/pare/para/parem de me mandar|enviar|receber",
 *      "não me mande(m)/envie(m) mais", "não quero (mais) receber", "me tira/remove/
 *      exclui da lista", "tira/remove meu número", "sair da lista", "descadastr…",
 *      "chega de mensagem", "para com isso", "unsubscribe".
 *   3. "não quero mais" only at the end of a clause or followed by what it refuses
 *      (mensagem, receber, contato, nada, isso, saber, falar): "não quero mais" is
 *      an opt-out, "não quero mais esperar, quero ser sócio" is not.
 *   4. Negation: a phrase of rule 2 preceded within three words by nao/nunca/
 *      jamais/nem (and not itself starting with "nao") does not count:
 *      "não quero parar de receber", "não precisa parar de mandar".
 * Questions about how to stop ("como faço pra parar de receber?") count: asking
 * how to leave is the wish to leave.
 */

const FILLER = new Set([
  'por', 'favor', 'ok', 'okay', 'obrigado', 'obrigada', 'obg', 'vlw', 'valeu', 'ja', 'agora', 'logo', 'mesmo',
  'pode', 'podem', 'ai', 'isso', 'ta', 'tá', 'e', 'so', 'entao', 'oi', 'ola', 'bom', 'dia', 'boa', 'tarde', 'noite',
  'please', 'pls', 'now', 'moca', 'moco', 'amigo', 'amiga', 'marina', 'tudo', 'bem', 'sim', 'ne', 'pfvr', 'me',
]);

const COMMANDS = new Set(['parar', 'pare', 'para', 'parem', 'sair', 'stop', 'chega', 'basta', 'remover', 'descadastrar', 'descadastre', 'descadastra', 'cancelar', 'unsubscribe']);

const EXPANSIONS: Record<string, string> = {
  n: 'nao', naum: 'nao', nn: 'nao', msg: 'mensagem', msgs: 'mensagens', mensagems: 'mensagens', q: 'que', pf: 'por favor', pfv: 'por favor',
  vc: 'voce', vcs: 'voces', pra: 'para', pro: 'para o', numero: 'numero', n0: 'nao',
};

const NEGATORS = new Set(['nao', 'nunca', 'jamais', 'nem']);

const PHRASES: RegExp[] = [
  /\b(parar|pare|para|parem|paro) (de )?(me )?(mandar|enviar|receber|encher|mandarem|enviarem|incomodar)\b/,
  /\bnao (me )?(mande|mandem|manda|envie|enviem|envia) mais\b/,
  /\bnao quero (mais )?receber\b/,
  /\b(me )?(tira|tire|tirar|tirem|remove|remova|remover|removam|exclui|exclua|excluir|excluam) (da|dessa|desta|de) (sua |tua |vossa )?lista\b/,
  /\b(tira|tire|tirar|tirem|remove|remova|remover|removam|exclui|exclua|excluir|apaga|apague|apagar) (o )?meu (numero|contato|telefone)\b/,
  /\bsair (da|dessa|desta) lista\b/,
  /\bdescadastr\w*/,
  /\bchega de (mensage\w*|spam|propaganda)\b/,
  /\b(para|pare|parem) com (isso|essas mensagens)\b/,
  /\bunsubscribe\b/,
];

const NAO_QUERO_MAIS = /\bnao quero mais\b(?: (\w+))?/g;
const REFUSED = new Set(['mensagem', 'mensagens', 'receber', 'contato', 'nada', 'isso', 'saber', 'falar', 'nenhuma', 'nenhum', 'ser', 'que', 'obrigado', 'obrigada']);

/** Lower case, no accents, no punctuation, chat spellings expanded; clause breaks kept as ` | `. */
export function normalizeForIntent(text: string): string {
  const plain = text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[.,;!?\n]+/g, ' | ')
    .replace(/[^a-z0-9| ]+/g, ' ');
  return plain
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => EXPANSIONS[word] ?? word)
    .join(' ')
    .replace(/(\| )+/g, '| ')
    .replace(/^\| |\|$| \|$/g, '')
    .trim();
}

function negated(words: string[], index: number): boolean {
  for (let i = Math.max(0, index - 3); i < index; i++) if (NEGATORS.has(words[i]!)) return true;
  return false;
}

export function isOptOutMessage(text: string | null | undefined): boolean {
  if (!text) return false;
  // Long texts are conversations, not commands; the phrases still count in the first part.
  const normal = normalizeForIntent(text.slice(0, 1_000));
  if (!normal) return false;
  const words = normal.split(' ').filter((w) => w !== '|');

  // Rule 1: a command on its own.
  const meaningful = words.filter((w) => !FILLER.has(w) || COMMANDS.has(w));
  if (meaningful.length > 0 && meaningful.length <= 3 && meaningful.every((w) => COMMANDS.has(w))) return true;

  const flat = words.join(' ');
  // Rule 2 with rule 4.
  for (const phrase of PHRASES) {
    const match = phrase.exec(flat);
    if (!match) continue;
    if (match[0].startsWith('nao ')) return true;
    const wordIndex = flat.slice(0, match.index).split(' ').filter(Boolean).length;
    if (!negated(words, wordIndex)) return true;
  }

  // Rule 3, clause by clause: "nao quero mais" closing a clause, or followed by what it refuses.
  for (const clause of normal.split('|')) {
    for (const match of clause.trim().matchAll(NAO_QUERO_MAIS)) {
      const next = match[1];
      if (next === undefined || REFUSED.has(next)) return true;
    }
  }
  return false;
}
