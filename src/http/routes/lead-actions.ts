/**
 * Stopping a lead from the outside (the agent, an operator, the CRM):
 *   POST /v1/leads/:phone/opt-out    the lead asked not to be contacted (for good)
 *   POST /v1/leads/:phone/handoff    a person took over the conversation
 *   POST /v1/leads/:phone/converted  the lead became a member
 *   DELETE /v1/leads/:phone          LGPD erasure of the lead's personal data
 * Each cancels everything still open for the lead. Repeats are harmless: the
 * first time is kept.
 */
import { NotFoundError } from '../../errors.js';
import { applyLeadAction, CREATE_IF_MISSING } from '../../leads/apply-lead-action.js';
import { type ErasedLead, stopLeadSchema } from '../../leads/lead-schemas.js';
import { eraseLead } from '../../leads/erase-lead.js';
import type { StopReason } from '../../leads/stop-lead.js';
import { normalizePhone } from '../../whatsapp/phone.js';
import { errorRef, json, jsonSchemaOf, ref } from '../openapi.js';
import type { RouteModule } from '../route-module.js';
import { phoneParameter } from '../openapi.js';

const ACTIONS: Array<{ path: string; reason: StopReason; summary: string; createIfMissing: boolean }> = [
  { path: 'opt-out', reason: 'opted_out', summary: 'The lead opted out: never contact it again', createIfMissing: CREATE_IF_MISSING.opted_out },
  { path: 'handoff', reason: 'handoff', summary: 'A person took the conversation over: stop the follow-ups', createIfMissing: CREATE_IF_MISSING.handoff },
  { path: 'converted', reason: 'converted', summary: 'The lead became a member: stop the follow-ups', createIfMissing: CREATE_IF_MISSING.converted },
];

export const leadActionRoutes: RouteModule = {
  name: 'lead-actions',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    for (const action of ACTIONS) {
      app.post<{ Params: { phone: string } }>(`/v1/leads/:phone/${action.path}`, async (request) =>
        applyLeadAction(ctx, action.reason, request.params.phone, request.body),
      );
    }

    app.delete<{ Params: { phone: string } }>('/v1/leads/:phone', async (request) => {
      const phone = normalizePhone(request.params.phone, 'phone');
      const result = await eraseLead(ctx.db, phone, ctx.clock);
      if (!result) throw new NotFoundError(`no lead with phone ${phone}`);
      ctx.log.info({ leadId: result.leadId, alreadyErased: result.alreadyErased, cancelled: result.cancelled }, 'lead erased');
      return { leadId: result.leadId, erasedAt: result.erasedAt.toISOString(), alreadyErased: result.alreadyErased, cancelled: result.cancelled } satisfies ErasedLead;
    });
  },
  openapi: {
    schemas: {
      StopLeadRequest: jsonSchemaOf(stopLeadSchema.unwrap()),
      StoppedLead: {
        type: 'object',
        required: ['lead', 'changed', 'cancelled'],
        properties: {
          lead: { type: 'object', description: 'the lead as stored: id, phone, optedOutAt, handoffAt, convertedAt, ...' },
          changed: { type: 'boolean', description: 'false when it had already happened (the first time is kept)' },
          cancelled: { type: 'integer', description: 'follow-ups cancelled now' },
        },
      },
      ErasedLead: {
        type: 'object',
        required: ['leadId', 'erasedAt', 'alreadyErased', 'cancelled'],
        properties: {
          leadId: { type: 'string', format: 'uuid' },
          erasedAt: { type: 'string', format: 'date-time' },
          alreadyErased: { type: 'boolean' },
          cancelled: { type: 'integer' },
        },
      },
    },
    paths: {
      ...Object.fromEntries(
        ACTIONS.map((action) => [
          `/v1/leads/{phone}/${action.path}`,
          {
            parameters: [phoneParameter],
            post: {
              summary: action.summary,
              description: `Stamps the lead (${action.reason}) and cancels its pending and queued follow-ups with that reason.` +
                (action.createIfMissing ? ' An unknown number is recorded as opted out, so it can never be scheduled.' : ' 404 for an unknown number.'),
              operationId: `lead_${action.reason}`,
              requestBody: { required: false, content: { 'application/json': { schema: ref('StopLeadRequest') } } },
              responses: {
                '200': json(ref('StoppedLead'), 'Done (or already done)'),
                '400': errorRef('BadRequest'),
                ...(action.createIfMissing ? {} : { '404': errorRef('NotFound') }),
              },
            },
          },
        ]),
      ),
      '/v1/leads/{phone}': {
        parameters: [phoneParameter],
        delete: {
          summary: "Erase the lead's personal data (LGPD)",
          description:
            'Name, metadata, message texts and follow-up texts are removed; the phone is kept only as a hash; everything open is cancelled (erased). ' +
            'Rows stay so statistics keep their counts; an opt-out keeps when and through which message it happened. Idempotent.',
          operationId: 'eraseLead',
          responses: { '200': json(ref('ErasedLead'), 'Erased'), '400': errorRef('BadRequest'), '404': errorRef('NotFound') },
        },
      },
    },
  },
};
