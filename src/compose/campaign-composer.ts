/**
 * The composer the worker uses. In order:
 *   1. the follow-up's own `message` → sent as is ('explicit');
 *   2. a campaign step → the LLM when one is configured and its text passes the
 *      guardrails ('llm'), else a template variant ('template');
 *   3. anything else → the default text for its intent (the fallback composer).
 *
 * When the model fails, times out or writes something the guardrails reject,
 * the template goes out instead and the reason comes back as a note
 * `{reason: 'llm_fallback', detail: {why, ...}}`, which the executor records on
 * the follow-up's events.
 */
import { type Campaigns, findStep } from '../campaigns/campaign.js';
import type { Logger } from '../log.js';
import { allowancesOf, type Allowances, checkModelText } from './guardrails.js';
import { buildPrompt } from './build-prompt.js';
import { composeFromTemplate } from './compose-from-template.js';
import { type Composer, type Composition, firstName, makeDefaultComposer } from './composer.js';
import { LlmError } from '../errors.js';
import type { LlmWriter } from './llm-writer.js';
import { readConversation, readSentTexts } from './read-conversation.js';

export interface CampaignComposerOptions {
  campaigns: Campaigns;
  /** Null: templates only. */
  llm?: LlmWriter | null;
  limits: { maxChars: number; historyMessages: number };
  /** For follow-ups outside any campaign step (default: makeDefaultComposer()). */
  fallback?: Composer;
  log?: Logger;
}

export function makeCampaignComposer(options: CampaignComposerOptions): Composer {
  const fallback = options.fallback ?? makeDefaultComposer();
  const allowances = new Map<string, Allowances>();
  for (const campaign of options.campaigns.values()) allowances.set(campaign.name, allowancesOf(campaign.facts));

  return {
    async compose(input): Promise<Composition> {
      const { followup, lead, db } = input;
      if (followup.message) return { text: followup.message, composer: 'explicit' };
      const campaign = followup.campaign ? options.campaigns.get(followup.campaign) : undefined;
      const step = campaign ? findStep(campaign, followup.step) : undefined;
      if (!campaign || !step) {
        const composed = await fallback.compose(input);
        if (!followup.campaign) return composed;
        // A campaign (or step) that was removed from the definitions while follow-ups were pending.
        const notes = [...(composed.notes ?? []), { reason: 'campaign_unknown', detail: { campaign: followup.campaign, step: followup.step } }];
        return { ...composed, notes };
      }

      const sentTexts = await readSentTexts(db, lead.id);
      const template = composeFromTemplate({ campaign, step, leadId: lead.id, leadName: lead.name, sentTexts });
      const templateNotes = template.exhausted ? [{ reason: 'template_repeat', detail: { step: step.step, variant: template.variant } }] : [];
      if (!options.llm) return { text: template.text, composer: 'template', variant: template.variant, notes: templateNotes.length ? templateNotes : undefined };

      const fallBack = (why: string, detail: Record<string, unknown> = {}): Composition => {
        // The reason only: the text and the offending fragment go to the follow-up's events, not to the log.
        options.log?.warn({ followupId: followup.id, why }, 'LLM text not used; sending the template');
        return {
          text: template.text,
          composer: 'template',
          variant: template.variant,
          notes: [{ reason: 'llm_fallback', detail: { why, model: options.llm!.model, ...detail } }, ...templateNotes],
        };
      };
      const history = await readConversation(db, lead.id, options.limits.historyMessages);
      const messages = buildPrompt({
        campaign,
        step,
        firstName: firstName(lead.name),
        history,
        maxChars: options.limits.maxChars,
        example: template.text,
      });
      let raw: string;
      try {
        raw = await options.llm.write(messages);
      } catch (error) {
        if (error instanceof LlmError) return fallBack(error.why, { error: error.message.slice(0, 200) });
        return fallBack('error', { error: (error as Error)?.message?.slice(0, 200) });
      }
      const checked = checkModelText(raw, {
        maxChars: options.limits.maxChars,
        allowed: allowances.get(campaign.name)!,
        previousTexts: sentTexts,
      });
      if (!checked.ok) return fallBack(checked.why, { ...checked.detail, rejected: raw.slice(0, 300) });
      return { text: checked.text, composer: 'llm' };
    },
  };
}
