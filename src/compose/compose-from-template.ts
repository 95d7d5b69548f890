/**
 * The template composer: one of the step's variants, filled in.
 *
 * Which variant: leads side by side must not get the same text (a group of
 * friends compares WhatsApps), and one lead must never get a text twice. So the
 * starting variant comes from a hash of lead id + step — spread evenly over the
 * variants across many leads, stable for one lead — and from there we rotate
 * past any variant whose text this lead was already sent.
 */
import { createHash } from 'node:crypto';
import type { Campaign, CampaignStep } from '../campaigns/campaign.js';
import { renderTemplate } from '../campaigns/render-template.js';
import { firstName } from './composer.js';
import { normalizeForComparison } from './guardrails.js';

export interface TemplateChoice {
  text: string;
  /** Index into step.variants. */
  variant: number;
  /** True when every variant had been sent to this lead already (re-enrolled many times). */
  exhausted: boolean;
}

export function variantStart(leadId: string, step: number, count: number): number {
  const digest = createHash('sha256').update(`${leadId}:${step}`).digest();
  return digest.readUInt32BE(0) % count;
}

export function composeFromTemplate(input: {
  campaign: Campaign;
  step: CampaignStep;
  leadId: string;
  leadName: string | null;
  sentTexts: readonly string[];
}): TemplateChoice {
  const { campaign, step } = input;
  const name = firstName(input.leadName);
  const sent = new Set(input.sentTexts.map(normalizeForComparison));
  const count = step.variants.length;
  const start = variantStart(input.leadId, step.step, count);
  const render = (i: number) => {
    const variant = step.variants[i]!;
    return renderTemplate(name ? variant.withName : variant.withoutName, campaign, name);
  };
  for (let k = 0; k < count; k++) {
    const i = (start + k) % count;
    const text = render(i);
    if (!sent.has(normalizeForComparison(text))) return { text, variant: i, exhausted: false };
  }
  // Every variant was used on this lead: the one sent longest ago repeats least visibly.
  const lastSeen = (i: number) => input.sentTexts.findIndex((t) => normalizeForComparison(t) === normalizeForComparison(render(i)));
  let oldest = start;
  for (let i = 0; i < count; i++) if (lastSeen(i) > lastSeen(oldest)) oldest = i;
  return { text: render(oldest), variant: oldest, exhausted: true };
}
