/**
 * `nautico-followups/client`: a small typed client for the /v1 API, built on fetch.
 *
 *   const followups = createFollowupsClient({ baseUrl: 'https://followups.example.com', token });
 *   await followups.scheduleFollowup({ phone: '5581999998888', delayHours: 4, intent: 'check_in' });
 *
 * Request types are the zod schemas the routes validate with (z.input: what may be
 * sent, defaults optional); answer types are the ones the routes are checked against.
 * Every import below but the signature verifier is `import type`: the client loads
 * nothing of the server at run time (no pg, fastify, Redis), so an agent can depend
 * on it alone. A non-2xx answer throws FollowupsApiError with the server's envelope.
 */
import type { z } from 'zod';
import type {
  AGENT_TOOL_ARGS,
  AgentToolName,
  AnthropicToolDefinition,
  OpenAiToolDefinition,
  ToolFormat,
} from '../agent/tool-schemas.js';
import type { bulkEnrollSchema, BulkEnrollResult, enrollLeadSchema, EnrollmentView } from '../campaigns/enrollment-schemas.js';
import type { AgentEventRetried, AgentEventsRetried, AgentOutboxEvent, AgentOutboxPage, outboxQuerySchema } from '../forwarding/outbox-schemas.js';
import type { Followup, FollowupEvent, FollowupPage, FollowupStatus, FollowupWithEvents, ScheduledFollowup, Stats } from '../followups/followup.js';
import type { cancelFollowupSchema, listFollowupsSchema, scheduleFollowupSchema } from '../followups/followup-schemas.js';
import type { Lead } from '../followups/lead-view.js';
import type { ErasedLead, LeadTimeline, recordMessageSchema, RecordedMessage, StoppedLead, stopLeadSchema, TimelineItem } from '../leads/lead-schemas.js';
import type { sendMessageSchema, SentMessage } from '../leads/send-message-schema.js';

// The verifier of forwarded events' signatures (node:crypto only), for agents that receive them.
export { EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, verifyAgentWebhookSignature } from '../forwarding/webhook-signature.js';

// ---- what the routes take (from their zod schemas) and answer

export type ScheduleFollowupInput = z.input<typeof scheduleFollowupSchema>;
export type ListFollowupsQuery = z.input<typeof listFollowupsSchema>;
export type CancelFollowupInput = NonNullable<z.input<typeof cancelFollowupSchema>>;
export type EnrollLeadInput = z.input<typeof enrollLeadSchema>;
export type BulkEnrollInput = z.input<typeof bulkEnrollSchema>;
export type SendMessageInput = z.input<typeof sendMessageSchema>;
export type RecordMessageInput = z.input<typeof recordMessageSchema>;
export type StopLeadInput = NonNullable<z.input<typeof stopLeadSchema>>;
export type AgentOutboxQuery = z.input<typeof outboxQuerySchema>;
/** The arguments of each agent tool (POST /v1/agent/tools/:name), by name. */
export type AgentToolArgs = { [N in AgentToolName]: z.input<(typeof AGENT_TOOL_ARGS)[N]> };

export type {
  AgentOutboxEvent,
  AgentOutboxPage,
  AgentToolName,
  AnthropicToolDefinition,
  BulkEnrollResult,
  EnrollmentView,
  ErasedLead,
  Followup,
  FollowupEvent,
  FollowupPage,
  FollowupStatus,
  FollowupWithEvents,
  Lead,
  LeadTimeline,
  OpenAiToolDefinition,
  RecordedMessage,
  ScheduledFollowup,
  SentMessage,
  Stats,
  StoppedLead,
  TimelineItem,
  ToolFormat,
};

// ---- the events the service forwards to the agent (AGENT_WEBHOOK_URL): verify, then parse as AgentEvent

export type {
  AgentEvent,
  AgentEventLead,
  AgentEventType,
  FollowupSentData,
  LeadNumberInvalidData,
  LeadRepliedData,
  LeadStoppedData,
  MessageReceivedData,
} from '../forwarding/agent-events.js';

/** The API's error envelope: `{"error": {"code", "message", "details"?}}`. */
export interface ErrorEnvelope {
  error: { code: string; message: string; details?: Array<{ field: string; message: string }> };
}

/** A non-2xx answer. `code` and `message` come from the server's envelope; a 400 names the field. */
export class FollowupsApiError extends Error {
  override readonly name = 'FollowupsApiError';
  /** The HTTP status. */
  readonly status: number;
  /** Machine-readable: validation_error, not_found, lead_opted_out, pace, … (`http_<status>` without an envelope). */
  readonly code: string;
  /** The answer as the server sent it: the envelope, or the raw text when it was not JSON. */
  readonly body: ErrorEnvelope | string;
  /** Seconds to wait before trying again (429 and 503 carry `Retry-After`). */
  readonly retryAfterSeconds: number | null;

  constructor(status: number, body: ErrorEnvelope | string, retryAfterSeconds: number | null, request: string) {
    const envelope = typeof body === 'object' ? body.error : null;
    super(`${request}: ${status} ${envelope ? `${envelope.code}: ${envelope.message}` : String(body).slice(0, 200)}`);
    this.status = status;
    this.code = envelope?.code ?? `http_${status}`;
    this.body = body;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** One entry per offending field of a 400 (empty otherwise). */
  get details(): Array<{ field: string; message: string }> {
    return typeof this.body === 'object' ? (this.body.error.details ?? []) : [];
  }

  /** The first offending field of a 400, e.g. `delayHours`. */
  get field(): string | undefined {
    return this.details[0]?.field;
  }
}

export interface FollowupsClientOptions {
  /** Where the API listens, e.g. `https://followups.example.com` (a path prefix is kept). */
  baseUrl: string;
  /** FOLLOWUPS_API_TOKEN. */
  token: string;
  /** Per request, unless the call gives its own; default 30 s (a send waits for WhatsApp). */
  timeoutMs?: number;
  /** Another fetch (a proxy's, a test's). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** Cancels the request (combined with the timeout). */
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface IdempotentRequestOptions extends RequestOptions {
  /** Sent as the `Idempotency-Key` header: a repeat answers with the first result and does nothing again. */
  idempotencyKey?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Makes a client; every method is one /v1 route and resolves to its JSON answer. */
export function createFollowupsClient(options: FollowupsClientOptions) {
  const base = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch;
  const lead = (phone: string) => `/v1/leads/${encodeURIComponent(phone)}`;
  const followup = (id: string) => `/v1/followups/${encodeURIComponent(id)}`;

  async function request<T>(method: string, path: string, body?: unknown, opts: IdempotentRequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.idempotencyKey !== undefined) headers['idempotency-key'] = opts.idempotencyKey;
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const response = await doFetch(`${base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
    });
    const text = await response.text();
    if (!response.ok) {
      let parsed: ErrorEnvelope | string = text;
      try {
        const json = JSON.parse(text) as unknown;
        if (json && typeof json === 'object' && 'error' in json) parsed = json as ErrorEnvelope;
      } catch {
        // not JSON (a proxy's error page): kept as text
      }
      const retryAfter = Number(response.headers.get('retry-after'));
      throw new FollowupsApiError(response.status, parsed, response.headers.has('retry-after') && Number.isFinite(retryAfter) ? retryAfter : null, `${method} ${path}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  const query = (params: Record<string, unknown>) => {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null) search.set(key, String(value));
    const s = search.toString();
    return s ? `?${s}` : '';
  };

  /**
   * POST /v1/agent/tools/:name: run one tool call. Typed by tool name; a model's call
   * (name: string, args: its parsed JSON) is accepted too. A call the model got wrong
   * throws FollowupsApiError naming the field, whose `body` is what to show the model.
   */
  function callAgentTool<N extends AgentToolName>(name: N, args: AgentToolArgs[N], opts?: RequestOptions): Promise<{ result: unknown }>;
  function callAgentTool(name: string, args: unknown, opts?: RequestOptions): Promise<{ result: unknown }>;
  function callAgentTool(name: string, args: unknown, opts?: RequestOptions) {
    return request<{ result: unknown }>('POST', `/v1/agent/tools/${encodeURIComponent(name)}`, args ?? {}, opts);
  }

  return {
    // ---- follow-ups
    /** POST /v1/followups: one follow-up in N hours/minutes or at dueAt, with a text or an intent. */
    scheduleFollowup: (input: ScheduleFollowupInput, opts?: IdempotentRequestOptions) =>
      request<ScheduledFollowup>('POST', '/v1/followups', input, opts),
    /** GET /v1/followups: newest first; pass `nextCursor` back as `cursor` for the next page. */
    listFollowups: (filter: ListFollowupsQuery = {}, opts?: RequestOptions) =>
      request<FollowupPage>('GET', `/v1/followups${query(filter)}`, undefined, opts),
    /** GET /v1/followups/:id: with its events (every transition and why). */
    getFollowup: (id: string, opts?: RequestOptions) => request<FollowupWithEvents>('GET', followup(id), undefined, opts),
    /** POST /v1/followups/:id/cancel: a pending or queued one (409 otherwise). */
    cancelFollowup: (id: string, input: CancelFollowupInput = {}, opts?: RequestOptions) =>
      request<FollowupWithEvents>('POST', `${followup(id)}/cancel`, input, opts),
    /** POST /v1/followups/:id/retry: a failed one goes back to pending, due now. */
    retryFollowup: (id: string, opts?: RequestOptions) => request<FollowupWithEvents>('POST', `${followup(id)}/retry`, undefined, opts),

    // ---- enrollments
    /** POST /v1/enrollments: a campaign's sequence for one lead (asking again returns the active one). */
    enrollLead: (input: EnrollLeadInput, opts?: RequestOptions) => request<EnrollmentView>('POST', '/v1/enrollments', input, opts),
    /** POST /v1/enrollments/bulk: up to 10,000 leads. */
    enrollLeads: (input: BulkEnrollInput, opts?: RequestOptions) => request<BulkEnrollResult>('POST', '/v1/enrollments/bulk', input, opts),

    // ---- leads
    /** POST /v1/leads/:phone/send: answer the fan now, through the number's pace (409 when the lead may not be written to). */
    sendMessage: (phone: string, input: SendMessageInput, opts?: IdempotentRequestOptions) =>
      request<SentMessage>('POST', `${lead(phone)}/send`, input, opts),
    /** POST /v1/leads/:phone/messages: log what was said elsewhere; an inbound one stops the sequence. */
    recordMessage: (phone: string, input: RecordMessageInput, opts?: RequestOptions) =>
      request<RecordedMessage>('POST', `${lead(phone)}/messages`, input, opts),
    /** GET /v1/leads/:phone: the lead, its enrollments, follow-ups and conversation, oldest first. */
    getLead: (phone: string, opts?: RequestOptions) => request<LeadTimeline>('GET', lead(phone), undefined, opts),
    /** POST /v1/leads/:phone/opt-out: never contact the lead again. */
    optOut: (phone: string, input: StopLeadInput = {}, opts?: RequestOptions) => request<StoppedLead>('POST', `${lead(phone)}/opt-out`, input, opts),
    /** POST /v1/leads/:phone/handoff: a person took over; the follow-ups stop. */
    handoff: (phone: string, input: StopLeadInput = {}, opts?: RequestOptions) => request<StoppedLead>('POST', `${lead(phone)}/handoff`, input, opts),
    /** POST /v1/leads/:phone/converted: the lead became a member; the follow-ups stop. */
    markConverted: (phone: string, input: StopLeadInput = {}, opts?: RequestOptions) =>
      request<StoppedLead>('POST', `${lead(phone)}/converted`, input, opts),
    /** DELETE /v1/leads/:phone: LGPD erasure. */
    eraseLead: (phone: string, opts?: RequestOptions) => request<ErasedLead>('DELETE', lead(phone), undefined, opts),

    // ---- stats
    /** GET /v1/stats: follow-ups by status. */
    getStats: (opts?: RequestOptions) => request<Stats>('GET', '/v1/stats', undefined, opts),

    // ---- the agent's tools (function calling without MCP)
    /** GET /v1/agent/tools: the tools as OpenAI (default) or Anthropic function-calling definitions. */
    listAgentTools: (<F extends ToolFormat = 'openai'>(format?: F, opts?: RequestOptions) =>
      request<{ format: F; tools: F extends 'anthropic' ? AnthropicToolDefinition[] : OpenAiToolDefinition[] }>(
        'GET',
        `/v1/agent/tools${query({ format })}`,
        undefined,
        opts,
      )),
    /**
     * POST /v1/agent/tools/:name: run one tool call. `args` is what the model gave (its
     * JSON, parsed); a call the model got wrong throws FollowupsApiError naming the field,
     * whose `body` is what to show the model.
     */
    callAgentTool,

    // ---- the events forwarded to the agent that did not arrive
    /** GET /v1/agent/outbox: parked (default) or pending events, oldest first, with the counts. */
    listAgentOutbox: (filter: AgentOutboxQuery = {}, opts?: RequestOptions) =>
      request<AgentOutboxPage>('GET', `/v1/agent/outbox${query(filter)}`, undefined, opts),
    /** POST /v1/agent/outbox/:id/retry: one parked event back in line (409 when it is not parked). */
    retryAgentEvent: (id: string, opts?: RequestOptions) =>
      request<AgentEventRetried>('POST', `/v1/agent/outbox/${encodeURIComponent(id)}/retry`, undefined, opts),
    /** POST /v1/agent/outbox/retry: every parked event back in line. */
    retryParkedAgentEvents: (opts?: RequestOptions) =>
      request<AgentEventsRetried>('POST', '/v1/agent/outbox/retry', undefined, opts),
  };
}

export type FollowupsClient = ReturnType<typeof createFollowupsClient>;
