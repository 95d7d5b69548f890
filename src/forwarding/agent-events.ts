/**
 * The events forwarded to the agent (AGENT_WEBHOOK_URL), as the agent receives them: the
 * JSON body of each POST (README "Forwarding to the agent"). Types only, no dependencies:
 * the client package re-exports them with verifyAgentWebhookSignature.
 */

export const AGENT_EVENT_TYPES = [
  'message.received',
  'followup.sent',
  'lead.replied',
  'lead.opted_out',
  'lead.handed_off',
  'lead.converted',
  'lead.number_invalid',
] as const;

export type AgentEventType = (typeof AGENT_EVENT_TYPES)[number];

export interface AgentEventLead {
  id: string;
  /** Canonical digits: 55 + area code + number (5581999998888). */
  phone: string;
  name: string | null;
}

export interface MessageReceivedData {
  /** The message's id in this service's conversation log. */
  messageId: string;
  /** WhatsApp's message id (Evolution's key.id); null when recorded without one. */
  providerMessageId: string | null;
  /** Null for media without a caption (audio, image, …). */
  text: string | null;
  messageType: string | null;
  receivedAt: string;
  /** The Evolution instance it came through; null when it did not come from a webhook. */
  instance: string | null;
  /** Evolution's raw webhook payload, with AGENT_WEBHOOK_RAW=true. */
  raw?: unknown;
}

export interface FollowupSentData {
  followupId: string;
  text: string;
  providerMessageId: string;
  sentAt: string;
  campaign: string | null;
  step: number | null;
}

export interface LeadRepliedData {
  messageId: string | null;
  followupsCancelled: number;
  enrollmentStopped: boolean;
}

export interface LeadStoppedData {
  /** Who reported it: whatsapp (webhook), api, agent, … */
  source: string;
  messageId: string | null;
  followupsCancelled: number;
}

export interface LeadNumberInvalidData {
  source: 'number_check' | 'followup_send' | 'agent_send';
  followupId?: string;
  followupsCancelled?: number;
}

interface EventOf<T extends AgentEventType, D> {
  /** Stable across retries: de-duplicate on it. */
  id: string;
  type: T;
  occurredAt: string;
  lead: AgentEventLead;
  data: D;
}

export type AgentEvent =
  | EventOf<'message.received', MessageReceivedData>
  | EventOf<'followup.sent', FollowupSentData>
  | EventOf<'lead.replied', LeadRepliedData>
  | EventOf<'lead.opted_out' | 'lead.handed_off' | 'lead.converted', LeadStoppedData>
  | EventOf<'lead.number_invalid', LeadNumberInvalidData>;
