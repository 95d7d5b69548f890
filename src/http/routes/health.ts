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
import { json } from '../openapi.js';
import type { RouteModule } from '../route-module.js';

export const READY_DATABASE_TIMEOUT_MS = 2_000;

class Timeout extends Error {}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

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
    await within(ctx.db.query('SELECT 1'), READY_DATABASE_TIMEOUT_MS);
    return { status: 'up', latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    // The cause goes to the log; this endpoint is public and says nothing internal.
    ctx.log.warn({ err: error }, 'readiness: database check failed');
    return { status: 'down', reason: error instanceof Timeout ? 'timeout' : 'unreachable' };
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
    return await within(countAgentOutbox(ctx.db), READY_DATABASE_TIMEOUT_MS);
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
    app.get('/health/live', async () => ({ status: 'ok' }));
    // The details (instance state, Evolution's words, queue depth, transport) tell an attacker
    // much; an orchestrator needs only the status code. Details need a token.
    const mayReadDetails = makeBearerMatcher([ctx.config.apiToken, ctx.config.metrics.token]);

    app.get('/health/ready', async (request, reply) => {
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
  openapi: {
    paths: {
      '/health/live': {
        get: {
          summary: 'Liveness: the process answers (no dependency is called)',
          operationId: 'live',
          responses: { '200': json({ type: 'object', properties: { status: { const: 'ok' } } }, 'Alive') },
        },
      },
      '/health/ready': {
        get: {
          summary: 'Readiness: database, queue (or direct mode), sending gate, transport',
          description:
            '503 only when the database is down; a queue that is down or paused sending is "degraded" (200). ' +
            'Without a token the answer is `{status}` only; `checks` need Authorization: Bearer <FOLLOWUPS_API_TOKEN or METRICS_TOKEN>.',
          operationId: 'ready',
          responses: {
            '200': json({ $ref: '#/components/schemas/Readiness' }, 'Ready (ok or degraded)'),
            '503': json({ $ref: '#/components/schemas/Readiness' }, 'The database is down'),
          },
        },
      },
    },
    schemas: {
      Readiness: {
        type: 'object',
        required: ['status'],
        properties: {
          status: { type: 'string', enum: ['ok', 'degraded', 'down'] },
          checks: {
            type: 'object',
            properties: {
              database: { type: 'object', properties: { status: { enum: ['up', 'down'] }, latencyMs: { type: 'number' }, reason: { type: 'string' } } },
              queue: {
                type: 'object',
                properties: {
                  status: { enum: ['up', 'down', 'read_only', 'full', 'misconfigured', 'direct'] },
                  mode: { enum: ['standalone', 'sentinel', 'cluster'] },
                  cause: {
                    type: 'object',
                    description: "why the queue is not up: kind (auth, acl, wrong_server, cluster_redirect, read_only, full, unreachable) and Redis's own words",
                    properties: { kind: { type: 'string' }, message: { type: 'string' }, since: { type: 'string', format: 'date-time' } },
                  },
                  evictionPolicy: { type: ['string', 'null'], description: 'maxmemory-policy; anything but noeviction is a warning' },
                  warnings: { type: 'array', items: { type: 'string' } },
                  note: { type: 'string' },
                  depth: { type: ['object', 'null'], description: 'waiting, active, delayed jobs at checkedAt' },
                  checkedAt: { type: ['string', 'null'], format: 'date-time' },
                },
              },
              sending: {
                type: 'object',
                properties: {
                  status: { enum: ['active', 'paused', 'unknown'] },
                  reason: { type: 'string', description: 'e.g. evolution_unauthorized, whatsapp_disconnected, operator_paused' },
                  detail: { type: 'string', description: "the fault's message, or the operator's reason" },
                  since: { type: 'string', format: 'date-time' },
                  by: { type: 'string', description: 'who paused (operator_paused)' },
                  operatorPauses: {
                    type: 'array',
                    description: 'active operator pauses (POST /v1/sending/pause): for everything or per campaign; absent when there is none',
                    items: { type: 'object', properties: { scope: { type: 'string' }, campaign: { type: ['string', 'null'] }, reason: { type: 'string' }, who: { type: 'string' }, at: { type: 'string' } } },
                  },
                },
              },
              webhooks: {
                type: 'object',
                properties: {
                  status: { enum: ['flowing', 'silent', 'not_watched', 'unknown'] },
                  reason: { type: 'string', description: 'echoes_missing, no_webhooks' },
                  since: { type: 'string', format: 'date-time' },
                  lastWebhookAt: { type: 'string', format: 'date-time' },
                  note: { type: 'string' },
                },
              },
              numbers: {
                type: 'object',
                description: 'Each configured WhatsApp number; degraded when one is disconnected (paused_whatsapp) or none is active',
                properties: {
                  status: { enum: ['ok', 'degraded', 'unknown'] },
                  numbers: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: {
                        name: { type: 'string' },
                        state: { enum: ['active', 'paused_whatsapp', 'paused_operator', 'retired'] },
                        reason: { type: ['string', 'null'] },
                        sentToday: { type: ['integer', 'null'] },
                        dailyCap: { type: 'integer' },
                      },
                    },
                  },
                },
              },
              transport: { type: 'object', properties: { name: { type: 'string' } } },
              agentOutbox: {
                type: 'object',
                description: 'With AGENT_WEBHOOK_URL: events for the agent waiting and parked (GET /v1/agent/outbox)',
                properties: { pending: { type: 'integer' }, parked: { type: 'integer' }, status: { const: 'unknown' } },
              },
              roles: {
                type: 'object',
                description: "This process's relay and worker: `failing` after 3 turns in a row failed (makes the status degraded)",
                additionalProperties: {
                  type: 'object',
                  properties: {
                    status: { enum: ['ok', 'failing'] },
                    failures: { type: 'number' },
                    since: { type: 'string', format: 'date-time' },
                    reason: { enum: ['database_auth', 'database_unreachable', 'timeout', 'error'] },
                    code: { type: 'string' },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};
