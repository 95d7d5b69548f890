import type { z } from 'zod';
import { ValidationError } from './errors.js';

/**
 * Parses `input` with a zod schema; on failure throws one ValidationError whose
 * message names every offending field (`delayHours: must be >= 0; foo: unknown field`).
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.infer<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: [path, key].filter(Boolean).join('.'), message: 'unknown field' }));
    }
    if ((issue.code === 'invalid_type' || issue.code === 'invalid_union') && issue.input === undefined) {
      return [{ field: path || '(body)', message: 'is required' }];
    }
    return [{ field: path || '(body)', message: issue.message }];
  });
  const message = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
  throw new ValidationError(message, problems[0]?.field, problems);
}
