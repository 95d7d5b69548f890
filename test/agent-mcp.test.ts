/**
 * The MCP server (README "Agent integration" → "MCP server"), driven by the SDK's own `Client` over both
 * transports: streamable HTTP (`POST /mcp` on the API role, Bearer token) and stdio
 * (`followups mcp`, spawned as an agent spawns it). Every tool is called and its
 * effect checked in the real PostgreSQL; a bad argument is a tool error naming the
 * field, with nothing written. Sends go to the fake Evolution API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { type RoleHandle, startRole, TEST_TOKEN, testEnv } from './helpers/pipeline.js';
import { cliArgs } from './helpers/cli.js';

const TOOLS = [
  'cancel_followups',
  'enroll_lead',
  'get_lead',
  'handoff_to_human',
  'mark_converted',
  'opt_out_lead',
  'schedule_followup',
  'send_message',
];

interface ToolAnswer {
  isError?: boolean;
  content: Array<{ type: string; text: string }>;
}

describe('MCP server', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;
  let api: RoleHandle;
  let http: Client;
  let stdio: Client;
  let stdioStderr = '';
  let seq = 0;
  const nextPhone = () => `5581995${String(100_000 + ++seq).slice(-6)}`;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
    api = await startRole({ roles: ['api'], databaseUrl: testDb.url, fake });
    const address = await api.running.app!.listen({ port: 0, host: '127.0.0.1' });

    http = new Client({ name: 'test-agent', version: '1.0.0' });
    await http.connect(new StreamableHTTPClientTransport(new URL(`${address}/mcp`), { requestInit: { headers: { authorization: `Bearer ${TEST_TOKEN}` } } }));

    const env = testEnv({
      DATABASE_URL: testDb.url,
      EVOLUTION_API_URL: fake.url,
      EVOLUTION_API_KEY: fake.apiKey,
      EVOLUTION_INSTANCE_NAME: fake.instance,
      LOG_LEVEL: 'info',
    });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [...cliArgs(), 'mcp'],
      env: Object.fromEntries(Object.entries({ ...env, PATH: process.env.PATH }).filter((e): e is [string, string] => e[1] !== undefined)),
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (chunk: Buffer) => (stdioStderr += chunk.toString()));
    stdio = new Client({ name: 'test-agent-stdio', version: '1.0.0' });
    await stdio.connect(transport);
  });
  after(async () => {
    await stdio?.close();
    await http?.close();
    await api.stop();
    await fake.close();
    await testDb.drop();
  });

  async function call(client: Client, name: string, args: Record<string, unknown>) {
    const answer = (await client.callTool({ name, arguments: args })) as ToolAnswer;
    return { isError: answer.isError === true, body: JSON.parse(answer.content[0]!.text) };
  }
  async function lead(phone: string) {
    const { rows } = await testDb.db.query<Record<string, unknown>>('SELECT * FROM leads WHERE phone = $1', [phone]);
    return rows[0];
  }
  async function followupsOf(phone: string) {
    const { rows } = await testDb.db.query<{ id: string; status: string; due_at: Date; stop_reason: string | null }>(
      'SELECT f.* FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE l.phone = $1 ORDER BY f.created_at',
      [phone],
    );
    return rows;
  }

  for (const transport of ['http', 'stdio'] as const) {
    const client = () => (transport === 'http' ? http : stdio);

    it(`lists the eight tools with a description for a model and a JSON schema of their arguments (${transport})`, async () => {
      const { tools } = await client().listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS);
      for (const tool of tools) {
        assert.ok((tool.description ?? '').length > 200, `${tool.name}: a paragraph`);
        assert.match(tool.description!, /[áàâãçéêíóôõú]/, `${tool.name}: a Portuguese example`);
        assert.equal(tool.inputSchema.type, 'object');
      }
      const schedule = tools.find((t) => t.name === 'schedule_followup')!;
      assert.ok(schedule.inputSchema.properties?.phone && schedule.inputSchema.properties?.delayHours && schedule.inputSchema.properties?.message);
      assert.deepEqual(schedule.inputSchema.required, ['phone']);
      const send = tools.find((t) => t.name === 'send_message')!;
      assert.deepEqual([...(send.inputSchema.required ?? [])].sort(), ['phone', 'text']);
    });

    it(`every tool does what it says, seen in the database (${transport})`, async () => {
      const phone = nextPhone();
      const unknown = await call(client(), 'get_lead', { phone });
      assert.equal(unknown.isError, true);
      assert.equal(unknown.body.error.code, 'not_found');

      const sent = await call(client(), 'send_message', { phone, text: 'Oi! O plano família sai por R$ 390/mês.', idempotencyKey: `${transport}-turn-1` });
      assert.equal(sent.isError, false, JSON.stringify(sent.body));
      const delivered = fake.deliveriesTo(phone);
      assert.equal(delivered.length, 1);
      assert.equal(sent.body.providerMessageId, delivered[0]!.id);
      const logged = await testDb.db.query('SELECT source FROM messages WHERE provider_message_id = $1', [delivered[0]!.id]);
      assert.equal(logged.rows[0]!.source, 'agent');

      const scheduled = await call(client(), 'schedule_followup', { phone, delayHours: 4, message: 'Oi! Voltando como combinado.' });
      assert.equal(scheduled.isError, false, JSON.stringify(scheduled.body));
      const [row] = await followupsOf(phone);
      assert.equal(row!.id, scheduled.body.id);
      assert.equal(row!.status, 'pending');
      assert.ok(Math.abs(row!.due_at.getTime() - (Date.now() + 4 * 3_600_000)) < 60_000, 'due in 4 hours');

      const seen = await call(client(), 'get_lead', { phone, messages: 5 });
      assert.equal(seen.isError, false);
      assert.equal(seen.body.canWrite, true);
      assert.deepEqual(seen.body.messages.map((m: { from: string; text: string }) => [m.from, m.text]), [['agent', 'Oi! O plano família sai por R$ 390/mês.']]);
      assert.deepEqual(seen.body.openFollowups.map((f: { id: string }) => f.id), [scheduled.body.id]);

      const one = await call(client(), 'cancel_followups', { id: scheduled.body.id });
      assert.equal(one.isError, false, JSON.stringify(one.body));
      assert.equal((await followupsOf(phone))[0]!.status, 'cancelled');
      const again = await call(client(), 'schedule_followup', { phone, delayMinutes: 30, intent: 'check_in' });
      assert.equal(again.isError, false, JSON.stringify(again.body));
      const all = await call(client(), 'cancel_followups', { phone });
      assert.deepEqual(all.body.cancelled, [again.body.id]);
      assert.equal((await followupsOf(phone))[1]!.status, 'cancelled');

      const enrolled = await call(client(), 'enroll_lead', { phone, campaign: 'nautico', lead: { name: 'Ana' } });
      assert.equal(enrolled.isError, false, JSON.stringify(enrolled.body));
      const { rows: enrollments } = await testDb.db.query(`SELECT e.status FROM enrollments e JOIN leads l ON l.id = e.lead_id WHERE l.phone = $1`, [phone]);
      assert.deepEqual(enrollments.map((e) => e.status), ['active']);
      assert.ok((await followupsOf(phone)).filter((f) => f.status === 'pending').length >= 1, 'the campaign steps are planned');

      const converted = await call(client(), 'mark_converted', { phone });
      assert.equal(converted.isError, false, JSON.stringify(converted.body));
      assert.ok((await lead(phone))!.converted_at);
      assert.equal((await followupsOf(phone)).filter((f) => f.status === 'pending').length, 0, 'converted: nothing left to send');

      const handedOff = nextPhone();
      await call(client(), 'schedule_followup', { phone: handedOff, delayHours: 1, message: 'Oi' });
      const handoff = await call(client(), 'handoff_to_human', { phone: handedOff });
      assert.equal(handoff.isError, false, JSON.stringify(handoff.body));
      assert.ok((await lead(handedOff))!.handoff_at);
      assert.equal((await followupsOf(handedOff))[0]!.status, 'cancelled');
      const refusedHandoff = await call(client(), 'send_message', { phone: handedOff, text: 'Ainda aí?' });
      assert.equal(refusedHandoff.isError, true);
      assert.equal(refusedHandoff.body.error.code, 'lead_handoff');

      const optedOut = nextPhone();
      const opt = await call(client(), 'opt_out_lead', { phone: optedOut });
      assert.equal(opt.isError, false, JSON.stringify(opt.body));
      assert.ok((await lead(optedOut))!.opted_out_at);
      const refused = await call(client(), 'send_message', { phone: optedOut, text: 'Oi' });
      assert.equal(refused.isError, true);
      assert.equal(refused.body.error.code, 'lead_opted_out');
      assert.equal(fake.deliveriesTo(optedOut).length + fake.deliveriesTo(handedOff).length, 0);
    });

    it(`a bad argument is a tool error naming the field, and nothing is written (${transport})`, async () => {
      const phone = nextPhone();
      const cases: Array<[string, Record<string, unknown>, string]> = [
        ['schedule_followup', { phone, delayHours: -1 }, 'delayHours'],
        ['schedule_followup', { phone, delayHours: 1, colour: 'blue' }, 'colour'],
        ['schedule_followup', { phone: 5581999998888, delayHours: 1 }, 'phone'],
        ['send_message', { phone, text: '' }, 'text'],
        ['send_message', { phone: 'abc', text: 'oi' }, 'phone'],
        ['enroll_lead', { phone, campaign: 'no-such-campaign' }, 'campaign'],
        ['cancel_followups', {}, 'id'],
        ['cancel_followups', { id: 'not-a-uuid' }, 'id'],
        ['get_lead', { phone, messages: 500 }, 'messages'],
        ['opt_out_lead', { phone, at: 'yesterday' }, 'at'],
      ];
      for (const [name, args, field] of cases) {
        const answer = await call(client(), name, args);
        assert.equal(answer.isError, true, `${name} ${JSON.stringify(args)}`);
        assert.equal(answer.body.error.code, 'validation_error', `${name}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.error.details[0].field, field, `${name}: ${JSON.stringify(answer.body)}`);
      }
      assert.equal(await lead(phone), undefined, 'no lead written');
      assert.equal(fake.deliveriesTo(phone).length, 0);
      const unknownTool = await call(client(), 'delete_everything', {});
      assert.equal(unknownTool.isError, true);
      assert.equal(unknownTool.body.error.code, 'unknown_tool');
    });
  }

  it('POST /mcp needs the API token; GET /mcp offers no stream (405)', async () => {
    const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } };
    const anonymous = await api.running.app!.inject({ method: 'POST', url: '/mcp', headers: { accept: 'application/json, text/event-stream' }, payload: initialize });
    assert.equal(anonymous.statusCode, 401);
    const wrong = await api.running.app!.inject({
      method: 'POST',
      url: '/mcp',
      headers: { accept: 'application/json, text/event-stream', authorization: 'Bearer not-the-token-at-all-000000' },
      payload: initialize,
    });
    assert.equal(wrong.statusCode, 401);
    const stream = await api.running.app!.inject({ method: 'GET', url: '/mcp', headers: { accept: 'text/event-stream', authorization: `Bearer ${TEST_TOKEN}` } });
    assert.equal(stream.statusCode, 405);
    assert.equal(stream.headers.allow, 'POST');
  });

  it('the stdio server logs to stderr only (stdout is the protocol)', () => {
    assert.match(stdioStderr, /MCP server on stdio/);
  });
});
