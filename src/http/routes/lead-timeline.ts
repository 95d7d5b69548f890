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
import { answer, component, phoneParams } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

const FUTURE_TOLERANCE_MS = 60_000;


export const leadTimelineRoutes: RouteModule = {
  name: 'lead-timeline',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    const record = {
      summary: 'Record a message the agent sent or received; an inbound one cancels the pending follow-ups (lead_replied)',
      operationId: 'recordMessage',
      params: phoneParams,
      body: component('RecordMessageRequest', recordMessageSchema),
      answers: {
        201: answer('Recorded: {leadId, messageId, direction, duplicate, cancelled (follow-ups cancelled because the lead replied)}'),
        200: answer('Already recorded (same providerMessageId; duplicate true, nothing else was done)'),
        400: 'BadRequest',
        413: 'PayloadTooLarge',
        415: 'UnsupportedMediaType',
      },
    } as const;
    app.post<{ Params: { phone: string } }>('/v1/leads/:phone/messages', { schema: record }, async (request, reply) => {
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

    const timeline = {
      summary: 'A lead with its conversation, follow-ups and their events, in time order',
      operationId: 'getLeadTimeline',
      params: phoneParams,
      answers: {
        200: answer(
          "The lead: {lead, enrollments, followups, timeline: messages (type 'message'), follow-up events (type 'followup_event') and moves to another WhatsApp number (type 'number_change'), oldest first}",
        ),
        400: 'BadRequest',
        404: 'NotFound',
      },
    } as const;
    app.get<{ Params: { phone: string } }>('/v1/leads/:phone', { schema: timeline }, async (request) => readLeadTimeline(ctx.db, request.params.phone));
  },
};
