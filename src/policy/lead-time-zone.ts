/**
 * Which clock a lead lives by. Brazil spans UTC−2 to UTC−5; a message at 08:00
 * in Recife is 07:00 in Manaus and 06:00 in Rio Branco. In order:
 *   1. the lead's own `time_zone` (the agent or an import may know it);
 *   2. the area code (DDD) of a Brazilian number, mapped to the IANA zone of its
 *      state (src/area-codes.ts);
 *   3. the business default (BUSINESS_TIMEZONE).
 */
import { zoneOfAreaCode } from '../area-codes.js';
import { isTimeZone } from '../time/zoned-time.js';

export function leadTimeZone(lead: { phone: string; timeZone: string | null }, fallback: string): string {
  if (lead.timeZone && isTimeZone(lead.timeZone)) return lead.timeZone;
  return zoneOfAreaCode(lead.phone) ?? fallback;
}
