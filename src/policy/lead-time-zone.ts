/**
 * Which clock a lead lives by. Brazil spans UTC−2 to UTC−5; a message at 08:00
 * in Recife is 07:00 in Manaus and 06:00 in Rio Branco. In order:
 *   1. the lead's own `time_zone` (the agent or an import may know it);
 *   2. the area code (DDD) of a Brazilian number, mapped to the IANA zone of its
 *      state as in the tz database's zone.tab;
 *   3. the business default (BUSINESS_TIMEZONE).
 * Fernando de Noronha (UTC−2) shares area code 81 with Recife, so it cannot be
 * told apart by number: its few residents get Recife's clock, an hour "late",
 * which is the safe side of the window.
 */
import { isTimeZone } from '../time/zoned-time.js';

const ZONES: Array<[string, number[]]> = [
  // Southeast, South and Centre-West (GO, DF), all on Brasília time.
  ['America/Sao_Paulo', [11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, 41, 42, 43, 44, 45, 46, 47, 48, 49, 51, 53, 54, 55, 61, 62, 64]],
  ['America/Bahia', [71, 73, 74, 75, 77]],
  ['America/Maceio', [79, 82]], // Sergipe, Alagoas
  ['America/Recife', [81, 87]], // Pernambuco
  ['America/Fortaleza', [83, 84, 85, 86, 88, 89, 98, 99]], // PB, RN, CE, PI, MA
  ['America/Araguaina', [63]], // Tocantins
  ['America/Belem', [91, 94, 96]], // Pará (east), Amapá
  ['America/Santarem', [93]], // Pará (west)
  ['America/Manaus', [92, 97]], // Amazonas
  ['America/Boa_Vista', [95]], // Roraima
  ['America/Porto_Velho', [69]], // Rondônia
  ['America/Rio_Branco', [68]], // Acre (UTC−5)
  ['America/Cuiaba', [65, 66]], // Mato Grosso
  ['America/Campo_Grande', [67]], // Mato Grosso do Sul
];

const ZONE_BY_AREA_CODE = new Map<number, string>(ZONES.flatMap(([zone, codes]) => codes.map((code) => [code, zone] as const)));

/** The zone of a canonical Brazilian number's area code, or null (other countries, unknown codes). */
export function zoneOfAreaCode(phone: string): string | null {
  if (!phone.startsWith('55') || (phone.length !== 12 && phone.length !== 13)) return null;
  return ZONE_BY_AREA_CODE.get(Number(phone.slice(2, 4))) ?? null;
}

export function leadTimeZone(lead: { phone: string; timeZone: string | null }, fallback: string): string {
  if (lead.timeZone && isTimeZone(lead.timeZone)) return lead.timeZone;
  return zoneOfAreaCode(lead.phone) ?? fallback;
}
