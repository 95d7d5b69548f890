/**
 * The agent's tools for function calling (README "Agent integration" → "Function calling without MCP"): `GET /v1/agent/tools`
 * and `followups tools --format …` print the MCP tools as OpenAI or Anthropic
 * definitions; `POST /v1/agent/tools/:name` executes a call. A full round trip with
 * the `openai` client against the fake OpenAI-compatible server: the model answers
 * with a `tool_calls` message, the call is executed against the service (the
 * follow-up is in the database), and its result goes back to the model.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeLlm, type FakeLlm } from './helpers/fake-llm.js';
import { type RoleHandle, startRole, TEST_TOKEN } from './helpers/pipeline.js';
import { cliArgs } from './helpers/cli.js';

const auth = { authorization: `Bearer ${TEST_TOKEN}` };
const NAMES = ['cancel_followups', 'enroll_lead', 'get_lead', 'handoff_to_human', 'mark_converted', 'opt_out_lead', 'schedule_followup', 'send_message'];

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...cliArgs(), ...args], { timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('tools for function calling', () => {
  let testDb: TestDatabase;
  let llm: FakeLlm;
  let api: RoleHandle;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    llm = await startFakeLlm();
    api = await startRole({ roles: ['api'], databaseUrl: testDb.url });
  });
  after(async () => {
    await api.stop();
    await llm.close();
    await testDb.drop();
  });

  const inject = (method: 'GET' | 'POST', url: string, payload?: object) => api.running.app!.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) });

  it('GET /v1/agent/tools gives the eight tools in OpenAI or Anthropic shape, with the JSON schemas the MCP server lists', async () => {
    const openai = await inject('GET', '/v1/agent/tools?format=openai');
    assert.equal(openai.statusCode, 200, openai.body);
    const tools = openai.json().tools as Array<{ type: string; function: { name: string; description: string; parameters: { type: string; properties: object } } }>;
    assert.deepEqual(tools.map((t) => t.function.name).sort(), NAMES);
    for (const tool of tools) {
      assert.equal(tool.type, 'function');
      assert.equal(tool.function.parameters.type, 'object');
      assert.ok(tool.function.description.length > 200);
    }
    assert.deepEqual((await inject('GET', '/v1/agent/tools')).json().tools, tools, 'openai is the default');

    const anthropic = await inject('GET', '/v1/agent/tools?format=anthropic');
    const anthropicTools = anthropic.json().tools as Array<{ name: string; description: string; input_schema: unknown }>;
    assert.deepEqual(anthropicTools.map((t) => [t.name, t.description, t.input_schema]), tools.map((t) => [t.function.name, t.function.description, t.function.parameters]));

    const bad = await inject('GET', '/v1/agent/tools?format=gemini');
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.details[0].field, 'format');
    const anonymous = await api.running.app!.inject({ method: 'GET', url: '/v1/agent/tools' });
    assert.equal(anonymous.statusCode, 401);
  });

  it('followups tools --format prints the same definitions as the route', async () => {
    for (const format of ['openai', 'anthropic']) {
      const run = await cli(['tools', '--format', format]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(JSON.parse(run.stdout), (await inject('GET', `/v1/agent/tools?format=${format}`)).json().tools);
    }
    const bad = await cli(['tools', '--format', 'gemini']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--format: must be one of openai, anthropic/);
  });

  it('a full round trip: the model calls schedule_followup, the service runs it, the result goes back to the model', async () => {
    const phone = '5581994000001';
    llm.answer(
      { toolCalls: [{ name: 'schedule_followup', arguments: { phone, delayHours: 4, intent: 'check_in' } }] },
      { content: 'Combinado! Te chamo mais tarde.' },
    );
    const client = new OpenAI({ baseURL: llm.url, apiKey: llm.apiKey, maxRetries: 0 });
    const tools = (await inject('GET', '/v1/agent/tools?format=openai')).json().tools as OpenAI.Chat.Completions.ChatCompletionTool[];
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'Você é a Marina, do Clube Náutico.' },
      { role: 'user', content: 'Agora não posso, me chama daqui a 4 horas?' },
    ];
    const first = await client.chat.completions.create({ model: 'gpt-test', messages, tools });
    const call = first.choices[0]!.message.tool_calls![0]!;
    assert.equal(call.type, 'function');
    messages.push(first.choices[0]!.message);
    const fn = (call as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall).function;
    const executed = await inject('POST', `/v1/agent/tools/${fn.name}`, JSON.parse(fn.arguments));
    assert.equal(executed.statusCode, 200, executed.body);
    messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify(executed.json().result) });
    const second = await client.chat.completions.create({ model: 'gpt-test', messages, tools });
    assert.equal(second.choices[0]!.message.content, 'Combinado! Te chamo mais tarde.');

    const { rows } = await testDb.db.query<{ id: string; status: string; intent: string; due_at: Date }>(
      'SELECT f.id, f.status, f.intent, f.due_at FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE l.phone = $1',
      [phone],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.status, 'pending');
    assert.equal(rows[0]!.intent, 'check_in');
    assert.ok(Math.abs(rows[0]!.due_at.getTime() - (Date.now() + 4 * 3_600_000)) < 60_000, 'due in 4 hours');

    const [toModel, withResult] = llm.requests.slice(-2);
    assert.deepEqual((toModel!.body.tools as Array<{ function: { name: string } }>).map((t) => t.function.name).sort(), NAMES, 'the model was given the tools');
    const toolMessage = withResult!.body.messages!.find((m) => m.role === 'tool')!;
    assert.equal(toolMessage.tool_call_id, call.id);
    assert.equal(JSON.parse(toolMessage.content).id, rows[0]!.id, "the model got the tool's result");
  });

  it('a bad tool call is the API error naming the field, and writes nothing; an unknown tool is a 404', async () => {
    const bad = await inject('POST', '/v1/agent/tools/schedule_followup', { phone: '5581994000002', delayHours: -4 });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.details[0].field, 'delayHours');
    assert.equal((await testDb.db.query('SELECT 1 FROM leads WHERE phone = $1', ['5581994000002'])).rowCount, 0);
    const unknown = await inject('POST', '/v1/agent/tools/format_disk', {});
    assert.equal(unknown.statusCode, 404);
  });
});
