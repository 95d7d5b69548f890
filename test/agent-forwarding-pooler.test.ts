/**
 * Forwarding to the agent through PgBouncer in transaction mode (2 server connections), with
 * two relays sharing the outbox: every event delivered, each lead's in order, while the agent
 * fails now and then. The dispatcher keeps no session state (one statement per claim).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { type FakeAgent, startFakeAgent } from './helpers/fake-agent.js';
import { type OwnPgBouncer, startOwnPgBouncer } from './helpers/pgbouncer.js';
import { startRole, type RoleHandle, waitFor } from './helpers/pipeline.js';
import { secretHeader, startWebhookApp, type WebhookApp } from './helpers/webhook-app.js';

const FANS = 40;
const MESSAGES_PER_FAN = 4;

let testDb: TestDatabase;
let bouncer: OwnPgBouncer;
let agent: FakeAgent;
let w: WebhookApp;
const relays: RoleHandle[] = [];

before(async () => {
  testDb = await createTestDatabase();
  bouncer = await startOwnPgBouncer({ mode: 'transaction', poolSize: 2 });
  agent = await startFakeAgent();
  const env = {
    AGENT_WEBHOOK_URL: agent.url,
    AGENT_WEBHOOK_SECRET: 'agent-secret-0123456789abcdef',
    AGENT_WEBHOOK_TIMEOUT_MS: '2000',
    AGENT_WEBHOOK_RETRY_BASE_MS: '50',
    AGENT_WEBHOOK_RETRY_MAX_MS: '500',
    AGENT_WEBHOOK_MAX_ATTEMPTS: '50',
    AGENT_WEBHOOK_CONCURRENCY: '4',
  };
  w = await startWebhookApp(testDb.db, { env, start: new Date().toISOString() });
  for (let i = 0; i < 2; i++) {
    relays.push(await startRole({ roles: ['relay'], databaseUrl: `${bouncer.url(testDb.name)}?pgbouncer=true`, env: { ...env, DATABASE_POOL_SIZE: '3' } }));
  }
});
after(async () => {
  for (const relay of relays) await relay.stop();
  await w?.close();
  await agent?.close();
  await bouncer?.stop();
  await testDb?.drop();
});

test('two relays through a transaction pooler deliver every event, each lead in order, through failures', async () => {
  assert.equal(relays[0]!.ctx.config.database.pooler, 'transaction');
  // Every 3rd request of a lead fails (500), whichever relay sends it.
  for (let i = 0; i < FANS; i++) agent.answerFor(`55819${60_000_000 + i}`, { status: 200 }, { status: 200 }, { status: 500 }, { status: 200 }, { status: 503 });
  await Promise.all(
    Array.from({ length: FANS }, async (_, i) => {
      for (let m = 0; m < MESSAGES_PER_FAN; m++) {
        const res = await w.app.inject({
          method: 'POST',
          url: '/webhooks/evolution',
          headers: { 'content-type': 'application/json', ...secretHeader },
          payload: JSON.stringify({
            event: 'messages.upsert',
            instance: 'nautico',
            data: {
              key: { remoteJid: `55819${60_000_000 + i}@s.whatsapp.net`, fromMe: false, id: `POOL-${i}-${m}` },
              message: { conversation: `fan ${i} mensagem ${m}` },
              messageType: 'conversation',
              messageTimestamp: Math.floor(Date.now() / 1000),
            },
          }),
        });
        assert.equal(res.statusCode, 200, res.body);
      }
    }),
  );
  await waitFor(
    'every event delivered',
    async () => (await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM agent_outbox WHERE status <> 'delivered'`)).rows[0]!.n === 0,
    { timeoutMs: 120_000, intervalMs: 200 },
  );
  const { rows } = await testDb.db.query<{ id: string; phone: string }>('SELECT o.id, l.phone FROM agent_outbox o JOIN leads l ON l.id = o.lead_id ORDER BY o.seq');
  assert.equal(rows.length, FANS * MESSAGES_PER_FAN);
  const first = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const d of agent.accepted()) {
    if (seen.has(d.event.id)) continue;
    seen.add(d.event.id);
    first.set(d.event.lead.phone, [...(first.get(d.event.lead.phone) ?? []), d.event.id]);
  }
  for (let i = 0; i < FANS; i++) {
    const phone = `55819${60_000_000 + i}`;
    assert.deepEqual(first.get(phone), rows.filter((r) => r.phone === phone).map((r) => r.id), `fan ${i} in order`);
  }
  assert.ok(agent.deliveries.some((d) => d.status === 500), 'some deliveries failed and were retried');
  const perRelay = await Promise.all(relays.map(async (r) => (await r.ctx.metrics.agentEventsDelivered.get()).values.reduce((n, v) => n + v.value, 0)));
  console.log(`# pooler: ${rows.length} events, ${agent.deliveries.length} requests; delivered per relay ${perRelay.join(' / ')}`);
});
