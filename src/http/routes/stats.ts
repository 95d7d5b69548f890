/** GET /v1/stats: counts for operators (campaign step stats are to come). */
import { STATUSES } from '../../followups/followup.js';
import { readStats } from '../../followups/read-stats.js';
import { z } from 'zod';
import { answer } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const statsRoutes: RouteModule = {
  name: 'stats',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    const stats = z.object({
      byStatus: z.object(Object.fromEntries(STATUSES.map((s) => [s, z.int()]))).describe('follow-ups per status (every status present, zero when none)'),
    });
    app.get('/v1/stats', { schema: { summary: 'Counts by status', operationId: 'readStats', answers: { 200: answer('The counts', stats) } } }, () => readStats(ctx.db));
  },
};
