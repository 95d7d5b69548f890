/**
 * Starting and stopping the roles: api, relay, worker — any combination in one
 * process (`followups start` runs all three). Every role stops gracefully: stop
 * taking work, finish or hand back what is in flight, close connections.
 */
import type { FastifyInstance } from 'fastify';
import { type Context, queueSettingsOf } from './context.js';
import { startAgentDispatcher } from './forwarding/dispatch-agent-events.js';
import { setAgentForwarding } from './forwarding/record-agent-event.js';
import { buildApp } from './http/build-app.js';
import { type Relay, startRelay } from './relay/start-relay.js';
import { type ExecutorDeps, type Outcome } from './worker/execute-followup.js';
import { executeFollowup } from './worker/execute-followup.js';
import { type QueueWorker, startQueueWorker } from './worker/start-worker.js';
import { watchPause } from './worker/watch-pause.js';

export type Role = 'api' | 'relay' | 'worker';

export interface Running {
  app?: FastifyInstance;
  relay?: Relay;
  worker?: QueueWorker;
  /** The address the API listens on, when it runs. */
  address?: string;
  stop(): Promise<void>;
}

export function executorDeps(ctx: Context, role: string): ExecutorDeps {
  return {
    db: ctx.db,
    clock: ctx.clock,
    log: ctx.log.child({ role }),
    transport: ctx.transport,
    composer: ctx.composer,
    gate: ctx.gate,
    policy: ctx.policy,
    settings: {
      leaseMs: ctx.config.leaseMs,
      sendBudgetMs: ctx.config.sendBudgetMs,
      maxSendAttempts: ctx.config.maxSendAttempts,
      retryBaseMs: ctx.config.retryBaseMs,
      reconcileDelayMs: ctx.config.reconcileDelayMs,
      pauseRetryMs: ctx.config.pauseRetryMs,
    },
    onOutcome: (outcome: Outcome) => ctx.metrics.outcomes.inc({ outcome }),
    numbers: ctx.numbers,
    onSent: (number: string) => ctx.metrics.numberSends.inc({ number }),
    presend: {
      ...ctx.config.presend,
      pauseWhenSilent: ctx.config.webhookSilence.pauseWhenSilent,
      silence: ctx.webhookSilence,
      optOutConfirmation: (campaign: string) => ctx.campaigns?.get(campaign)?.optOutConfirmation,
      onCheck: (outcome) => ctx.metrics.presendChecks.inc({ outcome }),
    },
  };
}

export async function startRoles(ctx: Context, roles: Role[], options: { listen?: boolean } = {}): Promise<Running> {
  const running: Running = { stop: async () => undefined };
  const stops: Array<() => Promise<void>> = [];
  const wanted = new Set(roles);

  if (wanted.has('worker') && !ctx.config.redis.connection) {
    throw new Error('the worker role needs Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES); without Redis the relay sends follow-ups itself (direct mode)');
  }
  const sends = wanted.has('relay') || wanted.has('worker');
  // The roles that send watch for webhook silence (they know what was sent); the API hears the webhooks.
  const silenceWatch = sends && ctx.webhookSilence ? ctx.webhookSilence.startDetecting() : null;
  const pauseWatch = sends ? watchPause({ gate: ctx.gate, numbers: ctx.numbers, transport: ctx.transport, log: ctx.log.child({ role: "pause-watch" }), intervalMs: Math.min(5_000, ctx.config.pauseRetryMs) }) : null;

  if (wanted.has('worker') && ctx.config.redis.connection) {
    const log = ctx.log.child({ role: 'worker' });
    running.worker = startQueueWorker({
      queue: queueSettingsOf(ctx.config, ctx.config.redis.connection),
      concurrency: ctx.config.worker.concurrency,
      executor: executorDeps(ctx, 'worker'),
      log,
      lockDurationMs: ctx.config.worker.lockMs,
      roleHealth: ctx.roleHealth,
    });
    stops.push(() => running.worker!.stop(ctx.config.shutdownTimeoutMs));
    log.info({ concurrency: ctx.config.worker.concurrency, queue: ctx.config.redis.queueName }, 'worker started');
  }

  // The relay delivers the agent outbox. Without AGENT_WEBHOOK_URL there is no one to deliver to:
  // forwarding is switched off for every writer, so the outbox does not grow. (Before the relay
  // starts: its "relay started" line tells a supervisor that start-up is over.)
  if (wanted.has('relay') && !ctx.config.agentWebhook) await setAgentForwarding(ctx.db, { enabled: false, raw: false });

  if (wanted.has('relay')) {
    const log = ctx.log.child({ role: 'relay' });
    const deps = executorDeps(ctx, 'relay');
    running.relay = await startRelay({
      db: ctx.db,
      clock: ctx.clock,
      log,
      queue: ctx.queue,
      transport: ctx.transport,
      metrics: ctx.metrics,
      roleHealth: ctx.roleHealth,
      execute: (id) => executeFollowup(deps, id),
      settings: {
        batchSize: ctx.config.relay.batchSize,
        maxSleepMs: ctx.config.relay.maxSleepMs,
        leaseMs: ctx.config.leaseMs,
        directConcurrency: ctx.config.worker.concurrency,
      },
    });
    stops.push(() => running.relay!.stop(ctx.config.shutdownTimeoutMs));
    const agentWebhook = ctx.config.agentWebhook;
    if (agentWebhook) {
      const dispatcherLog = ctx.log.child({ role: 'agent-dispatcher' });
      const dispatcher = startAgentDispatcher({ db: ctx.db, log: dispatcherLog, metrics: ctx.metrics, settings: agentWebhook });
      stops.push(() => dispatcher.stop(ctx.config.shutdownTimeoutMs));
      dispatcherLog.info({ url: new URL(agentWebhook.url).origin, raw: agentWebhook.raw }, 'forwarding events to the agent');
    }
    log.info({ mode: running.relay.mode }, 'relay started');
  }

  if (wanted.has('api')) {
    const app = await buildApp(ctx, { logger: true });
    running.app = app;
    if (options.listen !== false) {
      running.address = await app.listen({ port: ctx.config.port, host: ctx.config.host });
      ctx.log.info({ role: 'api', address: running.address }, 'api listening');
    }
    // The API stops first, so no new follow-ups arrive while the rest winds down.
    stops.unshift(() => app.close());
  }

  running.stop = async () => {
    pauseWatch?.stop();
    silenceWatch?.stop();
    for (const stop of stops) await stop();
  };
  return running;
}
