/**
 * The only reader of the environment. `loadConfig(process.env)` validates every
 * variable at once and throws a ConfigError listing each problem, so an operator
 * fixes a deployment in one pass instead of one crash per variable.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { isTimeZone } from './policy/zoned-time.js';

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
  HOST: z.string().min(1).default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: flag.optional(),

  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  DATA_DIR: z.string().min(1).default('./.followups-data'),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  MIGRATE_ON_START: flag.default(true),

  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  QUEUE_NAME: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default('followup_tasks'),
  QUEUE_PREFIX: z.string().min(1).default('{followups}'),
  REDIS_COMMAND_TIMEOUT_MS: int(50, 60_000).default(2_000),
  // Follow-ups per queue job: the relay publishes its batch in chunks of this size.
  QUEUE_JOB_SIZE: int(1, 1_000).default(20),

  EVOLUTION_API_URL: url(['http:', 'https:']).optional(),
  EVOLUTION_API_KEY: z.string().min(1).optional(),
  EVOLUTION_INSTANCE_NAME: z.string().min(1).optional(),

  FOLLOWUPS_API_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  WEBHOOK_SECRET: z.string().min(8, 'must be at least 8 characters').optional(),
  WEBHOOK_JWT_KEY: z.string().min(8, 'must be at least 8 characters').optional(),

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
});

/** Every setting's name, as the schema reads it (`.env.example` documents each one, tested). */
export const CONFIG_KEYS: readonly string[] = Object.keys(schema.shape);

export type Config = {
  env: string;
  port: number;
  host: string;
  logLevel: string;
  logPretty: boolean;
  database: { url?: string; dataDir: string; poolSize: number; migrateOnStart: boolean };
  redis: { url?: string; queueName: string; prefix: string; commandTimeoutMs: number; jobSize: number };
  evolution?: { url: string; apiKey: string; instance: string };
  apiToken: string;
  /** True when the token is the documented development default (embedded mode only). */
  apiTokenIsDefault: boolean;
  webhook: { secret?: string; jwtKey?: string };
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
};

/** The token `npm start` accepts on the embedded default, documented in the README. */
export const DEV_API_TOKEN = 'dev-token-change-me';

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
  if (e) {
    if (e.EVOLUTION_API_URL) {
      if (!e.EVOLUTION_API_KEY) problems.push('EVOLUTION_API_KEY: required when EVOLUTION_API_URL is set');
      if (!e.EVOLUTION_INSTANCE_NAME) problems.push('EVOLUTION_INSTANCE_NAME: required when EVOLUTION_API_URL is set');
    }
    if (e.LLM_BASE_URL && !e.LLM_MODEL) problems.push('LLM_MODEL: required when LLM_BASE_URL is set');
    if (e.DATABASE_URL && !e.FOLLOWUPS_API_TOKEN) {
      problems.push('FOLLOWUPS_API_TOKEN: required when DATABASE_URL is set (the development token is only for the embedded default)');
    }
    if (e.BUSINESS_HOURS_START >= e.BUSINESS_HOURS_END) {
      problems.push('BUSINESS_HOURS_START: must be earlier than BUSINESS_HOURS_END');
    }
    // A send may take the longest typing delay (8 s) plus SEND_TIMEOUT_MS, then the reconcile wait.
    const longestTyping = e.TYPING_DELAY_ENABLED ? 8_000 : 0;
    if (e.LEASE_SECONDS * 1000 <= e.SEND_TIMEOUT_MS + longestTyping + e.RECONCILE_DELAY_MS) {
      problems.push('LEASE_SECONDS: must be longer than SEND_TIMEOUT_MS + 8 s of typing delay + RECONCILE_DELAY_MS, or a slow send would be swept while in flight');
    }
  }
  if (problems.length > 0 || !e) throw new ConfigError(problems);

  const llmLimits = { timeoutMs: e.LLM_TIMEOUT_MS, maxChars: e.LLM_MAX_CHARS, historyMessages: e.LLM_HISTORY_MESSAGES };
  return {
    env: e.NODE_ENV ?? 'development',
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY ?? false,
    database: { url: e.DATABASE_URL, dataDir: e.DATA_DIR, poolSize: e.DATABASE_POOL_SIZE, migrateOnStart: e.MIGRATE_ON_START },
    redis: { url: e.REDIS_URL, queueName: e.QUEUE_NAME, prefix: e.QUEUE_PREFIX, commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS, jobSize: e.QUEUE_JOB_SIZE },
    evolution: e.EVOLUTION_API_URL
      ? { url: e.EVOLUTION_API_URL.replace(/\/+$/, ''), apiKey: e.EVOLUTION_API_KEY!, instance: e.EVOLUTION_INSTANCE_NAME! }
      : undefined,
    apiToken: e.FOLLOWUPS_API_TOKEN ?? DEV_API_TOKEN,
    apiTokenIsDefault: !e.FOLLOWUPS_API_TOKEN,
    webhook: { secret: e.WEBHOOK_SECRET, jwtKey: e.WEBHOOK_JWT_KEY },
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
    },
    worker: { concurrency: e.WORKER_CONCURRENCY, lockMs: e.WORKER_LOCK_SECONDS * 1000 },
    relay: { batchSize: e.RELAY_BATCH_SIZE, maxSleepMs: e.RELAY_MAX_SLEEP_MS },
    sendTimeoutMs: e.SEND_TIMEOUT_MS,
    sendBudgetMs: e.SEND_TIMEOUT_MS + (e.TYPING_DELAY_ENABLED ? 8_000 : 0) + e.RECONCILE_DELAY_MS,
    leaseMs: e.LEASE_SECONDS * 1000,
    maxSendAttempts: e.MAX_SEND_ATTEMPTS,
    retryBaseMs: e.RETRY_BASE_SECONDS * 1000,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    reconcileDelayMs: e.RECONCILE_DELAY_MS,
    pauseRetryMs: e.PAUSE_RETRY_SECONDS * 1000,
  };
}
