/**
 * The only reader of the environment. `loadConfig(process.env)` validates every
 * variable at once and throws a ConfigError listing each problem, so an operator
 * fixes a deployment in one pass instead of one crash per variable.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { detectPooler, type Pooler, POOLERS } from './database-url.js';
import { isTimeZone } from './time/zoned-time.js';
import { TYPING_MAX_MS } from './time/typing-delay.js';

const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const hour = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'must be HH:MM (24-hour clock)');

const url = (protocols: string[]) =>
  z.string().refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `must be a URL (${protocols.join(' or ')})`);

const schema = z.object({
  NODE_ENV: z.string().optional(),
  PORT: int(0, 65535).default(3000),
  // No default here: it depends on DATABASE_URL (see hostFor).
  HOST: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: flag.optional(),

  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  DATA_DIR: z.string().min(1).default('./.followups-data'),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  // none | transaction | session; unset: detected from DATABASE_URL (port 6543 or ?pgbouncer=true → transaction).
  DATABASE_POOLER: z.enum(POOLERS as [Pooler, ...Pooler[]]).optional(),
  DATABASE_STATEMENT_TIMEOUT_MS: int(0, 3_600_000).default(30_000),
  DATABASE_CONNECT_TIMEOUT_MS: int(100, 120_000).default(5_000),
  MIGRATE_ON_START: flag.default(true),

  // redis+sentinel:// lists several hosts, which URL() refuses: it is parsed on its own below.
  REDIS_URL: z.union([z.string().startsWith('redis+sentinel://'), url(['redis:', 'rediss:'])], {
    error: 'must be a URL (redis:, rediss: or redis+sentinel:)',
  }).optional(),
  REDIS_SENTINELS: z.string().optional(),
  REDIS_SENTINEL_NAME: z.string().min(1).optional(),
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  REDIS_CLUSTER_NODES: z.string().optional(),
  // The data nodes' ACL user and password under Sentinel or Cluster (a plain REDIS_URL carries its own).
  REDIS_USERNAME: z.string().min(1).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  QUEUE_NAME: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default('followup_tasks'),
  QUEUE_PREFIX: z.string().min(1).default('{followups}'),
  REDIS_COMMAND_TIMEOUT_MS: int(50, 60_000).default(2_000),
  // Follow-ups per queue job: the relay publishes its batch in chunks of this size.
  QUEUE_JOB_SIZE: int(1, 1_000).default(20),

  EVOLUTION_API_URL: url(['http:', 'https:']).optional(),
  EVOLUTION_API_KEY: z.string().min(1).optional(),
  EVOLUTION_INSTANCE_NAME: z.string().min(1).optional(),
  // Several WhatsApp numbers: comma-separated instance names (instead of EVOLUTION_INSTANCE_NAME).
  // Per instance, EVOLUTION_INSTANCE_<NAME>_API_KEY, _URL, _RATE_PER_MINUTE and _DAILY_CAP override
  // EVOLUTION_API_KEY, EVOLUTION_API_URL, SEND_RATE_PER_MINUTE and SEND_DAILY_CAP (INSTANCE_OVERRIDES).
  EVOLUTION_INSTANCES: z.string().optional(),

  FOLLOWUPS_API_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  WEBHOOK_SECRET: z.string().min(8, 'must be at least 8 characters').optional(),
  // A password for the campaign team's /dashboard, besides the API token (which always signs in).
  DASHBOARD_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  WEBHOOK_JWT_KEY: z.string().min(8, 'must be at least 8 characters').optional(),
  // When set, /metrics and the details of /health/ready need `Authorization: Bearer <METRICS_TOKEN>`.
  METRICS_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  // /metrics serves follow-up counts refreshed in the background at most this often (one query in flight).
  METRICS_REFRESH_SECONDS: int(1, 3_600).default(5),
  // Per client IP: failed authentications (401) allowed per minute before 429.
  AUTH_FAILURES_PER_MINUTE: int(1, 100_000).default(20),
  // Per API token: requests allowed per minute on /v1 (0 = no limit).
  API_REQUESTS_PER_MINUTE: int(0, 10_000_000).default(6_000),
  // Where Evolution reaches this service (https://followups.example.com): `followups webhook setup` and `doctor`.
  PUBLIC_URL: url(['http:', 'https:']).optional(),
  // HMAC key for erased phones (src/privacy/erasure-key.ts).
  ERASURE_KEY: z.string().min(32, 'must be at least 32 characters (e.g. openssl rand -hex 32)').optional(),

  LLM_BASE_URL: url(['http:', 'https:']).optional(),
  LLM_API_KEY: z.string().min(1).optional(),
  LLM_MODEL: z.string().min(1).optional(),
  LLM_TIMEOUT_MS: int(100, 120_000).default(8_000),
  LLM_MAX_CHARS: int(20, 4096).default(300),
  LLM_HISTORY_MESSAGES: int(0, 200).default(12),
  PERSONA_NAME: z.string().min(1).default('Marina Campelo'),
  CAMPAIGNS_DIR: z.string().min(1).optional(),

  BUSINESS_TIMEZONE: z.string().refine(isTimeZone, 'must be an IANA time zone such as America/Recife').default('America/Recife'),
  BUSINESS_HOURS_START: hour.default('08:00'),
  BUSINESS_HOURS_END: hour.default('20:00'),
  SEND_ON_SUNDAY: flag.default(false),
  SENDING_WINDOW_ENABLED: flag.default(true),
  MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: int(0, 1000).default(3),
  SEND_RATE_PER_MINUTE: int(0, 100_000).default(20),
  SEND_DAILY_CAP: int(0, 10_000_000).default(1000),
  TYPING_DELAY_ENABLED: flag.default(true),
  // The span SEND_RATE_PER_MINUTE counts over: 60 in production; tests shrink it to stay short.
  SEND_RATE_WINDOW_SECONDS: int(1, 3_600).default(60),
  // Follow-ups held back by the window are spread over this much of the next opening.
  SENDING_WINDOW_JITTER_MINUTES: int(0, 720).default(45),
  // Ask /chat/whatsappNumbers once per lead before its first send (off: sendText's own 400 still catches them).
  WHATSAPP_NUMBER_CHECK: flag.default(true),
  // Numbers per /chat/whatsappNumbers call; each call takes one share of the number's pace.
  WHATSAPP_NUMBER_CHECK_BATCH: int(1, 500).default(50),

  WORKER_CONCURRENCY: int(1, 1000).default(10),
  WORKER_LOCK_SECONDS: int(1, 3_600).default(30),
  RELAY_BATCH_SIZE: int(1, 10_000).default(500),
  RELAY_MAX_SLEEP_MS: int(10, 60_000).default(1_000),
  SEND_TIMEOUT_MS: int(1_000, 300_000).default(30_000),
  LEASE_SECONDS: int(2, 86_400).default(120),
  MAX_SEND_ATTEMPTS: int(1, 100).default(6),
  RETRY_BASE_SECONDS: int(1, 3_600).default(30),
  SHUTDOWN_TIMEOUT_MS: int(100, 120_000).default(10_000),
  RECONCILE_DELAY_MS: int(0, 120_000).default(3_000),
  PAUSE_RETRY_SECONDS: int(1, 3_600).default(15),

  // Ask WhatsApp (findMessages) whether the fan wrote, right before each send. Default:
  // required with Evolution, off with the dry-run transport (it has nobody to ask).
  PRESEND_REPLY_CHECK: z.enum(['off', 'best_effort', 'required']).optional(),
  PRESEND_CHECK_TIMEOUT_MS: int(100, 60_000).default(5_000),
  PRESEND_CHECK_RETRY_SECONDS: int(1, 3_600).default(30),
  // best_effort: after this many failed checks of one follow-up it may go out unchecked.
  PRESEND_CHECK_MAX_FAILURES: int(1, 1_000).default(5),
  // Forwarding to the agent (src/forwarding/): every fan message and lifecycle event is POSTed here, signed. Unset: off.
  AGENT_WEBHOOK_URL: url(['http:', 'https:']).optional(),
  AGENT_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters (e.g. openssl rand -hex 32)').optional(),
  // After this many failed deliveries an event is parked (GET /v1/agent/outbox?status=parked; retry with POST …/retry).
  AGENT_WEBHOOK_MAX_ATTEMPTS: int(1, 100).default(12),
  // Also forward Evolution's raw webhook payload with message.received (data.raw).
  AGENT_WEBHOOK_RAW: flag.default(false),
  AGENT_WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
  // Backoff between attempts: doubling from the base, capped, with jitter.
  AGENT_WEBHOOK_RETRY_BASE_MS: int(10, 3_600_000).default(1_000),
  AGENT_WEBHOOK_RETRY_MAX_MS: int(10, 86_400_000).default(600_000),
  // Leads delivered to at the same time by one relay (one event in flight per lead).
  AGENT_WEBHOOK_CONCURRENCY: int(1, 1_000).default(16),
  WEBHOOK_ECHO_TIMEOUT_SECONDS: int(1, 86_400).default(60),
  WEBHOOK_SILENCE_MINUTES: int(1, 10_080).default(10),
  PAUSE_WHEN_WEBHOOKS_SILENT: flag.default(false),
});

export interface RedisEndpoint {
  host: string;
  port: number;
}

/** Where Redis is and how to reach it: one server, a Sentinel-managed master, or a Cluster. */
export type RedisConnectionConfig =
  | { mode: 'standalone'; url: string }
  | {
      mode: 'sentinel';
      sentinels: RedisEndpoint[];
      /** The master's name as the sentinels know it (`sentinel monitor <name> …`). */
      name: string;
      sentinelPassword?: string;
      username?: string;
      password?: string;
      db?: number;
    }
  | { mode: 'cluster'; nodes: RedisEndpoint[]; username?: string; password?: string };

export interface EvolutionInstance {
  name: string;
  url: string;
  apiKey: string;
}

export interface WhatsappNumberConfig {
  name: string;
  ratePerMinute: number;
  dailyCap: number;
}

/** The per-instance settings, as EVOLUTION_INSTANCE_<NAME>_<SUFFIX> (NAME: the instance name in capitals, other characters as _). */
export const INSTANCE_OVERRIDES = ['API_KEY', 'URL', 'RATE_PER_MINUTE', 'DAILY_CAP'] as const;

/** The environment name part of an instance: `nautico-2` → `NAUTICO_2`. */
export function instanceEnvName(instance: string): string {
  return instance.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Every setting's name, as the schema reads it (`.env.example` documents each one, tested). */
export const CONFIG_KEYS: readonly string[] = Object.keys(schema.shape);

export type Config = {
  env: string;
  port: number;
  host: string;
  logLevel: string;
  logPretty: boolean;
  database: {
    url?: string;
    dataDir: string;
    poolSize: number;
    migrateOnStart: boolean;
    /** The pooler between us and PostgreSQL (DATABASE_POOLER, or detected from the URL). */
    pooler: Pooler;
    /** Every statement's timeout (0 = none); migrations have none. */
    statementTimeoutMs: number;
    /** Connecting, or waiting for a free pool connection. */
    connectTimeoutMs: number;
  };
  /** connection: unset → direct mode (no queue). */
  redis: { connection?: RedisConnectionConfig; queueName: string; prefix: string; commandTimeoutMs: number; jobSize: number };
  /**
   * instance: the first (default) number; instances: every configured number with its own URL and
   * key (one entry with EVOLUTION_INSTANCE_NAME).
   */
  evolution?: { url: string; apiKey: string; instance: string; instances: EvolutionInstance[] };
  /**
   * The WhatsApp numbers this service sends from, each with its pace and daily cap: the Evolution
   * instances, or one number named `dry-run` with the dry-run transport. The first is the default.
   */
  numbers: WhatsappNumberConfig[];
  apiToken: string;
  /** True when the token is the documented development default (embedded mode only). */
  apiTokenIsDefault: boolean;
  /** Signs in to /dashboard besides the API token; undefined = the token only. */
  dashboardPassword?: string;
  /** metricsToken: when set, /metrics needs it; refreshMs: how often follow-up counts are re-read for /metrics. */
  metrics: { token?: string; refreshMs: number };
  /** authFailuresPerMinute: per client IP; requestsPerMinute: per API token (0 = none). */
  rateLimit: { authFailuresPerMinute: number; requestsPerMinute: number };
  /** publicUrl: this service's base URL as Evolution reaches it (PUBLIC_URL), without a trailing slash. */
  webhook: { secret?: string; jwtKey?: string; publicUrl?: string };
  /** HMAC key for erased phones; unset on the embedded default (a key is kept in DATA_DIR). */
  erasureKey?: string;
  llm?: { baseUrl: string; apiKey: string; model: string; timeoutMs: number; maxChars: number; historyMessages: number };
  llmLimits: { timeoutMs: number; maxChars: number; historyMessages: number };
  personaName: string;
  campaignsDir?: string;
  sending: {
    timeZone: string;
    hoursStart: string;
    hoursEnd: string;
    sendOnSunday: boolean;
    windowEnabled: boolean;
    maxPerLeadPerWeek: number;
    ratePerMinute: number;
    dailyCap: number;
    typingDelay: boolean;
    /** SEND_RATE_PER_MINUTE counts over this many milliseconds (60 000 unless a test shrinks it). */
    rateWindowMs: number;
    /** Follow-ups held back by the window go out spread over this much of the next opening. */
    windowJitterMs: number;
    /** Check each lead's number once with /chat/whatsappNumbers before its first send. */
    checkNumbers: boolean;
    /** Numbers per /chat/whatsappNumbers call (lookups are batched and paced with the sends). */
    numberCheckBatch: number;
  };
  /** lockMs: a job whose worker died goes back to the queue after about this long (BullMQ stalled check). */
  worker: { concurrency: number; lockMs: number };
  relay: { batchSize: number; maxSleepMs: number };
  sendTimeoutMs: number;
  /** The longest a send can take: SEND_TIMEOUT_MS + the longest typing delay + RECONCILE_DELAY_MS. */
  sendBudgetMs: number;
  leaseMs: number;
  maxSendAttempts: number;
  retryBaseMs: number;
  shutdownTimeoutMs: number;
  /** Wait before asking the provider whether a timed-out send went out. */
  reconcileDelayMs: number;
  /** While sending is paused, follow-ups handed back are looked at again after this long. */
  pauseRetryMs: number;
  /** The pre-send reply check (src/worker/check-reply-before-send.ts). */
  presend: { mode: 'off' | 'best_effort' | 'required'; timeoutMs: number; retryMs: number; maxFailures: number };
  /** The webhook silence detector (src/webhooks/webhook-silence.ts); off with the dry-run transport. */
  webhookSilence: { echoTimeoutMs: number; silenceMs: number; pauseWhenSilent: boolean };
  /** Forwarding events to the agent (src/forwarding/); undefined when AGENT_WEBHOOK_URL is unset. */
  agentWebhook?: {
    url: string;
    secret: string;
    maxAttempts: number;
    raw: boolean;
    timeoutMs: number;
    retryBaseMs: number;
    retryMaxMs: number;
    concurrency: number;
  };
};

/** The token `npm start` accepts on the embedded default, documented in the README. */
export const DEV_API_TOKEN = 'dev-token-change-me';

/** Outside the embedded default, every token and secret must be at least this long. */
export const MIN_SECRET_LENGTH = 24;

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * HOST's default: the embedded default (no DATABASE_URL) listens on loopback only,
 * because it may run with the public development token; a deployment on PostgreSQL
 * (always with a real token) listens on every interface, as containers need.
 */
function hostFor(env: { HOST?: string; DATABASE_URL?: string }): string {
  return env.HOST ?? (env.DATABASE_URL ? '0.0.0.0' : '127.0.0.1');
}

/** The longest a send can take: SEND_TIMEOUT_MS + the longest typing delay (TYPING_MAX_MS, jitter included) + RECONCILE_DELAY_MS. */
function sendBudgetOf(e: { SEND_TIMEOUT_MS: number; TYPING_DELAY_ENABLED: boolean; RECONCILE_DELAY_MS: number }): number {
  return e.SEND_TIMEOUT_MS + (e.TYPING_DELAY_ENABLED ? TYPING_MAX_MS : 0) + e.RECONCILE_DELAY_MS;
}

export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings count as unset: `FOO=` in a .env file means "not configured".
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([key, value]) => key in schema.shape && value !== undefined && value.trim() !== ''),
  );
  const parsed = schema.safeParse(cleaned);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join('.')}: ${issue.message}`);
    }
  }
  const e = parsed.success ? parsed.data : undefined;
  let redisConnection: RedisConnectionConfig | undefined;
  let instances: { evolution: EvolutionInstance[]; numbers: WhatsappNumberConfig[] } | undefined;
  if (e) {
    instances = readInstances(env, e, problems);
    if (e.LLM_BASE_URL && !e.LLM_MODEL) problems.push('LLM_MODEL: required when LLM_BASE_URL is set');
    if (e.AGENT_WEBHOOK_URL && !e.AGENT_WEBHOOK_SECRET) {
      problems.push('AGENT_WEBHOOK_SECRET: required when AGENT_WEBHOOK_URL is set (at least 16 characters; the agent verifies each event with it)');
    }
    // The development token is public (it is in the README): it may only guard an instance
    // that can reach no one (dry-run transport, no LLM) and that no one else can reach.
    const host = hostFor(e);
    const real = [
      e.DATABASE_URL && 'DATABASE_URL is set',
      e.EVOLUTION_API_URL && 'EVOLUTION_API_URL is set (a real WhatsApp transport)',
      (e.LLM_BASE_URL || e.LLM_API_KEY) && 'an LLM is configured',
      !isLoopbackHost(host) && `HOST ${host} is not a loopback address`,
    ].filter((reason): reason is string => typeof reason === 'string');
    if (!e.FOLLOWUPS_API_TOKEN && real.length > 0) {
      problems.push(
        `FOLLOWUPS_API_TOKEN: required because ${real.join(', ')}; the public development token is accepted only with the dry-run transport, no LLM and HOST on loopback (127.0.0.1)`,
      );
    }
    if (real.length > 0) {
      for (const name of ['FOLLOWUPS_API_TOKEN', 'WEBHOOK_SECRET', 'WEBHOOK_JWT_KEY', 'METRICS_TOKEN'] as const) {
        const value = e[name];
        if (value !== undefined && value.length < MIN_SECRET_LENGTH) {
          problems.push(`${name}: must be at least ${MIN_SECRET_LENGTH} characters outside the embedded default (${real[0]})`);
        }
      }
    }
    if (e.DATABASE_URL && !e.ERASURE_KEY) {
      problems.push('ERASURE_KEY: required when DATABASE_URL is set (the key of erased phones; e.g. openssl rand -hex 32, and keep it: a new key forgets which erased numbers had opted out)');
    }
    if (e.BUSINESS_HOURS_START >= e.BUSINESS_HOURS_END) {
      problems.push('BUSINESS_HOURS_START: must be earlier than BUSINESS_HOURS_END');
    }
    redisConnection = readRedisConnection(e, problems);
    // A send may take the longest typing delay plus SEND_TIMEOUT_MS, then the reconcile wait.
    if (e.LEASE_SECONDS * 1000 <= sendBudgetOf(e)) {
      problems.push(`LEASE_SECONDS: must be longer than SEND_TIMEOUT_MS + ${TYPING_MAX_MS / 1000} s of typing delay + RECONCILE_DELAY_MS, or a slow send would be swept while in flight`);
    }
  }
  if (problems.length > 0 || !e || !instances) throw new ConfigError(problems);

  const llmLimits = { timeoutMs: e.LLM_TIMEOUT_MS, maxChars: e.LLM_MAX_CHARS, historyMessages: e.LLM_HISTORY_MESSAGES };
  return {
    env: e.NODE_ENV ?? 'development',
    port: e.PORT,
    host: hostFor(e),
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY ?? false,
    database: {
      url: e.DATABASE_URL,
      dataDir: e.DATA_DIR,
      poolSize: e.DATABASE_POOL_SIZE,
      migrateOnStart: e.MIGRATE_ON_START,
      pooler: e.DATABASE_URL ? detectPooler(e.DATABASE_URL, e.DATABASE_POOLER) : 'none',
      statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
      connectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
    },
    redis: { connection: redisConnection, queueName: e.QUEUE_NAME, prefix: e.QUEUE_PREFIX, commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS, jobSize: e.QUEUE_JOB_SIZE },
    evolution: e.EVOLUTION_API_URL
      ? { url: instances.evolution[0]!.url, apiKey: instances.evolution[0]!.apiKey, instance: instances.evolution[0]!.name, instances: instances.evolution }
      : undefined,
    numbers: instances.numbers,
    apiToken: e.FOLLOWUPS_API_TOKEN ?? DEV_API_TOKEN,
    apiTokenIsDefault: !e.FOLLOWUPS_API_TOKEN,
    dashboardPassword: e.DASHBOARD_PASSWORD,
    metrics: { token: e.METRICS_TOKEN, refreshMs: e.METRICS_REFRESH_SECONDS * 1000 },
    rateLimit: { authFailuresPerMinute: e.AUTH_FAILURES_PER_MINUTE, requestsPerMinute: e.API_REQUESTS_PER_MINUTE },
    webhook: { secret: e.WEBHOOK_SECRET, jwtKey: e.WEBHOOK_JWT_KEY, publicUrl: e.PUBLIC_URL?.replace(/\/+$/, '') },
    erasureKey: e.ERASURE_KEY,
    llm: e.LLM_BASE_URL
      ? { baseUrl: e.LLM_BASE_URL, apiKey: e.LLM_API_KEY ?? 'none', model: e.LLM_MODEL!, ...llmLimits }
      : undefined,
    llmLimits,
    personaName: e.PERSONA_NAME,
    campaignsDir: e.CAMPAIGNS_DIR,
    sending: {
      timeZone: e.BUSINESS_TIMEZONE,
      hoursStart: e.BUSINESS_HOURS_START,
      hoursEnd: e.BUSINESS_HOURS_END,
      sendOnSunday: e.SEND_ON_SUNDAY,
      windowEnabled: e.SENDING_WINDOW_ENABLED,
      maxPerLeadPerWeek: e.MAX_FOLLOWUPS_PER_LEAD_PER_WEEK,
      ratePerMinute: e.SEND_RATE_PER_MINUTE,
      dailyCap: e.SEND_DAILY_CAP,
      typingDelay: e.TYPING_DELAY_ENABLED,
      rateWindowMs: e.SEND_RATE_WINDOW_SECONDS * 1000,
      windowJitterMs: e.SENDING_WINDOW_JITTER_MINUTES * 60_000,
      checkNumbers: e.WHATSAPP_NUMBER_CHECK,
      numberCheckBatch: e.WHATSAPP_NUMBER_CHECK_BATCH,
    },
    worker: { concurrency: e.WORKER_CONCURRENCY, lockMs: e.WORKER_LOCK_SECONDS * 1000 },
    relay: { batchSize: e.RELAY_BATCH_SIZE, maxSleepMs: e.RELAY_MAX_SLEEP_MS },
    sendTimeoutMs: e.SEND_TIMEOUT_MS,
    sendBudgetMs: sendBudgetOf(e),
    leaseMs: e.LEASE_SECONDS * 1000,
    maxSendAttempts: e.MAX_SEND_ATTEMPTS,
    retryBaseMs: e.RETRY_BASE_SECONDS * 1000,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    reconcileDelayMs: e.RECONCILE_DELAY_MS,
    pauseRetryMs: e.PAUSE_RETRY_SECONDS * 1000,
    presend: {
      // The dry-run transport has no conversation to look into: the check is off there, whatever is set.
      mode: e.EVOLUTION_API_URL ? (e.PRESEND_REPLY_CHECK ?? 'required') : 'off',
      timeoutMs: e.PRESEND_CHECK_TIMEOUT_MS,
      retryMs: e.PRESEND_CHECK_RETRY_SECONDS * 1000,
      maxFailures: e.PRESEND_CHECK_MAX_FAILURES,
    },
    webhookSilence: {
      echoTimeoutMs: e.WEBHOOK_ECHO_TIMEOUT_SECONDS * 1000,
      silenceMs: e.WEBHOOK_SILENCE_MINUTES * 60_000,
      pauseWhenSilent: e.PAUSE_WHEN_WEBHOOKS_SILENT,
    },
    agentWebhook: e.AGENT_WEBHOOK_URL
      ? {
          url: e.AGENT_WEBHOOK_URL,
          secret: e.AGENT_WEBHOOK_SECRET!,
          maxAttempts: e.AGENT_WEBHOOK_MAX_ATTEMPTS,
          raw: e.AGENT_WEBHOOK_RAW,
          timeoutMs: e.AGENT_WEBHOOK_TIMEOUT_MS,
          retryBaseMs: e.AGENT_WEBHOOK_RETRY_BASE_MS,
          retryMaxMs: Math.max(e.AGENT_WEBHOOK_RETRY_MAX_MS, e.AGENT_WEBHOOK_RETRY_BASE_MS),
          concurrency: e.AGENT_WEBHOOK_CONCURRENCY,
        }
      : undefined,
  };
}

/**
 * The WhatsApp numbers: EVOLUTION_INSTANCE_NAME (one) or EVOLUTION_INSTANCES (several), each with
 * its overrides; without EVOLUTION_API_URL, the one dry-run number. Every problem names its key.
 */
function readInstances(
  env: Record<string, string | undefined>,
  e: {
    EVOLUTION_API_URL?: string;
    EVOLUTION_API_KEY?: string;
    EVOLUTION_INSTANCE_NAME?: string;
    EVOLUTION_INSTANCES?: string;
    SEND_RATE_PER_MINUTE: number;
    SEND_DAILY_CAP: number;
  },
  problems: string[],
): { evolution: EvolutionInstance[]; numbers: WhatsappNumberConfig[] } {
  const names = e.EVOLUTION_INSTANCES
    ? e.EVOLUTION_INSTANCES.split(',').map((n) => n.trim()).filter(Boolean)
    : e.EVOLUTION_INSTANCE_NAME
      ? [e.EVOLUTION_INSTANCE_NAME]
      : [];
  const before = problems.length;
  if (e.EVOLUTION_INSTANCES && e.EVOLUTION_INSTANCE_NAME) {
    problems.push('EVOLUTION_INSTANCES: set either EVOLUTION_INSTANCE_NAME (one number) or EVOLUTION_INSTANCES (several), not both');
  }
  if (e.EVOLUTION_INSTANCES !== undefined && names.length === 0) problems.push('EVOLUTION_INSTANCES: must list at least one instance name');
  for (const name of names) {
    if (!INSTANCE_NAME.test(name)) problems.push(`EVOLUTION_INSTANCES: "${name}" is not an instance name (letters, digits, . _ -, at most 64)`);
  }
  const envNames = names.map(instanceEnvName);
  envNames.forEach((n, i) => {
    if (envNames.indexOf(n) !== i) problems.push(`EVOLUTION_INSTANCES: "${names[i]}" is listed twice (or spelled like another once in capitals)`);
  });
  // Per-instance settings: each must belong to a configured instance, and hold a valid value.
  const overrides = new Map<string, Partial<Record<(typeof INSTANCE_OVERRIDES)[number], string>>>();
  for (const [key, raw] of Object.entries(env)) {
    const match = /^EVOLUTION_INSTANCE_(.+)_(API_KEY|URL|RATE_PER_MINUTE|DAILY_CAP)$/.exec(key);
    if (!match || raw === undefined || raw.trim() === '') continue;
    const [, who, what] = match as unknown as [string, string, (typeof INSTANCE_OVERRIDES)[number]];
    if (!envNames.includes(who)) {
      problems.push(`${key}: no instance ${who} in ${e.EVOLUTION_INSTANCES ? `EVOLUTION_INSTANCES (${envNames.join(', ')})` : 'EVOLUTION_INSTANCES (per-instance settings need it)'}`);
      continue;
    }
    if (!overrides.has(who)) overrides.set(who, {});
    overrides.get(who)![what] = raw.trim();
  }
  const dryRun = { evolution: [], numbers: [{ name: 'dry-run', ratePerMinute: e.SEND_RATE_PER_MINUTE, dailyCap: e.SEND_DAILY_CAP }] };
  if (!e.EVOLUTION_API_URL) return dryRun; // the dry-run transport: one number, whatever names are set
  if (!e.EVOLUTION_API_KEY && names.every((n) => !overrides.get(instanceEnvName(n))?.API_KEY)) {
    problems.push('EVOLUTION_API_KEY: required when EVOLUTION_API_URL is set');
  }
  if (names.length === 0) problems.push('EVOLUTION_INSTANCE_NAME: required when EVOLUTION_API_URL is set (or EVOLUTION_INSTANCES for several numbers)');
  const evolution: EvolutionInstance[] = [];
  const numbers: WhatsappNumberConfig[] = [];
  names.forEach((name, i) => {
    const own = overrides.get(envNames[i]!) ?? {};
    const prefix = `EVOLUTION_INSTANCE_${envNames[i]}_`;
    const number = (suffix: 'RATE_PER_MINUTE' | 'DAILY_CAP', max: number, fallback: number) => {
      const value = own[suffix];
      if (value === undefined) return fallback;
      const parsed = int(0, max).safeParse(value);
      if (!parsed.success) {
        problems.push(`${prefix}${suffix}: must be a whole number from 0 to ${max}`);
        return fallback;
      }
      return parsed.data;
    };
    if (own.URL && !url(['http:', 'https:']).safeParse(own.URL).success) problems.push(`${prefix}URL: must be a URL (http: or https:)`);
    const apiKey = own.API_KEY ?? e.EVOLUTION_API_KEY;
    if (!apiKey && e.EVOLUTION_API_KEY === undefined && names.some((n) => overrides.get(instanceEnvName(n))?.API_KEY)) {
      problems.push(`${prefix}API_KEY: required for ${name} (no EVOLUTION_API_KEY to fall back on)`);
    }
    evolution.push({ name, url: (own.URL ?? e.EVOLUTION_API_URL!).replace(/\/+$/, ''), apiKey: apiKey ?? '' });
    numbers.push({ name, ratePerMinute: number('RATE_PER_MINUTE', 100_000, e.SEND_RATE_PER_MINUTE), dailyCap: number('DAILY_CAP', 10_000_000, e.SEND_DAILY_CAP) });
  });
  if (problems.length > before) return dryRun;
  return { evolution, numbers };
}

/** `host:port,host:port` (IPv6 hosts in brackets: `[::1]:26379`). */
export function parseEndpoints(list: string): RedisEndpoint[] | null {
  const endpoints: RedisEndpoint[] = [];
  for (const item of list.split(',').map((part) => part.trim()).filter(Boolean)) {
    const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(item);
    const port = match ? Number(match[3]) : NaN;
    if (!match || port < 1 || port > 65535) return null;
    endpoints.push({ host: match[1] ?? match[2]!, port });
  }
  return endpoints.length > 0 ? endpoints : null;
}

/**
 * BullMQ on a Cluster needs every key of a queue in one slot: the prefix must hold a hash tag,
 * i.e. the part between its first `{` and the next `}` is not empty (`{followups}`).
 */
export function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  const close = open === -1 ? -1 : prefix.indexOf('}', open + 1);
  return close > open + 1;
}

/**
 * `redis+sentinel://[user:password@]host:port[,host:port…]/<master name>[/<db>]`: the user and
 * password are the data nodes' (the sentinels' own password is REDIS_SENTINEL_PASSWORD).
 */
function parseSentinelUrl(value: string): { sentinels: RedisEndpoint[]; name: string; username?: string; password?: string; db?: number } | null {
  const match = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/]+)\/([^/]+)(?:\/(\d+))?\/?$/.exec(value);
  if (!match) return null;
  const sentinels = parseEndpoints(match[3]!);
  if (!sentinels) return null;
  const decode = (part: string | undefined) => (part ? decodeURIComponent(part) : undefined);
  return { sentinels, name: decodeURIComponent(match[4]!), username: decode(match[1]), password: decode(match[2]), db: match[5] ? Number(match[5]) : undefined };
}

type RedisEnv = {
  REDIS_URL?: string;
  REDIS_SENTINELS?: string;
  REDIS_SENTINEL_NAME?: string;
  REDIS_SENTINEL_PASSWORD?: string;
  REDIS_CLUSTER_NODES?: string;
  REDIS_USERNAME?: string;
  REDIS_PASSWORD?: string;
  QUEUE_PREFIX: string;
};

function readRedisConnection(e: RedisEnv, problems: string[]): RedisConnectionConfig | undefined {
  const url = e.REDIS_URL;
  const sentinelUrl = url?.startsWith('redis+sentinel:') ? url : undefined;
  const given = [url && 'REDIS_URL', e.REDIS_SENTINELS && 'REDIS_SENTINELS', e.REDIS_CLUSTER_NODES && 'REDIS_CLUSTER_NODES'].filter(Boolean);
  if (given.length > 1) {
    problems.push(`REDIS_URL: set only one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES (got ${given.join(', ')})`);
    return undefined;
  }
  if (url && !sentinelUrl && (e.REDIS_USERNAME || e.REDIS_PASSWORD)) {
    problems.push('REDIS_PASSWORD: with a plain REDIS_URL, put the user and password in the URL (redis://user:password@host:6379)');
  }
  if (e.REDIS_SENTINEL_NAME && !e.REDIS_SENTINELS && !sentinelUrl) problems.push('REDIS_SENTINEL_NAME: needs REDIS_SENTINELS');
  if (e.REDIS_SENTINEL_PASSWORD && !e.REDIS_SENTINELS && !sentinelUrl) problems.push('REDIS_SENTINEL_PASSWORD: needs REDIS_SENTINELS or a redis+sentinel:// REDIS_URL');
  if (sentinelUrl) {
    const parsed = parseSentinelUrl(sentinelUrl);
    if (!parsed) {
      problems.push('REDIS_URL: must be redis+sentinel://[user:password@]host:port[,host:port…]/<master name>[/<db>]');
      return undefined;
    }
    return {
      mode: 'sentinel',
      ...parsed,
      username: parsed.username || e.REDIS_USERNAME,
      password: parsed.password || e.REDIS_PASSWORD,
      sentinelPassword: e.REDIS_SENTINEL_PASSWORD,
    };
  }
  if (url) return { mode: 'standalone', url };
  if (e.REDIS_SENTINELS) {
    const sentinels = parseEndpoints(e.REDIS_SENTINELS);
    if (!sentinels) problems.push('REDIS_SENTINELS: must be host:port,host:port… (the sentinels, usually port 26379)');
    if (!e.REDIS_SENTINEL_NAME) problems.push("REDIS_SENTINEL_NAME: required with REDIS_SENTINELS (the master's name in `sentinel monitor <name> …`)");
    if (!sentinels || !e.REDIS_SENTINEL_NAME) return undefined;
    return {
      mode: 'sentinel',
      sentinels,
      name: e.REDIS_SENTINEL_NAME,
      sentinelPassword: e.REDIS_SENTINEL_PASSWORD,
      username: e.REDIS_USERNAME,
      password: e.REDIS_PASSWORD,
    };
  }
  if (e.REDIS_CLUSTER_NODES) {
    const nodes = parseEndpoints(e.REDIS_CLUSTER_NODES);
    if (!nodes) problems.push('REDIS_CLUSTER_NODES: must be host:port,host:port… (any of the cluster\'s nodes)');
    if (!hasHashTag(e.QUEUE_PREFIX)) {
      problems.push(
        `QUEUE_PREFIX: must contain a Redis Cluster hash tag, e.g. {followups}, when REDIS_CLUSTER_NODES is set (BullMQ needs all of a queue's keys in one slot; got "${e.QUEUE_PREFIX}")`,
      );
    }
    if (!nodes || !hasHashTag(e.QUEUE_PREFIX)) return undefined;
    return { mode: 'cluster', nodes, username: e.REDIS_USERNAME, password: e.REDIS_PASSWORD };
  }
  if (e.REDIS_USERNAME || e.REDIS_PASSWORD) problems.push('REDIS_PASSWORD: needs REDIS_SENTINELS or REDIS_CLUSTER_NODES');
  return undefined;
}
