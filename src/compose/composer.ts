/**
 * A composer turns (lead, history, step intent) into the text of a follow-up.
 * The worker stores the text actually sent and which composer made it.
 */
import type { Queryable } from '../db/db.js';

export interface ComposeInput {
  followup: {
    id: string;
    lead_id: string;
    enrollment_id: string | null;
    campaign: string | null;
    step: number | null;
    intent: string | null;
    message: string | null;
  };
  lead: { id: string; phone: string; name: string | null; timeZone: string | null; metadata: Record<string, unknown> };
  now: Date;
  db: Queryable;
}

export interface Composition {
  text: string;
  /** 'explicit' (the follow-up's own message), 'default', 'template', 'llm', ... */
  composer: string;
  /** Which of the step's template variants (index), when the text is a template's. */
  variant?: number;
  /** Things worth an audit event (e.g. why the LLM's text was rejected). */
  notes?: Array<{ reason: string; detail?: Record<string, unknown> }>;
}

export interface Composer {
  compose(input: ComposeInput): Promise<Composition>;
}

/** The lead's first name, cleaned, or null when it is unknown or not a name. */
export function firstName(name: string | null | undefined): string | null {
  if (!name) return null;
  const first = name.trim().split(/\s+/)[0] ?? '';
  if (!/^\p{L}[\p{L}'-]{1,29}$/u.test(first)) return null;
  return first.charAt(0).toLocaleUpperCase('pt-BR') + first.slice(1).toLocaleLowerCase('pt-BR');
}

/** One plain text per intent, in Marina's voice, for follow-ups without a message or a campaign. */
const DEFAULT_TEXTS: Record<string, (name: string | null) => string> = {
  check_in: (n) => `Opa${n ? `, ${n}` : ''}! Passando só pra saber se ficou alguma dúvida sobre o que a gente conversou, visse?`,
  nudge: (n) => `E aí${n ? `, ${n}` : ''}, tudo certo? Deu pra pensar na nossa conversa sobre fortalecer o Timão?`,
  last_call: (n) =>
    `Fala${n ? `, ${n}` : ''}! Essa é minha última mensagem por aqui. Se ainda quiser fazer parte do nosso time de sócios, é só me chamar, visse?`,
};

export function defaultText(intent: string | null, name: string | null): string {
  return (DEFAULT_TEXTS[intent ?? ''] ?? DEFAULT_TEXTS.check_in!)(firstName(name));
}

/** The core composer: the follow-up's own message, or the plain default text for its intent. */
export function makeDefaultComposer(): Composer {
  return {
    async compose({ followup, lead }) {
      if (followup.message) return { text: followup.message, composer: 'explicit' };
      return { text: defaultText(followup.intent, lead.name), composer: 'default' };
    },
  };
}
