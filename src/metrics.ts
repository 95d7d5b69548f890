/** Prometheus metrics (prom-client), one registry per process context. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function makeMetrics(options: { defaults?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaults) collectDefaultMetrics({ register: registry, prefix: 'followups_' });
  /** Refreshers run at scrape time, for state that lives in the database (set by createContext). */
  const collectors: {
    webhooksSilent?: () => Promise<void>;
    sendingPaused?: () => Promise<void>;
    numbers?: () => Promise<void>;
    agentOutbox?: () => Promise<{ pending: number; parked: number } | undefined>;
  } = {};
  const readOutbox = () => (collectors.agentOutbox?.() ?? Promise.resolve(undefined)).catch(() => undefined);
  return {
    registry,
    collectors,
    outcomes: new Counter({
      name: 'followups_outcomes_total',
      help: 'Follow-ups handled by an executor, by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    published: new Counter({
      name: 'followups_published_total',
      help: 'Follow-ups the relay published to the queue',
      registers: [registry],
    }),
    directRuns: new Counter({
      name: 'followups_direct_runs_total',
      help: 'Follow-ups the relay ran itself (direct mode)',
      registers: [registry],
    }),
    swept: new Counter({
      name: 'followups_swept_total',
      help: 'In-flight follow-ups recovered by the lease sweeper, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    relayMode: new Gauge({
      name: 'followups_relay_direct_mode',
      help: '1 while the relay runs follow-ups itself because the queue is unavailable',
      registers: [registry],
    }),
    webhooksSilent: new Gauge({
      name: 'followups_webhooks_silent',
      help: '1 while Evolution webhooks look silent for this WhatsApp number (echoes missing or none at all)',
      labelNames: ['instance'] as const,
      registers: [registry],
      async collect() {
        await collectors.webhooksSilent?.().catch(() => undefined);
      },
    }),
    sendingPaused: new Gauge({
      name: 'followups_sending_paused',
      help: "1 per active pause: scope 'all' (reason operator_paused or a fault such as evolution_unauthorized) or 'campaign' (an operator's, per campaign)",
      labelNames: ['scope', 'campaign', 'reason'] as const,
      registers: [registry],
      async collect() {
        await collectors.sendingPaused?.().catch(() => undefined);
      },
    }),
    numberState: new Gauge({
      name: 'followups_number_state',
      help: "1 for each WhatsApp number's current state (active, paused_whatsapp, paused_operator, retired)",
      labelNames: ['number', 'state'] as const,
      registers: [registry],
      async collect() {
        await collectors.numbers?.().catch(() => undefined);
      },
    }),
    numberSentToday: new Gauge({
      name: 'followups_number_sent_today',
      help: "Messages counted against each WhatsApp number's daily cap today",
      labelNames: ['number'] as const,
      registers: [registry],
    }),
    numberDailyCap: new Gauge({
      name: 'followups_number_daily_cap',
      help: 'Daily cap of each WhatsApp number (0 = none)',
      labelNames: ['number'] as const,
      registers: [registry],
    }),
    numberSends: new Counter({
      name: 'followups_number_sends_total',
      help: 'Follow-ups and agent messages sent, by WhatsApp number',
      labelNames: ['number'] as const,
      registers: [registry],
    }),
    webhooksUnknownInstance: new Counter({
      name: 'followups_webhooks_unknown_instance_total',
      help: 'Webhooks refused because their instance is not one of our WhatsApp numbers',
      registers: [registry],
    }),
    presendChecks: new Counter({
      name: 'followups_presend_checks_total',
      help: 'Pre-send reply checks with WhatsApp, by outcome (clear, replied, failed, skipped)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    agentOutboxPending: new Gauge({
      name: 'followups_agent_outbox_pending',
      help: 'Events waiting to be delivered to the agent (AGENT_WEBHOOK_URL)',
      registers: [registry],
      async collect() {
        const counts = await readOutbox();
        if (counts) this.set(counts.pending);
      },
    }),
    agentOutboxParked: new Gauge({
      name: 'followups_agent_outbox_parked',
      help: 'Events parked after AGENT_WEBHOOK_MAX_ATTEMPTS failed deliveries (retry: POST /v1/agent/outbox/retry)',
      registers: [registry],
      async collect() {
        const counts = await readOutbox();
        if (counts) this.set(counts.parked);
      },
    }),
    agentEventsDelivered: new Counter({
      name: 'followups_agent_events_delivered_total',
      help: 'Events delivered to the agent (2xx), by type',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    agentDeliveryFailures: new Counter({
      name: 'followups_agent_delivery_failures_total',
      help: 'Failed deliveries to the agent, by kind (timeout, network, http_4xx, http_5xx)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    agentEventsParked: new Counter({
      name: 'followups_agent_events_parked_total',
      help: 'Events parked after their last attempt',
      registers: [registry],
    }),
    agentEventLag: new Histogram({
      name: 'followups_agent_delivery_latency_seconds',
      help: 'From the event being written to its delivery to the agent (retries included)',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300, 1800, 7200],
      registers: [registry],
    }),
    lateness: new Histogram({
      name: 'followups_lateness_seconds',
      help: 'From due time to the executor claiming the follow-up',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof makeMetrics>;
