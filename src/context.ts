/**
 * Everything a role needs, built once from the configuration:
 * { config, log, db, clock, transport, composer, gate, policy, queue, metrics }.
 * Tests build one with overrides (a fake clock, a test database, a fake transport).
 */
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { type Composer, makeDefaultComposer } from './compose/composer.js';
import type { Config } from './config.js';
import type { Db } from './db/db.js';
import { migrate } from './db/migrate.js';
import { makePgDb } from './db/pg-db.js';
import { makePgliteDb } from './db/pglite-db.js';
import { makeSendingGate, type SendingGate } from './followups/sending-gate.js';
import type { Logger } from './log.js';
import { makeMetrics, type Metrics } from './metrics.js';
import { makeQueueLink, type QueueLink } from './queue/queue-link.js';
import { makeBasicPolicy, type SendPolicy } from './worker/send-policy.js';
import { makeDryRunTransport } from './whatsapp/dry-run-transport.js';
import { makeEvolutionTransport } from './whatsapp/evolution-client.js';
import type { Transport } from './whatsapp/transport.js';

export interface Context {
  config: Config;
  log: Logger;
  db: Db;
  clock: Clock;
  transport: Transport;
  composer: Composer;
  gate: SendingGate;
  policy: SendPolicy;
  /** Null in direct mode (no REDIS_URL). */
  queue: QueueLink | null;
  metrics: Metrics;
  close(): Promise<void>;
}

export interface ContextOverrides {
  db?: Db;
  clock?: Clock;
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
  const db =
    overrides.db ??
    (config.database.url
      ? makePgDb({ url: config.database.url, poolSize: config.database.poolSize, log })
      : await makePgliteDb({ dataDir: config.database.dataDir }));
  const ownsDb = !overrides.db;
  try {
    if (config.database.migrateOnStart && !overrides.skipMigrations) await migrate(db, log);
  } catch (error) {
    if (ownsDb) await db.close();
    throw error;
  }
  const transport =
    overrides.transport ??
    (config.evolution
      ? makeEvolutionTransport({ ...config.evolution, timeoutMs: config.sendTimeoutMs, log: log.child({ component: 'evolution' }) })
      : makeDryRunTransport({ db, log: log.child({ component: 'dry-run' }), clock }));
  const queue =
    overrides.queue !== undefined
      ? overrides.queue
      : config.redis.url
        ? makeQueueLink(
            { url: config.redis.url, queueName: config.redis.queueName, prefix: config.redis.prefix, commandTimeoutMs: config.redis.commandTimeoutMs },
            log.child({ component: 'queue' }),
          )
        : null;
  const ownsQueue = overrides.queue === undefined;
  return {
    config,
    log,
    db,
    clock,
    transport,
    composer: overrides.composer ?? makeDefaultComposer(),
    gate: makeSendingGate({ db, clock }),
    policy: overrides.policy ?? makeBasicPolicy({ typingDelay: config.sending.typingDelay }),
    queue,
    metrics: overrides.metrics ?? makeMetrics(),
    async close() {
      if (ownsQueue && queue) await queue.close();
      await transport.close?.();
      if (ownsDb) await db.close();
    },
  };
}
