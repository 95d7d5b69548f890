/**
 * WhatsApp number checks (/chat/whatsappNumbers), batched and paced.
 *
 * A lookup is traffic from the club's number like a send: a burst of them is a
 * ban risk, and an unpaced endpoint is an "is this number on WhatsApp?" oracle.
 * So a lookup takes its share of the same per-number pace as the sends
 * (send-limits.ts, shared by every worker; not of the daily cap, which counts
 * messages) — one share per call — and the numbers asked for within a moment (`gatherMs`, at most
 * `batchSize` of them) go out together in one call, since the endpoint takes a
 * list. A batch whose budget is not there now is not asked: each lead in it is
 * deferred with the pace's retry time, like a send.
 */
import type { Logger } from '../log.js';
import type { NumberCheck, Transport } from '../whatsapp/transport.js';
import type { Reservation, SendLimits } from './send-limits.js';

export type NumberCheckAnswer =
  | { kind: 'answered'; check: NumberCheck }
  /** The provider could not answer (or left the number out): send unchecked, ask again next time. */
  | { kind: 'unknown' }
  /** No budget for a lookup now. */
  | { kind: 'deferred'; reservation: Extract<Reservation, { ok: false }> };

export interface NumberChecks {
  /** instance: the WhatsApp number that asks (batches are per number, and so is the pace they take). */
  check(phone: string, now: Date, instance?: string): Promise<NumberCheckAnswer>;
}

interface Waiting {
  phone: string;
  now: Date;
  resolve(answer: NumberCheckAnswer): void;
}

export function makeNumberChecks(options: {
  transport: Transport;
  limits: SendLimits | null;
  log: Logger;
  batchSize: number;
  /** How long the first number of a batch waits for company. */
  gatherMs?: number;
}): NumberChecks {
  const gatherMs = options.gatherMs ?? 50;
  // Per number: a batch asks from one instance and takes that number's pace.
  const pending = new Map<string, { waiting: Waiting[]; timer?: NodeJS.Timeout }>();

  async function ask(batch: Waiting[], instance: string | undefined): Promise<void> {
    const answerAll = (answer: (w: Waiting) => NumberCheckAnswer) => batch.forEach((w) => w.resolve(answer(w)));
    try {
      if (options.limits) {
        const reservation = await options.limits.reserve(batch[0]!.now, 'lookup', instance);
        if (!reservation.ok) return answerAll(() => ({ kind: 'deferred', reservation }));
      }
      const phones = [...new Set(batch.map((w) => w.phone))];
      const found = options.transport.checkNumbers
        ? await options.transport.checkNumbers(phones, instance)
        : new Map(await Promise.all(phones.map(async (p) => [p, await options.transport.checkNumber(p, instance)] as const)));
      answerAll((w) => {
        const check = found.get(w.phone);
        return check ? { kind: 'answered', check } : { kind: 'unknown' };
      });
    } catch (error) {
      options.log.warn({ err: error, count: batch.length }, 'number check failed; sending unchecked');
      answerAll(() => ({ kind: 'unknown' }));
    }
  }

  function flush(key: string) {
    const entry = pending.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    pending.delete(key);
    if (entry.waiting.length) void ask(entry.waiting, key === '' ? undefined : key);
  }

  return {
    check(phone, now, instance) {
      const key = instance ?? '';
      return new Promise<NumberCheckAnswer>((resolve) => {
        let entry = pending.get(key);
        if (!entry) pending.set(key, (entry = { waiting: [] }));
        entry.waiting.push({ phone, now, resolve });
        if (entry.waiting.length >= options.batchSize) flush(key);
        else if (!entry.timer) entry.timer = setTimeout(() => flush(key), gatherMs);
      });
    },
  };
}
