/**
 * Everything a role needs, built once from the configuration:
 * { config, log, db, clock, campaigns, transport, composer, gate, policy, queue, metrics }.
 * Tests build one with overrides (a fake clock, a test database, a fake transport).
 */
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { Campaigns } from './campaigns/campaign.js';
import { DEFAULT_CAMPAIGNS_DIR, loadCampaigns } from './campaigns/load-campaigns.js';
import { makeCampaignComposer } from './compose/campaign-composer.js';
import type { Composer } from './compose/composer.js';
import { makeLlmWriter } from './compose/llm-writer.js';
import type { Config, RedisConnectionConfig } from './config.js';
import type { Db } from './db/db.js';
import { readDbError } from './db/db-errors.js';
import { migrate } from './db/migrate.js';
import { makePgDb } from './db/pg-db.js';
import { makePgliteDb } from './db/pglite-db.js';
import { makeCachedOutboxCounts } from './forwarding/agent-outbox.js';
import { setAgentForwarding } from './forwarding/record-agent-event.js';
import { embeddedErasureKey, useErasureKey } from './privacy/erasure-key.js';
import { makeSendingGate, type SendingGate } from './followups/sending-gate.js';
import type { Logger } from './log.js';
import { makeMetrics, type Metrics } from './metrics.js';
import { makeQueueLink, type QueueLink, type QueueSettings } from './queue/queue-link.js';
import { makeRoleHealth, type RoleHealth } from './role-health.js';
import { makeRespectfulPolicy } from './policy/respectful-policy.js';
import { withTimeout } from './timeout.js';
import { makeNumberLimits, type SendLimits } from './policy/send-limits.js';
import { makeNumbers, type Numbers } from './numbers/whatsapp-numbers.js';
import { makeMultiInstanceTransport } from './whatsapp/multi-instance-transport.js';
import { makeWebhookSilence, type WebhookSilence } from './webhooks/webhook-silence.js';
import type { SendPolicy } from './policy/send-policy.js';
import { makeDryRunTransport } from './whatsapp/dry-run-transport.js';
import { makeEvolutionTransport } from './whatsapp/evolution-client.js';
import type { Transport } from './whatsapp/transport.js';

export interface Context {
  config: Config;
  log: Logger;
  db: Db;
  clock: Clock;
  /** The campaign definitions, loaded and validated once at start-up. */
  campaigns: Campaigns;
  transport: Transport;
  composer: Composer;
  gate: SendingGate;
  policy: SendPolicy;
  /** The number's pace and daily cap (shared with the policy); null when both are off or a test brought its own policy. */
  sendLimits: SendLimits | null;
  /** The WhatsApp numbers (whatsapp_numbers): states, binding of leads, seeding from the configuration. */
  numbers: Numbers;
  /** Null in direct mode (no REDIS_URL). */
  queue: QueueLink | null;
  metrics: Metrics;
  /** Each turn of this process's relay and worker, for /health/ready. */
  roleHealth: RoleHealth;
  /** Whether Evolution's webhooks still arrive, per number; null with the dry-run transport (nothing to hear). */
  webhookSilence: WebhookSilence | null;
  close(): Promise<void>;
}

export interface ContextOverrides {
  db?: Db;
  clock?: Clock;
  campaigns?: Campaigns;
  transport?: Transport;
  composer?: Composer;
  policy?: SendPolicy;
  queue?: QueueLink | null;
  metrics?: Metrics;
  /** Skip migrations even if the config asks for them (tests use a migrated template). */
  skipMigrations?: boolean;
}

export async function createContext(config: Config, log: Logger, overrides: ContextOverrides = {}): Promise<Context> {
  const clock = overrides.clock ?? systemClock;
  // Before anything is opened: a broken campaign file stops start-up with the file and field named.
  const campaigns =
    overrides.campaigns ??
    loadCampaigns(config.campaignsDir ?? DEFAULT_CAMPAIGNS_DIR, { personaName: config.personaName, maxChars: config.llmLimits.maxChars });
  // Before anything can write a lead: every lead insert hashes its phone with it.
  // A test handing in its own database without a key keeps the process's random one (no file in the working directory).
  if (config.erasureKey) useErasureKey(config.erasureKey);
  else if (!overrides.db) useErasureKey(await embeddedErasureKey(config.database.dataDir));
  const db =
    overrides.db ??
    (config.database.url
      ? makePgDb({
          url: config.database.url,
          poolSize: config.database.poolSize,
          log,
          pooler: config.database.pooler,
          statementTimeoutMs: config.database.statementTimeoutMs,
          connectTimeoutMs: config.database.connectTimeoutMs,
        })
      : await makePgliteDb({ dataDir: config.database.dataDir }));
  const ownsDb = !overrides.db;
  try {
    if (config.database.migrateOnStart && !overrides.skipMigrations) await migrate(db, log);
  } catch (error) {
    if (ownsDb) await db.close();
    throw error;
  }
  const transport = overrides.transport ?? makeTransport(config, log, db, clock);
  const queue =
    overrides.queue !== undefined
      ? overrides.queue
      : config.redis.connection
        ? makeQueueLink(queueSettingsOf(config, config.redis.connection), log.child({ component: 'queue' }))
        : null;
  try {
    // A Redis that can never work as configured (password, ACL, wrong kind of server) stops start-up.
    if (overrides.queue === undefined) await queue?.verify();
  } catch (error) {
    await queue?.close();
    if (ownsDb) await db.close();
    throw error;
  }
  const ownsQueue = overrides.queue === undefined;
  const limits = overrides.policy ? null : makeLimits(config, log, clock, db);
  const metrics = overrides.metrics ?? makeMetrics();
  const numbers = makeNumbers({
    db,
    clock,
    log: log.child({ component: 'numbers' }),
    numbers: config.numbers,
    timeZone: config.sending.timeZone,
    sentToday: limits?.sentToday ? (name, now) => limits.sentToday!(now, name) : undefined,
  });
  // Idempotent: every process seeds the configured numbers (their rates and caps) at start. A
  // database that does not answer does not hold start-up: the seed goes on in the background,
  // and until it lands the configured numbers count as active.
  const seeding = numbers.seed().catch((error: unknown) => {
    log.warn({ err: error }, 'could not record the WhatsApp numbers (whatsapp_numbers); using the configuration');
  });
  await withTimeout(seeding, config.database.connectTimeoutMs, 'seeding the WhatsApp numbers').catch(() => undefined);
  metrics.collectors.numbers = async () => {
    const rows = await numbers.rows();
    metrics.numberState.reset();
    for (const row of rows.values()) {
      if (!row.configured) continue;
      metrics.numberState.set({ number: row.name, state: row.state }, 1);
      const sent = await numbers.sentToday(row.name, clock.now());
      if (sent !== null) metrics.numberSentToday.set({ number: row.name }, sent);
      metrics.numberDailyCap.set({ number: row.name }, row.daily_cap);
    }
  };
  const webhookSilence = config.evolution
    ? makeWebhookSilence({
        db,
        clock,
        log: log.child({ component: 'webhook-silence' }),
        // Keyed per WhatsApp number: one instance today, several later (EVOLUTION_INSTANCES).
        instance: config.evolution.instance,
        echoTimeoutMs: config.webhookSilence.echoTimeoutMs,
        silenceMs: config.webhookSilence.silenceMs,
        onState: (instance, silent) => metrics.webhooksSilent.set({ instance }, silent ? 1 : 0),
      })
    : null;
  if (webhookSilence) metrics.collectors.webhooksSilent = async () => void (await webhookSilence.state());
  metrics.collectors.agentOutbox = makeCachedOutboxCounts({ db, refreshMs: config.metrics.refreshMs });
  if (config.agentWebhook) {
    // Forwarding on for every writer (a relay started without AGENT_WEBHOOK_URL turns it off: roles.ts).
    await setAgentForwarding(db, { enabled: true, raw: config.agentWebhook.raw }).catch((error: unknown) => {
      if (!readDbError(error).undefinedTable) throw error;
      log.warn('agent forwarding not switched on: the database is not migrated yet (agent_outbox missing)');
    });
  }
  const gate = makeSendingGate({ db, clock });
  metrics.collectors.sendingPaused = async () => {
    const [state, operator] = await Promise.all([gate.state(), gate.operatorPauses()]);
    metrics.sendingPaused.reset();
    if (state.paused) metrics.sendingPaused.set({ scope: 'all', campaign: '', reason: state.reason ?? 'paused' }, 1);
    for (const p of operator) if (p.scope !== 'all') metrics.sendingPaused.set({ scope: p.scope, campaign: p.campaign ?? '', reason: 'operator_paused' }, 1);
  };
  return {
    config,
    log,
    db,
    clock,
    campaigns,
    transport,
    composer:
      overrides.composer ??
      makeCampaignComposer({
        campaigns,
        llm: config.llm ? makeLlmWriter(config.llm) : null,
        limits: config.llmLimits,
        log: log.child({ component: 'composer' }),
      }),
    gate,
    policy:
      overrides.policy ??
      makeRespectfulPolicy({
        db,
        transport,
        log: log.child({ component: 'send-policy' }),
        limits,
        settings: {
          timeZone: config.sending.timeZone,
          window: {
            enabled: config.sending.windowEnabled,
            start: config.sending.hoursStart,
            end: config.sending.hoursEnd,
            sundays: config.sending.sendOnSunday,
            jitterMs: config.sending.windowJitterMs,
          },
          maxPerLeadPerWeek: config.sending.maxPerLeadPerWeek,
          typingDelay: config.sending.typingDelay,
          checkNumbers: config.sending.checkNumbers,
          numberCheckBatch: config.sending.numberCheckBatch,
        },
        campaignSending: (name) => campaigns.get(name)?.sending,
      }),
    sendLimits: limits,
    numbers,
    queue,
    metrics,
    roleHealth: makeRoleHealth(),
    webhookSilence,
    async close() {
      await webhookSilence?.close().catch(() => undefined);
      if (ownsQueue && queue) await queue.close();
      await limits?.close();
      await transport.close?.();
      if (ownsDb) await db.close();
    },
  };
}

/** The queue's settings (producer and worker alike) from the configuration. */
export function queueSettingsOf(config: Config, connection: RedisConnectionConfig): QueueSettings {
  return {
    connection,
    queueName: config.redis.queueName,
    prefix: config.redis.prefix,
    commandTimeoutMs: config.redis.commandTimeoutMs,
    jobSize: config.redis.jobSize,
  };
}

/** Evolution (one client per instance when there are several numbers), else the dry run. */
function makeTransport(config: Config, log: Logger, db: Db, clock: Clock): Transport {
  const evolution = config.evolution;
  if (!evolution) return makeDryRunTransport({ db, log: log.child({ component: 'dry-run' }), clock });
  const clientOf = (instance: { name: string; url: string; apiKey: string }) =>
    makeEvolutionTransport({
      url: instance.url,
      apiKey: instance.apiKey,
      instance: instance.name,
      timeoutMs: config.sendTimeoutMs,
      log: log.child({ component: 'evolution', ...(evolution.instances.length > 1 ? { number: instance.name } : {}) }),
    });
  if (evolution.instances.length <= 1) return clientOf({ name: evolution.instance, url: evolution.url, apiKey: evolution.apiKey });
  return makeMultiInstanceTransport(new Map(evolution.instances.map((i) => [i.name, clientOf(i)])), evolution.instance);
}

/**
 * Pace and daily cap, per WhatsApp instance: in Redis when there is one (shared by
 * every worker), else in memory. Keyed by queue too, so deployments (and test
 * runs) sharing a Redis do not share limits by accident.
 */
function makeLimits(config: Config, log: Logger, clock: Clock, db: Db): SendLimits | null {
  if (config.numbers.every((n) => n.ratePerMinute === 0 && n.dailyCap === 0)) return null;
  // One pace and daily cap per number (EVOLUTION_INSTANCE_<NAME>_RATE_PER_MINUTE / _DAILY_CAP).
  return makeNumberLimits(config.numbers, {
    windowMs: config.sending.rateWindowMs,
    timeZone: config.sending.timeZone,
    // Keyed by the WhatsApp instance (in each key), not the queue: the budget is the number's.
    keyPrefix: `${config.redis.prefix}:limits`,
    redis: config.redis.connection ? { connection: config.redis.connection, commandTimeoutMs: config.redis.commandTimeoutMs } : undefined,
    // While Redis is down, points are taken in PostgreSQL, shared by every process (PGlite: one process, memory).
    fallbackDb: db.kind === 'pg' ? db : undefined,
    // A booked slot may be waited for in-process, well within the send's lease.
    maxWaitMs: Math.min(5_000, Math.floor(config.leaseMs / 4)),
    log: log.child({ component: 'send-limits' }),
    clock: () => clock.now(),
  });
}
