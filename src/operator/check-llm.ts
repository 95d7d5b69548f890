/** `doctor`'s LLM check: one tiny chat completion against LLM_BASE_URL with LLM_MODEL. */
import type { Config } from '../config.js';
import { makeLlmWriter } from '../compose/llm-writer.js';
import { LlmError } from '../errors.js';
import { type Check, fail, ok, skip } from './check.js';

export async function checkLlm(config: Config, clock: () => number = Date.now): Promise<Check[]> {
  if (!config.llm) return [skip('llm', 'LLM_BASE_URL is not set: texts come from the campaign templates')];
  const writer = makeLlmWriter(config.llm);
  const started = clock();
  try {
    await writer.write([{ role: 'user', content: 'Answer with the single word: ok' }]);
    return [ok('llm', `${config.llm.model} at ${config.llm.baseUrl} answered in ${clock() - started} ms`)];
  } catch (error) {
    const why = error instanceof LlmError ? error.why : 'error';
    const message = `${config.llm.model} at ${config.llm.baseUrl}: ${(error as Error).message}`;
    if (why === 'http_401' || why === 'http_403') return [fail('llm', message, 'set LLM_API_KEY to a valid key for this endpoint')];
    if (why === 'http_404') return [fail('llm', message, 'check LLM_MODEL and that LLM_BASE_URL is the API root (usually ending in /v1)')];
    if (why === 'timeout' || why === 'network') {
      return [fail('llm', message, `check LLM_BASE_URL; a model slower than LLM_TIMEOUT_MS (${config.llm.timeoutMs} ms) means every text falls back to the templates`, true)];
    }
    return [fail('llm', message, 'check LLM_BASE_URL, LLM_MODEL and LLM_API_KEY; meanwhile texts come from the templates')];
  }
}
