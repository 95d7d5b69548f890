/**
 * A fake OpenAI-compatible chat-completions server for tests: a real HTTP
 * server on 127.0.0.1 answering `POST /v1/chat/completions` with the shapes the
 * real API uses (a `chat.completion` object with `choices[0].message.content`,
 * or an `{error: {...}}` body), recording every request. Answers are queued with
 * `answer(...)`; when the queue is empty the default answer is used.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeLlmAnswer =
  | { content: string; delayMs?: number }
  /** An assistant message that calls tools (finish_reason `tool_calls`), as a function-calling model answers. */
  | { toolCalls: Array<{ name: string; arguments: Record<string, unknown> }>; delayMs?: number }
  | { status: number; message?: string }
  /** Never answers (until the server closes). */
  | { hang: true };

export interface FakeLlmRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: {
    model?: string;
    /** An assistant message that called tools (function calling) has `content: null` at run time. */
    messages?: Array<{ role: string; content: string; tool_call_id?: string; tool_calls?: unknown[] }>;
    [key: string]: unknown;
  };
  at: Date;
}

export interface FakeLlm {
  /** The base URL to give as LLM_BASE_URL (ends in /v1). */
  url: string;
  apiKey: string;
  requests: FakeLlmRequest[];
  answer(...answers: FakeLlmAnswer[]): void;
  setDefault(answer: FakeLlmAnswer): void;
  /**
   * Answers from the request itself when no answer is queued (a script that follows the
   * conversation, for several conversations at once); undefined falls back to the default.
   */
  respond(script: ((request: FakeLlmRequest) => FakeLlmAnswer | undefined) | null): void;
  close(): Promise<void>;
}

let completionSeq = 0;

export async function startFakeLlm(options: { apiKey?: string } = {}): Promise<FakeLlm> {
  const apiKey = options.apiKey ?? 'sk-fake-llm-key';
  const requests: FakeLlmRequest[] = [];
  const queue: FakeLlmAnswer[] = [];
  let fallback: FakeLlmAnswer = { content: 'Oi! Ficou alguma dúvida sobre o Sócio Mais Fiel do Nordeste?' };
  let script: ((request: FakeLlmRequest) => FakeLlmAnswer | undefined) | null = null;

  const sendJson = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-request-id': `req_${completionSeq}` });
    res.end(text);
  };

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: FakeLlmRequest['body'] = {};
    try {
      body = raw ? JSON.parse(raw) : {};
    } catch {
      return sendJson(res, 400, { error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error', param: null, code: null } });
    }
    const path = (req.url ?? '').split('?')[0]!;
    const recorded: FakeLlmRequest = { method: req.method ?? '', path, headers: req.headers, body, at: new Date() };
    requests.push(recorded);
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      return sendJson(res, 404, { error: { message: `Unknown request URL: ${req.method} ${path}.`, type: 'invalid_request_error', param: null, code: 'unknown_url' } });
    }
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      return sendJson(res, 401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
    }
    if (!body.model || !Array.isArray(body.messages)) {
      return sendJson(res, 400, { error: { message: "Missing required parameter: 'messages'.", type: 'invalid_request_error', param: 'messages', code: 'missing_required_parameter' } });
    }
    const answer = queue.shift() ?? script?.(recorded) ?? fallback;
    if ('hang' in answer) return; // the socket stays open; close() ends it
    if ('status' in answer) {
      return sendJson(res, answer.status, {
        error: { message: answer.message ?? 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null },
      });
    }
    if ('toolCalls' in answer) {
      if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
      completionSeq += 1;
      const toolCalls = answer.toolCalls.map((call, i) => ({
        id: `call_fake${completionSeq}_${i}`,
        type: 'function',
        function: { name: call.name, arguments: JSON.stringify(call.arguments) },
      }));
      return sendJson(res, 200, {
        id: `chatcmpl-fake${completionSeq}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: toolCalls, refusal: null }, logprobs: null, finish_reason: 'tool_calls' }],
        usage: { prompt_tokens: Math.ceil(raw.length / 4), completion_tokens: 20, total_tokens: Math.ceil(raw.length / 4) + 20 },
        system_fingerprint: 'fp_fake',
      });
    }
    if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
    completionSeq += 1;
    const promptTokens = Math.ceil(raw.length / 4);
    const completionTokens = Math.ceil(answer.content.length / 4);
    sendJson(res, 200, {
      id: `chatcmpl-fake${completionSeq}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content: answer.content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
      system_fingerprint: 'fp_fake',
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    apiKey,
    requests,
    answer: (...answers) => queue.push(...answers),
    setDefault: (answer) => {
      fallback = answer;
    },
    respond: (next) => {
      script = next;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
