/**
 * The agent is down for 30 s (connection refused) while 200 fans write: afterwards every
 * event arrives, in order per lead, none lost (duplicates allowed: at least once). A real
 * 30 s; the retry backoff is shortened (AGENT_WEBHOOK_RETRY_MAX_MS) so the catch-up after
 * the agent returns takes seconds, and the attempts are raised so nothing parks meanwhile.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { verifyAgentWebhookSignature } from '../src/forwarding/webhook-signature.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { type FakeAgent, startFakeAgent } from './helpers/fake-agent.js';
import { startRole, type RoleHandle, waitFor } from './helpers/pipeline.js';
import { leadWithFollowups, secretHeader, startWebhookApp, type WebhookApp } from './helpers/webhook-app.js';

const AGENT_SECRET = 'agent-secret-0123456789abcdef';
const FANS = 200;
const MESSAGES_PER_FAN = 3;
const DOWN_MS = 30_000;

let testDb: TestDatabase;
let agent: FakeAgent;
let w: WebhookApp;
let relay: RoleHandle;

before(async () => {
  testDb = await createTestDatabase({ poolSize: 8 });
  agent = await startFakeAgent();
  const env = {
    AGENT_WEBHOOK_URL: agent.url,
    AGENT_WEBHOOK_SECRET: AGENT_SECRET,
    AGENT_WEBHOOK_TIMEOUT_MS: '2000',
    AGENT_WEBHOOK_RETRY_BASE_MS: '200',
    AGENT_WEBHOOK_RETRY_MAX_MS: '3000',
    AGENT_WEBHOOK_MAX_ATTEMPTS: '100',
  };
  w = await startWebhookApp(testDb.db, { env, start: new Date().toISOString() });
  relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env });
});
after(async () => {
  await relay?.stop();
  await w?.close();
  await agent?.close();
  await testDb?.drop();
});

const phoneOf = (i: number) => `55819${String(70_000_000 + i)}`;
const textOf = (i: number, m: number) => (m === MESSAGES_PER_FAN - 1 && i % 10 === 0 ? 'parar' : `fan ${i} mensagem ${m}`);

function fanMessage(i: number, m: number, at: Date) {
  return {
    event: 'messages.upsert',
    instance: 'nautico',
    data: {
      key: { remoteJid: `${phoneOf(i)}@s.whatsapp.net`, fromMe: false, id: `OUTAGE-${i}-${m}` },
      message: { conversation: textOf(i, m) },
      messageType: 'conversation',
      messageTimestamp: Math.floor(at.getTime() / 1000),
    },
  };
}

test('agent down for 30 s while 200 fans write: afterwards every event arrives, in order per lead, none lost', async () => {
  // Every 4th fan has open follow-ups (their first message also brings lead.replied);
  // every 10th fan's last message opts out (lead.opted_out, then the message).
  for (let i = 0; i < FANS; i += 4) {
    await leadWithFollowups(testDb.db, { phone: phoneOf(i), now: new Date(Date.now() - 60_000), count: 1 });
  }
  await agent.down();
  const downAt = Date.now();

  // Each fan writes its messages one after the other, spread over the 30 s.
  const slot = (DOWN_MS - 3_000) / MESSAGES_PER_FAN;
  await Promise.all(
    Array.from({ length: FANS }, async (_, i) => {
      for (let m = 0; m < MESSAGES_PER_FAN; m++) {
        const target = downAt + m * slot + Math.random() * slot;
        await new Promise((r) => setTimeout(r, Math.max(0, target - Date.now())));
        w.clock.set(new Date());
        const res = await w.app.inject({
          method: 'POST',
          url: '/webhooks/evolution',
          headers: { 'content-type': 'application/json', ...secretHeader },
          payload: JSON.stringify(fanMessage(i, m, new Date())),
        });
        assert.equal(res.statusCode, 200, res.body);
      }
    }),
  );
  assert.equal(agent.deliveries.length, 0, 'nothing reached the agent while it was down');
  const failedAttempts = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM agent_outbox WHERE attempts > 0');
  assert.ok(failedAttempts.rows[0]!.n > 0, 'deliveries were attempted (and refused) while the agent was down');
  await new Promise((r) => setTimeout(r, Math.max(0, downAt + DOWN_MS - Date.now())));
  await agent.up();
  const upAt = Date.now();

  const { rows: events } = await testDb.db.query<{ id: string; seq: number; type: string; phone: string }>(
    `SELECT o.id, o.seq, o.type, l.phone FROM agent_outbox o JOIN leads l ON l.id = o.lead_id ORDER BY o.seq`,
  );
  const byType = (type: string) => events.filter((e) => e.type === type).length;
  assert.equal(byType('message.received'), FANS * MESSAGES_PER_FAN);
  assert.equal(byType('lead.replied'), FANS / 4);
  assert.equal(byType('lead.opted_out'), FANS / 10);
  assert.equal(events.length, FANS * MESSAGES_PER_FAN + FANS / 4 + FANS / 10);

  await waitFor(
    'every event delivered',
    async () => {
      const got = new Set(agent.accepted().map((d) => d.event.id));
      return events.every((e) => got.has(e.id));
    },
    { timeoutMs: 120_000, intervalMs: 200 },
  );
  const catchUpMs = Date.now() - upAt;
  // The dispatcher records a delivery after the agent's 2xx: the last rows follow within moments.
  await waitFor(
    'every event recorded as delivered',
    async () => {
      const { rows: left } = await testDb.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM agent_outbox WHERE status <> 'delivered'`);
      return left[0]!.n === 0;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );

  // In order per lead: the first arrival of each event id follows the lead's order of events,
  // and the fan's messages arrive in the order they were written.
  const firstArrivals = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const d of agent.accepted()) {
    if (seen.has(d.event.id)) continue;
    seen.add(d.event.id);
    assert.ok(verifyAgentWebhookSignature({ secret: AGENT_SECRET, header: String(d.headers['x-followups-signature']), body: d.body }));
    firstArrivals.set(d.event.lead.phone, [...(firstArrivals.get(d.event.lead.phone) ?? []), d.event.id]);
  }
  for (let i = 0; i < FANS; i++) {
    const phone = phoneOf(i);
    const expected = events.filter((e) => e.phone === phone).map((e) => e.id);
    assert.deepEqual(firstArrivals.get(phone), expected, `events of fan ${i} in order`);
    const texts = agent
      .accepted()
      .filter((d) => d.event.lead.phone === phone && d.event.type === 'message.received')
      .map((d) => d.event.data.text as string);
    assert.deepEqual([...new Set(texts)], Array.from({ length: MESSAGES_PER_FAN }, (_, m) => textOf(i, m)));
    if (i % 10 === 0) {
      const types = firstArrivals.get(phone)!.map((id) => events.find((e) => e.id === id)!.type);
      assert.deepEqual(types.slice(-2), ['lead.opted_out', 'message.received']);
    }
  }
  const duplicates = agent.accepted().length - seen.size;
  console.log(`# outage: ${events.length} events, all delivered ${catchUpMs} ms after the agent came back; ${duplicates} duplicates; ${agent.deliveries.length} requests`);
});
