/**
 * The worker's two per-job statements — the claim (queued → sending) and the
 * completion (sending → executed) — coalesced across the concurrent jobs of one
 * process into one statement each (`... WHERE id = ANY(...)`, see
 * claimForSendingBatchSql). Every row keeps its own conditional transition and
 * its own event; what is shared is the round trip, the commit and the
 * statement-level triggers, which at thousands of follow-ups a second are the
 * cost that matters.
 *
 * An id submitted while the same id is already waiting in the batch gets null /
 * false: a duplicate job must never be handed the claimed row twice.
 */
import type { Queryable } from '../db/db.js';
import {
  type ClaimedFollowup,
  claimForSending,
  claimForSendingBatch,
  markExecuted,
  markExecutedBatch,
} from '../followups/transitions.js';
import { makeMicroBatcher } from '../micro-batch.js';

export interface BatchedTransitions {
  claimForSending(options: { id: string; now: Date; leaseMs: number }): Promise<ClaimedFollowup | null>;
  markExecuted(options: { id: string; providerMessageId: string; text: string; composer: string; now: Date; reason?: string }): Promise<boolean>;
  readonly stats: { claims: { batches: number; items: number; fallbacks: number }; completions: { batches: number; items: number; fallbacks: number } };
}

/** Runs `fn` once per distinct id; later duplicates in the same batch get `duplicate`. */
function distinctById<I extends { id: string }, O>(fn: (items: I[]) => Promise<O[]>, duplicate: O) {
  return async (items: I[]): Promise<O[]> => {
    const first = new Map<string, number>();
    const unique: I[] = [];
    const slot = items.map((item) => {
      const seen = first.get(item.id);
      if (seen !== undefined) return -1;
      first.set(item.id, unique.length);
      unique.push(item);
      return unique.length - 1;
    });
    const results = unique.length > 0 ? await fn(unique) : [];
    return slot.map((i) => (i < 0 ? duplicate : results[i]!));
  };
}

export function makeBatchedTransitions(db: Queryable, options: { maxBatch?: number; maxInFlight?: number } = {}): BatchedTransitions {
  const maxBatch = options.maxBatch ?? 200;
  const maxInFlight = options.maxInFlight ?? 1;
  type Claim = { id: string; now: Date; leaseMs: number };
  type Done = { id: string; providerMessageId: string; text: string; composer: string; now: Date; reason?: string };
  const claims = makeMicroBatcher<Claim, ClaimedFollowup | null>({
    run: distinctById((items: Claim[]) => claimForSendingBatch(db, items), null),
    runOne: (item) => claimForSending(db, item),
    maxBatch,
    maxInFlight,
  });
  const completions = makeMicroBatcher<Done, boolean>({
    run: distinctById((items: Done[]) => markExecutedBatch(db, items), false),
    runOne: (item) => markExecuted(db, item),
    maxBatch,
    maxInFlight,
  });
  return {
    claimForSending: (o) => claims.submit(o),
    markExecuted: (o) => completions.submit(o),
    stats: { claims: claims.stats, completions: completions.stats },
  };
}
