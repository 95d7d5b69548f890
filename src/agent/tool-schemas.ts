/**
 * The arguments of the agent's tools (zod), by tool name, and the shapes of their
 * function-calling definitions. tools.ts pairs each with a description and the domain
 * function that runs it; the typed client takes its argument types from here. Only
 * schemas and types: nothing here touches the database.
 */
import { z } from 'zod';
import { enrollLeadSchema } from '../campaigns/enrollment-schemas.js';
import { phoneField, scheduleFollowupSchema } from '../followups/followup-schemas.js';
import { stopLeadSchema } from '../leads/lead-schemas.js';
import { sendMessageSchema } from '../leads/send-message-schema.js';

/** Messages get_lead returns by default, and at most. */
export const GET_LEAD_MESSAGES = 10;
const GET_LEAD_MAX_MESSAGES = 50;

const phoneOnly = { phone: phoneField.describe('the fan\'s WhatsApp number, any spelling: 5581999998888, +55 81 99999-8888') };

export const stopArgsSchema = z.object({ ...phoneOnly, ...stopLeadSchema.unwrap().shape }).strict();
export const sendArgsSchema = z.object({ ...phoneOnly, ...sendMessageSchema.shape }).strict();
export const cancelArgsSchema = z
  .object({
    id: z.uuid({ message: 'must be a follow-up id (uuid)' }).optional().describe('cancel this one follow-up'),
    phone: phoneField.optional().describe("cancel every pending follow-up of this fan (give id or phone, not both)"),
    reason: z.string().trim().min(1).max(64).regex(/^[a-z0-9_.-]+$/i, 'letters, digits, _ . - only').optional().describe("why; default 'agent'"),
  })
  .strict();
export const getLeadArgsSchema = z
  .object({
    ...phoneOnly,
    messages: z.number().int().min(1).max(GET_LEAD_MAX_MESSAGES).optional().describe(`how many of the latest messages to include (default ${GET_LEAD_MESSAGES})`),
  })
  .strict();

/** Each tool's arguments: the same schemas as the HTTP routes they stand for. */
export const AGENT_TOOL_ARGS = {
  schedule_followup: scheduleFollowupSchema,
  enroll_lead: enrollLeadSchema,
  cancel_followups: cancelArgsSchema,
  get_lead: getLeadArgsSchema,
  send_message: sendArgsSchema,
  mark_converted: stopArgsSchema,
  handoff_to_human: stopArgsSchema,
  opt_out_lead: stopArgsSchema,
} as const;

export type AgentToolName = keyof typeof AGENT_TOOL_ARGS;

export const TOOL_FORMATS = ['openai', 'anthropic'] as const;
export type ToolFormat = (typeof TOOL_FORMATS)[number];

/** GET /v1/agent/tools?format=… */
export const toolsQuerySchema = z
  .object({
    format: z.enum(TOOL_FORMATS, { message: `must be one of ${TOOL_FORMATS.join(', ')}` }).default('openai').describe('whose function-calling shape'),
  })
  .strict();

/** A tool's arguments as JSON Schema (generated from its zod schema). */
export type ToolInputSchema = { type: 'object'; properties?: Record<string, object>; required?: string[] };
/** OpenAI Chat Completions `tools` entry. */
export interface OpenAiToolDefinition {
  type: 'function';
  function: { name: string; description: string; parameters: ToolInputSchema };
}
/** Anthropic Messages `tools` entry. */
export interface AnthropicToolDefinition {
  name: string;
  description: string;
  input_schema: ToolInputSchema;
}
