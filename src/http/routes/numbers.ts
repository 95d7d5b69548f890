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
import { errorRef, json, jsonSchemaOf, ref } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const patchNumberSchema = z
  .object({
    state: z.enum(['active', 'paused_operator', 'retired']).describe('paused_operator: hold its follow-ups; active: resume; retired: for good, its leads move'),
    reason: z.string().min(1).max(200).optional().describe("the operator's note, shown with the state"),
  })
  .strict();

const ACTION = { active: 'resume', paused_operator: 'pause', retired: 'retire' } as const;

export const numberRoutes: RouteModule = {
  name: 'numbers',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    app.get('/v1/numbers', async () => ({ numbers: await listNumbers(ctx.numbers, ctx.db, ctx.clock.now()) }));
    app.patch<{ Params: { name: string } }>('/v1/numbers/:name', async (request) => {
      const input = parseInput(patchNumberSchema, request.body);
      const now = ctx.clock.now();
      const changed = await changeNumberState(ctx.db, { name: request.params.name, action: ACTION[input.state], reason: input.reason, now });
      if (!changed) throw new NotFoundError(`no WhatsApp number ${request.params.name}`);
      ctx.numbers.invalidate();
      ctx.log.info({ number: changed.row.name, state: changed.row.state, movedLeads: changed.moved }, 'WhatsApp number changed by an operator');
      return { number: toNumber(changed.row, await ctx.numbers.sentToday(changed.row.name, now)), movedLeads: changed.moved };
    });
  },
  openapi: {
    schemas: {
      WhatsappNumber: {
        type: 'object',
        required: ['name', 'state', 'stateSince', 'ratePerMinute', 'dailyCap', 'sentToday', 'leads', 'configured'],
        properties: {
          name: { type: 'string', description: 'the Evolution instance name' },
          state: { type: 'string', enum: ['active', 'paused_whatsapp', 'paused_operator', 'retired'] },
          stateReason: { type: ['string', 'null'], description: 'whatsapp_disconnected, evolution_unauthorized, the operator\'s note, ...' },
          stateSince: { type: 'string', format: 'date-time' },
          ratePerMinute: { type: 'integer', description: 'pace (0 = none)' },
          dailyCap: { type: 'integer', description: 'messages a day (0 = none)' },
          sentToday: { type: ['integer', 'null'], description: 'counted against the daily cap today (null: unknown)' },
          leads: { type: 'integer', description: 'leads bound to it' },
          configured: { type: 'boolean', description: 'false: no longer in EVOLUTION_INSTANCES (kept for its history)' },
        },
      },
      PatchNumberRequest: jsonSchemaOf(patchNumberSchema),
    },
    paths: {
      '/v1/numbers': {
        get: {
          summary: 'The WhatsApp numbers, with state, pace, daily cap and what each sent today',
          operationId: 'listNumbers',
          responses: {
            '200': json({ type: 'object', required: ['numbers'], properties: { numbers: { type: 'array', items: ref('WhatsappNumber') } } }, 'The numbers, the default first'),
          },
        },
      },
      '/v1/numbers/{name}': {
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' }, description: 'the instance name' }],
        patch: {
          summary: 'Pause, resume or retire a WhatsApp number',
          description:
            'paused_operator holds its leads\' follow-ups (deferred `operator_paused`, never sent from another number); active resumes it ' +
            '(also after a WhatsApp pause); retired is for good: its leads move to the active numbers, each once, recorded on their timelines.',
          operationId: 'changeNumber',
          requestBody: { required: true, content: { 'application/json': { schema: ref('PatchNumberRequest') } } },
          responses: {
            '200': json(
              { type: 'object', required: ['number', 'movedLeads'], properties: { number: ref('WhatsappNumber'), movedLeads: { type: 'integer' } } },
              'The number as it is now, and how many leads moved',
            ),
            '400': errorRef('BadRequest'),
            '404': errorRef('NotFound'),
            '409': errorRef('Conflict'),
          },
        },
      },
    },
  },
};
