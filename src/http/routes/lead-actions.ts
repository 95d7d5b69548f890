/**
 * Stopping a lead from the outside (the agent, an operator, the CRM):
 *   POST /v1/leads/:phone/opt-out    the lead asked not to be contacted (for good)
 *   POST /v1/leads/:phone/handoff    a person took over the conversation
 *   POST /v1/leads/:phone/converted  the lead became a member
 *   DELETE /v1/leads/:phone          LGPD erasure of the lead's personal data
 * Each cancels everything still open for the lead. Repeats are harmless: the
 * first time is kept.
 */
import type { FastifySchema } from 'fastify';
import { NotFoundError } from '../../errors.js';
import { applyLeadAction, CREATE_IF_MISSING } from '../../leads/apply-lead-action.js';
import { type ErasedLead, stopLeadSchema } from '../../leads/lead-schemas.js';
import { eraseLead } from '../../leads/erase-lead.js';
import type { StopReason } from '../../leads/stop-lead.js';
import { normalizePhone } from '../../whatsapp/phone.js';
import { type Answer, answer, component, phoneParams } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

const ACTIONS: Array<{ path: string; reason: StopReason; summary: string; createIfMissing: boolean }> = [
  { path: 'opt-out', reason: 'opted_out', summary: 'The lead opted out: never contact it again', createIfMissing: CREATE_IF_MISSING.opted_out },
  { path: 'handoff', reason: 'handoff', summary: 'A person took the conversation over: stop the follow-ups', createIfMissing: CREATE_IF_MISSING.handoff },
  { path: 'converted', reason: 'converted', summary: 'The lead became a member: stop the follow-ups', createIfMissing: CREATE_IF_MISSING.converted },
];

const stopLead = component('StopLeadRequest', stopLeadSchema);
const done = answer('Done (or already done): {lead, changed (false when it had already happened), cancelled}');

export const leadActionRoutes: RouteModule = {
  name: 'lead-actions',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    for (const action of ACTIONS) {
      const schema: FastifySchema = {
        summary: action.summary,
        description:
          `Stamps the lead (${action.reason}) and cancels its pending and queued follow-ups with that reason.` +
          (action.createIfMissing ? ' An unknown number is recorded as opted out, so it can never be scheduled.' : ' 404 for an unknown number.'),
        operationId: `lead_${action.reason}`,
        params: phoneParams,
        body: stopLead,
        answers: { 200: done, 400: 'BadRequest', ...(action.createIfMissing ? {} : { 404: 'NotFound' as const }) } as Record<number, Answer>,
      };
      app.post<{ Params: { phone: string } }>(`/v1/leads/:phone/${action.path}`, { schema }, async (request) =>
        applyLeadAction(ctx, action.reason, request.params.phone, request.body),
      );
    }

    const erase = {
      summary: "Erase the lead's personal data (LGPD)",
      description:
        'Name, metadata, message texts and follow-up texts are removed; the phone is kept only as a hash; everything open is cancelled (erased). ' +
        'Rows stay so statistics keep their counts; an opt-out keeps when and through which message it happened. Idempotent.',
      operationId: 'eraseLead',
      params: phoneParams,
      answers: { 200: answer('Erased: {leadId, erasedAt, alreadyErased, cancelled}'), 400: 'BadRequest', 404: 'NotFound' },
    } as const;
    app.delete<{ Params: { phone: string } }>('/v1/leads/:phone', { schema: erase }, async (request) => {
      const phone = normalizePhone(request.params.phone, 'phone');
      const result = await eraseLead(ctx.db, phone, ctx.clock);
      if (!result) throw new NotFoundError(`no lead with phone ${phone}`);
      ctx.log.info({ leadId: result.leadId, alreadyErased: result.alreadyErased, cancelled: result.cancelled }, 'lead erased');
      return { leadId: result.leadId, erasedAt: result.erasedAt.toISOString(), alreadyErased: result.alreadyErased, cancelled: result.cancelled } satisfies ErasedLead;
    });
  },
};
