/**
 * The model behind the LLM composer: any OpenAI-compatible chat-completions
 * endpoint (OpenAI, Azure's compatible API, OpenRouter, vLLM, Ollama, ...),
 * through the official `openai` client. LLM_BASE_URL is the API root, usually
 * ending in `/v1` (the client appends `/chat/completions`).
 *
 * One attempt, bounded by the timeout: no retries inside it. A follow-up has a
 * template to fall back on, so a slow or failing model costs a template text,
 * never a late message.
 */
import type OpenAI from 'openai';
import { LlmError } from '../errors.js';
import type { PromptMessage } from './build-prompt.js';

type OpenAIModule = typeof import('openai');
// Loaded on first use: a deployment without an LLM never pays for the client at start-up.
let openai: Promise<OpenAIModule> | undefined;
const loadOpenAI = () => (openai ??= import('openai'));

export interface LlmWriter {
  readonly model: string;
  write(messages: PromptMessage[]): Promise<string>;
}

export function makeLlmWriter(options: { baseUrl: string; apiKey: string; model: string; timeoutMs: number }): LlmWriter {
  let client: OpenAI | undefined;
  return {
    model: options.model,
    async write(messages) {
      const sdk = await loadOpenAI();
      client ??= new sdk.OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey, timeout: options.timeoutMs, maxRetries: 0 });
      // The client's timeout covers the request; the signal also bounds reading the body.
      const signal = AbortSignal.timeout(options.timeoutMs);
      try {
        const completion = await client.chat.completions.create(
          { model: options.model, messages },
          { signal, timeout: options.timeoutMs, maxRetries: 0 },
        );
        const content = completion.choices?.[0]?.message?.content;
        if (typeof content !== 'string') throw new LlmError('no_content', 'the model answered without text');
        return content;
      } catch (error) {
        throw classify(sdk, error, signal);
      }
    },
  };
}

function classify(sdk: OpenAIModule, error: unknown, signal: AbortSignal): LlmError {
  if (error instanceof LlmError) return error;
  if (error instanceof sdk.APIConnectionTimeoutError || error instanceof sdk.APIUserAbortError || signal.aborted) {
    return new LlmError('timeout', 'the model did not answer in time');
  }
  if (error instanceof sdk.APIError && typeof error.status === 'number') {
    return new LlmError(`http_${error.status}`, error.message);
  }
  if (error instanceof sdk.APIConnectionError) return new LlmError('network', error.message);
  return new LlmError('error', (error as Error)?.message ?? String(error));
}
