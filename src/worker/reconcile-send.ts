/**
 * Reconcile-or-fail: a `sending` row whose send may or may not have reached the fan's phone
 * (the send timed out, or its executor vanished past its lease) is settled by asking the
 * provider (`/chat/findMessages`), never by sending again blindly. The executor calls this
 * after an ambiguous send, the relay's sweeper for a `sending` row past its lease; what "not
 * delivered" means differs between the two, so the caller says it (`notFound`).
 *
 *   found            → executed (reason `reconciled`), with the provider's message id;
 *   not found        → the caller's `notFound` (the sweeper: retried a lease later; the executor:
 *                      looked at again after one more lease, or retried when its attempts are spent);
 *   provider can't say → counted (`reconcile_attempts`), the lease pushed out so the sweeper asks
 *                      again; after MAX_RECONCILE_ATTEMPTS, `failed: ambiguous_send` — never resent.
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { markExecuted, markFailed, noteReconcileFailure } from '../followups/transitions.js';
import type { Logger } from '../log.js';
import type { Transport } from '../whatsapp/transport.js';

/** What running one follow-up ended with (the executor's answer; counted in /metrics). */
export type Outcome = 'executed' | 'cancelled' | 'failed' | 'deferred' | 'skipped' | 'paused' | 'ambiguous';

/** Failed reconciliations before an ambiguous send is given up as `failed: ambiguous_send`. */
export const MAX_RECONCILE_ATTEMPTS = 5;

export interface ReconcileDeps {
  db: Db;
  clock: Clock;
  transport: Pick<Transport, 'findSent'>;
  /** Already bound to the follow-up (followupId, leadId). */
  log: Logger;
  leaseMs: number;
}

/** The send in doubt: which follow-up, to whom, what text, since when, from which number. */
export interface SendInDoubt {
  id: string;
  phone: string;
  text: string;
  /** When the attempt started (its claim); messages before it are not this send. */
  since: Date;
  composer: string | null;
  /** The number that sent it, where it is asked; unset: the default number. */
  instance?: string | null;
}

export async function reconcileSend(
  deps: ReconcileDeps,
  send: SendInDoubt,
  /** The provider does not show it (yet): what the caller does then. */
  notFound: () => Promise<Outcome>,
): Promise<Outcome> {
  const { db, clock, log } = deps;
  let found: { providerMessageId: string } | null;
  try {
    found = await deps.transport.findSent({
      number: send.phone,
      text: send.text,
      since: send.since,
      ...(send.instance ? { instance: send.instance } : {}),
    });
  } catch (error) {
    const count = await noteReconcileFailure(db, {
      id: send.id,
      now: clock.now(),
      retryMs: Math.min(deps.leaseMs, 30_000),
      error: `reconcile failed: ${(error as Error).message}`,
    });
    if (count >= MAX_RECONCILE_ATTEMPTS) {
      await markFailed(db, { id: send.id, now: clock.now(), reason: 'ambiguous_send', error: (error as Error).message });
      log.error({ stage: 'failed', reason: 'ambiguous_send' }, 'could not tell whether the follow-up went out; failed without resending');
      return 'failed';
    }
    log.warn({ err: error, reconcileAttempts: count }, 'could not ask whether the follow-up went out yet; asked again later');
    return 'ambiguous';
  }
  if (!found) return notFound();
  await markExecuted(db, {
    id: send.id,
    providerMessageId: found.providerMessageId,
    text: send.text,
    composer: send.composer ?? 'explicit',
    now: clock.now(),
    reason: 'reconciled',
  });
  log.info({ stage: 'executed', providerMessageId: found.providerMessageId, reconciled: true }, 'the follow-up in doubt had been delivered');
  return 'executed';
}
