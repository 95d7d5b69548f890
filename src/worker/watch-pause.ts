/**
 * While sending is paused, probe the transport every few seconds and lift the
 * pause once WhatsApp answers `open` again (a fixed API key after a restart, an
 * instance re-created, a reconnected phone). A 401/404 from the probe keeps it
 * paused.
 */
import { OPERATOR_PAUSED, type SendingGate } from '../followups/sending-gate.js';
import type { Logger } from '../log.js';
import type { Numbers } from '../numbers/whatsapp-numbers.js';
import type { Transport } from '../whatsapp/transport.js';

export function watchPause(options: { gate: SendingGate; transport: Transport; log: Logger; intervalMs?: number; numbers?: Numbers }) {
  const intervalMs = options.intervalMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = async () => {
    try {
      const state = await options.gate.state();
      // An operator's pause is lifted by an operator only; nothing to probe for.
      if (state.paused && state.reason !== OPERATOR_PAUSED) {
        const connection = await options.transport.connectionState().catch(() => 'unknown' as const);
        if (connection === 'open' && (await options.gate.resume())) {
          options.log.info({ previousReason: state.reason }, 'transport answers again; sending resumed');
        }
      }
      // Several numbers: each one WhatsApp paused (disconnected, refused) is probed on its own.
      if (options.numbers?.several) {
        for (const row of (await options.numbers.rows()).values()) {
          if (row.state !== 'paused_whatsapp' || !options.numbers.names.includes(row.name)) continue;
          const connection = await options.transport.connectionState(row.name).catch(() => 'unknown' as const);
          if (connection === 'open' && (await options.numbers.setWhatsappPause(row.name, false))) {
            options.log.info({ number: row.name, previousReason: row.state_reason }, 'WhatsApp number answers again; its follow-ups resume');
          }
        }
      }
    } catch (error) {
      options.log.debug({ err: error }, 'pause probe failed');
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  };
  timer = setTimeout(tick, intervalMs);
  timer.unref?.();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
