/**
 * How long "typing…" shows before a message: about 35 ms a character, the base between
 * 1.5 s and 8 s, then ±20% jitter so messages don't look machine-timed.
 * TYPING_MAX_MS bounds the delay after the jitter; the send's budget (config.ts
 * sendBudgetMs and the LEASE_SECONDS check) is derived from it.
 */
const TYPING_JITTER = 0.2;
/** The longest "typing…" any message gets, jitter included (9.6 s). */
export const TYPING_MAX_MS = 9_600;
/** The base (before jitter) is capped so that the jittered delay never passes TYPING_MAX_MS. */
const TYPING_BASE_MAX_MS = TYPING_MAX_MS / (1 + TYPING_JITTER);
const TYPING_BASE_MIN_MS = 1_500;

export function typingDelayMs(text: string, random = Math.random): number {
  const base = Math.min(TYPING_BASE_MAX_MS, Math.max(TYPING_BASE_MIN_MS, 600 + text.length * 35));
  return Math.round(base * (1 - TYPING_JITTER + random() * 2 * TYPING_JITTER));
}
