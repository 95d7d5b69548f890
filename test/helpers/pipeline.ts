/**
 * Builds in-process roles against a test database: each role gets its own
 * context (own pool, own Redis connections), as separate processes would.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { type Context, type ContextOverrides, createContext } from '../../src/context.js';
import type { Db } from '../../src/db/db.js';
import { createLogger } from '../../src/log.js';
import { type Role, type Running, startRoles } from '../../src/roles.js';
import { makeEvolutionTransport } from '../../src/whatsapp/evolution-client.js';
import type { FakeEvolution } from './fake-evolution.js';

export const TEST_TOKEN = 'test-token-123-abcdefghijkl';

export function testEnv(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    FOLLOWUPS_API_TOKEN: TEST_TOKEN,
    ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    QUEUE_NAME: `followup_tasks_${randomBytes(4).toString('hex')}`,
    RELAY_MAX_SLEEP_MS: '200',
    TYPING_DELAY_ENABLED: 'false',
    LEASE_SECONDS: '6',
    SEND_TIMEOUT_MS: '2000',
    RETRY_BASE_SECONDS: '1',
    MIGRATE_ON_START: 'false',
    RECONCILE_DELAY_MS: '200',
    PAUSE_RETRY_SECONDS: '1',
    WORKER_LOCK_SECONDS: '3',
    DATABASE_POOL_SIZE: '4',
    // Respectful-sending limits off unless a test turns them on: tests run at any hour, send fast.
    SENDING_WINDOW_ENABLED: 'false',
    SEND_RATE_PER_MINUTE: '0',
    SEND_DAILY_CAP: '0',
    MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: '0',
    WHATSAPP_NUMBER_CHECK: 'false',
    // The pre-send reply check asks the fake Evolution before each send; the tests about it turn it on.
    PRESEND_REPLY_CHECK: 'off',
    ...overrides,
  };
}

export interface RoleHandle {
  ctx: Context;
  running: Running;
  stop(): Promise<void>;
}

/** Starts `roles` with their own context; `fake` wires the Evolution client to a fake server. */
export async function startRole(
  options: {
    roles: Role[];
    db?: Db;
    databaseUrl?: string;
    env?: Record<string, string | undefined>;
    fake?: FakeEvolution;
    clock?: Clock;
    overrides?: ContextOverrides;
  },
): Promise<RoleHandle> {
  const env = testEnv({
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...(options.fake
      ? { EVOLUTION_API_URL: options.fake.url, EVOLUTION_API_KEY: options.fake.apiKey, EVOLUTION_INSTANCE_NAME: options.fake.instance }
      : {}),
    ...options.env,
  });
  const config = loadConfig(env);
  const log = createLogger({ level: config.logLevel });
  const ctx = await createContext(config, log, {
    db: options.db,
    clock: options.clock,
    skipMigrations: Boolean(options.db) || config.database.url !== undefined,
    ...(options.fake && !options.overrides?.transport
      ? { transport: makeEvolutionTransport({ ...config.evolution!, timeoutMs: config.sendTimeoutMs, log }) }
      : {}),
    ...options.overrides,
  });
  const running = await startRoles(ctx, options.roles, { listen: false });
  return {
    ctx,
    running,
    async stop() {
      await running.stop();
      await ctx.close();
    },
  };
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}

export async function countByStatus(db: Db): Promise<Record<string, number>> {
  const { rows } = await db.query<{ status: string; n: number }>(
    'SELECT status, count(*)::int AS n FROM follow_ups GROUP BY status',
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** Inserts `count` due follow-ups for distinct leads directly (fast, for load tests). */
export async function insertDueFollowups(
  db: Db,
  options: { count: number; dueAt?: Date; phonePrefix?: string; text?: (i: number) => string },
): Promise<string[]> {
  const prefix = options.phonePrefix ?? '55819';
  const phones = Array.from({ length: options.count }, (_, i) => `${prefix}${String(10_000_000 + i).slice(-8)}`);
  const texts = phones.map((_, i) => (options.text ? options.text(i) : `Mensagem de teste ${i}`));
  const dueAt = options.dueAt ?? new Date();
  const { rows } = await db.query<{ id: string }>(
    `WITH l AS (
       INSERT INTO leads (phone) SELECT unnest($1::text[])
       ON CONFLICT (phone) DO UPDATE SET updated_at = now() RETURNING id, phone
     ), input AS (
       SELECT * FROM unnest($1::text[], $2::text[]) AS p(phone, text)
     ), f AS (
       INSERT INTO follow_ups (lead_id, message, due_at, planned_at, anchor_at)
       SELECT l.id, input.text, $3::timestamptz, $3::timestamptz, $3::timestamptz - interval '1 hour'
         FROM input JOIN l ON l.phone = input.phone
       RETURNING id
     ), ev AS (
       INSERT INTO follow_up_events (follow_up_id, at, to_status, reason) SELECT id, now(), 'pending', 'scheduled' FROM f
     )
     SELECT id FROM f`,
    [phones, texts, dueAt],
  );
  return rows.map((r) => r.id);
}
