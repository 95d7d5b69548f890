/**
 * The campaign team's dashboard at /dashboard: server-rendered pages in
 * Portuguese, readable on a phone, signed in with the API token or
 * DASHBOARD_PASSWORD (a session cookie: src/dashboard/session.ts). Every action is
 * a form POST carrying the CSRF token, done through the same domain functions as
 * the API and the CLI, then a redirect back with a notice.
 *
 *   GET  /dashboard/login, POST /dashboard/login, POST /dashboard/logout
 *   GET  /dashboard/now | activity | funnel | fans | fans/:phone | failures
 *   POST /dashboard/actions/pause | resume | cancel | retry | retry-reason | stop-fan
 *   GET  /dashboard/assets/*   the stylesheet and scripts (ours and uPlot's, from npm)
 */
import cookie from '@fastify/cookie';
import type { FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { makeRollupRefresher } from '../../dashboard/funnel-rollups.js';
import { FUNNEL_PERIODS, findFans, makeFunnelCache, readActivityPage, readFailuresPage, readFunnelPage, readNowPage } from '../../dashboard/read-dashboard.js';
import { DASHBOARD_CSS, DASHBOARD_JS, uplotAsset } from '../../dashboard/assets.js';
import type { Html } from '../../dashboard/html.js';
import { activityPage, failuresPage, fanPage, fansPage, funnelPage, layout, loginPage, nowPage, type PageFrame } from '../../dashboard/pages.js';
import { makeSessions, SESSION_COOKIE, SESSION_HOURS, type Session } from '../../dashboard/session.js';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.js';
import { makeCachedStats } from '../../followups/cached-stats.js';
import { cancelFollowup, retryFollowup } from '../../followups/operator-actions.js';
import { pauseSending, resumeSending } from '../../followups/operator-pause.js';
import { applyLeadAction } from '../../leads/apply-lead-action.js';
import { readLeadTimeline } from '../../leads/read-timeline.js';
import type { StopReason } from '../../leads/stop-lead.js';
import { retryFailedFollowups } from '../../operator/retry-failed-followups.js';
import { html } from '../../dashboard/html.js';
import { TooManyRequestsError } from '../../errors.js';
import { z } from 'zod';
import { answer } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const FORM_BODY_LIMIT = 64 * 1024;
const FUNNEL_MAX_AGE_MS = 60_000;
const PUBLIC = new Set(['/dashboard/login']);

type Form = Record<string, string | undefined>;

/** Only paths of the dashboard itself (no open redirect). */
function safeBack(value: string | undefined, fallback: string): string {
  return value && /^\/dashboard(\/[A-Za-z0-9/_\-.?=&%+]*)?$/.test(value) && !value.startsWith('//') ? value : fallback;
}

function withNotice(path: string, kind: 'ok' | 'erro', text: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}${kind}=${encodeURIComponent(text.slice(0, 300))}`;
}

/** What /openapi.json says of each page and action (HTML for people, not an API). */
const PAGES: Record<string, string> = {
  'GET /dashboard': 'The dashboard (redirects to /dashboard/now)',
  'GET /dashboard/login': 'Sign-in form (API token or DASHBOARD_PASSWORD)',
  'POST /dashboard/login': 'Sign in: form field `secret`; sets the httpOnly, SameSite=Strict session cookie',
  'POST /dashboard/logout': 'Sign out',
  'GET /dashboard/now': 'Now: follow-ups by status, due next hour, lateness, queue mode, numbers, sends today, failures, pauses',
  'GET /dashboard/activity': 'Sends, replies and opt-outs per hour over the last 7 days',
  'GET /dashboard/funnel': 'Funnel per campaign, step, variant and composer (?days=1|7|30|90&campaign=)',
  'GET /dashboard/fans': 'Search a fan by phone (any spelling) or name (?q=)',
  'GET /dashboard/fans/:phone': "A fan's timeline: messages, follow-ups with their events, enrollments, flags",
  'GET /dashboard/failures': 'Failed and ambiguous follow-ups with reason and last error',
  'POST /dashboard/actions/pause': 'Pause sending (form: scope all | campaign:<name>, reason, who)',
  'POST /dashboard/actions/resume': 'Resume sending (form: scope, reason, who)',
  'POST /dashboard/actions/cancel': 'Cancel one follow-up (form: id)',
  'POST /dashboard/actions/retry': 'Retry one failed follow-up (form: id)',
  'POST /dashboard/actions/retry-reason': 'Retry every failed follow-up of a reason (form: reason)',
  'POST /dashboard/actions/stop-fan': 'Stop a fan: opted_out | handoff | converted (form: phone, reason)',
  'GET /dashboard/assets/:file': 'The stylesheet and scripts (uPlot from its npm package)',
};

/** The route's entry in /openapi.json: a page (HTML) or a form action (303 back to the page). */
function pageSchema(method: string, url: string): FastifySchema {
  const isAction = method === 'POST';
  return {
    summary: PAGES[`${method} ${url}`],
    description:
      'HTML for people, not an API: needs the dashboard session cookie (else 303 to /dashboard/login)' +
      (isAction && url !== '/dashboard/login' ? '; a form POST with the `_csrf` field of the page, answered by 303 back to the page with a notice.' : '.'),
    ...(url.includes(':') ? { params: z.object(Object.fromEntries([...url.matchAll(/:(\w+)/g)].map((m) => [m[1]!, z.string()]))) } : {}),
    operationId: `dashboard_${method.toLowerCase()}_${url.replace(/^\/dashboard\/?/, '').replace(/[^a-z]+/gi, '_') || 'root'}`,
    answers: isAction
      ? { 303: answer('Redirect'), 403: answer('Missing or wrong CSRF token') }
      : { 200: answer('HTML', z.string(), 'text/html') },
  };
}

export const dashboardRoutes: RouteModule = {
  name: 'dashboard',
  auth: 'none',
  async plugin(app, { ctx, authFailures }) {
    app.addHook('onRoute', (route) => {
      route.schema = { ...pageSchema(String(route.method), route.url), ...route.schema };
    });
    await app.register(cookie);
    // Forms post application/x-www-form-urlencoded (this plugin only; the API stays JSON-only).
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_request, body, done) => {
      const form = Object.fromEntries(new URLSearchParams(body as string));
      if (Object.values(form).some((v) => v.includes('\0'))) return done(new ValidationError('body: must not contain NUL characters', 'body'), undefined);
      done(null, form);
    });

    const sessions = makeSessions({ apiToken: ctx.config.apiToken, password: ctx.config.dashboardPassword });
    const counts = makeCachedStats({ db: ctx.db, refreshMs: ctx.config.metrics.refreshMs, log: ctx.log.child({ component: 'dashboard' }) });
    const sessionOf = new WeakMap<FastifyRequest, Session>();
    // The funnel reads a whole period: served from memory, recomputed in the background after a minute.
    const funnels = makeFunnelCache({ maxAgeMs: FUNNEL_MAX_AGE_MS });
    // Its daily roll-ups (funnel-rollups.ts): refreshed by this role a minute after it starts, every
    // 5 minutes, and when the funnel is viewed (at most once a minute). Any number of API processes may.
    const rollupLog = ctx.log.child({ component: 'funnel_rollups' });
    const rollups = makeRollupRefresher({
      db: ctx.db,
      minIntervalMs: FUNNEL_MAX_AGE_MS,
      everyMs: 5 * 60_000,
      onError: (error) => rollupLog.warn({ err: error }, 'funnel roll-up refresh failed'),
    });
    app.addHook('onReady', async () => rollups.start(60_000));
    app.addHook('onClose', async () => rollups.stop());
    const timeZone = ctx.config.sending.timeZone;

    app.addHook('onRequest', async (request, reply) => {
      reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
      reply.header('referrer-policy', 'same-origin');
      reply.header('x-content-type-options', 'nosniff');
      const path = request.url.split('?')[0]!;
      if (path.startsWith('/dashboard/assets/')) return;
      reply.header('cache-control', 'no-store');
      // A form posted from another site (SameSite=Strict already keeps the cookie off it).
      if (request.method === 'POST') {
        const origin = request.headers.origin;
        if (origin && origin !== 'null' && URL.parse(origin)?.host !== request.headers.host) {
          return reply.code(403).type('text/plain; charset=utf-8').send('Origem não permitida.');
        }
      }
      if (PUBLIC.has(path)) return;
      const session = await sessions.verify(request.cookies[SESSION_COOKIE]);
      if (!session) {
        const next = request.method === 'GET' ? request.url : '/dashboard/now';
        return reply.redirect(`/dashboard/login?next=${encodeURIComponent(next)}`, 303);
      }
      sessionOf.set(request, session);
    });

    // Every action: the session's CSRF token must come with the form.
    app.addHook('preHandler', async (request, reply) => {
      const session = sessionOf.get(request);
      if (request.method !== 'POST' || !session) return;
      if (!sessions.checkCsrf(session, (request.body as Form | undefined)?._csrf)) {
        ctx.log.warn({ ip: request.ip, route: request.routeOptions.url }, 'dashboard action refused: missing or wrong CSRF token');
        return reply.code(403).type('text/plain; charset=utf-8').send('Formulário expirado ou de outra origem: recarregue a página e tente de novo.');
      }
    });

    const frameOf = (request: FastifyRequest): PageFrame => {
      const query = request.query as { ok?: string; erro?: string };
      return {
        csrf: sessions.csrfToken(sessionOf.get(request)!),
        timeZone,
        notice: query.erro ? { kind: 'error', text: query.erro } : query.ok ? { kind: 'ok', text: query.ok } : null,
      };
    };
    const page = (reply: FastifyReply, body: Html, code = 200) => reply.code(code).type('text/html; charset=utf-8').send(body.value);
    const whoOf = (request: FastifyRequest, form: Form) =>
      form.who?.trim() || `painel (${sessionOf.get(request)?.via === 'password' ? 'senha' : 'token'})`;

    /** Runs an action; a refusal the team can act on (validation, conflict, unknown) comes back as a notice. */
    async function act(reply: FastifyReply, back: string, action: () => Promise<string>) {
      try {
        return reply.redirect(withNotice(back, 'ok', await action()), 303);
      } catch (error) {
        if (error instanceof ValidationError || error instanceof ConflictError || error instanceof NotFoundError) {
          return reply.redirect(withNotice(back, 'erro', error.message), 303);
        }
        throw error;
      }
    }

    // --- sign-in ---------------------------------------------------------------------------
    const passwordEnabled = Boolean(ctx.config.dashboardPassword);
    app.get<{ Querystring: { next?: string } }>('/dashboard/login', async (request, reply) =>
      page(reply, loginPage({ next: safeBack(request.query.next, '/dashboard/now'), passwordEnabled })),
    );
    app.post('/dashboard/login', async (request, reply) => {
      const form = (request.body ?? {}) as Form;
      const next = safeBack(form.next, '/dashboard/now');
      try {
        await authFailures.assertNotBlocked(request, 'dashboard');
      } catch (error) {
        if (error instanceof TooManyRequestsError) {
          reply.header('retry-after', String(error.retryAfterSeconds));
          return page(reply, loginPage({ error: 'Muitas tentativas erradas deste endereço. Espere um minuto.', next, passwordEnabled }), 429);
        }
        throw error;
      }
      const via = sessions.check(form.secret ?? '');
      if (!via) {
        await authFailures.refuse(request, 'dashboard', 'wrong dashboard secret');
        return page(reply, loginPage({ error: 'Senha ou token incorreto.', next, passwordEnabled }), 401);
      }
      const { cookie: value } = await sessions.create(via);
      reply.setCookie(SESSION_COOKIE, value, {
        path: '/dashboard',
        httpOnly: true,
        sameSite: 'strict',
        secure: request.protocol === 'https',
        maxAge: SESSION_HOURS * 3600,
      });
      ctx.log.info({ ip: request.ip, via }, 'dashboard sign-in');
      return reply.redirect(next, 303);
    });
    app.post('/dashboard/logout', async (request, reply) => {
      reply.clearCookie(SESSION_COOKIE, { path: '/dashboard', httpOnly: true, sameSite: 'strict', secure: request.protocol === 'https' });
      return reply.redirect('/dashboard/login', 303);
    });

    // --- pages -----------------------------------------------------------------------------
    app.get('/dashboard', async (_request, reply) => reply.redirect('/dashboard/now', 303));
    app.get('/dashboard/now', async (request, reply) =>
      page(reply, nowPage(frameOf(request), await readNowPage(ctx, () => counts.read()), [...ctx.campaigns.keys()])),
    );
    app.get('/dashboard/activity', async (request, reply) => page(reply, activityPage(frameOf(request), await readActivityPage(ctx.db, ctx.clock.now()))));
    app.get<{ Querystring: { days?: string; campaign?: string } }>('/dashboard/funnel', async (request, reply) => {
      const days = FUNNEL_PERIODS.find((d) => String(d) === request.query.days) ?? 7;
      const campaign = request.query.campaign && ctx.campaigns.has(request.query.campaign) ? request.query.campaign : null;
      void rollups.kick();
      const { page: funnel, ageMs } = await funnels.read(`${days}|${campaign ?? ''}`, () => readFunnelPage(ctx, { days, campaign }));
      return page(reply, funnelPage(frameOf(request), funnel, FUNNEL_PERIODS, ageMs));
    });
    app.get<{ Querystring: { q?: string } }>('/dashboard/fans', async (request, reply) => {
      const q = (request.query.q ?? '').slice(0, 100);
      return page(reply, fansPage(frameOf(request), q, q.trim() ? await findFans(ctx.db, q) : null));
    });
    app.get<{ Params: { phone: string } }>('/dashboard/fans/:phone', async (request, reply) => {
      const frame = frameOf(request);
      try {
        return page(reply, fanPage(frame, await readLeadTimeline(ctx.db, request.params.phone)));
      } catch (error) {
        if (error instanceof NotFoundError || error instanceof ValidationError) {
          return page(reply, layout(frame, 'fans', 'Fã não encontrado', html`<p>${error.message}</p><p><a href="/dashboard/fans">Voltar à busca</a></p>`), 404);
        }
        throw error;
      }
    });
    app.get('/dashboard/failures', async (request, reply) => page(reply, failuresPage(frameOf(request), await readFailuresPage(ctx.db))));

    // --- actions ---------------------------------------------------------------------------
    const scopeOf = (value: string | undefined) =>
      value?.startsWith('campaign:') ? { scope: 'campaign', campaign: value.slice('campaign:'.length) } : { scope: value || 'all' };
    app.post('/dashboard/actions/pause', async (request, reply) => {
      const form = request.body as Form;
      return act(reply, '/dashboard/now', async () => {
        const { pause, created } = await pauseSending(ctx, { ...scopeOf(form.scope), reason: form.reason ?? '', who: whoOf(request, form) });
        if (created) ctx.log.warn({ pause }, 'sending paused from the dashboard');
        const what = pause.scope === 'all' ? 'Todos os envios' : `A campanha ${pause.campaign}`;
        return created ? `${what} em pausa.` : `${what} já estava em pausa (desde ${pause.at}).`;
      });
    });
    app.post('/dashboard/actions/resume', async (request, reply) => {
      const form = request.body as Form;
      return act(reply, '/dashboard/now', async () => {
        const { pause, released } = await resumeSending(ctx, { ...scopeOf(form.scope), reason: form.reason?.trim() || undefined, who: whoOf(request, form) });
        ctx.log.info({ pause, released }, 'sending resumed from the dashboard');
        return `${pause.scope === 'all' ? 'Envios retomados' : `Campanha ${pause.campaign} retomada`}: ${released} follow-up(s) seguram e saem agora.`;
      });
    });
    app.post('/dashboard/actions/cancel', async (request, reply) => {
      const form = request.body as Form;
      return act(reply, safeBack(form.back, '/dashboard/now'), async () => {
        await cancelFollowup(ctx, form.id ?? '', 'operator');
        return 'Follow-up cancelado.';
      });
    });
    app.post('/dashboard/actions/retry', async (request, reply) => {
      const form = request.body as Form;
      return act(reply, safeBack(form.back, '/dashboard/failures'), async () => {
        await retryFollowup(ctx, form.id ?? '');
        return 'Follow-up de volta à fila: sai agora.';
      });
    });
    app.post('/dashboard/actions/retry-reason', async (request, reply) => {
      const form = request.body as Form;
      return act(reply, '/dashboard/failures', async () => {
        if (!form.reason) throw new ValidationError('reason: is required', 'reason');
        const result = await retryFailedFollowups(ctx, { reason: form.reason === '—' ? undefined : form.reason, limit: 10_000 });
        return `${result.retried.length} follow-up(s) de volta à fila.`;
      });
    });
    const STOPS: Record<string, [StopReason, string]> = {
      opted_out: ['opted_out', 'Fã marcado como fora (não recebe mais nada).'],
      handoff: ['handoff', 'Fã passado para atendimento humano.'],
      converted: ['converted', 'Fã marcado como sócio.'],
    };
    app.post('/dashboard/actions/stop-fan', async (request, reply) => {
      const form = request.body as Form;
      const phone = form.phone ?? '';
      return act(reply, safeBack(`/dashboard/fans/${phone}`, '/dashboard/fans'), async () => {
        const stop = STOPS[form.reason ?? ''];
        if (!stop) throw new ValidationError('reason: must be opted_out, handoff or converted', 'reason');
        const result = await applyLeadAction(ctx, stop[0], phone, { source: 'dashboard' });
        return `${stop[1]} ${result.cancelled} follow-up(s) cancelado(s).`;
      });
    });

    // --- assets ----------------------------------------------------------------------------
    const assets: Record<string, [string, string]> = {
      'dashboard.css': ['text/css; charset=utf-8', DASHBOARD_CSS],
      'dashboard.js': ['text/javascript; charset=utf-8', DASHBOARD_JS],
      'uPlot.iife.min.js': ['text/javascript; charset=utf-8', uplotAsset('uPlot.iife.min.js')],
      'uPlot.min.css': ['text/css; charset=utf-8', uplotAsset('uPlot.min.css')],
    };
    app.get<{ Params: { file: string } }>('/dashboard/assets/:file', async (request, reply) => {
      const asset = assets[request.params.file];
      if (!asset) throw new NotFoundError(`no asset ${request.params.file}`);
      return reply.type(asset[0]).header('cache-control', 'public, max-age=3600').send(asset[1]);
    });
  },
};
