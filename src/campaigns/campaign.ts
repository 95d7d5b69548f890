/**
 * A campaign as data: one JSON file per campaign in `src/campaigns/definitions/`
 * (or CAMPAIGNS_DIR). This file holds the schema those files must follow and the
 * loaded shape the rest of the system reads; `loadCampaigns` validates them at
 * start-up.
 *
 * Facts are the only place prices, plans and links come from: templates may only
 * use links through `{links.<key>}` slots, and the LLM's text is checked against
 * the facts (see src/claims/check-claims.ts): a link's exact host, every amount, offer
 * or free-of-charge claim, PIX key, phone number and e-mail address must appear
 * in them. To let the composer mention a discount or a contact, write it here.
 */
import { z } from 'zod';

/** Slots a template may hold. `{links.<key>}` must name a key of `facts.links`. */
export const TEMPLATE_SLOT = /\{([^{}]*)\}/g;
export const NAME_SLOT = '{firstName}';

const comment = { $comment: z.union([z.string(), z.array(z.string())]).optional() };
const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'must be HH:MM (24-hour clock)');

const variantSchema = z.union([
  // The same text whatever we know about the lead (it must not use the name slot).
  text(1000),
  z
    .object({
      ...comment,
      /** Used when the lead's first name is known; must contain {firstName}. */
      withName: text(1000),
      /** Used when it is not: natural phrasing, no slot, no empty greeting. */
      withoutName: text(1000),
    })
    .strict(),
]);

const stepSchema = z
  .object({
    ...comment,
    step: z.number().int().min(1, 'must be at least 1'),
    delayHours: z.number().positive('must be more than 0').max(24 * 90, 'must be at most 2160 (90 days)'),
    intent: z
      .string()
      .regex(/^[a-z0-9_.-]{1,64}$/, 'must be 1-64 of a-z, 0-9, _ . -')
      // Its follow-ups are exempt from the window, caps and pace (followups/opt-out-confirmation.ts).
      .refine((intent) => intent !== 'opt_out_confirmation', 'opt_out_confirmation is reserved for the opt-out confirmation this service sends itself'),
    /** What this message is for, in words: the LLM's brief for the step. */
    goal: text(500),
    variants: z.array(variantSchema).min(2, 'must have at least 2 variants (leads side by side get different texts)'),
  })
  .strict();

const planSchema = z
  .object({
    ...comment,
    name: text(120),
    price: text(120).optional(),
    description: text(500).optional(),
    link: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).optional(),
  })
  .strict();

const factsSchema = z
  .object({
    ...comment,
    club: text(200),
    programme: text(200),
    plans: z.array(planSchema).default([]),
    links: z.record(z.string().regex(/^[a-zA-Z0-9_]+$/, 'link keys: letters, digits, _'), z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' })).default({}),
    /** Other true statements the composer may rely on (benefits, how to join). */
    notes: z.array(text(500)).default([]),
  })
  .strict();

export const campaignFileSchema = z
  .object({
    ...comment,
    name: z.string().regex(/^[a-z0-9_-]{1,64}$/, 'must be 1-64 of a-z, 0-9, _ -'),
    description: text(500).optional(),
    persona: z
      .object({
        ...comment,
        /** Absent: PERSONA_NAME from the environment (default "Marina Campelo"). */
        name: text(80).optional(),
        role: text(300),
        voice: z.array(text(300)).default([]),
      })
      .strict(),
    /** Things the writer must and must not do, beyond the voice (fed to the LLM). */
    rules: z.array(text(300)).default([]),
    facts: factsSchema,
    sending: z
      .object({
        ...comment,
        hoursStart: hhmm,
        hoursEnd: hhmm,
        sundays: z.boolean(),
        /** The lead's own zone wins; this is the default for leads without one. */
        timeZone: z.string().optional(),
        maxPerLeadPerWeek: z.number().int().min(0).max(1000),
      })
      .strict()
      .optional(),
    /** Sent once when a lead opts out (the webhook feature reads it); absent = no confirmation. */
    optOutConfirmation: text(500).optional(),
    steps: z.array(stepSchema).min(1, 'must have at least one step'),
  })
  .strict();

export type CampaignFile = z.infer<typeof campaignFileSchema>;
export type CampaignVariant = z.infer<typeof variantSchema>;

export interface CampaignStep {
  step: number;
  delayHours: number;
  delayMs: number;
  intent: string;
  goal: string;
  /** Normalised: every variant has both forms (a plain string serves for both). */
  variants: Array<{ withName: string; withoutName: string }>;
}

export interface Campaign {
  name: string;
  /** The file it came from (for messages). */
  file: string;
  description?: string;
  persona: { name: string; role: string; voice: string[] };
  rules: string[];
  facts: CampaignFile['facts'];
  sending?: CampaignFile['sending'];
  optOutConfirmation?: string;
  steps: CampaignStep[];
}

export type Campaigns = ReadonlyMap<string, Campaign>;

export function findStep(campaign: Campaign, step: number | null): CampaignStep | undefined {
  return step === null ? undefined : campaign.steps.find((s) => s.step === step);
}
