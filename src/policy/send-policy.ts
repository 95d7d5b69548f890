/**
 * What may hold a follow-up back at the moment of sending — the sending window,
 * the per-lead cap, the per-number pace — and how long "typing…" shows.
 * The core policy only computes the typing delay; the respectful-sending rules
 * plug in here.
 */
import { typingDelayMs } from '../time/typing-delay.js';

export interface PolicyInput {
  followup: {
    id: string;
    lead_id: string;
    enrollment_id: string | null;
    step: number | null;
    due_at: Date;
    campaign?: string | null;
    /** `followups send-now --ignore-window`: the sending window does not apply to this one. */
    ignore_window?: boolean;
  };
  /** numberCheckedAt: what the claim read; undefined when the caller did not read it. */
  /** whatsappNumber: the number it goes out from (its pace, daily cap and number checks); unset: the default. */
  lead: { id: string; phone: string; timeZone: string | null; numberCheckedAt?: Date | null; whatsappNumber?: string };
  now: Date;
}

export type PolicyDecision =
  | { ok: true }
  /** Not now: back to pending until `deferUntil` (window, lead_cap, pace, daily_cap); the attempt is given back. */
  | { ok: false; deferUntil: Date; reason: string; detail?: Record<string, unknown> }
  /** Never: cancel the follow-up with this reason (e.g. invalid_number from the number check). */
  | { ok: false; cancel: string; detail?: Record<string, unknown> };

export interface SendPolicy {
  check(input: PolicyInput): Promise<PolicyDecision>;
  /** Milliseconds of "typing…" before the text: grows with the text, with jitter. */
  typingDelayMs(text: string): number;
}

export function makeBasicPolicy(options: { typingDelay: boolean }): SendPolicy {
  return {
    async check() {
      return { ok: true };
    },
    typingDelayMs: (text) => (options.typingDelay ? typingDelayMs(text) : 0),
  };
}
