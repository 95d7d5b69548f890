/**
 * Dates as people type them in a spreadsheet: ISO-8601 with an offset, or a
 * local time without one — `2026-01-05 14:30`, `05/01/2026 14:30`, `05/01/2026`
 * (day first, as in Brazil) — read in the business time zone.
 */
import { instantOf } from '../time/zoned-time.js';

/** The instant a wall-clock time in `timeZone` stands for (time/zoned-time.ts instantOf), or null for a date that does not exist (31/02, 25:00). */
function zonedTimeToUtc(
  fields: { year: number; month: number; day: number; hour: number; minute: number; second: number },
  timeZone: string,
): Date | null {
  const { year, month, day, hour, minute, second } = fields;
  const check = new Date(Date.UTC(year, month - 1, day));
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return null; // 31/02, 25:00, ...
  }
  return instantOf(fields, timeZone);
}

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;
const ISO_LOCAL = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;
const BR_LOCAL = /^(\d{1,2})\/(\d{1,2})\/(\d{4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;

/** A Date, or null when the text is not one of the accepted forms (or not a real date). */
export function parseLocalTime(text: string, timeZone: string): Date | null {
  const value = text.trim();
  if (ISO_WITH_ZONE.test(value)) {
    const at = new Date(value);
    return Number.isNaN(at.getTime()) ? null : at;
  }
  const iso = ISO_LOCAL.exec(value);
  const br = iso ? null : BR_LOCAL.exec(value);
  const m = iso ?? br;
  if (!m) return null;
  const [year, month, day] = iso ? [m[1], m[2], m[3]] : [m[3], m[2], m[1]];
  return zonedTimeToUtc(
    { year: Number(year), month: Number(month), day: Number(day), hour: Number(m[4] ?? 0), minute: Number(m[5] ?? 0), second: Number(m[6] ?? 0) },
    timeZone,
  );
}
