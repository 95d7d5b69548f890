/**
 * `nautico-followups/client` (README "Agent integration" → "Typed client") against the real service: the API
 * role on a real port over real PostgreSQL, the fake Evolution behind it. Every method
 * is called; errors come back as FollowupsApiError with the server's envelope; and the
 * compiled client, imported in a fresh node process, loads nothing but itself.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createFollowupsClient, FollowupsApiError, type FollowupsClient, verifyAgentWebhookSignature } from '../src/client/index.js';
import { signAgentWebhook } from '../src/forwarding/webhook-signature.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { type RoleHandle, startRole, TEST_TOKEN } from './helpers/pipeline.js';

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the typed client', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  let api: RoleHandle;
  let client: FollowupsClient;
  let baseUrl: string;
  let seq = 0;
  const nextPhone = () => `5581997${String(100_000 + ++seq).slice(-6)}`;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
    api = await startRole({ roles: ['api'], databaseUrl: testDb.url, fake });
    baseUrl = await api.running.app!.listen({ port: 0, host: '127.0.0.1' });
    client = createFollowupsClient({ baseUrl: `${baseUrl}/`, token: TEST_TOKEN });
  });
  after(async () => {
    await api.stop();
    await fake.close();
    await testDb.drop();
  });

  it('calls every /v1 route and gets its answer', async () => {
    const phone = nextPhone();
    // follow-ups
    const scheduled = await client.scheduleFollowup(
      { phone, message: 'Oi! Ficou alguma dúvida sobre o plano?', delayHours: 4, lead: { name: 'Ana' } },
      { idempotencyKey: `client-${phone}` },
    );
    assert.equal(scheduled.status, 'pending');
    const again = await client.scheduleFollowup({ phone, message: 'Oi! Ficou alguma dúvida sobre o plano?', delayHours: 4, lead: { name: 'Ana' } }, { idempotencyKey: `client-${phone}` });
    assert.equal(again.id, scheduled.id, 'the idempotency key went as the header');
    const page = await client.listFollowups({ phone, limit: 10 });
    assert.deepEqual(page.items.map((f) => f.id), [scheduled.id]);
    assert.equal(page.nextCursor, null);
    const one = await client.getFollowup(scheduled.id);
    assert.equal(one.message, 'Oi! Ficou alguma dúvida sobre o plano?');
    assert.deepEqual(one.events.map((e) => e.to), ['pending']);
    const cancelled = await client.cancelFollowup(scheduled.id, { reason: 'test' });
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.cancelReason, 'test');
    const failed = await client.scheduleFollowup({ phone, message: 'Tentativa', delayMinutes: 30 });
    await testDb.db.query(`UPDATE follow_ups SET status = 'failed' WHERE id = $1::uuid`, [failed.id]);
    const retried = await client.retryFollowup(failed.id);
    assert.equal(retried.status, 'pending');

    // enrollments
    const enrolled = await client.enrollLead({ phone: nextPhone(), campaign: 'nautico', lead: { name: 'Bia' } });
    assert.equal(enrolled.status, 'active');
    assert.ok(enrolled.followups.length >= 1);
    const bulk = await client.enrollLeads({ campaign: 'nautico', leads: [{ phone: nextPhone(), name: 'Caio' }, { phone: 'não é telefone' }] });
    assert.equal(bulk.enrolled, 1);
    assert.deepEqual(bulk.rejected.map((r) => [r.index, r.reason]), [[1, 'bad_phone']]);

    // leads
    const sent = await client.sendMessage(phone, { text: 'Oi Ana! O plano família sai por R$ 390/mês.', typing: false }, { idempotencyKey: `send-${phone}` });
    assert.equal(sent.created, true);
    assert.equal(fake.deliveriesTo(phone).at(-1)?.text, 'Oi Ana! O plano família sai por R$ 390/mês.');
    assert.equal(sent.providerMessageId, fake.deliveriesTo(phone).at(-1)?.id);
    const recorded = await client.recordMessage(phone, { direction: 'out', text: 'Mandei o link pelo e-mail.', source: 'human' });
    assert.equal(recorded.direction, 'out');
    const timeline = await client.getLead(phone);
    assert.equal(timeline.lead.name, 'Ana');
    assert.deepEqual(
      timeline.timeline.filter((i) => i.type === 'message').map((i) => (i.type === 'message' ? i.text : null)),
      ['Oi Ana! O plano família sai por R$ 390/mês.', 'Mandei o link pelo e-mail.'],
    );
    const converted = await client.markConverted(phone, { source: 'crm' });
    assert.ok(converted.lead.convertedAt);
    assert.equal(converted.cancelled, 1, 'the retried follow-up is stopped');
    const handedOff = await client.handoff(phone);
    assert.ok(handedOff.lead.handoffAt);
    const optedOut = await client.optOut(phone, { messageId: 'wamid-1' });
    assert.ok(optedOut.lead.optedOutAt);
    const erased = await client.eraseLead(phone);
    assert.equal(erased.alreadyErased, false);

    // stats
    const stats = await client.getStats();
    assert.ok(stats.byStatus.cancelled >= 2);

    // the agent's tools
    const openai = await client.listAgentTools('openai');
    assert.ok(openai.tools.some((t) => t.function.name === 'send_message'));
    const anthropic = await client.listAgentTools('anthropic');
    assert.ok(anthropic.tools.some((t) => t.name === 'schedule_followup' && t.input_schema.type === 'object'));
    assert.equal((await client.listAgentTools()).format, 'openai');
    const toolPhone = nextPhone();
    const called = await client.callAgentTool('schedule_followup', { phone: toolPhone, delayHours: 4, intent: 'check_in' });
    assert.equal((called.result as { status: string }).status, 'pending');
    const lead = await client.callAgentTool('get_lead', JSON.parse(`{"phone": "${toolPhone}"}`) as unknown);
    assert.equal((lead.result as { openFollowups: unknown[] }).openFollowups.length, 1);

    // the agent outbox (nothing forwarded here: no AGENT_WEBHOOK_URL)
    const outbox = await client.listAgentOutbox({ status: 'pending', limit: 10 });
    assert.deepEqual(outbox, { events: [], counts: { pending: 0, parked: 0 } });
    assert.deepEqual(await client.retryParkedAgentEvents(), { retried: 0 });
    await assert.rejects(client.retryAgentEvent('7d4f7c0e-2a55-4b8e-9f5e-1c2d3e4f5a6b'), (e: unknown) => e instanceof FollowupsApiError && e.status === 404);
  });

  it('a rejected request is a FollowupsApiError carrying the status and the envelope naming the field; nothing is written', async () => {
    const phone = nextPhone();
    const error = await client.scheduleFollowup({ phone, message: 'Oi', delayHours: -4 }).catch((e: unknown) => e);
    assert.ok(error instanceof FollowupsApiError);
    assert.equal(error.status, 400);
    assert.equal(error.code, 'validation_error');
    assert.equal(error.field, 'delayHours');
    assert.match(error.message, /delayHours: must not be negative/);
    assert.deepEqual(error.body, { error: { code: 'validation_error', message: 'delayHours: must not be negative', details: [{ field: 'delayHours', message: 'must not be negative' }] } });
    assert.equal((await testDb.db.query('SELECT 1 FROM leads WHERE phone = $1', [phone])).rowCount, 0);

    const tool = await client.callAgentTool('send_message', { phone, text: '' }).catch((e: unknown) => e);
    assert.ok(tool instanceof FollowupsApiError);
    assert.equal(tool.field, 'text');

    await client.optOut(phone);
    const refused = await client.sendMessage(phone, { text: 'Oi!' }).catch((e: unknown) => e);
    assert.ok(refused instanceof FollowupsApiError);
    assert.equal(refused.status, 409);
    assert.equal(refused.code, 'lead_opted_out');
    assert.deepEqual(fake.deliveriesTo(phone), []);

    const missing = await client.getFollowup('7d4f7c0e-2a55-4b8e-9f5e-1c2d3e4f5a6b').catch((e: unknown) => e);
    assert.ok(missing instanceof FollowupsApiError);
    assert.equal(missing.status, 404);
    assert.equal(missing.code, 'not_found');

    const stranger = createFollowupsClient({ baseUrl, token: 'wrong-token-000000000000000' });
    const unauthorized = await stranger.getStats().catch((e: unknown) => e);
    assert.ok(unauthorized instanceof FollowupsApiError);
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.code, 'unauthorized');
  });

  it('gives up after its timeout, and when the caller aborts', async () => {
    const server = createServer(() => {}); // accepts, never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const slow = createFollowupsClient({ baseUrl, token: TEST_TOKEN, timeoutMs: 200 });
      await assert.rejects(slow.getStats(), { name: 'TimeoutError' });
      const controller = new AbortController();
      const pending = slow.getStats({ signal: controller.signal, timeoutMs: 60_000 });
      controller.abort();
      await assert.rejects(pending, { name: 'AbortError' });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('re-exports the verifier of forwarded events: a signature made with the secret passes, another secret fails', () => {
    const body = JSON.stringify({ id: 'e1', type: 'message.received' });
    const header = signAgentWebhook({ secret: 'agent-secret-0123456789abcdef', body });
    assert.equal(verifyAgentWebhookSignature({ secret: 'agent-secret-0123456789abcdef', header, body }), true);
    assert.equal(verifyAgentWebhookSignature({ secret: 'another-secret-0123456789abc', header, body }), false);
  });

  it('compiled and imported in a fresh node process, loads no server module (no pg, fastify, ioredis, bullmq, zod: nothing from node_modules)', async () => {
    // Inside node_modules/.cache, so a bare import (`pg`) would resolve and be seen, not fail.
    mkdirSync(join(process.cwd(), 'node_modules', '.cache'), { recursive: true });
    const outDir = mkdtempSync(join(process.cwd(), 'node_modules', '.cache', 'client-test-'));
    try {
      const tsc = join(process.cwd(), 'node_modules', 'typescript', 'bin', 'tsc');
      const built = await run(process.execPath, [
        tsc, '--outDir', outDir, '--rootDir', 'src', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
        '--strict', '--skipLibCheck', '--types', 'node', 'src/client/index.ts',
      ]);
      assert.equal(built.code, 0, built.stdout + built.stderr);
      const entry = pathToFileURL(join(outDir, 'client', 'index.js')).href;
      const script = `
        import { registerHooks } from 'node:module';
        const loaded = [];
        registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
        const client = await import(${JSON.stringify(entry)});
        if (typeof client.createFollowupsClient !== 'function' || typeof client.verifyAgentWebhookSignature !== 'function') throw new Error('exports missing');
        console.log(JSON.stringify(loaded));`;
      const child = await run(process.execPath, ['--input-type=module', '-e', script]);
      assert.equal(child.code, 0, child.stderr);
      const loaded = JSON.parse(child.stdout) as string[];
      assert.deepEqual(loaded.filter((url) => url.includes('/node_modules/') && !url.includes('/.cache/client-test-')), []);
      assert.deepEqual(
        loaded.map((url) => (url.startsWith('node:') ? url : url.slice(url.indexOf('/client-test-') + 1).replace(/^client-test-[^/]+\//, ''))).sort(),
        ['client/index.js', 'forwarding/webhook-signature.js', 'node:crypto'],
      );
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });
});
