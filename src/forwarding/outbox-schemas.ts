/**
 * What the agent outbox routes take and answer (GET /v1/agent/outbox, POST
 * /v1/agent/outbox/:id/retry, POST /v1/agent/outbox/retry). Only zod here, so the
 * typed client can take its types from this file without pulling in the server.
 */
import { z } from 'zod';

export const outboxQuerySchema = z
  .object({
    status: z.enum(['pending', 'parked'], { message: 'must be pending or parked' }).default('parked').describe('which events'),
    limit: z.coerce.number().int().min(1).max(500).default(100).describe('at most this many, oldest first'),
  })
  .strict();

export interface AgentOutboxEvent {
  id: string;
  type: string;
  status: 'pending' | 'parked' | 'delivered';
  occurredAt: string;
  lead: { id: string; phone: string; name: string | null };
  attempts: number;
  lastError: string | null;
  nextAttemptAt: string | null;
  parkedAt: string | null;
  createdAt: string;
}

/** A page of GET /v1/agent/outbox, with the counts of pending and parked events. */
export interface AgentOutboxPage {
  events: AgentOutboxEvent[];
  counts: { pending: number; parked: number };
}

/** The answer of POST /v1/agent/outbox/:id/retry. */
export interface AgentEventRetried {
  id: string;
  status: 'pending';
}

/** The answer of POST /v1/agent/outbox/retry. */
export interface AgentEventsRetried {
  retried: number;
}
