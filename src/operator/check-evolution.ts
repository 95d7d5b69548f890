/**
 * `doctor`'s WhatsApp checks: the instance's connection (`GET /instance/connectionState`,
 * through the service's own transport) is `open`, and its webhook
 * (`GET /webhook/find`) points at this service with our secret and the events we use.
 */
import type { Config } from '../config.js';
import { SendError } from '../errors.js';
import { EvolutionCallError } from '../errors.js';
import { findWebhook } from '../whatsapp/evolution-webhook.js';
import type { Transport } from '../whatsapp/transport.js';
import { type Check, fail, ok, skip, warn } from './check.js';
import { webhookHeaders, webhookProblems, webhookUrlFor } from './webhook-target.js';

export async function checkEvolution(ctx: { config: Config; transport: Transport }): Promise<Check[]> {
  const instances = ctx.config.evolution?.instances ?? [];
  if (instances.length <= 1 || ctx.transport.name !== 'evolution') return checkInstance(ctx);
  // Several numbers: every instance's connection and webhook, each check named with its instance.
  const results = await Promise.all(
    instances.map((i) =>
      checkInstance({
        config: { ...ctx.config, evolution: { ...ctx.config.evolution!, url: i.url, apiKey: i.apiKey, instance: i.name } },
        transport: { ...ctx.transport, connectionState: () => ctx.transport.connectionState(i.name) },
      }),
    ),
  );
  return results.flatMap((checks, k) => checks.map((c) => ({ ...c, name: `${c.name}[${instances[k]!.name}]` })));
}

async function checkInstance(ctx: { config: Config; transport: Transport }): Promise<Check[]> {
  const { config } = ctx;
  const evolution = config.evolution;
  if (!evolution || ctx.transport.name !== 'evolution') {
    return [skip('evolution', 'EVOLUTION_API_URL is not set: dry-run transport (messages are recorded, not sent)')];
  }
  const checks: Check[] = [];
  try {
    const state = await ctx.transport.connectionState();
    checks.push(
      state === 'open'
        ? ok('evolution.connection', `instance ${evolution.instance} is open`)
        : fail('evolution.connection', `instance ${evolution.instance} is ${state}: WhatsApp is not connected, nothing can be sent`, 'reconnect the phone: open Evolution\'s manager (or GET /instance/connect/{instance}) and scan the QR code with the club\'s WhatsApp'),
    );
  } catch (error) {
    const e = error as SendError;
    if (e instanceof SendError && e.reason === 'unauthorized') {
      return [fail('evolution.connection', e.message, 'set EVOLUTION_API_KEY to the key Evolution expects (its AUTHENTICATION_API_KEY, or the instance token)')];
    }
    if (e instanceof SendError && e.reason === 'instance_not_found') {
      return [fail('evolution.connection', e.message, 'set EVOLUTION_INSTANCE_NAME to an instance that exists on this Evolution server')];
    }
    return [fail('evolution.connection', (error as Error).message, 'check EVOLUTION_API_URL and that Evolution API is running', true)];
  }

  const expectedUrl = config.webhook.publicUrl ? webhookUrlFor(config.webhook.publicUrl) : null;
  const headers = webhookHeaders(config);
  const setup = `run \`followups webhook setup --url ${config.webhook.publicUrl ?? '<this service\'s public URL>'}\``;
  try {
    const found = await findWebhook(evolution, Math.min(config.sendTimeoutMs, 15_000));
    if (!found) {
      checks.push(fail('evolution.webhook', 'no webhook is set on the instance: replies and opt-outs never reach this service', setup));
    } else {
      const problems = webhookProblems(found, expectedUrl, headers);
      if (!headers) problems.push('this service has neither WEBHOOK_SECRET nor WEBHOOK_JWT_KEY, so it refuses every webhook');
      if (problems.length > 0) {
        checks.push(fail('evolution.webhook', problems.join('; '), headers ? setup : `set WEBHOOK_SECRET, then ${setup}`));
      } else if (!found.headers) {
        checks.push(warn('evolution.webhook', `points at ${found.url}, but this Evolution does not show the webhook's headers`, `make sure it sends our secret header; ${setup} sets it`));
      } else if (!expectedUrl) {
        checks.push(warn('evolution.webhook', `points at ${found.url} with our secret and events`, 'set PUBLIC_URL so doctor can tell whether that is this service'));
      } else {
        checks.push(ok('evolution.webhook', `points at ${found.url} with our secret and events ${found.events.join(', ')}`));
      }
    }
  } catch (error) {
    const unreachable = error instanceof EvolutionCallError && error.status === undefined;
    checks.push(fail('evolution.webhook', (error as Error).message, unreachable ? 'check EVOLUTION_API_URL' : setup, unreachable));
  }
  return checks;
}
