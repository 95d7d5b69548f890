/**
 * What the instance's webhook on Evolution must look like for this service: our
 * URL (`<PUBLIC_URL>/webhooks/evolution`), our secret (the `x-webhook-secret` header,
 * or Evolution's `jwt_key`), and the events src/webhooks acts on: `messages.upsert`
 * carries replies, opt-outs and hand-offs (a person typing on the club's phone),
 * `connection.update` pauses and resumes sending, and `send.message` and
 * `messages.update` are the echoes of our own sends that the webhook-silence
 * detector waits for (src/webhooks/webhook-silence.ts): without them every
 * deployment would look silent.
 */
import type { Config } from '../config.js';
import type { EvolutionWebhook } from '../whatsapp/evolution-webhook.js';

export const WEBHOOK_EVENTS = ['MESSAGES_UPSERT', 'MESSAGES_UPDATE', 'SEND_MESSAGE', 'CONNECTION_UPDATE'] as const;
export const WEBHOOK_PATH = '/webhooks/evolution';

/** `https://host` or `https://host/base` → `https://host[/base]/webhooks/evolution` (a URL already ending so is kept). */
export function webhookUrlFor(publicUrl: string): string {
  const trimmed = publicUrl.replace(/\/+$/, '');
  return trimmed.endsWith(WEBHOOK_PATH) ? trimmed : `${trimmed}${WEBHOOK_PATH}`;
}

/** The headers that authenticate Evolution to us, or null when neither secret is configured. */
export function webhookHeaders(config: Pick<Config, 'webhook'>): Record<string, string> | null {
  if (config.webhook.secret) return { 'x-webhook-secret': config.webhook.secret };
  if (config.webhook.jwtKey) return { jwt_key: config.webhook.jwtKey };
  return null;
}

/** Everything wrong with `found` (empty when it is right); `expectedUrl` null = any URL ending in /webhooks/evolution. */
export function webhookProblems(found: EvolutionWebhook, expectedUrl: string | null, headers: Record<string, string> | null): string[] {
  const problems: string[] = [];
  if (!found.enabled) problems.push('the webhook is disabled');
  const url = found.url.replace(/\/+$/, '');
  if (expectedUrl && url !== expectedUrl) problems.push(`it points at ${found.url}, not at ${expectedUrl}`);
  if (!expectedUrl && !url.endsWith(WEBHOOK_PATH)) problems.push(`it points at ${found.url}, which is not a ${WEBHOOK_PATH} URL`);
  const missing = WEBHOOK_EVENTS.filter((e) => !found.events.includes(e));
  if (missing.length > 0) problems.push(`events missing: ${missing.join(', ')}`);
  if (found.base64) problems.push('base64 is on (media would arrive base64-encoded in every event)');
  if (headers && found.headers) {
    for (const [name, value] of Object.entries(headers)) {
      if (found.headers[name] !== value) {
        problems.push(found.headers[name] === undefined ? `header ${name} is not set` : `header ${name} does not match this service's secret`);
      }
    }
  }
  return problems;
}
