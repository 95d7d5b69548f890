/**
 * The signature of the events forwarded to the agent (AGENT_WEBHOOK_URL), Stripe's scheme:
 *
 *   X-Followups-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * The timestamp is signed with the body, so a captured request cannot be replayed after
 * the tolerance (5 minutes by default). No server dependency (node:crypto only): the
 * client package re-exports the verifier for agents written in TypeScript.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Followups-Signature';
export const EVENT_ID_HEADER = 'X-Followups-Event-Id';
export const EVENT_TYPE_HEADER = 'X-Followups-Event-Type';

/** Hex HMAC-SHA256 of `<t>.<body>`. */
export function computeAgentWebhookSignature(secret: string, timestamp: number, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The header's value for `body`, signed at `now` (default: the current time). */
export function signAgentWebhook(options: { secret: string; body: string; now?: Date }): string {
  const t = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return `t=${t},v1=${computeAgentWebhookSignature(options.secret, t, options.body)}`;
}

/**
 * True when `header` is a valid signature of `body` (the raw request body, exactly as
 * received — not re-serialised JSON) with `secret`, made within `toleranceSeconds` of
 * `now`. Several `v1=` entries are accepted (one matching is enough), as during a
 * secret rotation. Constant-time comparison.
 */
export function verifyAgentWebhookSignature(options: {
  secret: string;
  header: string | null | undefined;
  body: string | Uint8Array;
  toleranceSeconds?: number;
  now?: Date;
}): boolean {
  const { secret, header } = options;
  if (!secret || typeof header !== 'string') return false;
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) signatures.push(value.toLowerCase());
  }
  if (timestamp === undefined || signatures.length === 0) return false;
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - timestamp) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(computeAgentWebhookSignature(secret, timestamp, options.body), 'hex');
  let ok = false;
  for (const signature of signatures) {
    // Every candidate is compared (no early exit), each in constant time.
    if (timingSafeEqual(expected, Buffer.from(signature, 'hex'))) ok = true;
  }
  return ok;
}
