/**
 * What the chaos run proves, checked against the database and the fake
 * Evolution's record of what really reached WhatsApp.
 *
 * "Nothing after stop", defined: the claim (`queued → sending`, the statement that
 * re-checks the lead) is the point of no return. A delivery violates the rule when
 * the claim that led to it COMMITTED after the lead's reply or opt-out (its row in
 * `messages`) committed. Commit times come from PostgreSQL itself
 * (`track_commit_timestamp`), so the order is exact: the claim locks the lead row
 * FOR SHARE and the reply updates it, so the two serialise, and a claim that commits
 * after the reply must have seen it. The brief's coarser reading — the claim event's
 * `at` against `messages.created_at` — is also counted (`claimAfterReplyStarted`):
 * `created_at` is the reply transaction's *start* (`now()`), so a claim that slipped
 * in while that transaction was still open shows up there without being a violation.
 */
import type { Db } from '../src/db/db.js';
import { type FakeDelivery, type FakeInbound, whatsappJid } from '../test/helpers/fake-evolution.js';
import type { PlannedLead } from './traffic.js';

export interface Violation {
  kind: string;
  followupId?: string;
  phone?: string;
  detail: string;
}

interface Row {
  id: string;
  phone: string;
  status: string;
  message: string | null;
  cancel_reason: string | null;
  last_error: string | null;
  provider_message_id: string | null;
  attempts: number;
  anchor_at: Date;
}

interface EventRow {
  follow_up_id: string;
  at: Date;
  committed_at: Date | null;
  from_status: string | null;
  to_status: string;
  reason: string | null;
  detail: unknown;
}

interface InboundRow {
  phone: string;
  /** The message's own time (WhatsApp's timestamp). */
  at: Date;
  created_at: Date;
  committed_at: Date | null;
  text: string | null;
}

/** Failure reasons that are not a bug: a permanent refusal, or an ambiguous send that could not be reconciled. */
const ALLOWED_FAILED = new Set(['ambiguous_send', 'rejected']);

export interface CheckResult {
  violations: Violation[];
  figures: Record<string, unknown>;
  /** Follow-up ids worth a printed history. */
  suspects: string[];
}

export async function checkRun(
  db: Db,
  options: {
    leads: PlannedLead[];
    delivered: FakeDelivery[];
    repliesWired: boolean;
    /** What fans wrote, as the fake Evolution (WhatsApp) stored it, and when findMessages was asked for each chat. */
    whatsapp?: { inbound: FakeInbound[]; looksAt: (phone: string) => number[] };
    /** Phones whose answer's webhooks were lost on purpose. */
    lostPhones?: ReadonlySet<string>;
  },
): Promise<CheckResult> {
  const violations: Violation[] = [];
  const { rows } = await db.query<Row>(
    `SELECT f.id, l.phone, f.status, f.message, f.cancel_reason, f.last_error, f.provider_message_id, f.attempts, f.anchor_at
       FROM follow_ups f JOIN leads l ON l.id = f.lead_id`,
  );
  const { rows: events } = await db.query<EventRow>(
    `SELECT follow_up_id, at, pg_xact_commit_timestamp(xmin) AS committed_at, from_status, to_status, reason, detail
       FROM follow_up_events ORDER BY id`,
  );
  const { rows: inbound } = await db.query<InboundRow>(
    `SELECT l.phone, m.at, m.created_at, pg_xact_commit_timestamp(m.xmin) AS committed_at, m.text
       FROM messages m JOIN leads l ON l.id = m.lead_id WHERE m.direction = 'in'`,
  );

  const planned = new Map(options.leads.map((l) => [l.phone, l]));
  const byText = new Map<string, Row>();
  for (const row of rows) if (row.message) byText.set(row.message, row);
  const eventsOf = new Map<string, EventRow[]>();
  for (const e of events) {
    const list = eventsOf.get(e.follow_up_id);
    if (list) list.push(e);
    else eventsOf.set(e.follow_up_id, [e]);
  }
  // The lead's messages, in commit order. A message stops the follow-ups planned before it
  // (anchor_at < its time) — the product's rule (record-inbound.ts, the claim's re-check); one the
  // agent scheduled after reading it is an answer to it, not a violation.
  const committed = (m: InboundRow) => (m.committed_at ?? m.created_at).getTime();
  const inboundOf = new Map<string, InboundRow[]>();
  for (const m of inbound) {
    const list = inboundOf.get(m.phone);
    if (list) list.push(m);
    else inboundOf.set(m.phone, [m]);
  }
  for (const list of inboundOf.values()) list.sort((a, b) => committed(a) - committed(b));
  const firstInbound = new Map<string, InboundRow>([...inboundOf].map(([phone, list]) => [phone, list[0]!]));
  const stopFor = (row: Row) => inboundOf.get(row.phone)?.find((m) => m.at.getTime() > row.anchor_at.getTime());
  let scheduledAfterAnswer = 0;

  // 1. Everything planned exists, and everything is terminal with a reason. The API may refuse
  //    one (409) only for a lead that had opted out or is not on WhatsApp.
  const refused = options.leads.filter((l) => l.refused);
  for (const lead of refused) {
    if (lead.answer !== 'opt-out' && !lead.notOnWhatsApp) {
      violations.push({ kind: 'refused_without_cause', phone: lead.phone, detail: `POST /v1/followups answered 409: ${lead.refused}` });
    }
  }
  if (rows.length !== options.leads.length - refused.length) {
    violations.push({ kind: 'count', detail: `${options.leads.length - refused.length} follow-ups planned (and accepted), ${rows.length} in the database` });
  }
  for (const row of rows) {
    if (!['executed', 'failed', 'cancelled'].includes(row.status)) {
      violations.push({ kind: 'stuck', followupId: row.id, phone: row.phone, detail: `still ${row.status}` });
      continue;
    }
    const last = eventsOf.get(row.id)?.filter((e) => e.to_status === row.status && e.from_status !== row.status).at(-1);
    if (row.status !== 'executed' && !last?.reason) {
      violations.push({ kind: 'no_reason', followupId: row.id, phone: row.phone, detail: `${row.status} without a reason` });
    }
    if (row.status === 'cancelled' && !row.cancel_reason) {
      violations.push({ kind: 'no_reason', followupId: row.id, phone: row.phone, detail: 'cancelled without cancel_reason' });
    }
  }

  // 2. Deliveries: each to a known follow-up, never twice.
  const deliveriesOf = new Map<string, FakeDelivery[]>();
  for (const d of options.delivered) {
    const row = byText.get(d.text);
    if (!row) {
      violations.push({ kind: 'unknown_delivery', detail: `delivered text matches no follow-up: ${d.text.slice(0, 60)}` });
      continue;
    }
    const list = deliveriesOf.get(row.id);
    if (list) list.push(d);
    else deliveriesOf.set(row.id, [d]);
  }
  for (const [id, list] of deliveriesOf) {
    if (list.length > 1) {
      violations.push({ kind: 'delivered_twice', followupId: id, detail: `${list.length} deliveries: ${list.map((d) => d.id).join(', ')}` });
    }
  }

  // 3. executed ↔ delivery, one to one by provider id; failed only for allowed reasons.
  let ambiguousDelivered = 0;
  let ambiguousNotDelivered = 0;
  for (const row of rows) {
    const list = deliveriesOf.get(row.id) ?? [];
    const plan = planned.get(row.phone);
    if (row.status === 'executed') {
      if (!row.provider_message_id || !list.some((d) => d.id === row.provider_message_id)) {
        violations.push({
          kind: 'executed_without_delivery',
          followupId: row.id,
          phone: row.phone,
          detail: `provider id ${row.provider_message_id} not among its deliveries [${list.map((d) => d.id).join(', ')}]`,
        });
      }
    } else if (row.status === 'failed') {
      const reason = eventsOf.get(row.id)?.filter((e) => e.to_status === 'failed').at(-1)?.reason ?? 'unknown';
      if (!ALLOWED_FAILED.has(reason)) {
        violations.push({ kind: 'failed_for_transient_fault', followupId: row.id, phone: row.phone, detail: `failed: ${reason} (${row.last_error})` });
      }
      if (reason === 'ambiguous_send') {
        if (list.length > 0) ambiguousDelivered += 1;
        else ambiguousNotDelivered += 1;
      } else if (list.length > 0) {
        violations.push({ kind: 'failed_but_delivered', followupId: row.id, phone: row.phone, detail: `failed (${reason}) yet delivered` });
      }
    } else if (list.length > 0) {
      violations.push({ kind: 'delivered_but_not_executed', followupId: row.id, phone: row.phone, detail: `${row.status} yet delivered` });
    }
    if (row.status === 'cancelled') {
      const reason = row.cancel_reason;
      // The harness knows who answered; an opt-out stamps the lead (and cancels) before the message is logged.
      const answered = firstInbound.has(row.phone) || Boolean(plan?.answer);
      const expected =
        (reason === 'invalid_number' && plan?.notOnWhatsApp) ||
        ((reason === 'lead_replied' || reason === 'opted_out') && answered);
      if (!expected) {
        violations.push({ kind: 'unexpected_cancel', followupId: row.id, phone: row.phone, detail: `cancelled (${reason}) without cause` });
      }
    }
    if (plan?.notOnWhatsApp && row.status === 'executed') {
      violations.push({ kind: 'invalid_number_executed', followupId: row.id, phone: row.phone, detail: 'number is not on WhatsApp, yet executed' });
    }
  }

  // 4. Nothing after stop: the claim behind each delivery committed before the lead's first answer did.
  let claimAfterReplyStarted = 0;
  let deliveredAfterAnswer = 0;
  for (const row of rows) {
    const answer = stopFor(row);
    const list = deliveriesOf.get(row.id);
    if (firstInbound.has(row.phone) && !answer) scheduledAfterAnswer += 1;
    if (!answer || !list) continue;
    const answeredAt = answer.committed_at ?? answer.created_at;
    const claims = (eventsOf.get(row.id) ?? []).filter((e) => e.to_status === 'sending' && e.from_status !== 'sending');
    for (const d of list) {
      if (d.at.getTime() > answeredAt.getTime()) deliveredAfterAnswer += 1;
      const claim = claims.filter((e) => e.at.getTime() <= d.at.getTime()).at(-1);
      if (!claim) {
        violations.push({ kind: 'delivery_without_claim', followupId: row.id, phone: row.phone, detail: `delivery ${d.id} has no claim before it` });
        continue;
      }
      const claimedAt = claim.committed_at ?? claim.at;
      if (claimedAt.getTime() > answeredAt.getTime()) {
        violations.push({
          kind: 'sent_after_stop',
          followupId: row.id,
          phone: row.phone,
          detail: `claim committed ${claimedAt.toISOString()} after the lead's message committed ${answeredAt.toISOString()} ("${answer.text}")`,
        });
      }
      if (claim.at.getTime() > answer.created_at.getTime()) claimAfterReplyStarted += 1;
    }
  }

  // 5. Replies that were sent must have been recorded (when the webhook route exists) — except
  //    those whose webhook was lost: only the pre-send check sees them, and only if a follow-up
  //    was still to be sent after them.
  const lostPhones = options.lostPhones ?? new Set<string>();
  if (options.repliesWired) {
    for (const lead of options.leads) {
      if (lead.answer && !firstInbound.has(lead.phone) && !lostPhones.has(lead.phone)) {
        violations.push({ kind: 'reply_not_recorded', phone: lead.phone, detail: `the lead's ${lead.answer} webhook left no inbound message` });
      }
    }
  }

  // 6. No follow-up sent after the fan's reply existed on WhatsApp — judged from the fake
  //    Evolution's own record, not from ours: a delivery is a violation when, before its sendText
  //    request, findMessages was asked for that chat (the pre-send check) at a moment the reply was
  //    already stored there — the check could see it and the text went out anyway — or when the
  //    reply was stored and no look at all came between it and the send. A reply stored between
  //    the look and the sendText request is the in-flight race (as a reply committed after the
  //    claim), counted, not a violation. Only replies after the follow-up's anchor count.
  let sentWhileReplyInFlight = 0;
  if (options.whatsapp) {
    const fansByJid = new Map<string, FakeInbound[]>();
    for (const m of options.whatsapp.inbound) {
      const jid = whatsappJid(m.phone) ?? m.phone;
      const list = fansByJid.get(jid);
      if (list) list.push(m);
      else fansByJid.set(jid, [m]);
    }
    const rowByPhone = new Map(rows.map((r) => [r.phone, r]));
    for (const d of options.delivered) {
      const row = byText.get(d.text) ?? rowByPhone.get(d.number);
      const fans = (fansByJid.get(d.jid) ?? []).filter((m) => !row || m.at.getTime() > row.anchor_at.getTime());
      const requestedAt = d.requestedAt ?? d.at.getTime();
      const before = fans.filter((m) => m.storedAt < requestedAt);
      if (before.length === 0) continue;
      const firstStored = Math.min(...before.map((m) => m.storedAt));
      const lastLook = options.whatsapp.looksAt(d.number).filter((t) => t <= requestedAt).at(-1);
      if (lastLook !== undefined && lastLook > firstStored) {
        violations.push({
          kind: 'sent_after_reply_on_whatsapp',
          followupId: row?.id,
          phone: d.number,
          detail: `findMessages asked at ${new Date(lastLook).toISOString()}, the reply stored at ${new Date(firstStored).toISOString()}, yet sendText at ${new Date(requestedAt).toISOString()}`,
        });
      } else if (lastLook === undefined || lastLook < firstStored) {
        sentWhileReplyInFlight += 1;
      }
    }
  }
  const presendCancels = events.filter((e) => e.to_status === 'cancelled' && (e.detail as { source?: string } | null)?.source === 'presend_check');
  const presendPhones = new Set(presendCancels.map((e) => rows.find((r) => r.id === e.follow_up_id)?.phone));
  const presend = {
    cancelledByThePresendCheck: presendCancels.length,
    byReason: presendCancels.reduce<Record<string, number>>((acc, e) => ((acc[e.reason ?? '?'] = (acc[e.reason ?? '?'] ?? 0) + 1), acc), {}),
    answersWhoseWebhookWasLost: lostPhones.size,
    repliesSeenOnlyThroughThePresendCheck: [...lostPhones].filter((p) => presendPhones.has(p)).length,
    lostRepliesAfterTheirFollowupWasSent_nothingToStop: [...lostPhones].filter((p) => !presendPhones.has(p) && !firstInbound.has(p)).length,
    failedChecksDeferred: events.filter((e) => e.reason === 'presend_check_failed').length,
    sentUncheckedBestEffort: events.filter((e) => e.reason === 'presend_check_skipped').length,
    sentWhileReplyInFlight_notAViolation: sentWhileReplyInFlight,
  };

  const byStatus: Record<string, number> = {};
  const cancelled: Record<string, number> = {};
  const failed: Record<string, number> = {};
  for (const row of rows) {
    byStatus[row.status] = (byStatus[row.status] ?? 0) + 1;
    if (row.status === 'cancelled') cancelled[row.cancel_reason ?? '?'] = (cancelled[row.cancel_reason ?? '?'] ?? 0) + 1;
  }
  const eventReasons: Record<string, number> = {};
  let published = 0;
  const publishedIds = new Set<string>();
  for (const e of events) {
    const key = `${e.from_status ?? '∅'}→${e.to_status}:${e.reason ?? ''}`;
    eventReasons[key] = (eventReasons[key] ?? 0) + 1;
    if (e.to_status === 'failed') failed[e.reason ?? '?'] = (failed[e.reason ?? '?'] ?? 0) + 1;
    if (e.reason === 'published') {
      published += 1;
      publishedIds.add(e.follow_up_id);
    }
  }
  const count = (pred: (e: EventRow) => boolean) => events.filter(pred).length;
  const figures = {
    followups: rows.length,
    byStatus,
    cancelledByReason: cancelled,
    failedByReason: failed,
    deliveries: options.delivered.length,
    followupsDelivered: deliveriesOf.size,
    ambiguousSendFailedButDelivered: ambiguousDelivered,
    ambiguousSendFailedNotDelivered: ambiguousNotDelivered,
    leadsAnswered: firstInbound.size,
    followupsPlannedAfterTheLeadsAnswer: scheduledAfterAnswer,
    deliveredAfterTheLeadsAnswer_claimedBefore: deliveredAfterAnswer,
    claimAfterReplyStarted_notAViolation: claimAfterReplyStarted,
    presend,
    recoveries: {
      reconciled: count((e) => e.reason === 'reconciled'),
      lease_expired: count((e) => e.reason === 'lease_expired'),
      lease_expired_not_sent: count((e) => e.reason === 'lease_expired_not_sent'),
      sending_paused: count((e) => e.reason === 'sending_paused'),
      ambiguous_not_delivered: count((e) => e.reason === 'ambiguous_not_delivered'),
      transient_retries: count((e) => e.to_status === 'pending' && ['connection_closed', 'server_error', 'network_error', 'timeout', 'rate_limited'].includes(e.reason ?? '')),
      published_again: published - publishedIds.size,
      stopped_by_the_lead_while_queued: count((e) => e.from_status === 'queued' && e.to_status === 'cancelled' && ['lead_replied', 'opted_out'].includes(e.reason ?? '')),
    },
    eventsByTransition: eventReasons,
  };
  const suspects = [...new Set(violations.map((v) => v.followupId ?? byPhone(rows, v.phone)).filter((x): x is string => Boolean(x)))];
  return { violations, figures, suspects };
}

function byPhone(rows: Row[], phone: string | undefined): string | undefined {
  return phone ? rows.find((r) => r.phone === phone)?.id : undefined;
}

/** The follow-up's story, for a violation: its events, the deliveries, the lead's messages. */
export async function historyOf(db: Db, id: string, delivered: FakeDelivery[]): Promise<string> {
  const { rows } = await db.query<{ phone: string; message: string | null; status: string }>(
    `SELECT l.phone, f.message, f.status FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE f.id = $1::uuid`,
    [id],
  );
  const row = rows[0];
  if (!row) return `follow-up ${id}: not found`;
  const { rows: events } = await db.query<EventRow & { id: number }>(
    `SELECT id, at, pg_xact_commit_timestamp(xmin) AS committed_at, from_status, to_status, reason, detail
       FROM follow_up_events WHERE follow_up_id = $1::uuid ORDER BY id`,
    [id],
  );
  const { rows: messages } = await db.query<{ direction: string; text: string | null; at: Date; created_at: Date; committed_at: Date | null; provider_message_id: string | null }>(
    `SELECT m.direction, m.text, m.at, m.created_at, pg_xact_commit_timestamp(m.xmin) AS committed_at, m.provider_message_id
       FROM messages m JOIN leads l ON l.id = m.lead_id WHERE l.phone = $1::text ORDER BY m.created_at`,
    [row.phone],
  );
  const lines = [`follow-up ${id} (${row.phone}, now ${row.status})`, '  events:'];
  for (const e of events) {
    lines.push(
      `    ${e.at.toISOString()} (committed ${e.committed_at?.toISOString() ?? '?'}) ${e.from_status ?? '∅'} → ${e.to_status} ${e.reason ?? ''} ${e.detail ? JSON.stringify(e.detail) : ''}`,
    );
  }
  lines.push('  deliveries (fake Evolution):');
  for (const d of delivered.filter((d) => d.text === row.message)) lines.push(`    ${d.at.toISOString()} ${d.id}`);
  lines.push('  messages:');
  for (const m of messages) {
    lines.push(`    ${m.direction} created ${m.created_at.toISOString()} committed ${m.committed_at?.toISOString() ?? '?'} ${m.provider_message_id ?? ''} "${m.text ?? ''}"`);
  }
  return lines.join('\n');
}
