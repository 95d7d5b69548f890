/**
 * `followups numbers list | pause <name> | resume <name> | retire <name>`: the WhatsApp numbers,
 * as GET/PATCH /v1/numbers do it (src/numbers/whatsapp-numbers.ts).
 */
import type { Clock } from '../clock.js';
import type { Db } from '../db/db.js';
import type { Numbers } from '../numbers/whatsapp-numbers.js';
import { changeNumberState, listNumbers, toNumber, type WhatsappNumber } from '../numbers/whatsapp-numbers.js';
import { EXIT, OperatorError } from './exit-codes.js';

export async function readNumbers(ctx: { numbers: Numbers; db: Db; clock: Clock }): Promise<{ numbers: WhatsappNumber[] }> {
  return { numbers: await listNumbers(ctx.numbers, ctx.db, ctx.clock.now()) };
}

export function formatNumbers(r: { numbers: WhatsappNumber[] }): string {
  if (r.numbers.length === 0) return 'no WhatsApp numbers recorded';
  const lines = ['number               state            sent today / cap   pace/min  leads'];
  for (const n of r.numbers) {
    const state = n.state + (n.stateReason ? ` (${n.stateReason})` : '');
    const sent = `${n.sentToday ?? '?'} / ${n.dailyCap === 0 ? 'no cap' : n.dailyCap}`;
    lines.push(
      `${n.name.padEnd(20)} ${state.padEnd(16)} ${sent.padEnd(18)} ${String(n.ratePerMinute === 0 ? '-' : n.ratePerMinute).padEnd(9)} ${n.leads}${n.configured ? '' : '  (not configured)'}`,
    );
  }
  return lines.join('\n');
}

export interface ChangedNumber {
  number: WhatsappNumber;
  movedLeads: number;
}

export async function changeNumber(
  ctx: { numbers: Numbers; db: Db; clock: Clock },
  name: string,
  action: 'pause' | 'resume' | 'retire',
  reason?: string,
): Promise<ChangedNumber> {
  const now = ctx.clock.now();
  const changed = await changeNumberState(ctx.db, { name, action, reason, now });
  if (!changed) throw new OperatorError(`no WhatsApp number ${name} (see \`followups numbers list\`)`, EXIT.failed, 'number_not_found');
  return { number: toNumber(changed.row, await ctx.numbers.sentToday(name, now)), movedLeads: changed.moved };
}

export function formatChangedNumber(r: ChangedNumber): string {
  const moved = r.number.state === 'retired' ? `; ${r.movedLeads} lead(s) moved to the other numbers` : '';
  return `number ${r.number.name}: ${r.number.state}${r.number.stateReason ? ` (${r.number.stateReason})` : ''}${moved}`;
}
