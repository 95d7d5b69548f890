/**
 * The instance's webhook on Evolution API v2: `GET /webhook/find/{instance}` and
 * `POST /webhook/set/{instance}` (body `{webhook: {enabled, url, headers, byEvents,
 * base64, events}}`). Evolution answers the stored row, whose flags are named
 * `webhookByEvents` / `webhookBase64`; servers before 2.2 do not return `headers`.
 * Used by the operator CLI (`followups webhook setup`, `followups doctor`).
 */
import { request } from 'undici';
import { EvolutionCallError } from '../errors.js';

export interface EvolutionSettings {
  url: string;
  apiKey: string;
  instance: string;
}

export interface EvolutionWebhook {
  enabled: boolean;
  url: string;
  /** Null when the server does not say (Evolution before 2.2). */
  headers: Record<string, string> | null;
  byEvents: boolean;
  base64: boolean;
  events: string[];
}

async function call(evolution: EvolutionSettings, method: 'GET' | 'POST', action: string, body: unknown, timeoutMs: number) {
  const target = `${evolution.url.replace(/\/+$/, '')}/${action}/${encodeURIComponent(evolution.instance)}`;
  let status: number;
  let text: string;
  try {
    const response = await request(target, {
      method,
      headers: { apikey: evolution.apiKey, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    status = response.statusCode;
    text = await response.body.text();
  } catch (error) {
    const e = error as { code?: string; message?: string; cause?: { code?: string } };
    throw new EvolutionCallError(`cannot reach Evolution at ${evolution.url}: ${e.cause?.code ?? e.code ?? e.message}`);
  }
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = undefined;
  }
  if (status < 200 || status >= 300) {
    const detail = isObject(parsed) && isObject(parsed.response) ? JSON.stringify(parsed.response.message) : text.slice(0, 200);
    throw new EvolutionCallError(`Evolution answered ${status} to ${method} /${action}: ${detail}`, status);
  }
  return parsed;
}

function readWebhook(body: unknown): EvolutionWebhook | null {
  if (!isObject(body)) return null;
  const root = isObject(body.webhook) ? body.webhook : body;
  if (typeof root.url !== 'string') return null;
  const headers = isObject(root.headers)
    ? Object.fromEntries(Object.entries(root.headers).filter((e): e is [string, string] => typeof e[1] === 'string'))
    : null;
  return {
    enabled: root.enabled === true,
    url: root.url,
    headers,
    byEvents: root.webhookByEvents === true || root.byEvents === true,
    base64: root.webhookBase64 === true || root.base64 === true,
    events: Array.isArray(root.events) ? root.events.filter((e): e is string => typeof e === 'string') : [],
  };
}

/** The instance's webhook, or null when none is set. */
export async function findWebhook(evolution: EvolutionSettings, timeoutMs: number): Promise<EvolutionWebhook | null> {
  return readWebhook(await call(evolution, 'GET', 'webhook/find', undefined, timeoutMs));
}

/** Sets (replaces) the instance's webhook; returns what Evolution stored. */
export async function setWebhook(evolution: EvolutionSettings, webhook: EvolutionWebhook, timeoutMs: number): Promise<EvolutionWebhook> {
  const { headers, ...rest } = webhook;
  const stored = readWebhook(await call(evolution, 'POST', 'webhook/set', { webhook: { ...rest, headers: headers ?? {} } }, timeoutMs));
  if (!stored) throw new EvolutionCallError('Evolution answered /webhook/set without the webhook it stored');
  return stored;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
