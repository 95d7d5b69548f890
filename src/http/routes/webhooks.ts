/**
 * POST /webhooks/evolution and /webhooks/evolution/:event (Evolution's by-events
 * mode: /messages-upsert, /connection-update, ...). Authenticated before the body
 * is read (webhook-auth.ts); answered once the event is committed, so a 2xx means
 * it took effect and anything else is retried by Evolution. A malformed body is a
 * 400 (not retried); a database outage a 503 (retried).
 */
import { ValidationError } from '../../errors.js';
import { handleEvolutionWebhook } from '../../webhooks/handle-evolution-webhook.js';
import { makeWebhookAuth } from '../../webhooks/webhook-auth.js';
import { z } from 'zod';
import { answer, errorSchema } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

const EVENT_PARAM = /^[A-Za-z0-9._-]{1,100}$/;

export const webhookRoutes: RouteModule = {
  name: 'webhooks',
  auth: 'none',
  async plugin(app, { ctx, authFailures }) {
    const auth = makeWebhookAuth({ secret: ctx.config.webhook.secret, jwtKey: ctx.config.webhook.jwtKey, clock: ctx.clock });
    if (!auth.configured) {
      ctx.log.warn('neither WEBHOOK_SECRET nor WEBHOOK_JWT_KEY is set: Evolution webhooks are refused (401) until one is');
    }
    const log = ctx.log.child({ component: 'webhooks' });
    const deps = {
      db: ctx.db,
      clock: ctx.clock,
      log,
      gate: ctx.gate,
      optOutConfirmation: (campaign: string) => ctx.campaigns?.get(campaign)?.optOutConfirmation,
      webhookSilence: ctx.webhookSilence ?? undefined,
      numbers: ctx.numbers,
    };

    // onRequest: an unauthenticated caller is refused before its body is read. Scoped to this plugin.
    app.addHook('onRequest', async (request) => {
      await authFailures.assertNotBlocked(request, 'webhook');
      const result = await auth.verify(request.headers);
      if (!result.ok) throw await authFailures.refuse(request, 'webhook', result.reason);
    });

    // Every number's webhooks come to this one URL: the payload's `instance` says which number it
    // is about. One that is not ours is refused (422 unknown_instance, counted), nothing recorded.
    const known = new Set(ctx.config.evolution?.instances.map((i) => i.name) ?? []);
    const handler = async (body: unknown, reply: { code(status: number): unknown }, event?: string) => {
      const instance = typeof body === 'object' && body !== null ? (body as { instance?: unknown }).instance : undefined;
      if (typeof instance === 'string' && known.size > 0 && !known.has(instance)) {
        ctx.metrics.webhooksUnknownInstance.inc();
        log.warn({ instance: instance.slice(0, 100) }, 'webhook from an instance that is not one of our numbers; refused');
        reply.code(422);
        return { error: { code: 'unknown_instance', message: `instance: "${instance.slice(0, 100)}" is not one of this service's WhatsApp numbers (EVOLUTION_INSTANCES)` } };
      }
      if (ctx.numbers.several && instance === undefined) {
        throw new ValidationError('instance: required with several WhatsApp numbers (EVOLUTION_INSTANCES): which number the event is about', 'instance');
      }
      const own = { ...deps, instance: typeof instance === 'string' ? instance : ctx.numbers.defaultName };
      return { received: true, results: await handleEvolutionWebhook(own, body, event) };
    };
    const schema = (byEvent: boolean) => ({
      summary: byEvent ? 'Evolution API events (by-events mode)' : 'Evolution API events',
      description:
        'Authenticated by `x-webhook-secret: <WEBHOOK_SECRET>` or `Authorization: Bearer <HS256 JWT signed with WEBHOOK_JWT_KEY>` ' +
        '(exp required, app "evolution"). messages.upsert from the lead stops its follow-ups (opt-out words opt it out); ' +
        'fromMe messages not sent by this system hand the lead off; connection.update close pauses sending (with several numbers, only that number). ' +
        "Every number's events come here: the payload's `instance` says which (required with several numbers). " +
        'Every other event is accepted and ignored. Idempotent on data.key.id.',
      operationId: byEvent ? 'evolutionWebhookByEvent' : 'evolutionWebhook',
      body: z.looseObject({}).describe("Evolution's event: {event, instance, data, ...}"),
      ...(byEvent ? { params: z.object({ event: z.string().describe('by-events mode: messages-upsert, connection-update, ...') }) } : {}),
      answers: {
        200: answer(
          'Processed (or ignored): {received: true, results: [{event, outcome (reply_recorded, opted_out, handoff, own_message, duplicate, paused, resumed, open, ignored:<why>), leadId, cancelled}]}',
        ),
        400: 'BadRequest',
        401: 'Unauthorized',
        415: 'UnsupportedMediaType',
        422: answer("`unknown_instance`: the payload's `instance` is not one of our WhatsApp numbers; nothing recorded (counted in /metrics)", errorSchema),
        503: answer('The database is unavailable; Evolution retries'),
      },
    } as const);
    app.post('/webhooks/evolution', { schema: schema(false) }, async (request, reply) => handler(request.body, reply));
    app.post<{ Params: { event: string } }>('/webhooks/evolution/:event', { schema: schema(true) }, async (request, reply) => {
      const event = EVENT_PARAM.test(request.params.event) ? request.params.event : undefined;
      return handler(request.body, reply, event);
    });
  },
};
