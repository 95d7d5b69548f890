/**
 * Notices when Evolution's webhooks stop reaching us, per WhatsApp number
 * (instance). Evolution is known to lose webhooks and, in some versions, to stop
 * sending them until it is restarted; then a fan's reply is never recorded and
 * only the pre-send check (src/worker/check-reply-before-send.ts) can see it.
 *
 * Every message we send comes back as a webhook (its echo: a fromMe
 * messages.upsert, send.message, or a messages.update receipt). The API notes
 * each webhook as it arrives (`noteWebhook`, written at most once a second per
 * process); the sending roles compare that with what was sent (`detect`):
 *   - `echoes_missing`: ECHO_MISSES_IN_A_ROW sends since the last echo, each
 *     older than WEBHOOK_ECHO_TIMEOUT_SECONDS, and none came back;
 *   - `no_webhooks`: no webhook at all for WEBHOOK_SILENCE_MINUTES while we sent.
 * Silent → /health/ready degraded with the reason, the `followups_webhooks_silent`
 * gauge at 1, one warning log (from the process whose statement marked it), an
 * event in webhook_health_events. The next webhook clears it, with its event.
 *
 * The state lives in the database (table webhook_health), because the process
 * that hears webhooks (api) is not the one that sends (workers): each transition
 * is a conditional UPDATE, so with any number of processes exactly one marks and
 * one clears.
 */
import type { Clock } from '../clock.js';
import type { Queryable } from '../db/db.js';
import type { Logger } from '../log.js';

export interface WebhookSilenceState {
  silent: boolean;
  since?: Date;
  reason?: string;
  lastWebhookAt?: Date;
}

export interface WebhookSilence {
  readonly instance: string;
  /** Cached for `cacheMs`; cheap enough to call per follow-up. */
  state(): Promise<WebhookSilenceState>;
  /** A webhook arrived (echo: it was about a message sent from our number). Never throws. */
  noteWebhook(echo: boolean): void;
  /** Writes what noteWebhook holds back now (tests, shutdown). */
  flush(): Promise<void>;
  /** One detection pass; true when this call marked the number silent. */
  detect(): Promise<boolean>;
  /** Runs detect every `intervalMs` until stopped (the sending roles). */
  startDetecting(intervalMs?: number): { stop(): void };
  close(): Promise<void>;
}

/** "Several sends in a row" without their echo. */
export const ECHO_MISSES_IN_A_ROW = 3;
/** Webhook writes per process are coalesced to one per this long. */
const FLUSH_MS = 1_000;

// Marks the number silent when either rule holds; a row already silent is left alone, so
// concurrent detectors mark it once. A send counts as unechoed only if it was recorded a little
// after the last echo arrived: an echo may reach the API before the worker records its send.
const detectSql = {
  name: 'webhook_silence_detect',
  text: `
WITH h AS (
  SELECT instance, last_webhook_at, last_echo_at FROM webhook_health
   WHERE instance = $1::text AND silent_since IS NULL
), unechoed AS (
  SELECT count(*)::int AS n FROM (
    SELECT 1 FROM follow_ups f, h
     WHERE f.sent_at > h.last_echo_at + $6::int * interval '1 millisecond'
       AND f.sent_at <= $2::timestamptz - $3::int * interval '1 millisecond'
     LIMIT $5::int
  ) x
), quiet AS (
  SELECT EXISTS (
    SELECT 1 FROM follow_ups f, h
     WHERE h.last_webhook_at <= $2::timestamptz - $4::bigint * interval '1 millisecond'
       AND f.sent_at > h.last_webhook_at + $6::int * interval '1 millisecond'
       AND f.sent_at <= $2::timestamptz - $3::int * interval '1 millisecond'
  ) AS yes
), marked AS (
  UPDATE webhook_health w
     SET silent_since = $2::timestamptz,
         silent_reason = CASE WHEN (SELECT n FROM unechoed) >= $5::int THEN 'echoes_missing' ELSE 'no_webhooks' END,
         updated_at = $2::timestamptz
    FROM h
   WHERE w.instance = h.instance AND w.silent_since IS NULL
     AND ((SELECT n FROM unechoed) >= $5::int OR (SELECT yes FROM quiet))
  RETURNING w.silent_reason, w.last_webhook_at, w.last_echo_at
), events AS (
  INSERT INTO webhook_health_events (instance, at, kind, reason, detail)
  SELECT $1::text, $2::timestamptz, 'silent', silent_reason,
         jsonb_build_object('lastWebhookAt', last_webhook_at, 'lastEchoAt', last_echo_at, 'unechoedSends', (SELECT n FROM unechoed))
    FROM marked
)
SELECT silent_reason, last_webhook_at, last_echo_at, (SELECT n FROM unechoed) AS unechoed FROM marked`,
};

// Stamps a webhook (and an echo) and clears a silence, with its event; returns the silence it cleared.
// The baseline row (first webhook or first detection) counts nothing sent before it.
const noteSql = {
  name: 'webhook_silence_note',
  text: `
WITH old AS (
  SELECT silent_since, silent_reason FROM webhook_health WHERE instance = $1::text FOR UPDATE
), up AS (
  INSERT INTO webhook_health (instance, last_webhook_at, last_echo_at, updated_at)
  VALUES ($1::text, $2::timestamptz, COALESCE($3::timestamptz, $2::timestamptz), $2::timestamptz)
  ON CONFLICT (instance) DO UPDATE
     SET last_webhook_at = GREATEST(webhook_health.last_webhook_at, EXCLUDED.last_webhook_at),
         -- A silence cleared by any webhook restarts the echo count too, or the same unechoed
         -- sends would mark it silent again at the next detection.
         last_echo_at = CASE WHEN $3::timestamptz IS NULL AND webhook_health.silent_since IS NULL THEN webhook_health.last_echo_at
                             ELSE GREATEST(webhook_health.last_echo_at, COALESCE($3::timestamptz, $2::timestamptz)) END,
         silent_since = NULL, silent_reason = NULL, updated_at = EXCLUDED.updated_at
  RETURNING instance
), events AS (
  INSERT INTO webhook_health_events (instance, at, kind, reason, detail)
  SELECT $1::text, $2::timestamptz, 'flowing', silent_reason, jsonb_build_object('silentSince', silent_since, 'echo', $3::timestamptz IS NOT NULL)
    FROM old WHERE silent_since IS NOT NULL
)
SELECT silent_since, silent_reason FROM old WHERE silent_since IS NOT NULL`,
};

const baselineSql = {
  name: 'webhook_silence_baseline',
  text: `INSERT INTO webhook_health (instance, last_webhook_at, last_echo_at, updated_at)
         VALUES ($1::text, $2::timestamptz, $2::timestamptz, $2::timestamptz) ON CONFLICT (instance) DO NOTHING`,
};

const readSql = {
  name: 'webhook_silence_read',
  text: 'SELECT silent_since, silent_reason, last_webhook_at FROM webhook_health WHERE instance = $1::text',
};

export function makeWebhookSilence(options: {
  db: Queryable;
  clock: Clock;
  log: Logger;
  instance: string;
  echoTimeoutMs: number;
  silenceMs: number;
  cacheMs?: number;
  /** Called with 1 (silent) or 0 whenever this process learns the state (the Prometheus gauge). */
  onState?: (instance: string, silent: boolean) => void;
}): WebhookSilence {
  const { db, clock, log, instance } = options;
  const cacheMs = options.cacheMs ?? 1_000;
  // Sends within this much after the last echo are not counted as unechoed (see detectSql).
  const orderSlackMs = Math.min(5_000, Math.floor(options.echoTimeoutMs / 2));
  let cached: { at: number; value: WebhookSilenceState } | undefined;
  let pending: { at: Date; echoAt: Date | null } | null = null;
  let lastFlush = 0;
  let flushing: Promise<void> | null = null;
  let flushTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let baselined = false;

  const learn = (value: WebhookSilenceState) => {
    cached = { at: Date.now(), value };
    options.onState?.(instance, value.silent);
    return value;
  };

  async function read(): Promise<WebhookSilenceState> {
    const { rows } = await db.query<{ silent_since: Date | null; silent_reason: string | null; last_webhook_at: Date }>(readSql, [instance]);
    const row = rows[0];
    if (!row) return { silent: false };
    return row.silent_since
      ? { silent: true, since: row.silent_since, reason: row.silent_reason ?? undefined, lastWebhookAt: row.last_webhook_at }
      : { silent: false, lastWebhookAt: row.last_webhook_at };
  }

  async function write(): Promise<void> {
    const batch = pending;
    pending = null;
    if (!batch) return;
    lastFlush = Date.now();
    const { rows } = await db.query<{ silent_since: Date; silent_reason: string | null }>(noteSql, [instance, batch.at, batch.echoAt]);
    if (rows[0]) {
      log.info({ instance, silentSince: rows[0].silent_since, reason: rows[0].silent_reason }, 'webhooks flow again; no longer silent');
    }
    learn({ silent: false, lastWebhookAt: batch.at });
  }

  function flush(): Promise<void> {
    if (flushing) return flushing.then(() => (pending ? flush() : undefined));
    flushing = write()
      .catch((error) => {
        log.warn({ err: error, instance }, 'could not note the webhook for the silence detector');
      })
      .finally(() => {
        flushing = null;
      });
    return flushing;
  }

  const api: WebhookSilence = {
    instance,
    async state() {
      if (cached && Date.now() - cached.at < cacheMs) return cached.value;
      return learn(await read());
    },
    noteWebhook(echo) {
      if (closed) return;
      const now = clock.now();
      pending = { at: now, echoAt: echo ? now : (pending?.echoAt ?? null) };
      // A known silence is cleared at once; otherwise at most one write a second (trailing).
      const due = cached?.value.silent || Date.now() - lastFlush >= FLUSH_MS;
      if (due) {
        void flush();
      } else if (!flushTimer) {
        flushTimer = setTimeout(() => {
          flushTimer = undefined;
          void flush();
        }, Math.max(0, lastFlush + FLUSH_MS - Date.now()));
        flushTimer.unref?.();
      }
    },
    flush,
    async detect() {
      const now = clock.now();
      // Once per process: the row then exists for good (an idle relay makes one query per turn).
      if (!baselined) {
        await db.query(baselineSql, [instance, now]);
        baselined = true;
      }
      const { rows } = await db.query<{ silent_reason: string; last_webhook_at: Date; last_echo_at: Date; unechoed: number }>(detectSql, [
        instance,
        now,
        options.echoTimeoutMs,
        options.silenceMs,
        ECHO_MISSES_IN_A_ROW,
        orderSlackMs,
      ]);
      const marked = rows[0];
      if (marked) {
        log.warn(
          { instance, reason: marked.silent_reason, lastWebhookAt: marked.last_webhook_at, lastEchoAt: marked.last_echo_at, unechoedSends: marked.unechoed },
          'Evolution webhooks look silent for this number: replies may go unseen; every follow-up is checked with WhatsApp before it is sent',
        );
        learn({ silent: true, since: now, reason: marked.silent_reason, lastWebhookAt: marked.last_webhook_at });
        return true;
      }
      cached = undefined;
      return false;
    },
    startDetecting(intervalMs) {
      const every = intervalMs ?? Math.min(15_000, Math.max(1_000, Math.floor(options.echoTimeoutMs / 4)));
      let timer: NodeJS.Timeout | undefined;
      let stopped = false;
      const tick = async () => {
        try {
          await api.detect();
        } catch (error) {
          log.debug({ err: error }, 'webhook silence detection failed');
        }
        if (!stopped) {
          timer = setTimeout(tick, every);
          timer.unref?.();
        }
      };
      timer = setTimeout(tick, every);
      timer.unref?.();
      return {
        stop() {
          stopped = true;
          if (timer) clearTimeout(timer);
        },
      };
    },
    async close() {
      closed = true;
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = undefined;
      await flush();
    },
  };
  return api;
}
