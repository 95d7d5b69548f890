/**
 * The Brazilian area codes (DDD) in use, each with the IANA zone of its state as in
 * the tz database's zone.tab: which numbers are Brazilian (whatsapp/phone.ts) and
 * which clock a lead lives by (policy/lead-time-zone.ts).
 * Fernando de Noronha (UTC−2) shares area code 81 with Recife, so it cannot be
 * told apart by number: its few residents get Recife's clock, an hour "late",
 * which is the safe side of the window.
 */
/** Each IANA zone with the area codes of its states. */
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

export function isBrazilianAreaCode(code: number): boolean {
  return ZONE_BY_AREA_CODE.has(code);
}
