/** /v1/enrollments: enroll one lead in a campaign, or many at once. */
import { enrollLeads, parseBulkEnrollBody } from '../../campaigns/enroll-leads.js';
import { enrollLead } from '../../campaigns/enroll-lead.js';
import { bulkEnrollSchema, enrollLeadSchema, MAX_BULK_LEADS } from '../../campaigns/enrollment-schemas.js';
import { errorRef, json, jsonSchemaOf, ref } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

/** 10,000 leads with names and anchors are about 1.5 MB of JSON; the app-wide limit is 1 MB. */
const BULK_BODY_LIMIT = 4 * 1024 * 1024;

export const enrollmentRoutes: RouteModule = {
  name: 'enrollments',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    app.post('/v1/enrollments', async (request, reply) => {
      const { enrollment, created } = await enrollLead(ctx, request.body);
      return reply.code(created ? 201 : 200).send(enrollment);
    });

    app.post('/v1/enrollments/bulk', { bodyLimit: BULK_BODY_LIMIT }, async (request) => {
      const body = parseBulkEnrollBody(request.body);
      return enrollLeads(ctx, body);
    });
  },
  openapi: {
    schemas: {
      EnrollRequest: {
        ...jsonSchemaOf(enrollLeadSchema),
        description:
          'Enrolls the lead in the campaign. Steps are due at anchorAt + each step delay; if the first step is already ' +
          'overdue, the whole sequence slides so step 1 goes now and the later steps keep their spacing.',
      },
      Enrollment: {
        type: 'object',
        required: ['id', 'leadId', 'campaign', 'status', 'followups'],
        properties: {
          id: { type: 'string', format: 'uuid' },
          leadId: { type: 'string', format: 'uuid' },
          campaign: { type: 'string' },
          status: { type: 'string', enum: ['active', 'completed', 'stopped'] },
          stopReason: { type: ['string', 'null'] },
          anchorAt: { type: 'string', format: 'date-time' },
          shiftMs: { type: 'integer', description: 'how much later than anchor + delay the steps are due' },
          createdAt: { type: 'string', format: 'date-time' },
          followups: {
            type: 'array',
            items: {
              type: 'object',
              required: ['id', 'step', 'intent', 'dueAt'],
              properties: {
                id: { type: 'string', format: 'uuid' },
                step: { type: 'integer' },
                intent: { type: ['string', 'null'] },
                status: { type: 'string' },
                dueAt: { type: 'string', format: 'date-time' },
              },
            },
          },
        },
      },
      BulkEnrollRequest: {
        ...jsonSchemaOf(bulkEnrollSchema),
        description: `Up to ${MAX_BULK_LEADS} leads. Rows that cannot be enrolled are listed in the answer; the others are enrolled.`,
      },
      BulkEnrollResult: {
        type: 'object',
        required: ['enrolled', 'alreadyActive', 'rejected'],
        properties: {
          enrolled: { type: 'integer' },
          alreadyActive: { type: 'integer', description: 'leads that already had an active enrollment in this campaign' },
          rejected: {
            type: 'array',
            items: {
              type: 'object',
              required: ['index', 'phone', 'reason'],
              properties: {
                index: { type: 'integer', description: 'position in `leads`' },
                phone: { type: 'string' },
                reason: {
                  type: 'string',
                  enum: [
                    'bad_phone', 'duplicate', 'bad_name', 'bad_anchor', 'anchor_in_future', 'opted_out', 'erased',
                    'handoff', 'converted', 'invalid_number', 'enrolled_in_other_campaign',
                  ],
                },
              },
            },
          },
        },
      },
    },
    paths: {
      '/v1/enrollments': {
        post: {
          summary: 'Enroll a lead in a campaign (idempotent: one active enrollment per lead)',
          operationId: 'enrollLead',
          requestBody: { required: true, content: { 'application/json': { schema: ref('EnrollRequest') } } },
          responses: {
            '201': json(ref('Enrollment'), 'Enrolled'),
            '200': json(ref('Enrollment'), 'The lead already had an active enrollment in this campaign: that one'),
            '400': errorRef('BadRequest'),
            '409': errorRef('Conflict'),
            '413': errorRef('PayloadTooLarge'),
            '415': errorRef('UnsupportedMediaType'),
          },
        },
      },
      '/v1/enrollments/bulk': {
        post: {
          summary: `Enroll up to ${MAX_BULK_LEADS} leads at once`,
          operationId: 'enrollLeads',
          requestBody: { required: true, content: { 'application/json': { schema: ref('BulkEnrollRequest') } } },
          responses: {
            '200': json(ref('BulkEnrollResult'), 'What happened to each lead'),
            '400': errorRef('BadRequest'),
            '413': errorRef('PayloadTooLarge'),
            '415': errorRef('UnsupportedMediaType'),
          },
        },
      },
    },
  },
};
