/**
 * Several WhatsApp numbers behind one Transport: one Evolution client per instance (each with
 * its own URL and API key, EVOLUTION_INSTANCES), and every call goes to the instance it names
 * (`instance` in the input, or the last argument), the default (first) one when it names none.
 * An instance that is not configured is a configuration fault (it pauses that number).
 */
import { SendError } from '../errors.js';
import type { Transport } from './transport.js';

export function makeMultiInstanceTransport(transports: ReadonlyMap<string, Transport>, defaultInstance: string): Transport {
  const pick = (instance: string | undefined): Transport => {
    const transport = transports.get(instance ?? defaultInstance);
    if (!transport) {
      throw new SendError('configuration', 'instance_not_found', `WhatsApp number "${instance}" is not configured (EVOLUTION_INSTANCES)`);
    }
    return transport;
  };
  const first = pick(defaultInstance);
  const anyFindReplies = [...transports.values()].every((t) => t.findReplies);
  return {
    name: first.name,
    sendText: (input) => pick(input.instance).sendText(input),
    findSent: (input) => pick(input.instance).findSent(input),
    ...(anyFindReplies ? { findReplies: (input: Parameters<NonNullable<Transport['findReplies']>>[0]) => pick(input.instance).findReplies!(input) } : {}),
    checkNumber: (number, instance) => pick(instance).checkNumber(number),
    async checkNumbers(numbers, instance) {
      const transport = pick(instance);
      if (transport.checkNumbers) return transport.checkNumbers(numbers);
      return new Map(await Promise.all(numbers.map(async (n) => [n, await transport.checkNumber(n)] as const)));
    },
    connectionState: (instance) => pick(instance).connectionState(),
    async close() {
      await Promise.all([...transports.values()].map((t) => t.close?.()));
    },
  };
}
