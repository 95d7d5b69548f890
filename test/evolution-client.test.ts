import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { SendError, type SendErrorKind } from '../src/errors.js';
import { createLogger, type Logger } from '../src/log.js';
import { makeEvolutionTransport } from '../src/whatsapp/evolution-client.js';
import { type FakeEvolution, type FakeEvolutionOptions, startFakeEvolution } from './helpers/fake-evolution.js';

const silent = createLogger({ level: 'silent' });
const MOBILE = '5581999998888';
const MOBILE_JID = '558199998888@s.whatsapp.net';
const TEXT = 'Opa, João! Passando só pra saber se ficou alguma dúvida, visse?';

function fixture(name: string): string {
  return readFileSync(new URL(`./fixtures/evolution/${name}`, import.meta.url), 'utf8');
}

async function withFake(options: FakeEvolutionOptions, fn: (fake: FakeEvolution) => Promise<void>): Promise<void> {
  const fake = await startFakeEvolution({ delayScale: 0, ...options });
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

function transportFor(
  fake: { url: string; apiKey: string; instance: string },
  overrides: { apiKey?: string; instance?: string; timeoutMs?: number; log?: Logger; fetch?: typeof fetch } = {},
) {
  return makeEvolutionTransport({
    url: fake.url,
    apiKey: overrides.apiKey ?? fake.apiKey,
    instance: overrides.instance ?? fake.instance,
    timeoutMs: overrides.timeoutMs ?? 2000,
    log: overrides.log ?? silent,
    fetch: overrides.fetch,
  });
}

/** A fetch that answers every call with one canned response, and remembers the requests. */
function stubFetch(status: number, body: string, contentType = 'application/json') {
  const calls: Array<{ url: string; init: RequestInit | undefined }> = [];
  const fn: typeof fetch = async (input, init) => {
    calls.push({ url: String(input), init });
    return new Response(body, { status, headers: { 'content-type': contentType } });
  };
  return { fn, calls };
}

function stubTransport(status: number, body: string, contentType?: string) {
  const stub = stubFetch(status, body, contentType);
  const transport = makeEvolutionTransport({
    url: 'http://evolution.invalid/',
    apiKey: 'k',
    instance: 'nautico',
    timeoutMs: 1000,
    log: silent,
    fetch: stub.fn,
  });
  return { transport, calls: stub.calls };
}

/**
 * The client's own deadline for a send is the typing delay plus 15 s; tests shorten
 * it through the fetch option instead of waiting that long. The abort surfaces as
 * the same TimeoutError the client's own AbortSignal.timeout raises.
 */
function fetchWithDeadline(ms: number): typeof fetch {
  return (input, init) => {
    const signals = [AbortSignal.timeout(ms)];
    if (init?.signal) signals.push(init.signal);
    return fetch(input, { ...init, signal: AbortSignal.any(signals) });
  };
}

/** A fetch that gives up once `done()` holds (checked every 10 ms): a client whose deadline passes at a known point. */
function fetchAbortingWhen(done: () => boolean): typeof fetch {
  return (input, init) => {
    const gaveUp = new AbortController();
    const timer = setInterval(() => {
      if (done()) gaveUp.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    }, 10);
    const signals = [gaveUp.signal];
    if (init?.signal) signals.push(init.signal);
    return fetch(input, { ...init, signal: AbortSignal.any(signals) }).finally(() => clearInterval(timer));
  };
}

async function sendError(promise: Promise<unknown>): Promise<SendError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SendError, `expected a SendError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the call to fail');
}

function assertKind(error: SendError, kind: SendErrorKind, reason: string, status?: number) {
  assert.equal(error.kind, kind, `kind of ${error.reason}: ${error.message}`);
  assert.equal(error.reason, reason, error.message);
  if (status !== undefined) assert.equal(error.status, status);
}

async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe('sending a text through Evolution', () => {
  test('returns the id Evolution gave the message and the JID WhatsApp answered with', async () => {
    await withFake({}, async (fake) => {
      const result = await transportFor(fake).sendText({ number: MOBILE, text: TEXT, delayMs: 1200 });
      assert.equal(fake.delivered.length, 1);
      assert.match(result.providerMessageId, /^3EB0[0-9A-F]{16}$/);
      assert.equal(result.providerMessageId, fake.delivered[0]!.id);
      assert.equal(result.remoteJid, MOBILE_JID);
      assert.equal(fake.delivered[0]!.text, TEXT);
    });
  });

  test('sends the typing delay in milliseconds, no link preview, and the api key in the apikey header', async () => {
    await withFake({ apiKey: 'key-123' }, async (fake) => {
      await transportFor(fake).sendText({ number: MOBILE, text: TEXT, delayMs: 1200 });
      const request = fake.requests[0]!;
      assert.equal(request.method, 'POST');
      assert.equal(request.path, '/message/sendText/nautico');
      assert.deepEqual(request.body, { number: MOBILE, text: TEXT, delay: 1200, linkPreview: false });
      assert.equal(request.headers.apikey, 'key-123');
      assert.equal(fake.delivered[0]!.delay, 1200);
    });
  });

  test('rounds a fractional delay, because Evolution only accepts an integer', async () => {
    await withFake({}, async (fake) => {
      await transportFor(fake).sendText({ number: MOBILE, text: TEXT, delayMs: 1200.6 });
      assert.equal((fake.requests[0]!.body as { delay: number }).delay, 1201);
      assert.equal(fake.delivered.length, 1);
    });
  });

  test('waits out a typing delay longer than the normal timeout instead of giving up', async () => {
    await withFake({ delayScale: 1 }, async (fake) => {
      const started = Date.now();
      const result = await transportFor(fake, { timeoutMs: 2_000 }).sendText({ number: MOBILE, text: TEXT, delayMs: 3_000 });
      assert.ok(Date.now() - started >= 2_900, 'the fake held the answer for the delay, longer than the 2 s budget');
      assert.equal(result.providerMessageId, fake.delivered[0]!.id);
    });
  });

  test('parses the legacy answer with extendedTextMessage and a string timestamp', async () => {
    const { transport, calls } = stubTransport(201, fixture('send-text-201-legacy.json'));
    const result = await transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 });
    assert.deepEqual(result, { providerMessageId: 'BAE594145F4C59B4', remoteJid: MOBILE_JID });
    assert.equal(calls[0]!.url, 'http://evolution.invalid/message/sendText/nautico');
  });

  test('parses the v2.3 answer fixture', async () => {
    const { transport } = stubTransport(201, fixture('send-text-201.json'));
    const result = await transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 });
    assert.deepEqual(result, { providerMessageId: '3EB0C767D097B7C7C030', remoteJid: MOBILE_JID });
  });

  test('treats a success without key.id as ambiguous, since the message may have gone out', async () => {
    for (const body of ['{"status":"PENDING"}', 'OK', '']) {
      const { transport } = stubTransport(201, body);
      assertKind(await sendError(transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 })), 'ambiguous', 'no_message_id', 201);
    }
  });

  test('treats a 201 whose body was cut off as ambiguous, not as a network error', async () => {
    const cutOff: typeof fetch = async () =>
      new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('{"key":{"remoteJid"'));
            controller.error(new TypeError('terminated'));
          },
        }),
        { status: 201, headers: { 'content-type': 'application/json' } },
      );
    const transport = makeEvolutionTransport({
      url: 'http://evolution.invalid',
      apiKey: 'k',
      instance: 'nautico',
      timeoutMs: 1000,
      log: silent,
      fetch: cutOff,
    });
    assertKind(await sendError(transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 })), 'ambiguous', 'no_message_id', 201);
  });
});

describe('classifying Evolution failures', () => {
  test('a number not on WhatsApp is permanent invalid_number, whichever spelling was listed', async () => {
    await withFake({}, async (fake) => {
      fake.notOnWhatsApp.add('558199998888');
      const error = await sendError(transportFor(fake).sendText({ number: MOBILE, text: TEXT, delayMs: 0 }));
      assertKind(error, 'permanent', 'invalid_number', 400);
      assert.equal(fake.delivered.length, 0);
    });
  });

  test('a blank text is permanent rejected and the message carries the validation error', async () => {
    await withFake({}, async (fake) => {
      const error = await sendError(transportFor(fake).sendText({ number: MOBILE, text: '   ', delayMs: 0 }));
      assertKind(error, 'permanent', 'rejected', 400);
      assert.match(error.message, /The "text" cannot be empty/);
    });
  });

  test('an error answer is never kept as-is: numbers it echoes are masked and its text is bounded', async () => {
    const echo = JSON.stringify({ status: 422, error: 'Unprocessable', response: { message: [`cannot send to ${MOBILE} (${MOBILE_JID}): ${TEXT} ${'x'.repeat(400)}`] } });
    const { transport } = stubTransport(422, echo);
    const error = await sendError(transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 }));
    assertKind(error, 'permanent', 'rejected', 422);
    assert.ok(!error.message.includes(MOBILE) && !error.message.includes('558199998888'), error.message);
    assert.match(error.message, /5581\*+8888/);
    assert.ok(error.message.length < 260, `${error.message.length} characters`);
  });

  test('a wrong api key is a configuration error', async () => {
    await withFake({}, async (fake) => {
      const error = await sendError(transportFor(fake, { apiKey: 'wrong' }).sendText({ number: MOBILE, text: TEXT, delayMs: 0 }));
      assertKind(error, 'configuration', 'unauthorized', 401);
    });
  });

  test('an unknown instance is a configuration error, even when the key is wrong too', async () => {
    await withFake({}, async (fake) => {
      const transport = transportFor(fake, { apiKey: 'wrong', instance: 'sport' });
      const error = await sendError(transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 }));
      assertKind(error, 'configuration', 'instance_not_found', 404);
      assert.match(error.message, /sport/);
    });
  });

  test('both shapes of Connection Closed are transient connection_closed, and sending resumes after', async () => {
    await withFake({}, async (fake) => {
      const transport = transportFor(fake);
      fake.fail('connection-closed', { count: 2 });
      const first = await sendError(transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 }));
      const second = await sendError(transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 }));
      assertKind(first, 'transient', 'connection_closed', 500);
      assertKind(second, 'transient', 'connection_closed', 500);
      assert.notEqual(first.message, second.message, 'the fake alternated the string and array shapes');
      await transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 });
      assert.equal(fake.delivered.length, 1);
    });
  });

  test('a plain 500 is transient server_error', async () => {
    await withFake({}, async (fake) => {
      fake.fail('server-error');
      assertKind(await sendError(transportFor(fake).sendText({ number: MOBILE, text: TEXT, delayMs: 0 })), 'transient', 'server_error', 500);
    });
  });

  test('a dropped socket is transient network_error', async () => {
    await withFake({}, async (fake) => {
      fake.fail('drop-connection');
      assertKind(await sendError(transportFor(fake).sendText({ number: MOBILE, text: TEXT, delayMs: 0 })), 'transient', 'network_error');
      assert.equal(fake.delivered.length, 0);
    });
  });

  test('a refused connection is transient network_error', async () => {
    const url = await refusedUrl();
    const transport = transportFor({ url, apiKey: 'k', instance: 'nautico' });
    const error = await sendError(transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 }));
    assertKind(error, 'transient', 'network_error');
    assert.match(error.message, /ECONNREFUSED/);
  });

  test('a timeout after delivery is ambiguous, and findSent then finds the delivered message', async () => {
    await withFake({}, async (fake) => {
      const since = new Date();
      fake.fail('timeout-after-delivery', { count: 1 });
      // The deadline passes once the fake has delivered (a fixed 200 ms could pass before the
      // request even reached it on a loaded machine).
      const impatient = transportFor(fake, { fetch: fetchAbortingWhen(() => fake.delivered.length > 0) });
      const error = await sendError(impatient.sendText({ number: MOBILE, text: TEXT, delayMs: 0 }));
      assertKind(error, 'ambiguous', 'timeout');
      assert.equal(fake.delivered.length, 1);

      const found = await transportFor(fake).findSent({ number: MOBILE, text: TEXT, since });
      assert.deepEqual(found, { providerMessageId: fake.delivered[0]!.id });
    });
  });

  test('a timeout before delivery is ambiguous too, and findSent then finds nothing', async () => {
    await withFake({}, async (fake) => {
      const since = new Date();
      fake.fail('timeout-before-delivery', { count: 1 });
      const impatient = transportFor(fake, { fetch: fetchWithDeadline(200) });
      assertKind(await sendError(impatient.sendText({ number: MOBILE, text: TEXT, delayMs: 0 })), 'ambiguous', 'timeout');
      assert.equal(await transportFor(fake).findSent({ number: MOBILE, text: TEXT, since }), null);
    });
  });

  test('answers the fake cannot give are classified too, and a non-JSON body does not break the parser', async () => {
    const cases: Array<[number, string, SendErrorKind, string]> = [
      [400, fixture('send-text-400-not-exists.json'), 'permanent', 'invalid_number'],
      [400, fixture('send-text-400-validation.json'), 'permanent', 'rejected'],
      [401, fixture('error-401.json'), 'configuration', 'unauthorized'],
      [403, '{"status":403,"error":"Forbidden","response":{"message":"Missing global api key"}}', 'configuration', 'forbidden'],
      [404, fixture('error-404-instance.json'), 'configuration', 'instance_not_found'],
      [429, 'Too Many Requests', 'transient', 'rate_limited'],
      [500, fixture('send-text-500-connection-closed.json'), 'transient', 'connection_closed'],
      [500, fixture('send-text-500-connection-closed-array.json'), 'transient', 'connection_closed'],
      [502, '<html><body><h1>502 Bad Gateway</h1></body></html>', 'transient', 'server_error'],
      [500, '{"truncated', 'transient', 'server_error'],
    ];
    for (const [status, body, kind, reason] of cases) {
      const { transport } = stubTransport(status, body, body.startsWith('<') ? 'text/html' : 'application/json');
      assertKind(await sendError(transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 })), kind, reason, status);
    }
    const { transport } = stubTransport(400, fixture('send-text-400-validation.json'));
    const error = await sendError(transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 }));
    assert.match(error.message, /instance requires property "text"/);
  });
});

describe('finding a sent message after an ambiguous send', () => {
  test('asks under both JID spellings and finds a message filed without the 9th digit', async () => {
    await withFake({}, async (fake) => {
      const transport = transportFor(fake);
      const since = new Date();
      const sent = await transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 });
      const found = await transport.findSent({ number: MOBILE, text: `  ${TEXT}\n`, since });
      assert.deepEqual(found, { providerMessageId: sent.providerMessageId });
      const asked = fake.requests
        .filter((r) => r.path === '/chat/findMessages/nautico')
        .map((r) => (r.body as { where: { key: { remoteJid: string } } }).where.key.remoteJid);
      assert.ok(asked.includes(MOBILE_JID), `asked for ${asked.join(', ')}`);
    });
  });

  test('finds a message filed under the full JID, as São Paulo mobiles are', async () => {
    await withFake({}, async (fake) => {
      const transport = transportFor(fake);
      const since = new Date();
      const sent = await transport.sendText({ number: '5511987654321', text: TEXT, delayMs: 0 });
      assert.equal(fake.delivered[0]!.jid, '5511987654321@s.whatsapp.net');
      assert.deepEqual(await transport.findSent({ number: '5511987654321', text: TEXT, since }), {
        providerMessageId: sent.providerMessageId,
      });
    });
  });

  test('reads further pages while they are still newer than the claim', async () => {
    await withFake({}, async (fake) => {
      const transport = transportFor(fake);
      const since = new Date();
      const first = await transport.sendText({ number: MOBILE, text: 'the oldest one', delayMs: 0 });
      for (let i = 0; i < 60; i++) await transport.sendText({ number: MOBILE, text: `later ${i}`, delayMs: 0 });
      assert.deepEqual(await transport.findSent({ number: MOBILE, text: 'the oldest one', since }), {
        providerMessageId: first.providerMessageId,
      });
    });
  });

  test('matches only our own message with the same text, not older than the claim minus a minute', async () => {
    const { transport, calls } = stubTransport(200, fixture('find-messages-200.json'));
    const ours = 'Opa, João! Passando só pra saber se ficou alguma dúvida sobre o que a gente conversou, visse?';
    const sentAt = new Date(1764165600 * 1000);
    assert.deepEqual(await transport.findSent({ number: MOBILE, text: ours, since: sentAt }), {
      providerMessageId: '3EB0C767D097B7C7C030',
    });
    assert.deepEqual(await transport.findSent({ number: MOBILE, text: ours, since: new Date(sentAt.getTime() + 59_000) }), {
      providerMessageId: '3EB0C767D097B7C7C030',
    });
    assert.equal(await transport.findSent({ number: MOBILE, text: ours, since: new Date(sentAt.getTime() + 120_000) }), null);
    assert.equal(await transport.findSent({ number: MOBILE, text: 'Outro texto', since: new Date(0) }), null);
    // The lead's own message has fromMe:false.
    assert.equal(
      await transport.findSent({ number: MOBILE, text: 'Opa Marina, ainda tô pensando, visse?', since: new Date(0) }),
      null,
    );
    assert.deepEqual(JSON.parse(String(calls[0]!.init!.body)), { where: { key: { remoteJid: `${MOBILE}@s.whatsapp.net` } } });
  });

  test('accepts a bare array of records with string timestamps and extendedTextMessage', async () => {
    const records = [
      {
        key: { id: 'BAE5OLDSERVER0001', fromMe: true, remoteJid: MOBILE_JID },
        message: { extendedTextMessage: { text: TEXT } },
        messageTimestamp: '1764165600',
      },
    ];
    const { transport } = stubTransport(200, JSON.stringify(records));
    assert.deepEqual(await transport.findSent({ number: MOBILE, text: TEXT, since: new Date(1764165600 * 1000) }), {
      providerMessageId: 'BAE5OLDSERVER0001',
    });
  });

  test('a failing findMessages is transient reconcile_failed', async () => {
    await withFake({}, async (fake) => {
      fake.fail('connection-closed');
      const error = await sendError(transportFor(fake).findSent({ number: MOBILE, text: TEXT, since: new Date() }));
      assertKind(error, 'transient', 'reconcile_failed', 500);
    });
    const garbage = stubTransport(200, '<html>maintenance</html>', 'text/html');
    assertKind(
      await sendError(garbage.transport.findSent({ number: MOBILE, text: TEXT, since: new Date() })),
      'transient',
      'reconcile_failed',
    );
    const url = await refusedUrl();
    const refused = transportFor({ url, apiKey: 'k', instance: 'nautico' });
    assertKind(await sendError(refused.findSent({ number: MOBILE, text: TEXT, since: new Date() })), 'transient', 'reconcile_failed');
  });
});

describe('checking numbers and the connection', () => {
  test('checkNumber picks the entry for the number asked, in either spelling', async () => {
    const { transport, calls } = stubTransport(200, fixture('whatsapp-numbers-200.json'));
    assert.deepEqual(await transport.checkNumber(MOBILE), { exists: true, jid: MOBILE_JID });
    assert.deepEqual(await transport.checkNumber('5581900000000'), { exists: false, jid: '558100000000@s.whatsapp.net' });
    assert.deepEqual(JSON.parse(String(calls[0]!.init!.body)), { numbers: [MOBILE] });
    assert.equal(calls[0]!.url, 'http://evolution.invalid/chat/whatsappNumbers/nautico');
  });

  test('checkNumber against the fake tells numbers on and off WhatsApp apart', async () => {
    await withFake({}, async (fake) => {
      fake.notOnWhatsApp.add('5581900000000');
      const transport = transportFor(fake);
      assert.deepEqual(await transport.checkNumber(MOBILE), { exists: true, jid: MOBILE_JID });
      assert.equal((await transport.checkNumber('5581900000000')).exists, false);
    });
  });

  test('checkNumber failures are classified, and its timeout is transient rather than ambiguous', async () => {
    await withFake({}, async (fake) => {
      assertKind(await sendError(transportFor(fake, { apiKey: 'wrong' }).checkNumber(MOBILE)), 'configuration', 'unauthorized', 401);
    });
    const timingOut: typeof fetch = async () => {
      throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    };
    const transport = makeEvolutionTransport({
      url: 'http://evolution.invalid',
      apiKey: 'k',
      instance: 'nautico',
      timeoutMs: 10,
      log: silent,
      fetch: timingOut,
    });
    assertKind(await sendError(transport.checkNumber(MOBILE)), 'transient', 'timeout');
  });

  test('connectionState reads the state and maps anything unexpected to unknown', async () => {
    const { transport, calls } = stubTransport(200, fixture('connection-state-200.json'));
    assert.equal(await transport.connectionState(), 'open');
    assert.equal(calls[0]!.init!.method, 'GET');
    assert.equal(calls[0]!.url, 'http://evolution.invalid/instance/connectionState/nautico');
    await withFake({}, async (fake) => {
      const live = transportFor(fake);
      assert.equal(await live.connectionState(), 'open');
      fake.setConnectionState('close');
      assert.equal(await live.connectionState(), 'close');
      fake.setConnectionState('rebooting');
      assert.equal(await live.connectionState(), 'unknown');
    });
  });

  test('connectionState failures are configuration for 401 and 404, transient otherwise', async () => {
    await withFake({}, async (fake) => {
      assertKind(await sendError(transportFor(fake, { apiKey: 'wrong' }).connectionState()), 'configuration', 'unauthorized', 401);
      assertKind(await sendError(transportFor(fake, { instance: 'x' }).connectionState()), 'configuration', 'instance_not_found', 404);
      fake.fail('connection-closed');
      assertKind(await sendError(transportFor(fake).connectionState()), 'transient', 'connection_closed', 500);
    });
    const { transport } = stubTransport(400, '{"status":400,"error":"Bad Request","response":{"message":["?"]}}');
    assert.equal((await sendError(transport.connectionState())).kind, 'transient');
  });
});

describe('logging', () => {
  test('never writes the api key, and masks phone numbers', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
    const apiKey = 'evo-secret-7f3a9c';
    await withFake({ apiKey }, async (fake) => {
      const transport = transportFor(fake, { log });
      const since = new Date();
      await transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 });
      await transport.findSent({ number: MOBILE, text: TEXT, since });
      await transport.checkNumber(MOBILE);
      await transport.connectionState();
      fake.fail('unauthorized');
      await sendError(transport.sendText({ number: MOBILE, text: TEXT, delayMs: 0 }));
    });
    const output = lines.join('');
    assert.ok(lines.length >= 5, `expected debug lines, got ${lines.length}`);
    assert.ok(!output.includes(apiKey), 'the api key leaked into the logs');
    assert.ok(!output.includes(MOBILE), 'an unmasked phone number reached the logs');
    assert.ok(output.includes('5581*****8888'), 'the masked phone is logged');
  });
});
