/**
 * The one timeout helper: a promise, or a rejection once `ms` have passed. The timer is
 * cleared as soon as the promise settles. For calls that take no AbortSignal (Redis
 * commands, a database query); fetch takes AbortSignal.timeout instead.
 */
import { TimeoutError } from './errors.js';

export { TimeoutError };

/** `promise`, or a rejection with `new ErrorClass('<what> timed out after <ms> ms')` after `ms`. */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  ErrorClass: new (message: string) => Error = TimeoutError,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ErrorClass(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
