/**
 * The contract of POST /v1/leads/:phone/send (and the tool send_message): what it
 * takes and what it answers. Only zod here, so the typed client can take its types
 * from this file without pulling in the server.
 */
import { z } from 'zod';

/** WhatsApp takes up to 65,536 characters; a chat message from the agent is far shorter. */
export const MAX_AGENT_TEXT = 4_096;

export const sendMessageSchema = z
  .object({
    text: z.string().trim().min(1, 'must not be empty').max(MAX_AGENT_TEXT, `must be at most ${MAX_AGENT_TEXT} characters`).describe('the message to send, as the fan will read it'),
    typing: z.boolean().optional().describe('show "typing…" for a time that grows with the text before it arrives (default true, as follow-ups)'),
    idempotencyKey: z.string().min(1).max(200, 'must be at most 200 characters').optional().describe('a repeat with the same key returns the first send instead of sending again'),
  })
  .strict();

export type SendMessageInput = z.infer<typeof sendMessageSchema>;

export interface SentMessage {
  /** Our id of the message in the conversation log. */
  messageId: string;
  leadId: string;
  phone: string;
  /** Evolution's (WhatsApp's) message id. */
  providerMessageId: string;
  text: string;
  sentAt: string;
  /** False when the idempotency key matched an earlier send (nothing was sent now). */
  created: boolean;
}
