/**
 * An API built on a test database for webhook and lead-action tests: fake clock,
 * a transport that records what it "sent", the Evolution fixtures, and helpers to
 * give a lead open follow-ups (optionally in an enrollment).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Campaign } from '../../src/campaigns/campaign.js';
import { makeFakeClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { type Context, type ContextOverrides, createContext } from '../../src/context.js';
import type { Db } from '../../src/db/db.js';
import { buildApp } from '../../src/http/build-app.js';
import { createLogger } from '../../src/log.js';
import type { Transport } from '../../src/whatsapp/transport.js';

export const TOKEN = 'test-token-123-abcdefghijkl';
export const SECRET = 'webhook-secret-123-abcdefghijkl';
export const JWT_KEY = 'evolution-jwt-key-123456';
export const bearer = { authorization: `Bearer ${TOKEN}` };
export const secretHeader = { 'x-webhook-secret': SECRET };

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'evolution');

export function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURES, name.endsWith('.json') ? name : `${name}.json`), 'utf8'));
}

export function webhookFixtureNames(): string[] {
  return readdirSync(FIXTURES).filter((f) => /^(messages|connection-update)-/.test(f));
}

export interface RecordingTransport extends Transport {
  sent: Array<{ number: string; text: string }>;
  checks: string[];
  invalid: Set<string>;
}

export function makeRecordingTransport(): RecordingTransport {
  let n = 0;
  const sent: Array<{ number: string; text: string }> = [];
  const checks: string[] = [];
  const invalid = new Set<string>();
  return {
    name: 'recording',
    sent,
    checks,
    invalid,
    async sendText({ number, text }) {
      sent.push({ number, text });
      n += 1;
      return { providerMessageId: `REC${String(n).padStart(8, '0')}` };
    },
    async findSent() {
      return null;
    },
    async checkNumber(number) {
      checks.push(number);
      return invalid.has(number) ? { exists: false } : { exists: true, jid: `${number}@s.whatsapp.net` };
    },
    async connectionState() {
      return 'open';
    },
  };
}

export function testCampaign(name: string, optOutConfirmation?: string): Campaign {
  return {
    name,
    file: `${name}.json`,
    persona: { name: 'Marina Campelo', role: 'SDR', voice: [] },
    rules: [],
    facts: { club: 'Náutico', programme: 'Sócio', plans: [], links: {}, notes: [] },
    optOutConfirmation,
    steps: [
      { step: 1, delayHours: 4, delayMs: 4 * 3_600_000, intent: 'check_in', goal: 'check in', variants: [{ withName: 'Oi {firstName}', withoutName: 'Oi' }, { withName: 'Opa {firstName}', withoutName: 'Opa' }] },
    ],
  };
}

export interface WebhookApp {
  ctx: Context;
  app: FastifyInstance;
  clock: ReturnType<typeof makeFakeClock>;
  transport: RecordingTransport;
  close(): Promise<void>;
}

export async function startWebhookApp(
  db: Db,
  options: { env?: Record<string, string | undefined>; start?: string; overrides?: ContextOverrides; logDestination?: { write(line: string): void } } = {},
): Promise<WebhookApp> {
  const clock = makeFakeClock(options.start ?? '2025-11-26T06:00:00.000Z');
  const transport = makeRecordingTransport();
  const config = loadConfig({
    DATABASE_URL: 'postgresql://unused@127.0.0.1/unused',
    FOLLOWUPS_API_TOKEN: TOKEN,
    ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_JWT_KEY: JWT_KEY,
    LOG_LEVEL: options.logDestination ? 'debug' : 'silent',
    TYPING_DELAY_ENABLED: 'false',
    ...options.env,
  });
  const log = createLogger({ level: config.logLevel, destination: options.logDestination });
  const ctx = await createContext(config, log, {
    db,
    queue: null,
    skipMigrations: true,
    clock,
    transport,
    campaigns: new Map([['nautico', testCampaign('nautico', 'Pronto, você não vai mais receber nossas mensagens. Obrigado!')]]),
    ...options.overrides,
  });
  const app = await buildApp(ctx);
  return {
    ctx,
    app,
    clock,
    transport,
    async close() {
      await app.close();
      await ctx.close();
    },
  };
}

/** A lead with `count` pending follow-ups, anchored and created at the clock's now; optionally in an active enrollment. */
export async function leadWithFollowups(
  db: Db,
  options: { phone: string; now: Date; count?: number; name?: string; enrollment?: string; statuses?: string[] },
): Promise<{ leadId: string; followupIds: string[]; enrollmentId: string | null }> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO leads (phone, name, created_at, updated_at) VALUES ($1, $2, $3, $3)
     ON CONFLICT (phone) DO UPDATE SET updated_at = EXCLUDED.updated_at RETURNING id`,
    [options.phone, options.name ?? null, options.now],
  );
  const leadId = rows[0]!.id;
  let enrollmentId: string | null = null;
  if (options.enrollment) {
    const e = await db.query<{ id: string }>(
      `INSERT INTO enrollments (lead_id, campaign, anchor_at, created_at, updated_at) VALUES ($1, $2, $3, $3, $3) RETURNING id`,
      [leadId, options.enrollment, options.now],
    );
    enrollmentId = e.rows[0]!.id;
  }
  const followupIds: string[] = [];
  const count = options.count ?? 2;
  for (let step = 1; step <= count; step++) {
    const status = options.statuses?.[step - 1] ?? 'pending';
    const due = new Date(options.now.getTime() + step * 4 * 3_600_000);
    const f = await db.query<{ id: string }>(
      `INSERT INTO follow_ups (lead_id, enrollment_id, campaign, step, message, due_at, planned_at, anchor_at, status, sent_text,
                               sending_started_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, CASE WHEN $8 = 'sending' THEN $5 END, CASE WHEN $8 = 'sending' THEN $7::timestamptz END, $7, $7)
       RETURNING id`,
      [leadId, enrollmentId, options.enrollment ?? null, options.enrollment ? step : null, `Passo ${step} para ${options.phone}`, due, options.now, status],
    );
    followupIds.push(f.rows[0]!.id);
  }
  return { leadId, followupIds, enrollmentId };
}

export async function followupsOf(db: Db, leadId: string) {
  const { rows } = await db.query<{ id: string; status: string; cancel_reason: string | null; step: number | null }>(
    'SELECT id, status, cancel_reason, step FROM follow_ups WHERE lead_id = $1 ORDER BY step NULLS LAST, created_at',
    [leadId],
  );
  return rows;
}
