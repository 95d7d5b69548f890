/**
 * The WhatsApp numbers (src/numbers/whatsapp-numbers.ts):
 *   GET   /v1/numbers         every number: state, pace, daily cap, sent today, leads
 *   PATCH /v1/numbers/:name   {"state": "paused_operator" | "active" | "retired", "reason"?}
 * Pausing holds the number's follow-ups (deferred `operator_paused`); resuming lifts an
 * operator's pause or a WhatsApp one; retiring is for good, and moves its leads to the
 * active numbers, each once, with an event on the lead's timeline.
 */
import { z } from 'zod';
import { NotFoundError } from '../../errors.js';
import { changeNumberState, listNumbers, toNumber } from '../../numbers/whatsapp-numbers.js';
import { parseInput } from '../../validation.js';
import { answer, component } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const patchNumberSchema = z
  .object({
    state: z.enum(['active', 'paused_operator', 'retired']).describe('paused_operator: hold its follow-ups; active: resume; retired: for good, its leads move'),
    reason: z.string().min(1).max(200).optional().describe("the operator's note, shown with the state"),
  })
  .strict();

/** One number as the API gives it (toNumber in src/numbers/whatsapp-numbers.ts). Documentation only. */
const whatsappNumberSchema = component(
  'WhatsappNumber',
  z.object({
    name: z.string().describe('the Evolution instance name'),
    state: z.enum(['active', 'paused_whatsapp', 'paused_operator', 'retired']),
    stateReason: z.string().nullable().describe("whatsapp_disconnected, evolution_unauthorized, the operator's note, ..."),
    stateSince: z.iso.datetime(),
    ratePerMinute: z.number().int().describe('pace (0 = none)'),
    dailyCap: z.number().int().describe('messages a day (0 = none)'),
    sentToday: z.number().int().nullable().describe('counted against the daily cap today (null: unknown)'),
    leads: z.number().int().describe('leads bound to it'),
    configured: z.boolean().describe('false: no longer in EVOLUTION_INSTANCES (kept for its history)'),
  }),
);

const nameParams = z.object({ name: z.string().describe('the instance name') });

const ACTION = { active: 'resume', paused_operator: 'pause', retired: 'retire' } as const;

export const numberRoutes: RouteModule = {
  name: 'numbers',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    const list = {
      summary: 'The WhatsApp numbers, with state, pace, daily cap and what each sent today',
      operationId: 'listNumbers',
      answers: { 200: answer('The numbers, the default first', z.object({ numbers: z.array(whatsappNumberSchema) })) },
    } as const;
    app.get('/v1/numbers', { schema: list }, async () => ({ numbers: await listNumbers(ctx.numbers, ctx.db, ctx.clock.now()) }));
    const change = {
      summary: 'Pause, resume or retire a WhatsApp number',
      description:
        "paused_operator holds its leads' follow-ups (deferred `operator_paused`, never sent from another number); active resumes it " +
        '(also after a WhatsApp pause); retired is for good: its leads move to the active numbers, each once, recorded on their timelines.',
      operationId: 'changeNumber',
      params: nameParams,
      body: component('PatchNumberRequest', patchNumberSchema),
      answers: {
        200: answer('The number as it is now, and how many leads moved', z.object({ number: whatsappNumberSchema, movedLeads: z.number().int() })),
        400: 'BadRequest',
        404: 'NotFound',
        409: 'Conflict',
      },
    } as const;
    app.patch<{ Params: { name: string } }>('/v1/numbers/:name', { schema: change }, async (request) => {
      const input = parseInput(patchNumberSchema, request.body);
      const now = ctx.clock.now();
      const changed = await changeNumberState(ctx.db, { name: request.params.name, action: ACTION[input.state], reason: input.reason, now });
      if (!changed) throw new NotFoundError(`no WhatsApp number ${request.params.name}`);
      ctx.numbers.invalidate();
      ctx.log.info({ number: changed.row.name, state: changed.row.state, movedLeads: changed.moved }, 'WhatsApp number changed by an operator');
      return { number: toNumber(changed.row, await ctx.numbers.sentToday(changed.row.name, now)), movedLeads: changed.moved };
    });
  },
};
