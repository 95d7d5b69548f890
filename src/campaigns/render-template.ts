/**
 * Fills a campaign template's slots: `{firstName}`, `{persona}`, `{club}`,
 * `{programme}` and `{links.<key>}`. The loader rejects templates with any other
 * slot, so a render never leaves a `{...}` behind.
 */
import { type Campaign, TEMPLATE_SLOT } from './campaign.js';

export const FIXED_SLOTS = ['firstName', 'persona', 'club', 'programme'] as const;

/** Why a slot name cannot be filled from this campaign, or null when it can. */
export function slotProblem(slot: string, campaign: Pick<Campaign, 'facts'>): string | null {
  if ((FIXED_SLOTS as readonly string[]).includes(slot)) return null;
  const link = /^links\.([a-zA-Z0-9_]+)$/.exec(slot);
  if (link) return campaign.facts.links[link[1]!] ? null : `{${slot}} names no key of facts.links`;
  return `unknown slot {${slot}} (use ${FIXED_SLOTS.map((s) => `{${s}}`).join(', ')} or {links.<key>})`;
}

export function renderTemplate(
  template: string,
  campaign: Pick<Campaign, 'facts' | 'persona'>,
  firstName: string | null,
): string {
  return template.replace(TEMPLATE_SLOT, (whole, slot: string) => {
    switch (slot) {
      case 'firstName':
        return firstName ?? whole;
      case 'persona':
        return campaign.persona.name;
      case 'club':
        return campaign.facts.club;
      case 'programme':
        return campaign.facts.programme;
    }
    const link = /^links\.([a-zA-Z0-9_]+)$/.exec(slot);
    return (link && campaign.facts.links[link[1]!]) || whole;
  });
}
