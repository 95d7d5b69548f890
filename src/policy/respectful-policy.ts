/**
 * The SendPolicy of a careful sender, checked at the moment of sending (after the
 * claim), cheapest first:
 *   1. window     — the lead's own hours (lead-time-zone.ts, sending-window.ts),
 *                   the campaign's hours when its file sets `sending`; skipped for
 *                   a follow-up an operator sent with `send-now --ignore-window`;
 *   2. lead_cap   — at most MAX_FOLLOWUPS_PER_LEAD_PER_WEEK in any rolling 7 days;
 *   3. number     — checked once per lead with /chat/whatsappNumbers, batched
 *                   and within the number's budget (number-checks.ts); not on
 *                   WhatsApp → cancel as invalid_number;
 *   4. daily_cap and pace — per WhatsApp number (the lead's), shared by all workers.
 * A follow-up held back is deferred (never failed or dropped) with that reason,
 * to a time that is itself inside the window; the executor gives the attempt back
 * and deferFollowup moves the later steps of its enrollment by as much.
 */
import type { Queryable } from '../db/db.js';
import type { Logger } from '../log.js';
import { typingDelayMs } from '../time/typing-delay.js';
import type { PolicyDecision, SendPolicy } from './send-policy.js';
import type { Transport } from '../whatsapp/transport.js';
import { checkNumberOnce } from './check-number-once.js';
import { makeNumberChecks } from './number-checks.js';
import { leadTimeZone } from './lead-time-zone.js';
import { weeklyCapFreesAt } from './lead-weekly-cap.js';
import type { SendLimits } from './send-limits.js';
import { makeSendingWindow, type SendingWindow, type WindowSettings } from './sending-window.js';

/** A campaign's own sending rules (campaign file `sending`), refining the environment's. */
export interface CampaignSending {
  hoursStart: string;
  hoursEnd: string;
  sundays: boolean;
  timeZone?: string;
  maxPerLeadPerWeek: number;
}

export interface RespectfulPolicyOptions {
  db: Queryable;
  transport: Transport;
  log: Logger;
  /** Pace and daily cap; null = none. */
  limits: SendLimits | null;
  settings: {
    /** Default zone for leads whose zone is unknown (BUSINESS_TIMEZONE). */
    timeZone: string;
    window: WindowSettings;
    maxPerLeadPerWeek: number;
    typingDelay: boolean;
    /** Ask /chat/whatsappNumbers before a lead's first send (default true). */
    checkNumbers?: boolean;
    /** Numbers per /chat/whatsappNumbers call (default 50). */
    numberCheckBatch?: number;
  };
  /**
   * The sending rules of a follow-up's campaign, if it has any. They refine the
   * environment's, but the environment's "off" wins (SENDING_WINDOW_ENABLED=false,
   * MAX_FOLLOWUPS_PER_LEAD_PER_WEEK=0), so a benchmark or an operator can always
   * switch a rule off everywhere.
   */
  campaignSending?: (campaign: string) => CampaignSending | undefined;
  random?: () => number;
}

export function makeRespectfulPolicy(options: RespectfulPolicyOptions): SendPolicy {
  const { db, settings } = options;
  const windows = new Map<string, SendingWindow>();
  const windowFor = (rules: CampaignSending | undefined): SendingWindow => {
    const w = rules ? { ...settings.window, start: rules.hoursStart, end: rules.hoursEnd, sundays: rules.sundays } : settings.window;
    const key = `${w.start}|${w.end}|${w.sundays}`;
    let made = windows.get(key);
    if (!made) windows.set(key, (made = makeSendingWindow(w, options.random)));
    return made;
  };

  const numberChecks = makeNumberChecks({
    transport: options.transport,
    limits: options.limits,
    log: options.log,
    batchSize: settings.numberCheckBatch ?? 50,
  });

  return {
    async check({ followup, lead, now }): Promise<PolicyDecision> {
      const rules = followup.campaign ? options.campaignSending?.(followup.campaign) : undefined;
      const window = windowFor(rules);
      const maxPerWeek = settings.maxPerLeadPerWeek === 0 ? 0 : (rules?.maxPerLeadPerWeek ?? settings.maxPerLeadPerWeek);
      const timeZone = leadTimeZone(lead, rules?.timeZone ?? settings.timeZone);
      // An operator's send-now --ignore-window: the window neither holds it back nor moves its deferrals.
      const allowedAt = (at: Date) => (followup.ignore_window ? at : window.allowedAt(at, timeZone));
      if (!followup.ignore_window && !window.isOpen(now, timeZone)) {
        return { ok: false, reason: 'window', deferUntil: window.allowedAt(now, timeZone), detail: { timeZone } };
      }

      const capFrees = await weeklyCapFreesAt(db, { leadId: lead.id, followupId: followup.id, now, max: maxPerWeek });
      if (capFrees) {
        return {
          ok: false,
          reason: 'lead_cap',
          deferUntil: allowedAt(capFrees),
          detail: { maxPerWeek, timeZone },
        };
      }

      if (settings.checkNumbers !== false) {
        const status = await checkNumberOnce({ db, checks: numberChecks, log: options.log }, lead, now, lead.whatsappNumber);
        if (status === 'invalid') return { ok: false, cancel: 'invalid_number', detail: { checkedWith: 'whatsappNumbers' } };
        if (typeof status === 'object') {
          const reservation = status.deferred;
          return {
            ok: false,
            reason: reservation.reason,
            deferUntil: window.allowedAt(reservation.retryAt, timeZone),
            detail: { ...reservation.detail, numberCheck: true, timeZone },
          };
        }
      }

      if (options.limits) {
        const reservation = await options.limits.reserve(now, 'send', lead.whatsappNumber);
        if (!reservation.ok) {
          return {
            ok: false,
            reason: reservation.reason,
            deferUntil: allowedAt(reservation.retryAt),
            detail: { ...reservation.detail, timeZone },
          };
        }
      }
      return { ok: true };
    },
    typingDelayMs: (text) => (settings.typingDelay ? typingDelayMs(text) : 0),
  };
}
