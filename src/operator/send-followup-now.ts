/**
 * `followups send-now <id> [--ignore-window]`: a pending follow-up becomes due now.
 * The relay is woken by the due-time change and the worker runs it like any other:
 * the stop re-checks, the weekly cap, the pace and the daily cap still apply, and so
 * does the sending window — unless `--ignore-window`, which is kept on the row
 * (`ignore_window`, migration 010) because the window is applied by whichever
 * worker claims it, later and elsewhere (policy/respectful-policy.ts).
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { assertFollowupId, getFollowup } from '../followups/find-followups.js';
import { bringDueNow } from '../followups/transitions.js';
import { EXIT, OperatorError } from './exit-codes.js';

export interface SendNowResult {
  id: string;
  status: 'pending';
  dueAt: string;
  previousDueAt: string;
  ignoreWindow: boolean;
}

export async function sendFollowupNow(
  ctx: { db: Db; clock: Clock },
  rawId: string,
  options: { ignoreWindow: boolean },
): Promise<SendNowResult> {
  const id = assertFollowupId(rawId);
  const before = await getFollowup(ctx.db, id); // NotFoundError when there is none
  const moved = await bringDueNow(ctx.db, { id, now: ctx.clock.now(), ignoreWindow: options.ignoreWindow, detail: { source: 'cli' } });
  if (!moved) {
    const { status } = (await getFollowup(ctx.db, id)).followup;
    const why =
      status === 'queued' || status === 'sending'
        ? `it is already ${status} (on its way)`
        : `it is ${status}${status === 'failed' ? '; use `followups retry --failed` first' : ''}`;
    throw new OperatorError(`follow-up ${id} cannot be sent now: ${why}`, EXIT.failed, 'not_pending');
  }
  return {
    id,
    status: 'pending',
    dueAt: new Date(moved.due_at).toISOString(),
    previousDueAt: new Date(before.followup.due_at).toISOString(),
    ignoreWindow: moved.ignore_window === true,
  };
}

export function formatSendNow(r: SendNowResult): string {
  return `follow-up ${r.id} is due now (was ${r.previousDueAt})${
    r.ignoreWindow ? '; the sending window will not hold it back' : '; it still waits for the sending window if that is closed'
  }`;
}
