/**
 * Sending state per WhatsApp number, for the dashboard's "Now" panel: one row per configured
 * number (whatsapp_numbers, src/numbers/). A number's own state (paused by WhatsApp or by an
 * operator, retired) comes from its row; what holds every number (a fault of our Evolution key,
 * an operator's pause of everything, silent webhooks) comes from the sending gate and
 * webhook-silence.ts. With one number, its connection faults pause the gate, as before.
 */
import type { Context } from '../context.js';
import type { ConnectionState } from '../whatsapp/transport.js';

export interface NumberState {
  /** The Evolution instance (or 'dry-run'). */
  instance: string;
  sending: 'active' | 'paused' | 'retired';
  /** Why it is paused: evolution_unauthorized, whatsapp_disconnected, operator_paused, webhooks_silent… */
  reason: string | null;
  detail: string | null;
  since: string | null;
  connection: ConnectionState;
  webhooks: 'flowing' | 'silent' | 'not_watched';
  webhooksReason: string | null;
  /** Counted against its daily cap today (null: unknown). */
  sentToday: number | null;
  /** 0: no cap. */
  dailyCap: number;
}

const CONNECTION_TIMEOUT_MS = 2_000;

function connectionOf(ctx: Pick<Context, 'transport'>, instance: string | undefined): Promise<ConnectionState> {
  return Promise.race([
    ctx.transport.connectionState(instance).catch(() => 'unknown' as const),
    new Promise<'unknown'>((resolve) => setTimeout(() => resolve('unknown'), CONNECTION_TIMEOUT_MS).unref()),
  ]);
}

export async function readNumberStates(
  ctx: Pick<Context, 'config' | 'transport' | 'gate' | 'webhookSilence' | 'numbers' | 'clock'>,
): Promise<NumberState[]> {
  const now = ctx.clock.now();
  const [gate, silence, rows] = await Promise.all([
    ctx.gate.state(),
    ctx.webhookSilence ? ctx.webhookSilence.state() : Promise.resolve(null),
    ctx.numbers.rows(),
  ]);
  // A fault of the number (or an operator's pause of everything, which holds every number) comes first.
  const fault = gate.paused ? gate : null;
  const silentPause = silence?.silent && ctx.config.webhookSilence.pauseWhenSilent;
  const several = ctx.numbers.several;
  return Promise.all(
    ctx.numbers.names.map(async (name): Promise<NumberState> => {
      const row = rows.get(name);
      const [connection, sentToday] = await Promise.all([
        connectionOf(ctx, several ? name : undefined),
        ctx.numbers.sentToday(name, now).catch(() => null),
      ]);
      const own = row && row.state !== 'active' ? row : null;
      return {
        instance: name,
        sending: own?.state === 'retired' ? 'retired' : fault || silentPause || own ? 'paused' : 'active',
        reason: fault?.reason ?? (own ? (own.state === 'paused_operator' ? 'operator_paused' : own.state) : silentPause ? 'webhooks_silent' : null),
        detail: fault?.detail ?? own?.state_reason ?? (silentPause ? (silence?.reason ?? null) : null),
        since: fault?.since ?? (own ? own.state_since.toISOString() : silentPause && silence?.since ? new Date(silence.since).toISOString() : null),
        connection,
        webhooks: silence ? (silence.silent ? 'silent' : 'flowing') : 'not_watched',
        webhooksReason: silence?.silent ? (silence.reason ?? null) : null,
        sentToday,
        dailyCap: row?.daily_cap ?? 0,
      };
    }),
  );
}
