/**
 * `followups webhook setup`.
 * Spawned as an operator runs it, against the real PostgreSQL and Redis, the fake
 * Evolution API and the fake LLM (helpers/operator-cli.ts): what it prints (`--json`),
 * the exit code, and what it changed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FakeEvolution } from './helpers/fake-evolution.js';
import { SECRET, followups, startOperatorWorld, stopOperatorWorld } from './helpers/operator-cli.js';

let evolution: FakeEvolution;
before(async () => {
  ({ evolution } = await startOperatorWorld());
});
after(stopOperatorWorld);

describe('followups webhook setup', () => {
  it("points the instance's webhook at this service with the secret header and the events it acts on", async () => {
    evolution.presetWebhook({ url: 'https://old.example.com/hook', events: ['MESSAGES_UPDATE'] });
    const run = await followups(['webhook', 'setup', '--url', 'https://public.example.com/', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.json.url, 'https://public.example.com/webhooks/evolution');
    assert.equal(run.json.before.url, 'https://old.example.com/hook');
    const set = evolution.requests.find((r) => r.method === 'POST' && r.path === `/webhook/set/${evolution.instance}`);
    assert.deepEqual(set?.body, {
      webhook: {
        enabled: true,
        url: 'https://public.example.com/webhooks/evolution',
        headers: { 'x-webhook-secret': SECRET },
        byEvents: false,
        base64: false,
        events: ['MESSAGES_UPSERT', 'MESSAGES_UPDATE', 'SEND_MESSAGE', 'CONNECTION_UPDATE'],
      },
    });
    assert.equal(set?.headers.apikey, evolution.apiKey);
    assert.equal(evolution.webhook?.url, 'https://public.example.com/webhooks/evolution');
    assert.deepEqual(evolution.webhook?.headers, { 'x-webhook-secret': SECRET });
  });

  it('refuses without a webhook secret, or with a key Evolution refuses (exit 2): nothing is changed', async () => {
    const run = await followups(['webhook', 'setup', '--json'], { WEBHOOK_SECRET: undefined });
    assert.equal(run.code, 2);
    assert.equal(run.json.error.code, 'no_webhook_secret');
    const before = evolution.webhook;
    const refused = await followups(['webhook', 'setup', '--json'], { EVOLUTION_API_KEY: 'not-the-key' });
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.equal(refused.json.error.code, 'evolution_unauthorized');
    assert.match(refused.json.error.message, /EVOLUTION_API_KEY/);
    assert.deepEqual(evolution.webhook, before);
  });
});
