/**
 * Sending state per WhatsApp number, for the dashboard. Today there is one number:
 * the configured instance (EVOLUTION_INSTANCE_NAME, or the dry-run transport), whose
 * state is the sending gate (a fault such as a closed connection or a wrong key pauses
 * it), the connection Evolution reports, and whether its webhooks still arrive
 * (webhook-silence.ts). When numbers get their own table (whatsapp_numbers), this is
 * the one function to change.
 */
import type { Context } from '../context.js';
import type { ConnectionState } from '../whatsapp/transport.js';

export interface NumberState {
  /** The Evolution instance (or 'dry-run'). */
  instance: string;
  sending: 'active' | 'paused';
  /** Why it is paused: evolution_unauthorized, whatsapp_disconnected, operator_paused, webhooks_silent… */
  reason: string | null;
  detail: string | null;
  since: string | null;
  connection: ConnectionState;
  webhooks: 'flowing' | 'silent' | 'not_watched';
  webhooksReason: string | null;
}

const CONNECTION_TIMEOUT_MS = 2_000;

export async function readNumberStates(ctx: Pick<Context, 'config' | 'transport' | 'gate' | 'webhookSilence'>): Promise<NumberState[]> {
  const connection = Promise.race([
    ctx.transport.connectionState().catch(() => 'unknown' as const),
    new Promise<'unknown'>((resolve) => setTimeout(() => resolve('unknown'), CONNECTION_TIMEOUT_MS).unref()),
  ]);
  const [gate, silence, state] = await Promise.all([
    ctx.gate.state(),
    ctx.webhookSilence ? ctx.webhookSilence.state() : Promise.resolve(null),
    connection,
  ]);
  // A fault of the number (or an operator's pause of everything, which holds every number) comes first.
  const fault = gate.paused ? gate : null;
  const silentPause = silence?.silent && ctx.config.webhookSilence.pauseWhenSilent;
  return [
    {
      instance: ctx.config.evolution?.instance ?? 'dry-run',
      sending: fault || silentPause ? 'paused' : 'active',
      reason: fault?.reason ?? (silentPause ? 'webhooks_silent' : null),
      detail: fault?.detail ?? (silentPause ? (silence?.reason ?? null) : null),
      since: fault?.since ?? (silentPause && silence?.since ? new Date(silence.since).toISOString() : null),
      connection: state,
      webhooks: silence ? (silence.silent ? 'silent' : 'flowing') : 'not_watched',
      webhooksReason: silence?.silent ? (silence.reason ?? null) : null,
    },
  ];
}
