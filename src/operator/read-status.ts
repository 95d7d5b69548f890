/**
 * `followups status`: is the engine moving? Counts by status, what comes due in the
 * next hour, the oldest overdue pending follow-up, the queue's depth and mode,
 * whether sending is paused and why (the sending gate), and today's sends against
 * SEND_DAILY_CAP. PostgreSQL is read as the truth; Redis only for the queue depth.
 *
 * Today's sends are counted from the executed follow-ups (sent_at since midnight in
 * BUSINESS_TIMEZONE, the day the daily cap counts): what really went out, not the
 * limiter's reservations. Like the counts by status it is one scan of follow_ups,
 * fine for an operator's occasional look.
 */
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Db } from '../db/db.js';
import type { SendingGate } from '../followups/sending-gate.js';
import type { Numbers } from '../numbers/whatsapp-numbers.js';
import type { QueueLink } from '../queue/queue-link.js';
import { listNumbers, type WhatsappNumber } from '../numbers/whatsapp-numbers.js';
import type { FollowupStatus } from '../followups/followup.js';
import { readStats, type Stats } from '../followups/read-stats.js';
import { instantOf, wallTimeIn } from '../time/zoned-time.js';
import { countAgentOutbox } from '../forwarding/agent-outbox.js';

export interface StatusReport {
  at: string;
  byStatus: Record<FollowupStatus, number>;
  pending: {
    /** Pending follow-ups whose due time has passed (the relay has not taken them yet). */
    overdue: number;
    /** Pending follow-ups due within the next hour. */
    dueNextHour: number;
    oldestOverdue: { id: string; dueAt: string; overdueSeconds: number; deferReason: string | null } | null;
  };
  queue: {
    mode: 'redis' | 'direct';
    /** Null in direct mode, or when Redis does not answer (the relay then runs follow-ups itself). */
    depth: { waiting: number; active: number; delayed: number } | null;
    reachable: boolean | null;
  };
  sending: { paused: boolean; reason: string | null; detail: string | null; since: string | null };
  /** Events for the agent (AGENT_WEBHOOK_URL): forwarding on in this configuration, waiting, parked. */
  agentOutbox: { forwarding: boolean; pending: number; parked: number };
  today: { since: string; timeZone: string; sent: number; dailyCap: number | null };
  /** With several WhatsApp numbers (EVOLUTION_INSTANCES): each one's state and sends today against its cap. */
  numbers?: WhatsappNumber[];
}

export async function readStatus(
  ctx: { db: Db; clock: Clock; config: Config; gate: SendingGate; queue: QueueLink | null } & { numbers?: Numbers },
  options: { readCounts?: () => Promise<Stats> } = {},
): Promise<StatusReport> {
  const now = ctx.clock.now();
  const timeZone = ctx.config.sending.timeZone;
  const wall = wallTimeIn(now, timeZone);
  const midnight = instantOf({ year: wall.year, month: wall.month, day: wall.day }, timeZone);

  const [stats, pending, oldest, sent, pause, depth, outbox] = await Promise.all([
    // The dashboard passes the counts it keeps in memory (a count of the whole table per page view would not stay fast).
    options.readCounts ? options.readCounts() : readStats(ctx.db),
    // Both read the partial index of pending rows by due time.
    ctx.db.query<{ overdue: number; due_next_hour: number }>(
      `SELECT count(*) FILTER (WHERE due_at <= $1::timestamptz)::int AS overdue,
              count(*) FILTER (WHERE due_at > $1::timestamptz)::int AS due_next_hour
         FROM follow_ups
        WHERE status = 'pending' AND due_at <= $1::timestamptz + interval '1 hour'`,
      [now],
    ),
    ctx.db.query<{ id: string; due_at: Date; defer_reason: string | null }>(
      `SELECT id, due_at, defer_reason FROM follow_ups
        WHERE status = 'pending' AND due_at <= $1::timestamptz ORDER BY due_at LIMIT 1`,
      [now],
    ),
    ctx.db.query<{ sent: number }>(
      `SELECT count(*)::int AS sent FROM follow_ups WHERE status = 'executed' AND sent_at >= $1::timestamptz`,
      [midnight],
    ),
    ctx.gate.state(),
    ctx.queue ? ctx.queue.depth() : Promise.resolve(null),
    countAgentOutbox(ctx.db),
  ]);
  const counts = pending.rows[0];
  const first = oldest.rows[0];
  return {
    at: now.toISOString(),
    byStatus: stats.byStatus,
    pending: {
      overdue: counts?.overdue ?? 0,
      dueNextHour: counts?.due_next_hour ?? 0,
      oldestOverdue: first
        ? {
            id: first.id,
            dueAt: new Date(first.due_at).toISOString(),
            overdueSeconds: Math.round((now.getTime() - new Date(first.due_at).getTime()) / 1000),
            deferReason: first.defer_reason,
          }
        : null,
    },
    queue: { mode: ctx.queue ? 'redis' : 'direct', depth, reachable: ctx.queue ? depth !== null : null },
    sending: { paused: pause.paused, reason: pause.reason ?? null, detail: pause.detail ?? null, since: pause.since ?? null },
    today: { since: midnight.toISOString(), timeZone, sent: sent.rows[0]?.sent ?? 0, dailyCap: ctx.config.sending.dailyCap || null },
    agentOutbox: { forwarding: ctx.config.agentWebhook !== undefined, ...outbox },
    ...(ctx.numbers?.several ? { numbers: (await listNumbers(ctx.numbers, ctx.db, now)).filter((n) => n.configured) } : {}),
  };
}

export function formatStatus(s: StatusReport): string {
  const counts = Object.entries(s.byStatus).map(([status, n]) => `${status} ${n}`).join(', ');
  const oldest = s.pending.oldestOverdue
    ? `${s.pending.oldestOverdue.id}, due ${s.pending.oldestOverdue.dueAt} (${formatSeconds(s.pending.oldestOverdue.overdueSeconds)} ago${
        s.pending.oldestOverdue.deferReason ? `, deferred: ${s.pending.oldestOverdue.deferReason}` : ''
      })`
    : 'none';
  const queue =
    s.queue.mode === 'direct'
      ? 'direct mode (no REDIS_URL): the relay sends follow-ups itself'
      : s.queue.depth
        ? `redis: ${s.queue.depth.waiting} waiting, ${s.queue.depth.active} active, ${s.queue.depth.delayed} delayed`
        : 'redis: NOT ANSWERING (the relay runs follow-ups directly meanwhile)';
  const sending = s.sending.paused
    ? `PAUSED: ${s.sending.reason}${s.sending.detail ? ` (${s.sending.detail})` : ''}${s.sending.since ? ` since ${s.sending.since}` : ''}`
    : 'on';
  const cap = s.today.dailyCap === null ? 'no daily cap' : `of ${s.today.dailyCap} (${Math.round((100 * s.today.sent) / s.today.dailyCap)}%)`;
  return [
    `follow-ups     ${counts}`,
    `overdue        ${s.pending.overdue} pending past their due time; oldest: ${oldest}`,
    `next hour      ${s.pending.dueNextHour} due`,
    `queue          ${queue}`,
    `sending        ${sending}`,
    `sent today     ${s.today.sent} ${cap} (since ${s.today.since}, ${s.today.timeZone})`,
    ...(s.agentOutbox.forwarding || s.agentOutbox.pending + s.agentOutbox.parked > 0
      ? [
          `agent events   ${s.agentOutbox.pending} waiting, ${s.agentOutbox.parked} parked${
            s.agentOutbox.parked > 0 ? ' (GET /v1/agent/outbox?status=parked; retry: POST /v1/agent/outbox/retry)' : ''
          }`,
        ]
      : []),
    ...(s.numbers ?? []).map(
      (n) =>
        `number         ${n.name}: ${n.state}${n.stateReason ? ` (${n.stateReason})` : ''}, sent today ${n.sentToday ?? '?'} of ${n.dailyCap === 0 ? 'no cap' : n.dailyCap}, ${n.leads} leads`,
    ),
  ].join('\n');
}

function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3_600)} h`;
}
