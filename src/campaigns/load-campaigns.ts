/**
 * Reads every `*.json` in the campaigns folder, validates each against the
 * schema and the rules the schema cannot say (check-campaign.ts: steps numbered
 * in order, delays increasing, template slots that exist, no price or link
 * outside the facts),
 * and fails start-up with every problem at once, each naming the file and the
 * field: `nautico.json: steps.1.variants.2.withName: must contain {firstName}`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CampaignError } from '../errors.js';
import { type Campaign, type CampaignFile, type Campaigns, campaignFileSchema } from './campaign.js';
import { checkCampaign } from './check-campaign.js';

/** Next to this module in src/ and in dist/ (scripts/copy-assets.mjs copies it). */
export const DEFAULT_CAMPAIGNS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'definitions');


export interface LoadCampaignsOptions {
  /** The persona's name when a campaign file does not set one (PERSONA_NAME). */
  personaName: string;
  /** Longest text a rendered template may be (LLM_MAX_CHARS, the same limit as the model's). */
  maxChars: number;
}

export function loadCampaigns(dir: string, options: LoadCampaignsOptions): Campaigns {
  const problems: string[] = [];
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch (error) {
    throw new CampaignError([`${dir}: cannot read the campaigns folder (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
  if (files.length === 0) throw new CampaignError([`${dir}: no campaign files (*.json)`]);

  const campaigns = new Map<string, Campaign>();
  for (const file of files) {
    const say = (path: string, message: string) => problems.push(`${file}: ${path ? `${path}: ` : ''}${message}`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    } catch (error) {
      say('', `is not valid JSON (${(error as Error).message})`);
      continue;
    }
    const parsed = campaignFileSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const path = issue.path.map(String).join('.');
        if (issue.code === 'unrecognized_keys') for (const key of issue.keys) say([path, key].filter(Boolean).join('.'), 'unknown field');
        else say(path || '(file)', issue.message);
      }
      continue;
    }
    const campaign = toCampaign(parsed.data, file, options.personaName);
    const before = problems.length;
    checkCampaign(campaign, parsed.data, say, options.maxChars);
    if (basename(file, '.json') !== campaign.name) say('name', `must be "${basename(file, '.json')}", as the file is named`);
    if (problems.length === before) campaigns.set(campaign.name, campaign);
  }
  if (problems.length > 0) throw new CampaignError(problems);
  return campaigns;
}

function toCampaign(data: CampaignFile, file: string, personaName: string): Campaign {
  return {
    name: data.name,
    file,
    description: data.description,
    persona: { name: data.persona.name ?? personaName, role: data.persona.role, voice: data.persona.voice },
    rules: data.rules,
    facts: data.facts,
    sending: data.sending,
    optOutConfirmation: data.optOutConfirmation,
    steps: data.steps.map((s) => ({
      step: s.step,
      delayHours: s.delayHours,
      delayMs: Math.round(s.delayHours * 3_600_000),
      intent: s.intent,
      goal: s.goal,
      variants: s.variants.map((v) => (typeof v === 'string' ? { withName: v, withoutName: v } : { withName: v.withName, withoutName: v.withoutName })),
    })),
  };
}
