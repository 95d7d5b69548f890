/**
 * Does NOTIFY reach our LISTEN connection? Through a transaction-mode pooler LISTEN
 * succeeds and nothing ever arrives; a broken LISTEN connection says nothing either. The
 * only sure test is to NOTIFY ourselves and wait for it.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from './db.js';

/** Payloads of probes start with this; listeners of a channel that also carries probes skip them. */
export const PROBE_PREFIX = 'probe:';

/** The channel `probeNotify` uses when it listens on its own. */
export const PROBE_CHANNEL = 'followups_notify_probe';

export interface NotifyProbe {
  /** Give it every payload the LISTEN connection receives; true when it was a probe (ignore it then). */
  received(payload: string): boolean;
  /** NOTIFY `channel` with a fresh token; true when it comes back within `timeoutMs`. */
  probe(timeoutMs: number): Promise<boolean>;
}

/** A probe over an existing LISTEN on `channel` (the relay's own connection: what it tests is what it uses). */
export function makeNotifyProbe(db: Db, channel: string): NotifyProbe {
  const waiting = new Map<string, () => void>();
  return {
    received(payload) {
      if (!payload.startsWith(PROBE_PREFIX)) return false;
      waiting.get(payload)?.();
      return true;
    },
    async probe(timeoutMs) {
      const token = `${PROBE_PREFIX}${randomUUID()}`;
      let timer: NodeJS.Timeout | undefined;
      const arrived = new Promise<boolean>((resolve) => {
        waiting.set(token, () => resolve(true));
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      try {
        await db.query('SELECT pg_notify($1::text, $2::text)', [channel, token]);
        return await arrived;
      } finally {
        clearTimeout(timer);
        waiting.delete(token);
      }
    },
  };
}

/** Listens on a channel of its own, notifies itself, and says whether the notification arrived within `timeoutMs`. */
export async function probeNotify(db: Db, timeoutMs: number): Promise<boolean> {
  const probe = makeNotifyProbe(db, PROBE_CHANNEL);
  const unlisten = await db.listen(PROBE_CHANNEL, (payload) => void probe.received(payload));
  try {
    return await probe.probe(timeoutMs);
  } finally {
    await unlisten();
  }
}
