/**
 * The rules a campaign file must follow that its schema cannot say: steps numbered
 * 1, 2, 3, ... in order, delays increasing, a valid sending window and time zone,
 * {firstName} exactly where it belongs, template slots that exist, rendered texts
 * within the length limit, no placeholder, and no claim (price, link, PIX key, ...)
 * the campaign's facts do not make (src/claims/, the same checks a model's text gets).
 */
import type { RejectionReason } from '../claims/check-claims.js';
import { allowancesOf, checkClaims, findPlaceholder } from '../claims/check-claims.js';
import { isTimeZone } from '../time/zoned-time.js';
import { type Campaign, type CampaignFile, NAME_SLOT, TEMPLATE_SLOT } from './campaign.js';
import { renderTemplate, slotProblem } from './render-template.js';

/** A longish first name, to check that templates stay within the length limit. */
const SAMPLE_NAME = 'Maximiliano';

const CLAIM_WORDS: Partial<Record<RejectionReason, string>> = {
  url_not_in_facts: 'a link',
  price_not_in_facts: 'an amount',
  offer_not_in_facts: 'an offer',
  pix_not_in_facts: 'a PIX key',
  phone_not_in_facts: 'a phone number',
  email_not_in_facts: 'an e-mail address',
};

/** Says each problem with its path in the file (`steps.1.variants.2.withName`). */
export function checkCampaign(campaign: Campaign, data: CampaignFile, say: (path: string, message: string) => void, maxChars: number) {
  campaign.steps.forEach((step, i) => {
    if (step.step !== i + 1) say(`steps.${i}.step`, `must be ${i + 1} (steps are numbered 1, 2, 3, ... in order)`);
    const previous = campaign.steps[i - 1];
    if (previous && step.delayHours <= previous.delayHours) {
      say(`steps.${i}.delayHours`, `must be more than step ${previous.step}'s ${previous.delayHours}`);
    }
  });
  if (data.sending && data.sending.hoursStart >= data.sending.hoursEnd) say('sending.hoursStart', 'must be earlier than sending.hoursEnd');
  if (data.sending?.timeZone && !isTimeZone(data.sending.timeZone)) say('sending.timeZone', 'must be an IANA time zone such as America/Recife');

  const allowed = allowancesOf(campaign.facts);
  data.steps.forEach((step, i) => {
    step.variants.forEach((variant, j) => {
      const forms: Array<[string, string, boolean]> =
        typeof variant === 'string'
          ? [[`steps.${i}.variants.${j}`, variant, false]]
          : [
              [`steps.${i}.variants.${j}.withName`, variant.withName, true],
              [`steps.${i}.variants.${j}.withoutName`, variant.withoutName, false],
            ];
      for (const [path, template, named] of forms) {
        const hasName = template.includes(NAME_SLOT);
        if (named && !hasName) say(path, `must contain ${NAME_SLOT}`);
        if (!named && hasName) {
          say(path, typeof variant === 'string' ? `uses ${NAME_SLOT}: give {withName, withoutName} instead of a plain string` : `must not contain ${NAME_SLOT}`);
        }
        for (const match of template.matchAll(TEMPLATE_SLOT)) {
          const problem = slotProblem(match[1]!, campaign);
          if (problem) say(path, problem);
        }
        const rendered = renderTemplate(template, campaign, named ? SAMPLE_NAME : null);
        if ([...rendered].length > maxChars) say(path, `is ${[...rendered].length} characters with a ${SAMPLE_NAME.length}-letter name; at most ${maxChars}`);
        const placeholder = findPlaceholder(rendered.replace(TEMPLATE_SLOT, 'x'));
        if (placeholder) say(path, `looks like it holds a placeholder or an empty greeting (${placeholder})`);
        const facts = checkClaims(rendered, allowed);
        if (!facts.ok) say(path, `has ${CLAIM_WORDS[facts.why] ?? 'a claim'} the facts don't contain (${Object.values(facts.detail ?? {})[0]}); put it in facts and use a slot`);
      }
    });
  });
}

