/**
 * The operator's pause of sending, for everything or one campaign:
 *   POST /v1/sending/pause   {scope, campaign?, reason, who?}
 *   POST /v1/sending/resume  {scope, campaign?, reason?, who?}
 *   GET  /v1/sending/pauses  the active pauses and the latest record
 * See src/followups/operator-pause.ts.
 */
import { listActivePauses, listRecentPauses, pauseSending, pauseSendingSchema, resumeSending, resumeSendingSchema } from '../../followups/operator-pause.js';
import { answer, component } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const sendingRoutes: RouteModule = {
  name: 'sending',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    const pause = {
      summary: 'Pause sending (everything, or one campaign) with a reason',
      description:
        'Stored in the database: survives restarts and holds every relay and worker within about a second. Follow-ups coming due meanwhile ' +
        "are deferred with defer_reason 'operator_paused' (never dropped) and go out after the resume. 201 when paused now, 200 when it already was.",
      operationId: 'pauseSending',
      body: component('PauseSendingRequest', pauseSendingSchema),
      answers: { 201: answer('Paused: {pause, created}'), 200: answer('Already paused: {pause (the existing one), created}'), 400: 'BadRequest' },
    } as const;
    app.post('/v1/sending/pause', { schema: pause }, async (request, reply) => {
      const result = await pauseSending(ctx, request.body ?? {});
      if (result.created) ctx.log.warn({ pause: result.pause }, 'sending paused by an operator');
      return reply.code(result.created ? 201 : 200).send(result);
    });
    const resume = {
      summary: 'Resume sending (everything, or one campaign)',
      description: 'Lifts the pause of that scope; the follow-ups it held become due now. 409 not_paused when there is no such pause.',
      operationId: 'resumeSending',
      body: component('ResumeSendingRequest', resumeSendingSchema),
      answers: { 200: answer('Resumed: {pause, released}'), 400: 'BadRequest', 409: 'Conflict' },
    } as const;
    app.post('/v1/sending/resume', { schema: resume }, async (request) => {
      const result = await resumeSending(ctx, request.body ?? {});
      ctx.log.info({ pause: result.pause, released: result.released }, 'sending resumed by an operator');
      return result;
    });
    const pauses = {
      summary: 'Active operator pauses and the latest pauses/resumes (who, when, why)',
      operationId: 'listSendingPauses',
      answers: { 200: answer('Pauses: {active, recent}, each {id, scope, campaign, number, reason, who, at, resumedAt, resumedBy, resumeReason}') },
    } as const;
    app.get('/v1/sending/pauses', { schema: pauses }, async () => ({ active: await listActivePauses(ctx.db), recent: await listRecentPauses(ctx.db, 50) }));
  },
};
