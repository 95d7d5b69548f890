/**
 * The sending window: the hours a lead may receive a follow-up, on the lead's
 * own wall clock (default 08:00–20:00, Monday to Saturday; Sundays when
 * SEND_ON_SUNDAY). Outside it a follow-up waits for the next opening plus a
 * random delay spread over the first minutes (SENDING_WINDOW_JITTER_MINUTES),
 * so everything held overnight does not burst out at 08:00:00. The jitter never
 * reaches past the window's close.
 */
import { instantOf, minutesOf, wallTimeIn } from '../time/zoned-time.js';

export interface WindowSettings {
  enabled: boolean;
  /** `HH:MM` */
  start: string;
  /** `HH:MM`, later than start (`24:00` allowed) */
  end: string;
  sundays: boolean;
  jitterMs: number;
}

export interface SendingWindow {
  isOpen(at: Date, timeZone: string): boolean;
  /** `at` when the window is open then; otherwise the next opening (without jitter). */
  nextOpening(at: Date, timeZone: string): Date;
  /** `at` when open; otherwise the next opening plus jitter. */
  allowedAt(at: Date, timeZone: string): Date;
}

export function makeSendingWindow(settings: WindowSettings, random: () => number = Math.random): SendingWindow {
  const startMin = minutesOf(settings.start);
  const endMin = minutesOf(settings.end);

  function dayBounds(day: { year: number; month: number; day: number }, timeZone: string) {
    return {
      open: instantOf({ ...day, hour: 0, minute: startMin }, timeZone),
      close: instantOf({ ...day, hour: 0, minute: endMin }, timeZone),
    };
  }

  function nextOpening(at: Date, timeZone: string): Date {
    if (!settings.enabled) return at;
    const today = wallTimeIn(at, timeZone);
    // At most a week ahead: some day within it is always open (only Sunday can be closed).
    for (let offset = 0; offset <= 7; offset++) {
      const day = { year: today.year, month: today.month, day: today.day + offset };
      const weekday = (today.weekday + offset) % 7;
      if (weekday === 0 && !settings.sundays) continue;
      const { open, close } = dayBounds(day, timeZone);
      if (at < open) return open;
      if (at < close) return at;
    }
    throw new Error(`no sending window within a week of ${at.toISOString()} in ${timeZone}`);
  }

  return {
    isOpen(at, timeZone) {
      return nextOpening(at, timeZone).getTime() === at.getTime();
    },
    nextOpening,
    allowedAt(at, timeZone) {
      const opening = nextOpening(at, timeZone);
      if (opening.getTime() === at.getTime()) return at;
      const length = (endMin - startMin) * 60_000;
      const spread = Math.max(0, Math.min(settings.jitterMs, length - 60_000));
      return new Date(opening.getTime() + Math.floor(random() * spread));
    },
  };
}
