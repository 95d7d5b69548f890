/**
 * The service described and measured: /metrics, /openapi.json, /docs. Public,
 * except /metrics when METRICS_TOKEN is set (then it needs that token, or the API token).
 */
import { Gauge } from 'prom-client';
import { z } from 'zod';
import { makeCachedStats } from '../../followups/cached-stats.js';
import { STATUSES } from '../../followups/followup.js';
import { makeBearerMatcher } from '../auth.js';
import { DOCS_CONTENT_SECURITY_POLICY, DOCS_HTML } from '../docs-page.js';
import { answer } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

const BY_STATUS = 'followups_by_status';
const BY_STATUS_AGE = 'followups_by_status_age_seconds';

export const metaRoutes: RouteModule = {
  name: 'meta',
  auth: 'none',
  async plugin(app, { ctx, authFailures }) {
    const { registry } = ctx.metrics;
    // The registry outlives an app built twice on one context (tests): register once.
    const byStatus =
      (registry.getSingleMetric(BY_STATUS) as Gauge<'status'> | undefined) ??
      new Gauge({ name: BY_STATUS, help: 'Follow-ups in the database, by status (counted in the background, at most every METRICS_REFRESH_SECONDS)', labelNames: ['status'], registers: [registry] });
    const age =
      (registry.getSingleMetric(BY_STATUS_AGE) as Gauge | undefined) ??
      new Gauge({ name: BY_STATUS_AGE, help: 'Age of the followups_by_status counts', registers: [registry] });
    const counts = makeCachedStats({ db: ctx.db, refreshMs: ctx.config.metrics.refreshMs, log: ctx.log });
    const metricsToken = ctx.config.metrics.token;
    const allowed = makeBearerMatcher([metricsToken, ctx.config.apiToken]);

    const metrics = {
      summary: 'Prometheus metrics (text format), including followups_by_status',
      description:
        'Counts are read in the background (at most every METRICS_REFRESH_SECONDS, one query at a time) and served from memory. ' +
        'When METRICS_TOKEN is set: Authorization: Bearer <METRICS_TOKEN> (or the API token).',
      operationId: 'metrics',
      answers: { 200: answer('Metrics', z.string(), 'text/plain') },
    };
    app.get('/metrics', { schema: metrics }, async (request, reply) => {
      if (metricsToken) {
        await authFailures.assertNotBlocked(request, 'metrics');
        if (!allowed(request.headers.authorization)) {
          throw await authFailures.refuse(request, 'metrics', 'send Authorization: Bearer <METRICS_TOKEN>');
        }
      }
      const { stats, ageMs } = await counts.read();
      if (stats) {
        for (const status of STATUSES) byStatus.set({ status }, stats.byStatus[status]);
        age.set(Math.round(ageMs) / 1000);
      } else {
        // Stale counts would mislead: drop them, keep serving the process's own metrics.
        byStatus.reset();
        age.reset();
      }
      return reply.type(registry.contentType).send(await registry.metrics());
    });

    const openapi = { summary: 'This document', operationId: 'openapi', answers: { 200: answer('OpenAPI 3.1', z.object({}).loose()) } };
    app.get('/openapi.json', { schema: openapi }, async () => app.swagger());

    const docs = { summary: 'The API described for people', operationId: 'docs', answers: { 200: answer('HTML', z.string(), 'text/html') } };
    app.get('/docs', { schema: docs }, async (_request, reply) =>
      reply.type('text/html; charset=utf-8').header('content-security-policy', DOCS_CONTENT_SECURITY_POLICY).send(DOCS_HTML),
    );
  },
};
