/**
 * The agent's tools: what an LLM agent may do through this service, each with the
 * zod schema its arguments are validated with (the HTTP API's own schemas, so a
 * tool and its route cannot drift apart), a description written for a model, and
 * the same domain function the HTTP route calls. The MCP server (mcp-server.ts)
 * serves them; their JSON schemas come from the zod schemas (jsonSchemaOf, as
 * /openapi.json).
 */
import { z } from 'zod';
import { enrollLead } from '../campaigns/enroll-lead.js';
import type { Context } from '../context.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { cancelFollowup } from '../followups/operator-actions.js';
import { scheduleFollowup } from '../followups/schedule-followup.js';
import { jsonSchemaOf } from '../http/openapi.js';
import { applyLeadAction } from '../leads/apply-lead-action.js';
import { readLeadTimeline } from '../leads/read-timeline.js';
import { sendAgentMessage, sendDepsOf } from '../leads/send-agent-message.js';
import type { StopReason } from '../leads/stop-lead.js';
import { cancelLeadFollowups } from '../operator/cancel-lead-followups.js';
import { OperatorError } from '../operator/exit-codes.js';
import { parseInput } from '../validation.js';
import {
  AGENT_TOOL_ARGS,
  type AnthropicToolDefinition,
  cancelArgsSchema,
  GET_LEAD_MESSAGES,
  getLeadArgsSchema,
  type OpenAiToolDefinition,
  sendArgsSchema,
  stopArgsSchema,
  type ToolFormat,
  type ToolInputSchema,
} from './tool-schemas.js';

export interface AgentTool {
  name: string;
  description: string;
  /** A zod object schema: validates the arguments and gives the JSON schema. */
  inputSchema: z.ZodObject;
  run(ctx: Context, args: unknown): Promise<unknown>;
}

/** A text in get_lead's answer is cut after this many characters (the context window is the budget). */
const GET_LEAD_TEXT_CHARS = 500;

function stopTool(name: string, reason: StopReason, description: string): AgentTool {
  return {
    name,
    description,
    inputSchema: stopArgsSchema,
    async run(ctx, args) {
      const { phone, ...body } = parseInput(stopArgsSchema, args);
      const result = await applyLeadAction(ctx, reason, phone, body, 'agent');
      const at = reason === 'opted_out' ? result.lead.optedOutAt : reason === 'handoff' ? result.lead.handoffAt : result.lead.convertedAt;
      return { phone: result.lead.phone, reason, at, changed: result.changed, cancelledFollowups: result.cancelled };
    },
  };
}

const cut = (text: string | null) => (text && text.length > GET_LEAD_TEXT_CHARS ? `${text.slice(0, GET_LEAD_TEXT_CHARS)}…` : text);

export const AGENT_TOOLS: readonly AgentTool[] = [
  {
    name: 'schedule_followup',
    description:
      'Schedule a WhatsApp follow-up to a fan for later, when the conversation stalls and you promised (or it makes sense) to come back. ' +
      'Give the delay (delayHours or delayMinutes) or an exact dueAt; give `message` for the exact text, or leave it out and give a short ' +
      '`intent` slug (check_in, nudge, last_call) so the text is written at send time from the conversation. It is cancelled by itself if ' +
      'the fan writes first, opts out, or a person takes over, and it goes out only within business hours. Examples: fan says "vou pensar e ' +
      'te falo amanhã" → schedule_followup {phone, delayHours: 24, intent: "check_in"}; "call me back in 4 hours" → {phone, delayHours: 4, ' +
      'message: "Oi! Voltando como combinado…"}. ' +
      'Use idempotencyKey (e.g. the conversation turn id) so a retried call does not schedule twice.',
    inputSchema: AGENT_TOOL_ARGS.schedule_followup,
    async run(ctx, args) {
      const { followup, created } = await scheduleFollowup(ctx, args);
      return { id: followup.id, phone: followup.phone, status: followup.status, dueAt: new Date(followup.due_at).toISOString(), created };
    },
  },
  {
    name: 'enroll_lead',
    description:
      "Enroll a fan in a campaign: a ready-made sequence of follow-ups (e.g. 'nautico': day 1, day 3, day 7) that stops by itself when the " +
      'fan answers, opts out or is handed to a person. Use it for a fan who showed interest and then went quiet, instead of scheduling each ' +
      'follow-up yourself. Asking again for a fan already enrolled returns the active enrollment. Examples: "quero saber mais sobre ser sócio" ' +
      "and no answer since → enroll_lead {phone, campaign: 'nautico', lead: {name: 'Ana'}}; a lead from the membership form → enroll_lead " +
      "{phone, campaign: 'nautico', anchorAt: <when they filled it in>}.",
    inputSchema: AGENT_TOOL_ARGS.enroll_lead,
    async run(ctx, args) {
      const { enrollment, created } = await enrollLead(ctx, args);
      return { ...enrollment, created };
    },
  },
  {
    name: 'cancel_followups',
    description:
      "Cancel follow-ups that should no longer go out: one follow-up by its `id`, or every pending follow-up of a fan by `phone`. The fan's " +
      'own replies already cancel them, so use this when plans changed in a way the service cannot see: the fan booked a visit by phone, ' +
      'you scheduled the wrong time, or you want to reschedule (cancel, then schedule_followup). The fan is not stopped: you may schedule again. ' +
      'Examples: "já marquei a visita pelo telefone" → cancel_followups {phone}; "actually, don\'t message me tomorrow, Friday is better" → ' +
      'cancel_followups {id} then schedule_followup for Friday.',
    inputSchema: cancelArgsSchema,
    async run(ctx, args) {
      const input = parseInput(cancelArgsSchema, args);
      if ((input.id === undefined) === (input.phone === undefined)) throw new ValidationError('id: give either id or phone (exactly one)', 'id');
      const reason = input.reason ?? 'agent';
      if (input.id) {
        const { followup } = await cancelFollowup(ctx, input.id, reason);
        return { cancelled: [followup.id], inFlight: [] };
      }
      try {
        const result = await cancelLeadFollowups(ctx, input.phone!, { source: 'agent', field: 'phone', reason });
        return { phone: result.phone, cancelled: result.cancelled, inFlight: result.inFlight };
      } catch (error) {
        if (error instanceof OperatorError && error.code === 'lead_not_found') throw new NotFoundError(error.message);
        throw error;
      }
    },
  },
  {
    name: 'get_lead',
    description:
      'Look up a fan before you write or schedule: whether you may still write (canWrite, and why not: opted_out, handoff, erased, ' +
      'invalid_number), whether they became a member, the latest messages of the conversation (from the fan, you, the follow-ups and the ' +
      'club staff) and the follow-ups still to go out. Compact, for your context window. Examples: a fan writes "oi, lembra de mim?" → ' +
      'get_lead {phone} to see what was said (o que já conversamos, se ainda posso escrever); before scheduling, "did we already plan a ' +
      'follow-up for this lead?" → get_lead {phone, messages: 3}.',
    inputSchema: getLeadArgsSchema,
    async run(ctx, args) {
      const input = parseInput(getLeadArgsSchema, args);
      const { lead, followups, timeline, enrollments } = await readLeadTimeline(ctx.db, input.phone);
      const stop = lead.erasedAt
        ? 'erased'
        : lead.optedOutAt
          ? 'opted_out'
          : lead.handoffAt
            ? 'handoff'
            : lead.numberValid === false
              ? 'invalid_number'
              : null;
      const messages = timeline.filter((item) => item.type === 'message').slice(-(input.messages ?? GET_LEAD_MESSAGES));
      return {
        phone: lead.phone,
        name: lead.name,
        canWrite: stop === null,
        stopReason: stop,
        optedOut: lead.optedOutAt !== null,
        handedOff: lead.handoffAt !== null,
        converted: lead.convertedAt !== null,
        lastInboundAt: lead.lastInboundAt,
        lastOutboundAt: lead.lastOutboundAt,
        messages: messages.map((m) => (m.type === 'message' ? { at: m.at, from: m.source === 'lead' ? 'fan' : m.source, text: cut(m.text) } : null)),
        openFollowups: followups
          .filter((f) => f.status === 'pending' || f.status === 'queued' || f.status === 'sending')
          .map((f) => ({ id: f.id, status: f.status, dueAt: f.dueAt, campaign: f.campaign, step: f.step, intent: f.intent, message: cut(f.message) })),
        activeEnrollment: enrollments.find((e) => e.status === 'active')?.campaign ?? null,
      };
    },
  },
  {
    name: 'send_message',
    description:
      "Send a WhatsApp message to the fan now, through the club's number: your answer in the conversation. It is paced with the " +
      "number's other messages (it may take a few seconds) but not held to business hours, since the fan just wrote. Refused, with the " +
      'reason, if the fan opted out, was handed to a person, or was erased; then do not write. Give an idempotencyKey (e.g. the turn id) ' +
      'so a retry never sends twice. Examples: fan asks "quanto custa o plano família?" → send_message {phone, text: "O plano família sai por ' +
      'R$ 390/mês e inclui…"}; "can I visit on Saturday?" → send_message {phone, text: "Sim! Sábado das 9h às 17h…"}.',
    inputSchema: sendArgsSchema,
    async run(ctx, args) {
      const { phone, ...body } = parseInput(sendArgsSchema, args);
      const sent = await sendAgentMessage(sendDepsOf(ctx), phone, body);
      return { messageId: sent.messageId, providerMessageId: sent.providerMessageId, sentAt: sent.sentAt, created: sent.created };
    },
  },
  stopTool(
    'mark_converted',
    'converted',
    'Record that the fan became a member (paid, signed up): every pending follow-up is cancelled and no sales follow-up goes out again; ' +
      'you may still answer them. Examples: "acabei de pagar a matrícula!" → mark_converted {phone}; "I signed up at the front desk ' +
      'yesterday" → mark_converted {phone, at: <yesterday>}.',
  ),
  stopTool(
    'handoff_to_human',
    'handoff',
    'Hand the conversation over to a person at the club: every pending follow-up is cancelled and you must stop writing to this fan ' +
      '(send_message is refused from then on). Use it when the fan asks for a person, complains, or asks something you must not answer ' +
      '(refunds, legal, health). Examples: "não quero falar com robô, quero um atendente" → handoff_to_human {phone}; "I want to cancel and get my money ' +
      'back" → handoff_to_human {phone}.',
  ),
  stopTool(
    'opt_out_lead',
    'opted_out',
    'The fan asked not to be contacted: they are never messaged again (follow-ups cancelled, sends refused, for good). Use it for any ' +
      'clear request to stop, in any wording. Examples: "para de me mandar mensagem", "não tenho interesse, me tira da lista", "stop", ' +
      '"please don\'t text me anymore" → opt_out_lead {phone}.',
  ),
];

export function findAgentTool(name: string): AgentTool | undefined {
  return AGENT_TOOLS.find((tool) => tool.name === name);
}

/** Each tool as MCP lists it: name, description, JSON schema of its arguments (from the zod schema). */
export function listAgentTools() {
  return AGENT_TOOLS.map((tool) => ({
    name: tool.name,
    description: tool.description,
    inputSchema: jsonSchemaOf(tool.inputSchema) as ToolInputSchema,
  }));
}

/**
 * The same tools as function-calling definitions: OpenAI's Chat Completions `tools`
 * (`{type: 'function', function: {name, description, parameters}}`) or Anthropic's
 * Messages `tools` (`{name, description, input_schema}`).
 */
export function toolDefinitions(format: ToolFormat): OpenAiToolDefinition[] | AnthropicToolDefinition[] {
  const tools = listAgentTools();
  return format === 'openai'
    ? tools.map((tool) => ({ type: 'function' as const, function: { name: tool.name, description: tool.description, parameters: tool.inputSchema } }))
    : tools.map((tool) => ({ name: tool.name, description: tool.description, input_schema: tool.inputSchema }));
}
