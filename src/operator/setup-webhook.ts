/**
 * `followups webhook setup [--url <public url>]`: points the instance's webhook on
 * Evolution at this service (POST /webhook/set/{instance}) with our secret header
 * and the events we act on, then reads it back (GET /webhook/find) to confirm.
 */
import type { Config } from '../config.js';
import { EvolutionCallError } from '../errors.js';
import { type EvolutionWebhook, findWebhook, setWebhook } from '../whatsapp/evolution-webhook.js';
import { EXIT, OperatorError } from './exit-codes.js';
import { WEBHOOK_EVENTS, webhookHeaders, webhookProblems, webhookUrlFor } from './webhook-target.js';

export interface SetupWebhookResult {
  instance: string;
  url: string;
  events: string[];
  authentication: 'x-webhook-secret' | 'jwt_key';
  before: EvolutionWebhook | null;
  after: EvolutionWebhook | null;
}

export async function setupWebhook(
  config: Pick<Config, 'webhook' | 'evolution' | 'sendTimeoutMs'>,
  /** instance: which WhatsApp number's webhook (EVOLUTION_INSTANCES); default: the first. */
  options: { url?: string; instance?: string },
): Promise<SetupWebhookResult> {
  const configured = config.evolution;
  if (!configured) {
    throw new OperatorError('EVOLUTION_API_URL, EVOLUTION_API_KEY and EVOLUTION_INSTANCE_NAME must be set to configure the webhook', EXIT.usage, 'evolution_not_configured');
  }
  const chosen = options.instance ? configured.instances.find((i) => i.name === options.instance) : undefined;
  if (options.instance && !chosen) {
    throw new OperatorError(`--instance: ${options.instance} is not one of ${configured.instances.map((i) => i.name).join(', ')}`, EXIT.usage, 'unknown_instance');
  }
  const evolution = chosen ? { ...configured, url: chosen.url, apiKey: chosen.apiKey, instance: chosen.name } : configured;
  const base = options.url ?? config.webhook.publicUrl;
  if (!base) throw new OperatorError('--url: give this service\'s public URL (or set PUBLIC_URL)', EXIT.usage, 'missing_url');
  let parsed: URL;
  try {
    parsed = new URL(base);
  } catch {
    throw new OperatorError(`--url: must be an http(s) URL; got "${base}"`, EXIT.usage, 'invalid_url');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new OperatorError(`--url: must be an http(s) URL; got "${base}"`, EXIT.usage, 'invalid_url');
  }
  const headers = webhookHeaders(config);
  if (!headers) {
    throw new OperatorError('set WEBHOOK_SECRET (or WEBHOOK_JWT_KEY) first: without a secret this service refuses every webhook', EXIT.usage, 'no_webhook_secret');
  }
  const url = webhookUrlFor(base);
  const timeoutMs = Math.min(config.sendTimeoutMs, 15_000);
  try {
    const before = await findWebhook(evolution, timeoutMs).catch(() => null);
    await setWebhook(evolution, { enabled: true, url, headers, byEvents: false, base64: false, events: [...WEBHOOK_EVENTS] }, timeoutMs);
    const after = await findWebhook(evolution, timeoutMs);
    const problems = after ? webhookProblems(after, url, headers) : ['Evolution shows no webhook after setting it'];
    if (problems.length > 0) {
      throw new OperatorError(`Evolution did not keep the webhook as set: ${problems.join('; ')}`, EXIT.failed, 'webhook_not_kept');
    }
    return { instance: evolution.instance, url, events: [...WEBHOOK_EVENTS], authentication: headers['x-webhook-secret'] ? 'x-webhook-secret' : 'jwt_key', before, after };
  } catch (error) {
    if (!(error instanceof EvolutionCallError)) throw error;
    if (error.status === undefined) throw new OperatorError(error.message, EXIT.unreachable, 'evolution_unreachable');
    // A refused key or an unknown instance is our configuration; anything else Evolution's answer.
    if (error.status === 401 || error.status === 403) throw new OperatorError(`${error.message} (check EVOLUTION_API_KEY)`, EXIT.usage, 'evolution_unauthorized');
    if (error.status === 404) throw new OperatorError(`${error.message} (check EVOLUTION_INSTANCE_NAME)`, EXIT.usage, 'evolution_instance_not_found');
    throw new OperatorError(error.message, EXIT.failed, 'evolution_refused');
  }
}

export function formatSetupWebhook(r: SetupWebhookResult): string {
  const was = r.before ? `was ${r.before.enabled ? '' : 'disabled, '}${r.before.url}` : 'none was set';
  return [
    `webhook of instance ${r.instance} set (${was})`,
    `  url     ${r.url}`,
    `  events  ${r.events.join(', ')}`,
    `  auth    ${r.authentication} header`,
  ].join('\n');
}
