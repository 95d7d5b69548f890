/**
 * The agent talks through the service:
 *   POST /v1/leads/:phone/send   {text, typing?, idempotencyKey?}
 * Sent through the same transport, pace and daily cap as the follow-ups (not the
 * sending window: it answers a fan who just wrote), logged as ours so Evolution's
 * echo is never taken for a person. The work is sendAgentMessage's (also the MCP
 * tool send_message).
 */
import { sendAgentMessage, sendDepsOf } from '../../leads/send-agent-message.js';
import { sendMessageSchema } from '../../leads/send-message-schema.js';
import { errorRef, json, jsonSchemaOf, phoneParameter, ref } from '../openapi.js';
import type { RouteModule } from '../route-module.js';
import { idempotencyKeyOf } from './followups.js';

const error = (description: string) => json(ref('Error'), description);

export const leadSendRoutes: RouteModule = {
  name: 'lead-send',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    app.post<{ Params: { phone: string } }>('/v1/leads/:phone/send', async (request, reply) => {
      const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key'], request.body);
      const sent = await sendAgentMessage(sendDepsOf(ctx), request.params.phone, request.body, { idempotencyKey });
      return reply.code(sent.created ? 201 : 200).send(sent);
    });
  },
  openapi: {
    schemas: {
      SendMessageRequest: jsonSchemaOf(sendMessageSchema),
      SentMessage: {
        type: 'object',
        required: ['messageId', 'leadId', 'phone', 'providerMessageId', 'text', 'sentAt', 'created'],
        properties: {
          messageId: { type: 'string', format: 'uuid', description: 'the message in the conversation log' },
          leadId: { type: 'string', format: 'uuid' },
          phone: { type: 'string' },
          providerMessageId: { type: 'string', description: "Evolution's (WhatsApp's) message id" },
          text: { type: 'string' },
          sentAt: { type: 'string', format: 'date-time' },
          created: { type: 'boolean', description: 'false: the idempotency key matched an earlier send, nothing was sent now' },
        },
      },
    },
    paths: {
      '/v1/leads/{phone}/send': {
        parameters: [phoneParameter],
        post: {
          summary: 'Send a message to the lead now (the agent answering a fan)',
          description:
            'Through the same transport, per-number pace and daily cap as follow-ups; the sending window does not apply. ' +
            "Logged as the agent's (source agent), so its WhatsApp echo is not taken for a person taking over. " +
            'An unknown number becomes a lead. 409 with the reason for a lead that opted out, was handed off, was erased or is not on WhatsApp.',
          operationId: 'sendMessage',
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              schema: { type: 'string', minLength: 1, maxLength: 200 },
              description: 'same as the body field idempotencyKey; a repeat returns the first send with 200 and sends nothing',
            },
          ],
          requestBody: { required: true, content: { 'application/json': { schema: ref('SendMessageRequest') } } },
          responses: {
            '201': json(ref('SentMessage'), 'Sent'),
            '200': json(ref('SentMessage'), 'The idempotency key matched an earlier send: that one'),
            '400': errorRef('BadRequest'),
            '409': errorRef('Conflict'),
            '429': error("The number's pace or daily cap (code pace | daily_cap); Retry-After says when; nothing was sent"),
            '502': error('WhatsApp rejected the message (send_rejected); nothing was sent'),
            '503': error('Sending is paused (sending_paused) or WhatsApp could not be reached (send_failed); nothing was sent'),
            '504': error('The send timed out (send_outcome_unknown): repeat with the same idempotency key, it is not sent twice'),
          },
        },
      },
    },
  },
};
