import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '../src/errors.js';
import { normalizePhone, phoneVariants, tryNormalizePhone } from '../src/whatsapp/phone.js';

describe('phone numbers', () => {
  test('the 9th digit: 558199998888 and 5581999998888 are the same lead', () => {
    assert.equal(normalizePhone('558199998888'), '5581999998888');
    assert.equal(normalizePhone('5581999998888'), '5581999998888');
  });

  test('accepts the usual spellings', () => {
    for (const input of ['+55 (81) 99999-8888', '81 99999-8888', '81999998888', '8199998888', '558199998888@s.whatsapp.net', '558199998888:12@s.whatsapp.net']) {
      assert.equal(normalizePhone(input), '5581999998888', String(input));
    }
  });

  test('keeps landlines at 8 digits', () => {
    assert.equal(normalizePhone('558133334444'), '558133334444');
  });

  test('passes other countries through when written with +', () => {
    assert.equal(normalizePhone('+351 912 345 678'), '351912345678');
  });

  test('rejects what is not a Brazilian number, naming the field', () => {
    for (const bad of ['abc', '123', '5500999998888', '55819999988889', '5581899998888', '', '+1', null, {}]) {
      assert.throws(
        () => normalizePhone(bad, 'lead.phone'),
        (e: unknown) => e instanceof ValidationError && e.field === 'lead.phone' && e.message.startsWith('lead.phone'),
        String(bad),
      );
    }
    assert.equal(tryNormalizePhone('nope'), null);
  });

  test('refuses junk that used to pass: +0000000000, a JID of another server, an @lid, a JSON number', () => {
    for (const bad of ['+0000000000', '+1 555 0100', '5581999998888@evil.com', '5581999998888@lid', '558199998888@g.us', 5581999998888]) {
      assert.throws(
        () => normalizePhone(bad, 'phone'),
        (e: unknown) => e instanceof ValidationError && e.field === 'phone',
        String(bad),
      );
    }
    assert.match((() => { try { normalizePhone(5581999998888); } catch (e) { return (e as Error).message; } return ''; })(), /not a JSON number/);
  });

  test('lists both WhatsApp spellings of a mobile', () => {
    assert.deepEqual(phoneVariants('5581999998888'), ['5581999998888', '558199998888']);
    assert.deepEqual(phoneVariants('558133334444'), ['558133334444']);
  });
});
