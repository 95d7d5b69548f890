/**
 * Runs one follow-up from claim to outcome. The queue worker and the relay's
 * direct mode both call this, so a follow-up is handled the same way whether
 * Redis is there or not.
 *
 *   claim (queued → sending, with the stop re-check) → policy → compose →
 *   send → executed | cancelled | failed | deferred (pending again, with a reason)
 *
 * At most once: the claim is a conditional UPDATE, so only one executor ever
 * holds a row; a send whose outcome is unknown (timeout) is reconciled with the
 * provider before anything else happens, never resent blindly.
 */
import type { Clock } from '../clock.js';
import type { Composer, Composition } from '../compose/composer.js';
import type { Db } from '../db/db.js';
import { SendError } from '../errors.js';
import type { FollowupStatus } from '../followups/followup.js';
import { isOptOutConfirmation } from '../followups/opt-out-confirmation.js';
import { OPERATOR_PAUSED, type SendingGate } from '../followups/sending-gate.js';
import {
  appendEvent,
  type ClaimedFollowup,
  cancelFollowupRow,
  claimForSending,
  deferFollowup,
  extendLeases,
  markExecuted,
  markFailed,
  recordComposedText,
  renewSendingLease,
} from '../followups/transitions.js';
import { markNumberInvalid } from '../followups/mark-number-invalid.js';
import type { Logger } from '../log.js';
import { moveLeadsOff, type Numbers } from '../numbers/whatsapp-numbers.js';
import type { WebhookSilence } from '../webhooks/webhook-silence.js';
import type { Transport } from '../whatsapp/transport.js';
import { checkReplyBeforeSend, isConfigurationFault, type PresendMode, type PresendResult } from './check-reply-before-send.js';
import { type Outcome, reconcileSend } from './reconcile-send.js';
import type { SendPolicy } from '../policy/send-policy.js';

export type { Outcome } from './reconcile-send.js';

export interface ExecutorDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  transport: Transport;
  composer: Composer;
  gate: SendingGate;
  policy: SendPolicy;
  settings: {
    leaseMs: number;
    /**
     * The longest a send can take (timeout + typing delay + reconcile wait). While the claim's
     * lease has more than this left, the lease check right before the send is done locally
     * instead of by a renewal UPDATE; without it, every send renews.
     */
    sendBudgetMs?: number;
    maxSendAttempts: number;
    retryBaseMs: number;
    /** How long to let the provider settle before asking whether an ambiguous send went out. */
    reconcileDelayMs: number;
    /** While sending is paused, a follow-up handed back is looked at again after this long. */
    pauseRetryMs: number;
  };
  /** Called with every outcome (metrics). */
  onOutcome?: (outcome: Outcome, reason?: string) => void;
  /**
   * The WhatsApp numbers: each follow-up goes out from its lead's number, and waits while that
   * number is paused. Without it (older tests), everything goes out from the default number.
   */
  numbers?: Numbers;
  /** Called with the number of every sent follow-up (metrics). */
  onSent?: (number: string) => void;
  /**
   * The pre-send reply check (check-reply-before-send.ts) and the webhook silence it
   * depends on; without it, no check (the dry-run transport, older tests).
   */
  presend?: {
    mode: PresendMode;
    timeoutMs: number;
    /** A failed check defers the follow-up this long. */
    retryMs: number;
    /** best_effort: after this many failed checks of one follow-up, it may go out unchecked (never while webhooks are silent). */
    maxFailures: number;
    /** Hold every send back while this number's webhooks are silent. */
    pauseWhenSilent: boolean;
    silence: WebhookSilence | null;
    optOutConfirmation?: (campaign: string) => string | undefined;
    onCheck?: (outcome: PresendResult['kind']) => void;
  };
  /**
   * The claim and the completion, when a caller shares them between concurrent
   * runs (the queue worker batches them, see batch-transitions.ts); the plain
   * one-row statements otherwise.
   */
  transitions?: {
    claimForSending(options: { id: string; now: Date; leaseMs: number }): Promise<ClaimedFollowup | null>;
    markExecuted(options: { id: string; providerMessageId: string; text: string; composer: string; now: Date }): Promise<boolean>;
  };
}

export function retryDelayMs(attempts: number, baseMs: number): number {
  // Exponential with full jitter on the upper half: 1×, 2×, 4×, ... capped at one hour.
  const exp = Math.min(3_600_000, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

/** How far a run got: an unexpected error is handled according to it (handOver). */
interface Progress {
  /** The row this run claimed (`sending`, its attempt counted). */
  claimed: ClaimedFollowup | null;
  /** The text may have left: from the send call on, only the provider can say. */
  sendStarted: boolean;
}

/**
 * Runs one follow-up. Retrying is the database's: a failed send is deferred with its attempt
 * counted (retryOrFail), a row left in flight is recovered by the sweeper after its lease — the
 * queue does not retry a job (queue-link.ts). So an unexpected error (the database failing a
 * statement, a bug) is handed to that path here (handOver), and only what cannot be handed over
 * is thrown.
 */
export async function executeFollowup(deps: ExecutorDeps, id: string): Promise<Outcome> {
  const progress: Progress = { claimed: null, sendStarted: false };
  let outcome: Outcome;
  try {
    outcome = await run(deps, id, progress);
  } catch (error) {
    outcome = await handOver(deps, id, progress, error);
  }
  deps.onOutcome?.(outcome);
  return outcome;
}

/**
 * An unexpected error, handed to the database's retry path:
 *   - before the claim: the `queued` row goes back to pending, due after the first retry delay
 *     (no attempt was counted: the claim counts them);
 *   - claimed, nothing sent: an ordinary retry, its attempt counted (failed once they are spent);
 *   - from the send on: nothing — the row stays `sending` and the sweeper asks the provider
 *     after its lease (a blind retry could send twice).
 * When even that cannot be written (the database is away), the error is thrown and the lease
 * recovers the row: a `queued` one is published again, a `sending` one reconciled.
 */
async function handOver(deps: ExecutorDeps, id: string, progress: Progress, error: unknown): Promise<Outcome> {
  const message = error instanceof Error ? error.message : String(error);
  if (progress.sendStarted) throw error;
  try {
    if (progress.claimed) {
      const log = deps.log.child({ followupId: id, leadId: progress.claimed.lead_id, phone: progress.claimed.phone });
      log.error({ err: error }, 'running the follow-up failed before its send');
      return await retryOrFail(deps, progress.claimed, log, 'unexpected_error', message);
    }
    const now = deps.clock.now();
    const dueAt = new Date(now.getTime() + retryDelayMs(1, deps.settings.retryBaseMs));
    const moved = await deferFollowup(deps.db, { id, from: ['queued'], now, dueAt, reason: 'unexpected_error', error: message });
    deps.log.warn({ err: error, followupId: id, stage: moved ? 'deferred' : 'skipped', dueAt }, 'running the follow-up failed before its claim');
    return moved ? 'deferred' : 'skipped';
  } catch {
    throw error;
  }
}

async function run(deps: ExecutorDeps, id: string, progress: Progress): Promise<Outcome> {
  const { db, clock } = deps;
  // Handed back before the claim for the pause's retry interval: no attempt is spent.
  const holdForPause = (from: FollowupStatus[], reason: string, detail: Record<string, unknown>, campaigns?: string[]) =>
    deferFollowup(db, {
      id,
      from,
      now: clock.now(),
      dueAt: new Date(clock.now().getTime() + deps.settings.pauseRetryMs),
      reason,
      detail,
      ...(campaigns ? { campaigns } : {}),
    });
  const pause = await deps.gate.state();
  if (pause.paused && pause.reason === OPERATOR_PAUSED) {
    // An operator paused everything: held (also a relay-claimed pending row in direct mode), never dropped.
    const moved = await holdForPause(['queued', 'pending'], OPERATOR_PAUSED, { scope: 'all', pauseReason: pause.detail, by: pause.by });
    return moved ? 'paused' : 'skipped';
  }
  if (pause.paused) {
    // Hand it back untouched: no attempt is spent while our own side is broken.
    const moved = await holdForPause(['queued'], 'sending_paused', { pause: pause.reason });
    return moved ? 'paused' : 'skipped';
  }
  const campaignPauses = (await deps.gate.operatorPauses()).filter((p) => p.scope === 'campaign' && p.campaign);
  if (campaignPauses.length > 0) {
    // Held only when it belongs to a paused campaign (the condition is in the statement).
    const campaigns = campaignPauses.map((p) => p.campaign!);
    if (await holdForPause(['queued', 'pending'], OPERATOR_PAUSED, { scope: 'campaign', campaigns }, campaigns)) return 'paused';
  }
  if (deps.presend?.pauseWhenSilent && deps.presend.silence && (await deps.presend.silence.state()).silent) {
    // PAUSE_WHEN_WEBHOOKS_SILENT: this number sends nothing until its webhooks flow again. Handed
    // back before the claim, as for the gate; a relay-claimed pending row (direct mode) too.
    const moved = await holdForPause(['queued', 'pending'], 'sending_paused', { pause: 'webhooks_silent', instance: deps.presend.silence.instance });
    return moved ? 'paused' : 'skipped';
  }

  const claimOptions = { id, now: clock.now(), leaseMs: deps.settings.leaseMs };
  const claimedAtMono = performance.now();
  const claimed = await (deps.transitions ? deps.transitions.claimForSending(claimOptions) : claimForSending(db, claimOptions));
  if (claimed && claimed.status === 'sending') progress.claimed = claimed;
  if (!claimed) {
    // Already taken by another executor, cancelled, or not due: nothing to do.
    deps.log.debug({ followupId: id }, 'follow-up not claimable; skipped');
    return 'skipped';
  }
  const log = deps.log.child({ followupId: claimed.id, leadId: claimed.lead_id, phone: claimed.phone });
  if (claimed.status === 'cancelled') {
    log.info({ stage: 'cancelled', reason: claimed.stop_reason }, 'follow-up cancelled at claim');
    return 'cancelled';
  }
  log.info({ stage: 'sending', attempt: claimed.attempts }, 'follow-up claimed for sending');

  let instance: string | undefined;
  if (deps.numbers) {
    const resolved = await resolveNumber(deps, deps.numbers, claimed, log);
    if ('outcome' in resolved) return resolved.outcome;
    instance = resolved.number;
  }

  const lead = {
    id: claimed.lead_id,
    phone: claimed.phone,
    name: claimed.lead_name,
    timeZone: claimed.lead_time_zone,
    metadata: claimed.lead_metadata ?? {},
    numberCheckedAt: claimed.lead_number_checked_at,
    whatsappNumber: instance,
  };

  // The opt-out confirmation answers a fan who just wrote "parar": not held by the window, the
  // caps, the pace or the number check, nor stopped by the pre-send reply check
  // (followups/opt-out-confirmation.ts). Everything else about it is as for any follow-up.
  const confirmation = isOptOutConfirmation(claimed);
  const decision = confirmation ? ({ ok: true } as const) : await deps.policy.check({ followup: claimed, lead, now: clock.now() });
  if (!decision.ok && 'cancel' in decision) {
    await cancelFollowupRow(db, { id, now: clock.now(), reason: decision.cancel, from: ['sending'], detail: decision.detail });
    log.info({ stage: 'cancelled', reason: decision.cancel }, 'follow-up cancelled by the send policy');
    return 'cancelled';
  }
  if (!decision.ok) {
    await deferFollowup(db, {
      id,
      now: clock.now(),
      dueAt: decision.deferUntil,
      reason: decision.reason,
      giveBackAttempt: true,
      detail: decision.detail,
    });
    log.info({ stage: 'deferred', reason: decision.reason, dueAt: decision.deferUntil }, 'follow-up deferred');
    return 'deferred';
  }

  if (deps.presend && !confirmation) {
    const verdict = await presendCheck(deps, claimed, log, instance);
    if (verdict !== 'send') return verdict;
  }

  let composition: Composition;
  try {
    composition = await deps.composer.compose({ followup: claimed, lead, now: clock.now(), db });
  } catch (error) {
    log.error({ err: error }, 'composing the follow-up failed');
    return retryOrFail(deps, claimed, log, 'compose_error', (error as Error).message);
  }
  for (const note of composition.notes ?? []) {
    await appendEvent(db, { id, at: clock.now(), status: 'sending', reason: note.reason, detail: note.detail });
  }
  // A composed text is stored before the send, so a crash mid-send can be reconciled by text.
  if (composition.text !== claimed.message) {
    const stillOurs = await recordComposedText(db, { id, text: composition.text, composer: composition.composer, variant: composition.variant });
    if (!stillOurs) return 'skipped';
  }

  // Before a second send: an earlier attempt ended "not delivered" on the strength of one look
  // right after it timed out (or after its executor vanished), and the provider may have
  // delivered it since (a request it received late, a slow answer). Look again first.
  if (claimed.attempts > 1) {
    const late = await findLateDelivery(deps, claimed, composition.text, instance);
    if (late === 'unknown') {
      return retryOrFail(deps, claimed, log, 'reconcile_failed', 'cannot tell whether an earlier attempt went out', deps.settings.leaseMs);
    }
    if (late) {
      await markExecuted(db, {
        id,
        providerMessageId: late.providerMessageId,
        text: late.text,
        composer: claimed.composer ?? composition.composer,
        now: clock.now(),
        reason: 'reconciled',
      });
      log.info({ stage: 'executed', providerMessageId: late.providerMessageId, reconciled: true }, 'an earlier attempt had been delivered after all');
      return 'executed';
    }
  }
  // Fenced by this claim: an executor frozen past its lease (GC pause, stopped VM) may have lost
  // the row to the sweeper and another executor; it must not send, whatever it was about to do.
  if (
    !leaseHoldsForSend(deps, claimOptions.now, claimedAtMono) &&
    !(await renewSendingLease(db, { id, startedAt: claimed.sending_started_at, now: clock.now(), leaseMs: deps.settings.leaseMs }))
  ) {
    log.warn({ stage: 'skipped' }, 'claim lost before sending (lease expired); not sent');
    return 'skipped';
  }

  progress.sendStarted = true;
  try {
    const sent = await deps.transport.sendText({
      number: claimed.phone,
      text: composition.text,
      delayMs: deps.policy.typingDelayMs(composition.text),
      ...(instance ? { instance } : {}),
    });
    if (instance) deps.onSent?.(instance);
    const done = {
      id,
      providerMessageId: sent.providerMessageId,
      text: composition.text,
      composer: composition.composer,
      now: clock.now(),
    };
    await (deps.transitions ? deps.transitions.markExecuted(done) : markExecuted(db, done));
    log.info({ stage: 'executed', providerMessageId: sent.providerMessageId, composer: composition.composer }, 'follow-up sent');
    return 'executed';
  } catch (error) {
    if (!(error instanceof SendError)) throw error;
    return handleSendError(deps, claimed, composition, error, log, instance);
  }
}

/**
 * The number this follow-up goes out from: its lead's (bound at its first send when it has
 * none: the active number with the most room left today). While that number is paused the
 * follow-up is handed back (deferred: `operator_paused` or `number_paused`, its attempt given
 * back), never sent from another number; a retired number's leads are moved first. Returns the
 * number, or the outcome when the follow-up was handed back.
 */
async function resolveNumber(deps: ExecutorDeps, numbers: Numbers, claimed: ClaimedFollowup, log: Logger): Promise<{ number: string } | { outcome: Outcome }> {
  const { db, clock } = deps;
  const now = clock.now();
  const hold = async (reason: 'number_paused' | 'operator_paused', detail: Record<string, unknown>): Promise<{ outcome: Outcome }> => {
    const moved = await deferFollowup(db, {
      id: claimed.id,
      now,
      dueAt: new Date(now.getTime() + deps.settings.pauseRetryMs),
      reason,
      giveBackAttempt: true,
      detail,
    });
    log.info({ stage: 'deferred', reason, ...detail }, 'the lead\'s WhatsApp number is paused; follow-up waits');
    return { outcome: moved ? 'paused' : 'skipped' };
  };
  let name = claimed.lead_whatsapp_number ?? (numbers.several ? null : numbers.defaultName);
  if (name === null) {
    name = await numbers.assign(claimed.lead_id, now);
    if (name === null) return hold('number_paused', { number: null, why: 'no_active_number' });
  }
  let row = (await numbers.rows()).get(name);
  if (row?.state === 'retired') {
    // Retired while this lead was on its way: its leads move now (once), and it goes out from its new number.
    await moveLeadsOff(db, name, now);
    const { rows } = await db.query<{ whatsapp_number: string | null }>('SELECT whatsapp_number FROM leads WHERE id = $1::uuid', [claimed.lead_id]);
    const moved = rows[0]?.whatsapp_number;
    if (!moved || moved === name) return hold('number_paused', { number: name, why: 'retired_no_active_number' });
    name = moved;
    row = (await numbers.rows()).get(name);
  }
  if (!numbers.names.includes(name)) return hold('number_paused', { number: name, why: 'not_configured' });
  if (row?.state === 'paused_operator') return hold('operator_paused', { number: name, pause: row.state_reason });
  if (row?.state === 'paused_whatsapp') return hold('number_paused', { number: name, pause: row.state_reason });
  return { number: name };
}

/**
 * Runs the pre-send reply check and turns its answer into what the executor does: 'send' to go
 * on, or the outcome it ended with (cancelled: the fan wrote; deferred: Evolution could not be
 * asked; paused: our key or instance is wrong). A failed check is never a blind send, except
 * in best_effort mode after `maxFailures` failed checks, and never while webhooks are silent.
 */
async function presendCheck(deps: ExecutorDeps, claimed: ClaimedFollowup, log: Logger, instance?: string): Promise<Outcome | 'send'> {
  const presend = deps.presend!;
  const { db, clock } = deps;
  const result = await checkReplyBeforeSend(
    {
      db,
      clock,
      log,
      transport: deps.transport,
      gate: deps.gate,
      mode: presend.mode,
      timeoutMs: presend.timeoutMs,
      optOutConfirmation: presend.optOutConfirmation,
      instance,
    },
    claimed,
  );
  presend.onCheck?.(result.kind);
  switch (result.kind) {
    case 'clear':
    case 'skipped':
      return 'send';
    case 'replied':
      log.info(
        { stage: 'cancelled', reason: result.reason, providerMessageId: result.providerMessageId, source: 'presend_check' },
        'the fan had written (seen by the pre-send check); follow-up cancelled',
      );
      return result.cancelled ? 'cancelled' : 'skipped';
    case 'failed':
      break;
  }
  const now = clock.now();
  const error = result.error;
  if (isConfigurationFault(error)) {
    await pauseForConfiguration(deps, claimed.id, now, error, { source: 'presend_check' }, instance);
    log.error({ stage: 'deferred', reason: error.reason }, 'transport misconfigured (pre-send check); sending paused');
    return 'paused';
  }
  const failures = (await countFailedChecks(db, claimed.id)) + 1;
  const silent = presend.silence ? (await presend.silence.state()).silent : false;
  if (presend.mode === 'best_effort' && !silent && failures > presend.maxFailures) {
    await appendEvent(db, { id: claimed.id, at: now, status: 'sending', reason: 'presend_check_skipped', detail: { failedChecks: failures - 1, error: error.message } });
    log.warn({ failedChecks: failures - 1, err: error }, 'pre-send check failed again; sending unchecked (best_effort)');
    return 'send';
  }
  const dueAt = new Date(now.getTime() + presend.retryMs);
  await deferFollowup(db, {
    id: claimed.id,
    now,
    dueAt,
    reason: 'presend_check_failed',
    error: error.message,
    giveBackAttempt: true,
    detail: { failedChecks: failures, mode: presend.mode, webhooksSilent: silent },
  });
  log.warn({ stage: 'deferred', reason: 'presend_check_failed', failedChecks: failures, dueAt, err: error }, 'could not ask WhatsApp whether the fan wrote; deferred, not sent');
  return 'deferred';
}

async function countFailedChecks(db: ExecutorDeps['db'], id: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    {
      name: 'followups_failed_presend_checks',
      text: `SELECT count(*)::int AS n FROM follow_up_events WHERE follow_up_id = $1::uuid AND reason = 'presend_check_failed'`,
    },
    [id],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Whether the claim's own lease surely outlasts the send, so that no renewal is needed: the
 * lease runs to `claimNow + leaseMs` on the clock the sweeper compares it with, and an executor
 * frozen meanwhile sees the time it lost on both the wall clock and the monotonic clock. This is
 * the test the renewal's `lease_until > now` would make, without the round trip; nobody else may
 * take a `sending` row before its lease runs out (only the sweeper moves it, and only then).
 */
export function leaseHoldsForSend(deps: Pick<ExecutorDeps, 'clock' | 'settings'>, claimNow: Date, claimedAtMono: number): boolean {
  const budget = deps.settings.sendBudgetMs;
  if (budget === undefined) return false;
  const elapsed = Math.max(deps.clock.now().getTime() - claimNow.getTime(), performance.now() - claimedAtMono, 0);
  // A margin for clock differences between this process and the sweeper's.
  const margin = Math.max(1_000, deps.settings.leaseMs / 10);
  return elapsed + budget + margin < deps.settings.leaseMs;
}

async function handleSendError(
  deps: ExecutorDeps,
  claimed: ClaimedFollowup,
  composition: Composition,
  error: SendError,
  log: Logger,
  instance?: string,
): Promise<Outcome> {
  const { db, clock } = deps;
  const now = clock.now();
  switch (error.kind) {
    case 'permanent': {
      if (error.reason === 'invalid_number') {
        await db.transaction(async (tx) => {
          await cancelFollowupRow(tx, { id: claimed.id, now, reason: 'invalid_number', from: ['sending'], detail: { error: error.message } });
          await markNumberInvalid(tx, { leadId: claimed.lead_id, now, detail: { source: 'followup_send', followupId: claimed.id, followupsCancelled: 1 } });
        });
        log.warn({ stage: 'cancelled', reason: 'invalid_number' }, 'number is not on WhatsApp; follow-up cancelled');
        return 'cancelled';
      }
      await markFailed(db, { id: claimed.id, now, reason: error.reason, error: error.message });
      log.error({ stage: 'failed', reason: error.reason, err: error }, 'follow-up rejected by the provider');
      return 'failed';
    }
    case 'configuration': {
      // Our side is broken (bad key, unknown instance): pause every worker, give the follow-up back.
      await pauseForConfiguration(deps, claimed.id, now, error, {}, instance);
      log.error({ stage: 'deferred', reason: error.reason, status: error.status }, 'transport misconfigured; sending paused');
      return 'paused';
    }
    case 'transient':
      return retryOrFail(deps, claimed, log, error.reason, error.message);
    case 'ambiguous':
      return reconcileAmbiguous(deps, { ...claimed, instance }, composition.text, log, error);
  }
}

async function retryOrFail(
  deps: ExecutorDeps,
  claimed: { id: string; attempts: number },
  log: Logger,
  reason: string,
  message: string,
  /** At least this long before the retry (after an ambiguous send: time for a late delivery to show). */
  minDelayMs = 0,
): Promise<Outcome> {
  const now = deps.clock.now();
  if (claimed.attempts >= deps.settings.maxSendAttempts) {
    await markFailed(deps.db, { id: claimed.id, now, reason: 'retries_exhausted', error: `${reason}: ${message}` });
    log.error({ stage: 'failed', reason, attempts: claimed.attempts }, 'follow-up failed after its last attempt');
    return 'failed';
  }
  const dueAt = new Date(now.getTime() + Math.max(minDelayMs, retryDelayMs(claimed.attempts, deps.settings.retryBaseMs)));
  await deferFollowup(deps.db, { id: claimed.id, now, dueAt, reason, error: message });
  log.warn({ stage: 'deferred', reason, attempts: claimed.attempts, dueAt }, 'send failed; will retry');
  return 'deferred';
}

/**
 * The send timed out: the text may or may not be on the lead's phone. Asked after
 * `reconcileDelayMs` (reconcile-send.ts): found → executed (reconciled); the provider can't say
 * → the row stays `sending` and the sweeper asks again later (after MAX_RECONCILE_ATTEMPTS,
 * `failed: ambiguous_send`) — never a blind resend.
 */
async function reconcileAmbiguous(
  deps: ExecutorDeps,
  claimed: { id: string; phone: string; attempts: number; sending_started_at: Date | null; composer?: string | null; instance?: string },
  text: string,
  log: Logger,
  cause?: Error,
): Promise<Outcome> {
  const { db, clock } = deps;
  if (deps.settings.reconcileDelayMs > 0) await new Promise((r) => setTimeout(r, deps.settings.reconcileDelayMs));
  const since = claimed.sending_started_at ?? new Date(clock.now().getTime() - deps.settings.leaseMs);
  return reconcileSend(
    { db, clock, transport: deps.transport, log, leaseMs: deps.settings.leaseMs },
    { id: claimed.id, phone: claimed.phone, text, since, composer: claimed.composer ?? null, instance: claimed.instance },
    async () => {
      // Not there yet is not proof: a send the provider received late may still land. So the row
      // stays `sending` (a reply cannot cancel what may be out) for one more lease; then the sweeper
      // looks again — there: executed; still not: retried, and the executor looks once more before
      // sending (findLateDelivery). Handing it back to `pending` now left late deliveries unrecorded.
      if (claimed.attempts >= deps.settings.maxSendAttempts) {
        return retryOrFail(deps, claimed, log, 'ambiguous_not_delivered', cause?.message ?? 'not delivered');
      }
      await appendEvent(db, { id: claimed.id, at: clock.now(), status: 'sending', reason: 'ambiguous_not_delivered', detail: { error: cause?.message ?? 'not delivered' } });
      await extendLeases(db, [claimed.id], clock.now(), deps.settings.leaseMs);
      log.warn({ cause: cause?.message }, 'ambiguous send not found yet; the sweeper looks again after the lease');
      return 'ambiguous';
    },
  );
}

/**
 * Whether an earlier attempt of this follow-up, judged "not delivered" (an ambiguous send not
 * found right after it, or a `sending` row swept after its executor vanished), went out after
 * all: its text (or the one about to be sent) among the messages since the first claim.
 * 'unknown' when the provider cannot be asked.
 */
async function findLateDelivery(
  deps: ExecutorDeps,
  claimed: { id: string; phone: string; sent_text: string | null; message: string | null },
  text: string,
  instance?: string,
): Promise<{ providerMessageId: string; text: string } | null | 'unknown'> {
  const { rows } = await deps.db.query<{ since: Date | null }>(
    {
      name: 'followups_uncertain_attempt',
      text: `SELECT min(at) FILTER (WHERE to_status = 'sending' AND from_status IS DISTINCT FROM 'sending') AS since
               FROM follow_up_events WHERE follow_up_id = $1::uuid
             HAVING bool_or(reason IN ('ambiguous_not_delivered', 'lease_expired_not_sent'))`,
    },
    [claimed.id],
  );
  const since = rows[0]?.since;
  if (!since) return null;
  try {
    for (const candidate of new Set([claimed.sent_text ?? claimed.message, text].filter((t): t is string => Boolean(t)))) {
      const found = await deps.transport.findSent({ number: claimed.phone, text: candidate, since, ...(instance ? { instance } : {}) });
      if (found) return { providerMessageId: found.providerMessageId, text: candidate };
    }
    return null;
  } catch {
    return 'unknown';
  }
}

/**
 * Our side is broken (bad key, unknown instance): pause every worker's sending and give the
 * follow-up back, its attempt returned — a configuration fault must not burn it.
 */
async function pauseForConfiguration(
  deps: ExecutorDeps,
  id: string,
  now: Date,
  error: { reason: string; message: string },
  detail: Record<string, unknown> = {},
  instance?: string,
): Promise<void> {
  if (deps.numbers?.several && instance) {
    // Several numbers: the fault is this number's (its instance, its key); the others keep sending.
    await deps.numbers.setWhatsappPause(instance, true, `evolution_${error.reason}`);
    detail = { ...detail, number: instance };
  } else {
    await deps.gate.pause(`evolution_${error.reason}`, error.message);
  }
  await deferFollowup(deps.db, {
    id,
    now,
    dueAt: new Date(now.getTime() + deps.settings.pauseRetryMs),
    reason: 'sending_paused',
    error: error.message,
    giveBackAttempt: true,
    detail: { pause: `evolution_${error.reason}`, ...detail },
  });
}
