/**
 * The shape of a chaos run: how many follow-ups come due over how long, what
 * share of leads reply or opt out, and when each fault is injected. Times are
 * fractions of the load window, so the quick run is the same story, shorter.
 */

export interface Scenario {
  name: 'full' | 'quick';
  followups: number;
  /** WhatsApp numbers the roles send from (EVOLUTION_INSTANCES over the one fake); CHAOS_NUMBERS overrides. */
  numbers: number;
  /** Follow-ups come due uniformly over this window, starting `leadInMs` after the insert. */
  windowMs: number;
  leadInMs: number;
  /** Scheduled through POST /v1/followups (with idempotency keys, retried) instead of SQL. */
  viaApi: number;
  /** Shares of leads (0–1). */
  replyShare: number;
  optOutShare: number;
  notOnWhatsAppShare: number;
  /** A reply lands this far around its follow-up's due time (ms, may be negative). */
  replyJitterMs: [number, number];
  /** Share of webhooks delivered twice or more; share of replying leads with an older message arriving late. */
  duplicateShare: number;
  outOfOrderShare: number;
  workers: number;
  relays: number;
  /** Gap between SIGKILLs, per kind; and how long a killed process stays down. */
  workerKillEveryMs: [number, number];
  relayKillEveryMs: [number, number];
  downForMs: [number, number];
  /** Infrastructure faults at fractions of the window. */
  redisRestartWithDataAt: number;
  redisRestartEmptyAt: number;
  redisDownMs: number;
  postgresRestartsAt: number[];
  /** A worker frozen (SIGSTOP) for longer than its lease, then continued. */
  workerFreezeAt: number;
  workerFreezeMs: number;
  /** Evolution faults: [from, to) as fractions of the window. */
  connectionClosed: [number, number];
  ambiguous: [number, number];
  slow: [number, number];
  serverErrors: [number, number];
  /** "Webhooks lost": this share of the leads' answers never reach us as webhooks (they exist on WhatsApp only)… */
  webhooksLostShare: number;
  /** …and a total webhook outage (answers and echoes) of this long, starting at this fraction of the window. */
  webhookOutageAt: number;
  webhookOutageMs: number;
  /** After the window: how long to wait for every follow-up to be terminal. */
  quiescenceTimeoutMs: number;
}

export const FULL: Scenario = {
  name: 'full',
  followups: 20_000,
  windowMs: 180_000,
  leadInMs: 5_000,
  viaApi: 300,
  replyShare: 0.04,
  optOutShare: 0.02,
  notOnWhatsAppShare: 0.01,
  replyJitterMs: [-1_500, 1_000],
  duplicateShare: 0.3,
  outOfOrderShare: 0.25,
  workers: 3,
  relays: 2,
  workerKillEveryMs: [6_000, 14_000],
  relayKillEveryMs: [12_000, 25_000],
  downForMs: [500, 3_000],
  redisRestartWithDataAt: 0.2,
  redisRestartEmptyAt: 0.55,
  redisDownMs: 6_000,
  postgresRestartsAt: [0.35, 0.75],
  workerFreezeAt: 0.42,
  workerFreezeMs: 12_000,
  connectionClosed: [0.08, 0.12],
  ambiguous: [0.3, 0.5],
  slow: [0.5, 0.62],
  serverErrors: [0.62, 0.72],
  webhooksLostShare: 0.1,
  webhookOutageAt: 0.8,
  webhookOutageMs: 30_000,
  quiescenceTimeoutMs: 300_000,
  numbers: 1,
};

export const QUICK: Scenario = {
  ...FULL,
  name: 'quick',
  followups: 3_000,
  windowMs: 60_000,
  leadInMs: 4_000,
  viaApi: 60,
  workerKillEveryMs: [5_000, 10_000],
  relayKillEveryMs: [9_000, 16_000],
  redisDownMs: 4_000,
  connectionClosed: [0.08, 0.15],
  // 30 s of the 60 s window: from 0.45 on, while the slow and erroring Evolution windows run.
  webhookOutageAt: 0.45,
  // Generous for a loaded 2-core CI machine (a passing run waits only as long as it needs).
  quiescenceTimeoutMs: 120_000,
  // Two WhatsApp numbers: every fault above hits both; each fan stays with its number.
  numbers: 2,
};
