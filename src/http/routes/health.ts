/**
 * Liveness and readiness. Readiness fails (503) only when the database is down:
 * PostgreSQL is the source of truth and nothing works without it. Everything
 * else is "degraded" but still ready, because the API can go on scheduling:
 * without Redis the relay runs due follow-ups itself (direct mode), and a paused
 * sending gate holds follow-ups back without losing any.
 */
import type { Context } from '../../context.js';
import type { OperatorPause, PauseState } from '../../followups/sending-gate.js';
import { countAgentOutbox } from '../../forwarding/agent-outbox.js';
import { makeBearerMatcher } from '../auth.js';
import type { QueueState } from '../../queue/queue-link.js';
import { z } from 'zod';
import { answer } from '../openapi.js';
import type { RouteModule } from '../route-module.js';
import { TimeoutError, withTimeout } from '../../timeout.js';

export const READY_DATABASE_TIMEOUT_MS = 2_000;


type DatabaseCheck = { status: 'up'; latencyMs: number } | { status: 'down'; reason: 'timeout' | 'unreachable' };
type QueueCheck =
  | { status: 'direct' }
  | ({ status: QueueState['status']; note?: string } & Omit<QueueState, 'status'>);
type SendingCheck =
  | (({ status: 'active' } | ({ status: 'paused' } & Omit<PauseState, 'paused'>)) & { operatorPauses?: OperatorPause[] })
  | { status: 'unknown' };

async function checkDatabase(ctx: Context): Promise<DatabaseCheck> {
  const started = performance.now();
  try {
    await withTimeout(ctx.db.query('SELECT 1'), READY_DATABASE_TIMEOUT_MS, 'SELECT 1');
    return { status: 'up', latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    // The cause goes to the log; this endpoint is public and says nothing internal.
    ctx.log.warn({ err: error }, 'readiness: database check failed');
    return { status: 'down', reason: error instanceof TimeoutError ? 'timeout' : 'unreachable' };
  }
}

/**
 * From what the queue link knows now (its connection's state and its last inspection, a few
 * seconds old at most), never a call to Redis: answers at once even while Redis hangs.
 */
function checkQueue(ctx: Context): QueueCheck {
  if (ctx.queue === null) return { status: 'direct' };
  const state = ctx.queue.state();
  if (state.status === 'up') return state;
  const note =
    state.status === 'misconfigured'
      ? 'Redis refuses this configuration (see cause); the relay runs due follow-ups itself (direct mode) until it is fixed'
      : state.status === 'down'
        ? 'the relay runs due follow-ups itself (direct mode) until the queue returns'
        : 'Redis refuses writes (see cause); the relay runs due follow-ups itself (direct mode) meanwhile';
  return { ...state, note };
}

async function checkSending(ctx: Context, database: DatabaseCheck): Promise<SendingCheck> {
  if (database.status === 'down') return { status: 'unknown' }; // the gate lives in the database
  try {
    // An operator's pause for everything makes it paused (reason operator_paused); per-campaign ones are listed.
    const [{ paused, ...rest }, operatorPauses] = await Promise.all([ctx.gate.state(), ctx.gate.operatorPauses()]);
    const listed = operatorPauses.length > 0 ? { operatorPauses } : {};
    return paused ? { status: 'paused', ...rest, ...listed } : { status: 'active', ...listed };
  } catch (error) {
    ctx.log.warn({ err: error }, 'readiness: sending gate check failed');
    return { status: 'unknown' };
  }
}

type WebhooksCheck =
  | { status: 'flowing' | 'not_watched' | 'unknown'; lastWebhookAt?: Date }
  | { status: 'silent'; reason?: string; since?: Date; lastWebhookAt?: Date; note: string };

/** Whether Evolution's webhooks still arrive (webhook-silence.ts); silent = degraded: replies may go unseen. */
async function checkWebhooks(ctx: Context, database: DatabaseCheck): Promise<WebhooksCheck> {
  if (!ctx.webhookSilence) return { status: 'not_watched' };
  if (database.status === 'down') return { status: 'unknown' };
  try {
    const { silent, ...rest } = await ctx.webhookSilence.state();
    return silent
      ? { status: 'silent', ...rest, note: 'every follow-up is checked with WhatsApp (findMessages) before it is sent' }
      : { status: 'flowing', lastWebhookAt: rest.lastWebhookAt };
  } catch (error) {
    ctx.log.warn({ err: error }, 'readiness: webhook silence check failed');
    return { status: 'unknown' };
  }
}

/**
 * Events for the agent, when forwarding is configured: informative only (a parked event is
 * the agent's problem to look at, not a reason to take this service out of rotation).
 */
async function checkAgentOutbox(ctx: Context, database: DatabaseCheck): Promise<{ pending: number; parked: number } | { status: 'unknown' } | null> {
  if (!ctx.config.agentWebhook) return null;
  if (database.status === 'down') return { status: 'unknown' };
  try {
    return await withTimeout(countAgentOutbox(ctx.db), READY_DATABASE_TIMEOUT_MS, 'counting the agent outbox');
  } catch {
    return { status: 'unknown' };
  }
}

type NumbersCheck = {
  status: 'ok' | 'degraded' | 'unknown';
  numbers?: Array<{ name: string; state: string; reason: string | null; sentToday: number | null; dailyCap: number }>;
};

/** Each configured WhatsApp number's state; degraded when one is disconnected (paused by WhatsApp) or none is active. */
async function checkNumbers(ctx: Context, database: DatabaseCheck): Promise<NumbersCheck> {
  if (database.status === 'down') return { status: 'unknown' };
  try {
    const rows = [...(await ctx.numbers.rows()).values()].filter((r) => r.configured);
    const now = ctx.clock.now();
    const numbers = await Promise.all(
      rows.map(async (r) => ({ name: r.name, state: r.state, reason: r.state_reason, sentToday: await ctx.numbers.sentToday(r.name, now), dailyCap: r.daily_cap })),
    );
    const degraded = rows.some((r) => r.state === 'paused_whatsapp') || (rows.length > 0 && !rows.some((r) => r.state === 'active'));
    return { status: degraded ? 'degraded' : 'ok', numbers };
  } catch (error) {
    ctx.log.warn({ err: error }, 'readiness: numbers check failed');
    return { status: 'unknown' };
  }
}

export const healthRoutes: RouteModule = {
  name: 'health',
  auth: 'none',
  async plugin(app, { ctx }) {
    const live = {
      summary: 'Liveness: the process answers (no dependency is called)',
      operationId: 'live',
      answers: { 200: answer('Alive', z.object({ status: z.literal('ok') })) },
    };
    app.get('/health/live', { schema: live }, async () => ({ status: 'ok' }));
    // The details (instance state, Evolution's words, queue depth, transport) tell an attacker
    // much; an orchestrator needs only the status code. Details need a token.
    const mayReadDetails = makeBearerMatcher([ctx.config.apiToken, ctx.config.metrics.token]);

    const readiness = z.object({
      status: z.enum(['ok', 'degraded', 'down']),
      checks: z
        .looseObject({
          numbers: z
            .object({
              status: z.enum(['ok', 'degraded', 'unknown']),
              numbers: z
                .array(
                  z.object({
                    name: z.string(),
                    state: z.enum(['active', 'paused_whatsapp', 'paused_operator', 'retired']),
                    reason: z.string().nullable(),
                    sentToday: z.number().int().nullable(),
                    dailyCap: z.number().int(),
                  }),
                )
                .optional(),
            })
            .optional()
            .describe('each configured WhatsApp number; degraded when one is disconnected (paused_whatsapp) or none is active'),
          agentOutbox: z
            .union([z.object({ pending: z.number().int(), parked: z.number().int() }), z.object({ status: z.literal('unknown') })])
            .optional()
            .describe('with AGENT_WEBHOOK_URL: events for the agent waiting and parked (GET /v1/agent/outbox)'),
        })
        .optional()
        .describe('with a token only: database, queue, sending, webhooks, numbers, transport, roles and (with AGENT_WEBHOOK_URL) agentOutbox, each with its status'),
    });
    const ready = {
      summary: 'Readiness: database, queue (or direct mode), sending gate, WhatsApp numbers, transport',
      description:
        '503 only when the database is down; a queue that is down or paused sending is "degraded" (200). ' +
        'Without a token the answer is `{status}` only; `checks` need Authorization: Bearer <FOLLOWUPS_API_TOKEN or METRICS_TOKEN>.',
      operationId: 'ready',
      answers: { 200: answer('Ready (ok or degraded)', readiness), 503: answer('The database is down', readiness) },
    };
    app.get('/health/ready', { schema: ready }, async (request, reply) => {
      const queue = checkQueue(ctx);
      const database = await checkDatabase(ctx);
      const details = mayReadDetails(request.headers.authorization);
      // Only for a caller who sees the details: an anonymous probe costs no count.
      const [sending, webhooks, numbers, agentOutbox] = await Promise.all([
        checkSending(ctx, database),
        checkWebhooks(ctx, database),
        checkNumbers(ctx, database),
        details ? checkAgentOutbox(ctx, database) : null,
      ]);
      // The relay and worker of this process: one that fails turn after turn sends nothing.
      const roles = ctx.roleHealth.read();
      const rolesFailing = Object.values(roles).some((r) => r.status === 'failing');
      const status =
        database.status === 'down'
          ? 'down'
          : (queue.status !== 'up' && queue.status !== 'direct') ||
              ('warnings' in queue && queue.warnings.length > 0) ||
              sending.status !== 'active' ||
              webhooks.status === 'silent' ||
              numbers.status === 'degraded' ||
              rolesFailing
            ? 'degraded'
            : 'ok';
      return reply
        .code(status === 'down' ? 503 : 200)
        .header('cache-control', 'no-store')
        .send(details ? { status, checks: { database, queue, sending, webhooks, numbers, transport: { name: ctx.transport.name }, roles, ...(agentOutbox ? { agentOutbox } : {}) } } : { status });
    });
  },
};
