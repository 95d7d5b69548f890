/**
 * The operator's pause of sending, for everything or one campaign:
 *   POST /v1/sending/pause   {scope, campaign?, reason, who?}
 *   POST /v1/sending/resume  {scope, campaign?, reason?, who?}
 *   GET  /v1/sending/pauses  the active pauses and the latest record
 * See src/followups/operator-pause.ts.
 */
import { listActivePauses, listRecentPauses, pauseSending, pauseSendingSchema, resumeSending, resumeSendingSchema } from '../../followups/operator-pause.js';
import { errorRef, json, jsonSchemaOf, ref } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const sendingRoutes: RouteModule = {
  name: 'sending',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    app.post('/v1/sending/pause', async (request, reply) => {
      const result = await pauseSending(ctx, request.body ?? {});
      if (result.created) ctx.log.warn({ pause: result.pause }, 'sending paused by an operator');
      return reply.code(result.created ? 201 : 200).send(result);
    });
    app.post('/v1/sending/resume', async (request) => {
      const result = await resumeSending(ctx, request.body ?? {});
      ctx.log.info({ pause: result.pause, released: result.released }, 'sending resumed by an operator');
      return result;
    });
    app.get('/v1/sending/pauses', async () => ({ active: await listActivePauses(ctx.db), recent: await listRecentPauses(ctx.db, 50) }));
  },
  openapi: {
    schemas: {
      PauseSendingRequest: jsonSchemaOf(pauseSendingSchema),
      ResumeSendingRequest: jsonSchemaOf(resumeSendingSchema),
      SendingPause: {
        type: 'object',
        required: ['id', 'scope', 'campaign', 'number', 'reason', 'who', 'at', 'resumedAt', 'resumedBy', 'resumeReason'],
        properties: {
          id: { type: 'string' },
          scope: { type: 'string', enum: ['all', 'campaign', 'number'] },
          campaign: { type: ['string', 'null'] },
          number: { type: ['string', 'null'] },
          reason: { type: 'string' },
          who: { type: 'string' },
          at: { type: 'string', format: 'date-time' },
          resumedAt: { type: ['string', 'null'], format: 'date-time' },
          resumedBy: { type: ['string', 'null'] },
          resumeReason: { type: ['string', 'null'] },
        },
      },
    },
    paths: {
      '/v1/sending/pause': {
        post: {
          summary: 'Pause sending (everything, or one campaign) with a reason',
          description:
            'Stored in the database: survives restarts and holds every relay and worker within about a second. Follow-ups coming due meanwhile ' +
            "are deferred with defer_reason 'operator_paused' (never dropped) and go out after the resume. 201 when paused now, 200 when it already was.",
          operationId: 'pauseSending',
          requestBody: { required: true, content: { 'application/json': { schema: ref('PauseSendingRequest') } } },
          responses: {
            '201': json({ type: 'object', properties: { pause: ref('SendingPause'), created: { type: 'boolean' } } }, 'Paused'),
            '200': json({ type: 'object', properties: { pause: ref('SendingPause'), created: { type: 'boolean' } } }, 'Already paused (the existing pause)'),
            '400': errorRef('BadRequest'),
          },
        },
      },
      '/v1/sending/resume': {
        post: {
          summary: 'Resume sending (everything, or one campaign)',
          description: 'Lifts the pause of that scope; the follow-ups it held become due now. 409 not_paused when there is no such pause.',
          operationId: 'resumeSending',
          requestBody: { required: false, content: { 'application/json': { schema: ref('ResumeSendingRequest') } } },
          responses: {
            '200': json({ type: 'object', properties: { pause: ref('SendingPause'), released: { type: 'integer' } } }, 'Resumed'),
            '400': errorRef('BadRequest'),
            '409': errorRef('Conflict'),
          },
        },
      },
      '/v1/sending/pauses': {
        get: {
          summary: 'Active operator pauses and the latest pauses/resumes (who, when, why)',
          operationId: 'listSendingPauses',
          responses: {
            '200': json({ type: 'object', properties: { active: { type: 'array', items: ref('SendingPause') }, recent: { type: 'array', items: ref('SendingPause') } } }, 'Pauses'),
          },
        },
      },
    },
  },
};
