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
  check(phone: string, now: Date): Promise<NumberCheckAnswer>;
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
  let waiting: Waiting[] = [];
  let timer: NodeJS.Timeout | undefined;

  async function ask(batch: Waiting[]): Promise<void> {
    const answerAll = (answer: (w: Waiting) => NumberCheckAnswer) => batch.forEach((w) => w.resolve(answer(w)));
    try {
      if (options.limits) {
        const reservation = await options.limits.reserve(batch[0]!.now, 'lookup');
        if (!reservation.ok) return answerAll(() => ({ kind: 'deferred', reservation }));
      }
      const phones = [...new Set(batch.map((w) => w.phone))];
      const found = options.transport.checkNumbers
        ? await options.transport.checkNumbers(phones)
        : new Map(await Promise.all(phones.map(async (p) => [p, await options.transport.checkNumber(p)] as const)));
      answerAll((w) => {
        const check = found.get(w.phone);
        return check ? { kind: 'answered', check } : { kind: 'unknown' };
      });
    } catch (error) {
      options.log.warn({ err: error, count: batch.length }, 'number check failed; sending unchecked');
      answerAll(() => ({ kind: 'unknown' }));
    }
  }

  function flush() {
    clearTimeout(timer);
    timer = undefined;
    const batch = waiting;
    waiting = [];
    if (batch.length) void ask(batch);
  }

  return {
    check(phone, now) {
      return new Promise<NumberCheckAnswer>((resolve) => {
        waiting.push({ phone, now, resolve });
        if (waiting.length >= options.batchSize) flush();
        else if (!timer) timer = setTimeout(flush, gatherMs);
      });
    },
  };
}
