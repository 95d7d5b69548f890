/** What an operator can do to one follow-up through the API: cancel it, or retry a failed one. */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import { ConflictError } from '../errors.js';
import { assertFollowupId, getFollowup } from './find-followups.js';
import { cancelFollowupRow, retryFailed } from './transitions.js';

export async function cancelFollowup(ctx: { db: Db; clock: Clock }, id: string, reason = 'operator') {
  assertFollowupId(id);
  const moved = await cancelFollowupRow(ctx.db, { id, now: ctx.clock.now(), reason });
  const current = await getFollowup(ctx.db, id); // 404 when it does not exist
  if (!moved) {
    const status = current.followup.status;
    throw new ConflictError(
      status === 'sending'
        ? 'the follow-up is being sent right now and can no longer be cancelled'
        : `the follow-up is already ${status}`,
      'not_cancellable',
    );
  }
  return current;
}

export async function retryFollowup(ctx: { db: Db; clock: Clock }, id: string) {
  assertFollowupId(id);
  const moved = await retryFailed(ctx.db, { id, now: ctx.clock.now() });
  const current = await getFollowup(ctx.db, id);
  if (!moved) throw new ConflictError(`only failed follow-ups can be retried; this one is ${current.followup.status}`, 'not_retryable');
  return current;
}
