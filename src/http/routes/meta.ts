/** The service described and measured: /metrics, /openapi.json, /docs. Public, like /health. */
import { Gauge } from 'prom-client';
import { STATUSES } from '../../followups/followup.js';
import { readStats } from '../../followups/read-stats.js';
import { DOCS_CONTENT_SECURITY_POLICY, DOCS_HTML } from '../docs-page.js';
import { buildOpenApiDocument } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

const BY_STATUS = 'followups_by_status';

export const metaRoutes: RouteModule = {
  name: 'meta',
  auth: 'none',
  async plugin(app, { ctx, routes }) {
    const { registry } = ctx.metrics;
    // The registry outlives an app built twice on one context (tests): register once.
    const byStatus =
      (registry.getSingleMetric(BY_STATUS) as Gauge<'status'> | undefined) ??
      new Gauge({ name: BY_STATUS, help: 'Follow-ups in the database, by status (read on scrape)', labelNames: ['status'], registers: [registry] });

    app.get('/metrics', async (_request, reply) => {
      try {
        const stats = await readStats(ctx.db);
        for (const status of STATUSES) byStatus.set({ status }, stats.byStatus[status]);
      } catch (error) {
        // Stale counts would mislead: drop them, keep serving the process's own metrics.
        byStatus.reset();
        ctx.log.warn({ err: error }, 'metrics: could not count follow-ups by status');
      }
      return reply.type(registry.contentType).send(await registry.metrics());
    });

    const document = buildOpenApiDocument(routes);
    app.get('/openapi.json', async () => document);

    app.get('/docs', async (_request, reply) =>
      reply.type('text/html; charset=utf-8').header('content-security-policy', DOCS_CONTENT_SECURITY_POLICY).send(DOCS_HTML),
    );
  },
  openapi: {
    paths: {
      '/metrics': {
        get: {
          summary: 'Prometheus metrics (text format), including followups_by_status',
          operationId: 'metrics',
          responses: { '200': { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      '/openapi.json': {
        get: {
          summary: 'This document',
          operationId: 'openapi',
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
      '/docs': {
        get: {
          summary: 'The API described for people',
          operationId: 'docs',
          responses: { '200': { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
    },
  },
};
