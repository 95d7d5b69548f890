/**
 * Phone numbers. A lead is identified by canonical digits: country code 55,
 * two-digit area code, and for mobiles the 9th digit (`5581999998888`).
 * WhatsApp often drops the 9th digit (`558199998888`); both mean the same lead.
 */
import { isValidPhoneNumber } from 'libphonenumber-js/min';
import { isBrazilianAreaCode } from '../area-codes.js';
import { ValidationError } from '../errors.js';

/**
 * Returns canonical digits or throws a ValidationError naming `field`.
 * Accepts `+55 (81) 99999-8888`, `5581999998888`, `558199998888` (no 9th digit),
 * `81999998888` (no country code) and WhatsApp JIDs (`558199998888@s.whatsapp.net`).
 * Numbers of other countries must start with `+` and be valid numbers of their
 * country (libphonenumber's rules): `+0000000000` is not a phone.
 * A JSON number is refused: it has lost any `+` and leading zero, and says
 * nothing about which spelling was meant.
 */
export function normalizePhone(input: unknown, field = 'phone'): string {
  if (typeof input !== 'string') {
    throw new ValidationError(`${field} must be a phone number string such as "5581999998888"${typeof input === 'number' ? ' (not a JSON number)' : ''}`, field);
  }
  let raw = input.trim();
  const at = raw.indexOf('@');
  if (at >= 0) {
    // Only WhatsApp's own user JIDs carry a phone number (an @lid is a privacy id, not a number).
    if (!/^(s\.whatsapp\.net|c\.us)$/i.test(raw.slice(at + 1))) {
      throw new ValidationError(`${field} must be a phone number or a WhatsApp JID ending in @s.whatsapp.net`, field);
    }
    raw = raw.slice(0, at).split(':')[0]!;
  }
  const international = raw.startsWith('+');
  if (!/^[+\d\s().-]+$/.test(raw)) {
    throw new ValidationError(`${field} must contain only digits, spaces, +, (, ), . and -`, field);
  }
  let digits = raw.replace(/\D/g, '');
  if (international && !digits.startsWith('55')) {
    if (digits.length < 8 || digits.length > 15 || !isValidPhoneNumber(`+${digits}`)) {
      throw new ValidationError(`${field} is not a valid international number (country code and number, e.g. +351 912 345 678)`, field);
    }
    return digits;
  }
  if (!international && (digits.length === 10 || digits.length === 11)) digits = `55${digits}`;
  if (!digits.startsWith('55') || (digits.length !== 12 && digits.length !== 13)) {
    throw new ValidationError(
      `${field} must be a Brazilian number with area code (e.g. 5581999998888), or start with + for other countries`,
      field,
    );
  }
  const area = Number(digits.slice(2, 4));
  if (!isBrazilianAreaCode(area)) throw new ValidationError(`${field} has an unknown Brazilian area code ${area}`, field);
  const subscriber = digits.slice(4);
  if (subscriber.length === 8) {
    // Mobiles start with 6–9 and gained a leading 9; landlines (2–5) keep 8 digits.
    if (/^[6-9]/.test(subscriber)) return `55${digits.slice(2, 4)}9${subscriber}`;
    if (/^[2-5]/.test(subscriber)) return digits;
    throw new ValidationError(`${field} is not a valid Brazilian number`, field);
  }
  if (!subscriber.startsWith('9')) {
    throw new ValidationError(`${field}: a 9-digit Brazilian mobile number must start with 9`, field);
  }
  return digits;
}

/** Like normalizePhone but returns null instead of throwing (webhooks, CSV rows). */
export function tryNormalizePhone(input: unknown): string | null {
  try {
    return normalizePhone(input);
  } catch {
    return null;
  }
}

/** The WhatsApp JID for a canonical number. */
export function toJid(phone: string): string {
  return `${phone}@s.whatsapp.net`;
}

/** Both spellings WhatsApp may use for a Brazilian mobile: with and without the 9th digit. */
export function phoneVariants(phone: string): string[] {
  if (phone.startsWith('55') && phone.length === 13 && phone[4] === '9') {
    return [phone, `${phone.slice(0, 4)}${phone.slice(5)}`];
  }
  return [phone];
}
