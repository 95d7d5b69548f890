/** GET /v1/stats: counts for operators (campaign step stats are to come). */
import { STATUSES } from '../../followups/followup.js';
import { readStats } from '../../followups/read-stats.js';
import { json } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const statsRoutes: RouteModule = {
  name: 'stats',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    app.get('/v1/stats', () => readStats(ctx.db));
  },
  openapi: {
    schemas: {
      Stats: {
        type: 'object',
        required: ['byStatus'],
        properties: {
          byStatus: {
            type: 'object',
            description: 'follow-ups per status (every status present, zero when none)',
            properties: Object.fromEntries(STATUSES.map((s) => [s, { type: 'integer' }])),
          },
        },
      },
    },
    paths: {
      '/v1/stats': {
        get: {
          summary: 'Counts by status',
          operationId: 'readStats',
          responses: { '200': json({ $ref: '#/components/schemas/Stats' }, 'The counts') },
        },
      },
    },
  },
};
