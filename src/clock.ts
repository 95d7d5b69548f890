/** Time is injected: production uses the system clock, tests move a fake one. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told to; for tests that span hours. */
export function makeFakeClock(start: Date | string = '2026-01-05T12:00:00.000Z') {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    set(at: Date | string) {
      current = new Date(at).getTime();
    },
    advance(ms: number) {
      current += ms;
    },
  };
}
