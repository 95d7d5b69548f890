/**
 * When each step of a campaign is due, from the anchor (the lead's last
 * interaction): due = anchor + step delay + shift.
 *
 * The overdue rule. A lead may be enrolled late — the CSV of fans who answered
 * the president's audio yesterday, an agent that enrols a lead hours after the
 * last message. If the first step's time has already passed at enrollment, the
 * whole sequence slides later by exactly that lateness: step 1 goes out now and
 * every later step keeps its planned spacing from it (nautico: now, +20 h, +44 h).
 * So a step is never earlier than its nominal time (anchor + delay), never two
 * at once (no burst of "catch-up" messages), and the fan experiences the same
 * rhythm as a lead enrolled on time. The slide is stored as the enrollment's
 * initial `shift_ms`; later deferrals (window, pace, cap) add to it.
 *
 * If the first step is still in the future nothing slides, even if that leaves
 * the sequence starting soon after enrollment: that is simply its plan.
 */
import type { Campaign } from './campaign.js';

export interface PlannedStep {
  step: number;
  intent: string;
  dueAt: Date;
}

export interface PlannedSequence {
  /** How much later than nominal every step goes (0 unless step 1 was already overdue). */
  shiftMs: number;
  steps: PlannedStep[];
}

export function sequenceShiftMs(firstDelayMs: number, anchorAt: Date, now: Date): number {
  return Math.max(0, now.getTime() - (anchorAt.getTime() + firstDelayMs));
}

export function planSequence(campaign: Pick<Campaign, 'steps'>, anchorAt: Date, now: Date): PlannedSequence {
  const shiftMs = sequenceShiftMs(campaign.steps[0]!.delayMs, anchorAt, now);
  return {
    shiftMs,
    steps: campaign.steps.map((s) => ({ step: s.step, intent: s.intent, dueAt: new Date(anchorAt.getTime() + s.delayMs + shiftMs) })),
  };
}
