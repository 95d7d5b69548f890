/**
 * The HTTP app as one fastify instance built from the context; a separate entry
 * (the CLI's `api` role) listens, tests call `app.inject()`. Routes come from
 * the `routeModules` list: adding a feature's routes is one entry there (and its import).
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Context } from '../context.js';
import { requireApiToken } from './auth.js';
import { toErrorResponse } from './error-response.js';
import { RequestLog } from './request-log.js';
import type { RouteModule } from './route-module.js';
import { enrollmentRoutes } from './routes/enrollments.js';
import { followupRoutes } from './routes/followups.js';
import { healthRoutes } from './routes/health.js';
import { leadActionRoutes } from './routes/lead-actions.js';
import { leadTimelineRoutes } from './routes/lead-timeline.js';
import { metaRoutes } from './routes/meta.js';
import { statsRoutes } from './routes/stats.js';
import { webhookRoutes } from './routes/webhooks.js';

export const BODY_LIMIT = 1024 * 1024;

/** Every route module the app serves; `auth: 'bearer'` ones get the token check. */
export const routeModules: readonly RouteModule[] = [healthRoutes, metaRoutes, followupRoutes, statsRoutes, enrollmentRoutes, leadTimelineRoutes, leadActionRoutes, webhookRoutes];

export async function buildApp(ctx: Context, options: { logger?: boolean } = {}): Promise<FastifyInstance> {
  function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply) {
    const response = toErrorResponse(error, { bodyLimit: BODY_LIMIT });
    if (response.internal) {
      // Logged once, here, whether or not fastify's request logging is on; never returned.
      ctx.log.error({ err: error, reqId: request.id, method: request.method, route: request.routeOptions.url }, 'request failed');
    }
    return reply.code(response.statusCode).headers(response.headers ?? {}).send(response.body);
  }

  const common = {
    bodyLimit: BODY_LIMIT,
    logController: new RequestLog(),
    return503OnClosing: true,
    // Errors fastify meets while routing (bad percent-encoding, over-long path segment)
    // skip setErrorHandler; this sends them in the same envelope.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      sendError(error, request, reply);
    },
  };
  const app = (
    options.logger ? Fastify({ loggerInstance: ctx.log, ...common }) : Fastify({ logger: false, ...common })
  ) as FastifyInstance;

  // JSON only (fastify would also take text/plain, which no route wants: 415 instead).
  // As fastify's JSON parser (prototype poisoning refused), except that an empty body
  // with `content-type: application/json` counts as no body: many clients send that
  // header on a bare POST (cancel, retry), and refusing it helps no one.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if ((body as string).trim() === '') return done(null, undefined);
    parseJson(request, body as string, done);
  });

  app.setErrorHandler(async (error, request, reply) => sendError(error, request, reply));

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0];
    return reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${path}` } });
  });

  const checkApiToken = requireApiToken(ctx.config.apiToken);
  for (const route of routeModules.filter((r) => r.auth === 'none')) await app.register(route.plugin, { ctx, routes: routeModules });
  await app.register(async (api) => {
    // onRequest, not preHandler: an unauthenticated caller is refused before its body is read or parsed.
    api.addHook('onRequest', checkApiToken);
    for (const route of routeModules.filter((r) => r.auth === 'bearer')) await api.register(route.plugin, { ctx, routes: routeModules });
  });

  return app;
}
