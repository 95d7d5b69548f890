/**
 * The conversation log through the API: the agent records what it said and
 * heard (POST /v1/leads/:phone/messages), and anyone reads a lead's timeline
 * (GET /v1/leads/:phone). An inbound message stops the lead's sequence, exactly
 * as the Evolution webhook's would.
 */
import { ValidationError } from '../../errors.js';
import { recordMessageSchema, type RecordedMessage } from '../../leads/lead-schemas.js';
import { recordInboundMessage } from '../../leads/record-inbound.js';
import { recordOutboundMessage } from '../../leads/record-outbound.js';
import { readLeadTimeline } from '../../leads/read-timeline.js';
import { parseInput } from '../../validation.js';
import { errorRef, json, jsonSchemaOf, ref } from '../openapi.js';
import type { RouteModule } from '../route-module.js';
import { phoneParameter } from '../openapi.js';

const FUTURE_TOLERANCE_MS = 60_000;


export const leadTimelineRoutes: RouteModule = {
  name: 'lead-timeline',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    app.post<{ Params: { phone: string } }>('/v1/leads/:phone/messages', async (request, reply) => {
      const body = parseInput(recordMessageSchema, request.body);
      const now = ctx.clock.now();
      const at = body.at ? new Date(body.at) : now;
      if (at.getTime() > now.getTime() + FUTURE_TOLERANCE_MS) throw new ValidationError('at: is in the future', 'at');
      const source = body.source ?? (body.direction === 'in' ? 'lead' : 'agent');
      if (body.direction === 'in' && source !== 'lead') throw new ValidationError("source: an inbound message comes from 'lead'", 'source');
      if (body.direction === 'out' && source === 'lead') throw new ValidationError("source: an outbound message comes from 'agent' or 'human'", 'source');

      if (body.direction === 'in') {
        const result = await recordInboundMessage(
          ctx.db,
          { phone: request.params.phone, text: body.text, messageType: body.messageType, providerMessageId: body.providerMessageId, at, source: 'lead' },
          ctx.clock,
        );
        const { stopAt: _stopAt, ...answer } = result;
        return reply.code(result.duplicate ? 200 : 201).send({ ...answer, direction: 'in' } satisfies RecordedMessage);
      }
      const result = await recordOutboundMessage(
        ctx.db,
        {
          phone: request.params.phone,
          text: body.text,
          source: source as 'agent' | 'human',
          messageType: body.messageType,
          providerMessageId: body.providerMessageId,
          at,
        },
        ctx.clock,
      );
      return reply.code(result.duplicate ? 200 : 201).send({ ...result, direction: 'out', cancelled: 0 } satisfies RecordedMessage);
    });

    app.get<{ Params: { phone: string } }>('/v1/leads/:phone', async (request) => readLeadTimeline(ctx.db, request.params.phone));
  },
  openapi: {
    schemas: {
      RecordMessageRequest: jsonSchemaOf(recordMessageSchema),
      RecordedMessage: {
        type: 'object',
        required: ['leadId', 'messageId', 'direction', 'duplicate', 'cancelled'],
        properties: {
          leadId: { type: 'string', format: 'uuid' },
          messageId: { type: ['string', 'null'], format: 'uuid' },
          direction: { type: 'string', enum: ['in', 'out'] },
          duplicate: { type: 'boolean', description: 'providerMessageId was already recorded; nothing else was done' },
          cancelled: { type: 'integer', description: 'follow-ups cancelled because the lead replied' },
        },
      },
      LeadTimeline: {
        type: 'object',
        required: ['lead', 'enrollments', 'followups', 'timeline'],
        properties: {
          lead: { type: 'object', description: '{id, phone, name, timeZone, optedOutAt, handoffAt, convertedAt, lastInboundAt, lastOutboundAt, ...}' },
          enrollments: { type: 'array', items: { type: 'object' } },
          followups: { type: 'array', items: ref('Followup') },
          timeline: {
            type: 'array',
            description: "messages (type 'message') follow-up events (type 'followup_event') and moves to another WhatsApp number (type 'number_change'), oldest first",
            items: {
              type: 'object',
              required: ['type', 'at'],
              properties: {
                type: { type: 'string', enum: ['message', 'followup_event', 'number_change'] },
                at: { type: 'string', format: 'date-time' },
              },
            },
          },
        },
      },
    },
    paths: {
      '/v1/leads/{phone}': {
        parameters: [phoneParameter],
        get: {
          summary: "A lead with its conversation, follow-ups and their events, in time order",
          operationId: 'getLeadTimeline',
          responses: { '200': json(ref('LeadTimeline'), 'The lead'), '400': errorRef('BadRequest'), '404': errorRef('NotFound') },
        },
      },
      '/v1/leads/{phone}/messages': {
        parameters: [phoneParameter],
        post: {
          summary: 'Record a message the agent sent or received; an inbound one cancels the pending follow-ups (lead_replied)',
          operationId: 'recordMessage',
          requestBody: { required: true, content: { 'application/json': { schema: ref('RecordMessageRequest') } } },
          responses: {
            '201': json(ref('RecordedMessage'), 'Recorded'),
            '200': json(ref('RecordedMessage'), 'Already recorded (same providerMessageId)'),
            '400': errorRef('BadRequest'),
            '413': errorRef('PayloadTooLarge'),
            '415': errorRef('UnsupportedMediaType'),
          },
        },
      },
    },
  },
};
