/**
 * Wall-clock time in an IANA time zone, with nothing but Intl: the parts of an
 * instant as a person there reads them, and the instant of a wall-clock time
 * there. Brazil has had no daylight saving since 2019, but nothing here assumes
 * a fixed offset, so a zone that still changes its clocks works too.
 */

export interface WallTime {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday … 6 = Saturday */
  weekday: number;
}

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      weekday: 'short',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

export function isTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

export function wallTimeIn(at: Date, timeZone: string): WallTime {
  const parts: Record<string, string> = {};
  for (const part of formatterFor(timeZone).formatToParts(at)) parts[part.type] = part.value;
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: WEEKDAYS[parts.weekday!] ?? 0,
  };
}

/** How far the zone's wall clock is ahead of UTC at `atMs` (negative west of Greenwich). */
export function offsetMs(atMs: number, timeZone: string): number {
  const w = wallTimeIn(new Date(atMs), timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(atMs / 1000) * 1000;
}

/**
 * The instant when the wall clock in `timeZone` shows this date and time — the one
 * wall-clock-to-instant function (the sending window, the daily caps, the CSV import's
 * local times). Out-of-range fields roll over as in Date.UTC (hour 24 is the next
 * midnight, day 32 the next month). Across a DST change it does what Temporal's
 * "compatible" disambiguation does: a wall time shown twice (clocks set back) is the
 * earlier instant; a wall time skipped (clocks set forward) maps just past the jump.
 */
export function instantOf(
  wall: { year: number; month: number; day: number; hour?: number; minute?: number; second?: number },
  timeZone: string,
): Date {
  const asUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour ?? 0, wall.minute ?? 0, wall.second ?? 0);
  // The zone's offsets a day either side: equal unless a DST change lies in between.
  const before = asUtc - offsetMs(asUtc - DAY_MS, timeZone);
  const after = asUtc - offsetMs(asUtc + DAY_MS, timeZone);
  const shows = (at: number) => at + offsetMs(at, timeZone) === asUtc;
  if (shows(before) && shows(after)) return new Date(Math.min(before, after));
  if (shows(after)) return new Date(after);
  // Shown by `before` only, or by neither (skipped): the offset from before the jump.
  return new Date(before);
}

const DAY_MS = 86_400_000;

/** Minutes since midnight of an `HH:MM` string (`24:00` → 1440). */
export function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
}
