import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeFakeClock } from '../src/clock.js';
import type { Db } from '../src/db/db.js';
import { migrate } from '../src/db/migrate.js';
import { useErasureKey } from '../src/privacy/erasure-key.js';
import { createLogger } from '../src/log.js';
import { makeDryRunTransport } from '../src/whatsapp/dry-run-transport.js';
import { startTestPglite } from './helpers/pglite.js';

const silent = createLogger({ level: 'silent' });

describe('the dry-run transport', () => {
  let db: Db;

  before(async () => {
    db = await startTestPglite();
    await migrate(db);
    useErasureKey('test-erasure-key-0123456789abcdef-0123456789'); // createContext's job, done here by hand

  });

  after(async () => {
    await db.close();
  });

  test('records the text instead of sending it, and prints one line about it', async () => {
    const clock = makeFakeClock('2026-01-05T12:00:00.000Z');
    const printed: string[] = [];
    const transport = makeDryRunTransport({ db, log: silent, clock, print: (line) => printed.push(line) });

    const result = await transport.sendText({ number: '5581999998888', text: 'Opa, João! Tudo certo?', delayMs: 1500 });

    assert.equal(transport.name, 'dry-run');
    assert.match(result.providerMessageId, /^DRYRUN[0-9A-F]{16}$/);
    const { rows } = await db.query<{ number: string; text: string; at: Date }>(
      'SELECT number, text, at FROM dry_run_messages WHERE provider_message_id = $1',
      [result.providerMessageId],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.number, '5581999998888');
    assert.equal(rows[0]!.text, 'Opa, João! Tudo certo?');
    assert.equal(new Date(rows[0]!.at).toISOString(), '2026-01-05T12:00:00.000Z');
    assert.equal(printed.length, 1);
    assert.match(printed[0]!, /5581\*{5}8888/);
    assert.ok(printed[0]!.includes('Opa, João! Tudo certo?'));
    assert.ok(printed[0]!.includes(result.providerMessageId));
    assert.ok(!printed[0]!.includes('5581999998888'), 'the printed line masks the phone');
  });

  test('logs the send at info with a masked phone and the text\'s length only (never the text) when no printer is given', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    const transport = makeDryRunTransport({ db, log, clock: makeFakeClock() });

    const { providerMessageId } = await transport.sendText({ number: '5581977776666', text: 'Bora, Timbu!', delayMs: 0 });

    assert.equal(lines.length, 1);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(entry.msg, 'dry-run: message not sent to WhatsApp');
    assert.equal(entry.level, 30);
    assert.equal(entry.phone, '5581*****6666');
    assert.equal(entry.providerMessageId, providerMessageId);
    assert.equal(entry.text, '[12 chars]');
    assert.ok(!lines[0]!.includes('Bora, Timbu!'));
  });

  test('findSent finds the recorded text, but not another text, another number or one older than the claim', async () => {
    const clock = makeFakeClock('2026-02-10T09:00:00.000Z');
    const transport = makeDryRunTransport({ db, log: silent, clock, print: () => undefined });
    const number = '5581966665555';
    const { providerMessageId } = await transport.sendText({ number, text: 'Passando pra lembrar do plano', delayMs: 0 });
    const sentAt = clock.now().getTime();

    const find = (input: { number?: string; text?: string; sinceMs: number }) =>
      transport.findSent({
        number: input.number ?? number,
        text: input.text ?? 'Passando pra lembrar do plano',
        since: new Date(input.sinceMs),
      });

    assert.deepEqual(await find({ sinceMs: sentAt - 5_000 }), { providerMessageId });
    // A little clock skew between the claim and the send is tolerated.
    assert.deepEqual(await find({ sinceMs: sentAt + 30_000 }), { providerMessageId });
    // The same number without the 9th digit is the same lead.
    assert.deepEqual(await find({ number: '558166665555', sinceMs: sentAt }), { providerMessageId });
    assert.equal(await find({ text: 'Outro texto', sinceMs: sentAt }), null);
    assert.equal(await find({ number: '5581955554444', sinceMs: sentAt }), null);
    assert.equal(await find({ sinceMs: sentAt + 120_000 }), null);
  });

  test('reports every number as on WhatsApp and the connection as open', async () => {
    const transport = makeDryRunTransport({ db, log: silent, clock: makeFakeClock() });
    assert.deepEqual(await transport.checkNumber('5581999998888'), { exists: true });
    assert.equal(await transport.connectionState(), 'open');
  });
});
