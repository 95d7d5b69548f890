/**
 * `followups pause --reason R [--campaign C] [--who W]` and `followups resume [--campaign C]`:
 * the operator's pause (src/followups/operator-pause.ts) from a terminal, recorded like the
 * dashboard's and the API's (who: the --who given, else `cli`).
 */
import type { Campaigns } from '../campaigns/campaign.js';
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { pauseSending, resumeSending, type SendingPause } from '../followups/operator-pause.js';

export interface PauseCommandOptions {
  reason?: string;
  campaign?: string;
  who?: string;
}

const target = (campaign?: string) => (campaign ? { scope: 'campaign', campaign } : { scope: 'all' });
const what = (p: SendingPause) => (p.scope === 'all' ? 'all sending' : `campaign ${p.campaign}`);

export async function pauseCommand(ctx: { db: Db; clock: Clock; campaigns: Campaigns }, o: PauseCommandOptions) {
  return pauseSending(ctx, { ...target(o.campaign), reason: o.reason ?? '', who: o.who ?? 'cli' });
}

export function formatPause(r: { pause: SendingPause; created: boolean }): string {
  return r.created
    ? `paused ${what(r.pause)}: ${r.pause.reason} (by ${r.pause.who}); due follow-ups are held (defer reason operator_paused) until \`followups resume\``
    : `${what(r.pause)} was already paused since ${r.pause.at}: ${r.pause.reason} (by ${r.pause.who})`;
}

export async function resumeCommand(ctx: { db: Db; clock: Clock; campaigns: Campaigns }, o: PauseCommandOptions) {
  return resumeSending(ctx, { ...target(o.campaign), reason: o.reason, who: o.who ?? 'cli' });
}

export function formatResume(r: { pause: SendingPause; released: number }): string {
  return `resumed ${what(r.pause)} (paused since ${r.pause.at}: ${r.pause.reason}); ${r.released} held follow-up(s) due now`;
}
