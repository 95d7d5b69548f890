/**
 * Whether a NOTIFY reaches a LISTEN connection: LISTEN on a channel of its own,
 * send one notification to it, wait for it. False under a transaction-mode
 * pooler (the notification never comes back) or when the database is unreachable.
 */
import { randomBytes } from 'node:crypto';
import type { Db } from './db.js';

export async function probeNotify(db: Db, timeoutMs: number): Promise<boolean> {
  const channel = `followups_probe_${randomBytes(6).toString('hex')}`;
  const token = randomBytes(8).toString('hex');
  let arrive!: (value: boolean) => void;
  const arrived = new Promise<boolean>((resolve) => (arrive = resolve));
  let unlisten: () => Promise<void>;
  try {
    unlisten = await db.listen(channel, (payload) => {
      if (payload === token) arrive(true);
    });
  } catch {
    return false;
  }
  const timer = setTimeout(() => arrive(false), timeoutMs);
  try {
    await db.query('SELECT pg_notify($1::text, $2::text)', [channel, token]);
    return await arrived;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    await unlisten().catch(() => undefined);
  }
}
