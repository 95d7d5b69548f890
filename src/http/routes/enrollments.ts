/** /v1/enrollments: enroll one lead in a campaign, or many at once. */
import { enrollLeads, parseBulkEnrollBody } from '../../campaigns/enroll-leads.js';
import { enrollLead } from '../../campaigns/enroll-lead.js';
import { bulkEnrollSchema, enrollLeadSchema, MAX_BULK_LEADS } from '../../campaigns/enrollment-schemas.js';
import { answer, component } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

/** 10,000 leads with names and anchors are about 1.5 MB of JSON; the app-wide limit is 1 MB. */
const BULK_BODY_LIMIT = 4 * 1024 * 1024;

export const enrollmentRoutes: RouteModule = {
  name: 'enrollments',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    const enroll = {
      summary: 'Enroll a lead in a campaign (idempotent: one active enrollment per lead)',
      description:
        'Steps are due at anchorAt + each step delay; if the first step is already overdue, the whole sequence slides ' +
        'so step 1 goes now and the later steps keep their spacing.',
      operationId: 'enrollLead',
      body: component('EnrollRequest', enrollLeadSchema),
      answers: {
        201: answer('Enrolled: the enrollment {id, leadId, campaign, status, anchorAt, shiftMs, createdAt, followups}'),
        200: answer('The lead already had an active enrollment in this campaign: that one'),
        400: 'BadRequest',
        409: 'Conflict',
        413: 'PayloadTooLarge',
        415: 'UnsupportedMediaType',
      },
    } as const;
    app.post('/v1/enrollments', { schema: enroll }, async (request, reply) => {
      const { enrollment, created } = await enrollLead(ctx, request.body);
      return reply.code(created ? 201 : 200).send(enrollment);
    });

    const bulk = {
      summary: `Enroll up to ${MAX_BULK_LEADS} leads at once`,
      description: `Up to ${MAX_BULK_LEADS} leads. Rows that cannot be enrolled are listed in the answer; the others are enrolled.`,
      operationId: 'enrollLeads',
      body: component('BulkEnrollRequest', bulkEnrollSchema),
      answers: {
        200: answer('What happened to each lead: {enrolled, alreadyActive, rejected: [{index, phone, reason}]}'),
        400: 'BadRequest',
        413: 'PayloadTooLarge',
        415: 'UnsupportedMediaType',
      },
    } as const;
    app.post('/v1/enrollments/bulk', { bodyLimit: BULK_BODY_LIMIT, schema: bulk }, async (request) => {
      const body = parseBulkEnrollBody(request.body);
      return enrollLeads(ctx, body);
    });
  },
};
