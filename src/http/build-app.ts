/**
 * The HTTP app as one fastify instance built from the context; a separate entry
 * (the CLI's `api` role) listens, tests call `app.inject()`. Routes come from
 * the `routeModules` list: adding a feature's routes is one entry there (and its import).
 */
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Context } from '../context.js';
import { TooManyRequestsError } from '../errors.js';
import { makeAuthFailures, requireApiToken } from './auth.js';
import { toErrorResponse } from './error-response.js';
import { assertJsonDepth, assertNoNul, cleanStrings } from './json-body.js';
import { documentModule, registerOpenApi } from './openapi.js';
import { RequestLog } from './request-log.js';
import type { RouteModule } from './route-module.js';
import { agentOutboxRoutes } from './routes/agent-outbox.js';
import { agentToolRoutes } from './routes/agent-tools.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { enrollmentRoutes } from './routes/enrollments.js';
import { followupRoutes } from './routes/followups.js';
import { healthRoutes } from './routes/health.js';
import { leadActionRoutes } from './routes/lead-actions.js';
import { leadSendRoutes } from './routes/lead-send.js';
import { mcpRoutes } from './routes/mcp.js';
import { leadTimelineRoutes } from './routes/lead-timeline.js';
import { metaRoutes } from './routes/meta.js';
import { sendingRoutes } from './routes/sending.js';
import { numberRoutes } from './routes/numbers.js';
import { statsRoutes } from './routes/stats.js';
import { webhookRoutes } from './routes/webhooks.js';

export const BODY_LIMIT = 1024 * 1024;

/** Every route module the app serves; `auth: 'bearer'` ones get the token check. */
export const routeModules: readonly RouteModule[] = [healthRoutes, metaRoutes, followupRoutes, statsRoutes, enrollmentRoutes, leadTimelineRoutes, leadActionRoutes, leadSendRoutes, sendingRoutes, numberRoutes, mcpRoutes, agentToolRoutes, agentOutboxRoutes, webhookRoutes, dashboardRoutes];

export async function buildApp(ctx: Context, options: { logger?: boolean } = {}): Promise<FastifyInstance> {
  function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply) {
    // The route's own limit (the bulk route takes 4 MB), not the app-wide one.
    const response = toErrorResponse(error, { bodyLimit: request.routeOptions?.bodyLimit ?? BODY_LIMIT });
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
    try {
      assertJsonDepth(body as string);
    } catch (error) {
      return done(error as Error, undefined);
    }
    parseJson(request, body as string, (error: Error | null, parsed?: unknown) => {
      if (error) return done(error, undefined);
      // Webhooks carry what a lead wrote: strip NULs (and mend lone surrogates) rather than lose a
      // reply. The API refuses NULs.
      if (request.url.startsWith('/webhooks/')) return done(null, cleanStrings(parsed));
      try {
        assertNoNul(parsed);
      } catch (refused) {
        return done(refused as Error, undefined);
      }
      done(null, parsed);
    });
  });
  // Query strings reach SQL parameters too (`?phone=`, `?cursor=`).
  app.addHook('preValidation', async (request) => {
    if (!request.url.startsWith('/webhooks/')) {
      assertNoNul(request.query);
      assertNoNul(request.params);
    }
  });

  app.setErrorHandler(async (error, request, reply) => sendError(error, request, reply));

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0];
    return reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${path}` } });
  });

  // Limiters only (global: false): failed authentications per address (auth.ts) and calls per token (below).
  // In memory, per process: N API processes allow N times the rate.
  await app.register(rateLimit, { global: false });
  const authFailures = makeAuthFailures(app, { perMinute: ctx.config.rateLimit.authFailuresPerMinute, log: ctx.log.child({ component: 'auth' }) });
  const checkApiToken = requireApiToken(ctx.config.apiToken, authFailures);
  const { requestsPerMinute } = ctx.config.rateLimit;
  const perToken = requestsPerMinute > 0 ? app.createRateLimit({ max: requestsPerMinute, timeWindow: 60_000, keyGenerator: () => 'api-token' }) : null;
  const pluginOptions = { ctx, authFailures };
  // Before any route: it collects them all for /openapi.json.
  await registerOpenApi(app);
  const register = (parent: FastifyInstance, route: RouteModule) =>
    parent.register(async (scope) => {
      documentModule(scope, route);
      await scope.register(route.plugin, pluginOptions);
    });
  for (const route of routeModules.filter((r) => r.auth === 'none')) await register(app, route);
  await app.register(async (api) => {
    // onRequest, not preHandler: an unauthenticated caller is refused before its body is read or parsed.
    api.addHook('onRequest', checkApiToken);
    if (perToken) {
      // After the token check: there is one API token, so this bounds the whole API (per process).
      api.addHook('onRequest', async (request, reply) => {
        const limit = await perToken(request);
        if (limit.isAllowed) return;
        if (limit.isExceeded) {
          ctx.log.warn({ ip: request.ip, route: request.routeOptions.url }, 'API token over API_REQUESTS_PER_MINUTE; refused');
          throw new TooManyRequestsError(`more than ${requestsPerMinute} requests a minute with this token; slow down`, Math.max(1, limit.ttlInSeconds));
        }
        reply.header('x-ratelimit-remaining', String(limit.remaining));
      });
    }
    for (const route of routeModules.filter((r) => r.auth === 'bearer')) await register(api, route);
  });

  return app;
}
