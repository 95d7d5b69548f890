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
import { z } from 'zod';
import { answer, component, errorSchema, phoneParams } from '../openapi.js';
import type { RouteModule } from '../route-module.js';
import { idempotencyKeyOf } from './followups.js';

const error = (description: string) => answer(description, errorSchema);

export const leadSendRoutes: RouteModule = {
  name: 'lead-send',
  auth: 'bearer',
  async plugin(app, { ctx }) {
    const send = {
      summary: 'Send a message to the lead now (the agent answering a fan)',
      description:
        'Through the same transport, per-number pace and daily cap as follow-ups; the sending window does not apply. ' +
        "Logged as the agent's (source agent), so its WhatsApp echo is not taken for a person taking over. " +
        'An unknown number becomes a lead. 409 with the reason for a lead that opted out, was handed off, was erased or is not on WhatsApp.',
      operationId: 'sendMessage',
      params: phoneParams,
      headers: z.object({
        'Idempotency-Key': z
          .string()
          .min(1)
          .max(200)
          .optional()
          .describe('same as the body field idempotencyKey; a repeat returns the first send with 200 and sends nothing'),
      }),
      body: component('SendMessageRequest', sendMessageSchema),
      answers: {
        201: answer('Sent: {messageId, leadId, phone, providerMessageId, text, sentAt, created}'),
        200: answer('The idempotency key matched an earlier send: that one (created false, nothing sent now)'),
        400: 'BadRequest',
        409: 'Conflict',
        429: error("The number's pace or daily cap (code pace | daily_cap); Retry-After says when; nothing was sent"),
        502: error('WhatsApp rejected the message (send_rejected); nothing was sent'),
        503: error('Sending is paused (sending_paused) or WhatsApp could not be reached (send_failed); nothing was sent'),
        504: error('The send timed out (send_outcome_unknown): repeat with the same idempotency key, it is not sent twice'),
      },
    } as const;
    app.post<{ Params: { phone: string } }>('/v1/leads/:phone/send', { schema: send }, async (request, reply) => {
      const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key'], request.body);
      const sent = await sendAgentMessage(sendDepsOf(ctx), request.params.phone, request.body, { idempotencyKey });
      return reply.code(sent.created ? 201 : 200).send(sent);
    });
  },
};
