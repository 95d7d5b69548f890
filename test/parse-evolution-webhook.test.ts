import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '../src/errors.js';
import { normalizeEventName, parseEvolutionWebhook } from '../src/webhooks/parse-evolution-webhook.js';

const upsert = (data: unknown, event = 'messages.upsert') => parseEvolutionWebhook({ event, data });
const message = (key: Record<string, unknown>, rest: Record<string, unknown> = {}) =>
  upsert({ key: { fromMe: false, id: 'ID1', ...key }, ...rest });

describe('reading Evolution webhook bodies', () => {
  test('event names in every spelling fold to the dotted form', () => {
    assert.equal(normalizeEventName('MESSAGES_UPSERT'), 'messages.upsert');
    assert.equal(normalizeEventName('messages-upsert'), 'messages.upsert');
    assert.equal(normalizeEventName(' Connection.Update '), 'connection.update');
  });

  test('phones: 12-digit JIDs get the 9th digit, device suffixes are dropped, other countries keep their code', () => {
    const phone = (jid: string) => {
      const [e] = message({ remoteJid: jid });
      return e!.kind === 'message' ? e!.message.phone : e!.kind;
    };
    assert.equal(phone('558199998888@s.whatsapp.net'), '5581999998888');
    assert.equal(phone('5581999998888@s.whatsapp.net'), '5581999998888');
    assert.equal(phone('558199998888:12@s.whatsapp.net'), '5581999998888');
    assert.equal(phone('558133334444@s.whatsapp.net'), '558133334444', 'a landline keeps 8 digits');
    assert.equal(phone('14155550123@s.whatsapp.net'), '14155550123', 'never read as a Brazilian number without country code');
    assert.equal(phone('abc@s.whatsapp.net'), 'ignored');
  });

  test('@lid senders: remoteJidAlt, else senderPn; neither → ignored, never guessed', () => {
    const [alt] = message({ remoteJid: '204958372615243@lid', remoteJidAlt: '558197776666@s.whatsapp.net' });
    assert.equal(alt!.kind === 'message' && alt!.message.phone, '5581997776666');
    const [pn] = message({ remoteJid: '204958372615243@lid', senderPn: '558197776666@s.whatsapp.net' });
    assert.equal(pn!.kind === 'message' && pn!.message.phone, '5581997776666');
    const [none] = message({ remoteJid: '204958372615243@lid' });
    assert.deepEqual(none, { kind: 'ignored', event: 'messages.upsert', reason: 'lid_without_phone' });
  });

  test('texts from conversation, extended text, captions and wrappers; media without text is null', () => {
    const text = (m: unknown) => {
      const [e] = message({ remoteJid: '558199998888@s.whatsapp.net' }, { message: m });
      return e!.kind === 'message' ? e!.message.text : undefined;
    };
    assert.equal(text({ conversation: 'oi' }), 'oi');
    assert.equal(text({ extendedTextMessage: { text: 'link' } }), 'link');
    assert.equal(text({ imageMessage: { caption: 'foto' } }), 'foto');
    assert.equal(text({ ephemeralMessage: { message: { conversation: 'sumindo' } } }), 'sumindo');
    assert.equal(text({ audioMessage: { seconds: 3 } }), null);
    assert.equal(text({ conversation: 'a\u0000b' }), 'ab', 'NUL removed (PostgreSQL text cannot hold it)');
  });

  test('timestamps: seconds as number or string, milliseconds, Long objects; nonsense is null', () => {
    const at = (ts: unknown) => {
      const [e] = message({ remoteJid: '558199998888@s.whatsapp.net' }, { messageTimestamp: ts });
      return e!.kind === 'message' ? e!.message.at?.toISOString() ?? null : undefined;
    };
    assert.equal(at(1764151200), '2025-11-26T10:00:00.000Z');
    assert.equal(at('1764151200'), '2025-11-26T10:00:00.000Z');
    assert.equal(at(1764151200123), '2025-11-26T10:00:00.000Z');
    assert.equal(at({ low: 1764151200, high: 0 }), '2025-11-26T10:00:00.000Z');
    assert.equal(at(0), null);
    assert.equal(at('soon'), null);
    assert.equal(at(Infinity), null);
  });

  test('groups, broadcasts and newsletters are ignored; unknown events too', () => {
    assert.equal(message({ remoteJid: '1203@g.us' })[0]!.kind, 'ignored');
    assert.equal(message({ remoteJid: 'status@broadcast' })[0]!.kind, 'ignored');
    assert.equal(message({ remoteJid: '1203@newsletter' })[0]!.kind, 'ignored');
    assert.deepEqual(parseEvolutionWebhook({ event: 'CHATS_UPDATE', data: 'anything' }), [{ kind: 'ignored', event: 'chats.update', reason: 'event_not_used' }]);
  });

  test('a list of messages (older servers) is read one by one', () => {
    const events = upsert([
      { key: { remoteJid: '558199998888@s.whatsapp.net', fromMe: false, id: 'A' } },
      { key: { remoteJid: '1203@g.us', fromMe: false, id: 'B' } },
    ]);
    assert.deepEqual(events.map((e) => e.kind), ['message', 'ignored']);
  });

  test('malformed: a ValidationError naming the field', () => {
    const field = (body: unknown) => {
      try {
        parseEvolutionWebhook(body);
        return 'accepted';
      } catch (error) {
        assert.ok(error instanceof ValidationError);
        return error.field;
      }
    };
    assert.equal(field(null), '(body)');
    assert.equal(field({}), 'event');
    assert.equal(field({ event: 'messages.upsert', data: { key: { id: 'X' } } }), 'data.key.remoteJid');
    assert.equal(field({ event: 'messages.upsert', data: { key: { remoteJid: 'x@s.whatsapp.net', id: 'x'.repeat(201) } } }), 'data.key.id');
    assert.equal(field({ event: 'connection.update', data: {} }), 'data.state');
  });
});
