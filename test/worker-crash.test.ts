import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startFakeEvolution, type FakeEvolution } from './helpers/fake-evolution.js';
import { insertDueFollowups, startRole, testEnv, waitFor } from './helpers/pipeline.js';
import { cliArgs } from './helpers/cli.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('a worker killed with SIGKILL mid-batch', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
  });
  after(async () => {
    await fake.close();
    await testDb.drop();
  });

  test('leaves every follow-up terminal and none delivered twice', async () => {
    const env = {
      REDIS_URL,
      QUEUE_NAME: 'crash',
      LEASE_SECONDS: '4',
      WORKER_LOCK_SECONDS: '2',
      WORKER_CONCURRENCY: '8',
    };
    // Slow answers, so sends are in flight when the worker dies.
    fake.fail('slow', { ms: 150 });
    const ids = await insertDueFollowups(testDb.db, { count: 300, phonePrefix: '55819', text: (i) => `crash ${i}` });
    const child: ChildProcess = spawn(process.execPath, [...cliArgs(), 'worker'], {
      env: {
        PATH: process.env.PATH,
        ...testEnv({
          ...env,
          DATABASE_URL: testDb.url,
          EVOLUTION_API_URL: fake.url,
          EVOLUTION_API_KEY: fake.apiKey,
          EVOLUTION_INSTANCE_NAME: fake.instance,
        }),
      } as NodeJS.ProcessEnv,
      stdio: 'ignore',
    });
    const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env, fake });
    try {
      await waitFor('the worker is mid-batch', async () => fake.delivered.filter((d) => d.text.startsWith('crash ')).length >= 40, {
        timeoutMs: 60_000,
      });
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const { rows: inflight } = await testDb.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status IN ('queued', 'sending')`,
        [ids],
      );
      assert.ok(inflight[0]!.n > 0, 'the kill left work in flight');

      const worker = await startRole({ roles: ['worker'], databaseUrl: testDb.url, env, fake });
      try {
        await waitFor(
          'every follow-up terminal',
          async () => {
            const { rows } = await testDb.db.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status IN ('executed', 'failed', 'cancelled')`,
              [ids],
            );
            return rows[0]!.n === ids.length;
          },
          { timeoutMs: 90_000, intervalMs: 200 },
        );
      } finally {
        await worker.stop();
      }
      const texts = fake.delivered.filter((d) => d.text.startsWith('crash ')).map((d) => d.text);
      assert.equal(new Set(texts).size, texts.length, 'none delivered twice');
      const { rows } = await testDb.db.query<{ status: string; n: number }>(
        `SELECT status, count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) GROUP BY status`,
        [ids],
      );
      assert.deepEqual(rows, [{ status: 'executed', n: 300 }]);
      assert.equal(texts.length, 300, 'every executed follow-up was delivered');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await relay.stop();
    }
  });
});

describe('graceful shutdown of separate roles', () => {
  let testDb: TestDatabase;
  let fake: FakeEvolution;

  before(async () => {
    testDb = await createTestDatabase({ poolSize: 4 });
    fake = await startFakeEvolution({ delayScale: 0 });
  });
  after(async () => {
    await fake.close();
    await testDb.drop();
  });

  for (const role of ['worker', 'relay', 'api'] as const) {
    test(`\`followups ${role}\` finishes what is in flight and exits 0 on SIGTERM`, { timeout: 600_000 }, async () => {
      const env = testEnv({
        REDIS_URL,
        QUEUE_NAME: `graceful_${role}`,
        DATABASE_URL: testDb.url,
        EVOLUTION_API_URL: fake.url,
        EVOLUTION_API_KEY: fake.apiKey,
        EVOLUTION_INSTANCE_NAME: fake.instance,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        // A long shutdown timeout, so that exiting well before it shows the in-flight work ended the wait.
        SHUTDOWN_TIMEOUT_MS: '120000',
      });
      const child = spawn(process.execPath, [...cliArgs(), role], {
        env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let output = '';
      child.stdout!.on('data', (chunk) => (output += String(chunk)));
      try {
        // Started is the event waited for, however long it takes to start on a loaded machine
        // (over 60 s seen); the process exiting first fails at once. The bound is only a backstop.
        await Promise.race([
          waitFor('started', async () => /relay started|worker started|api listening/.test(output), { timeoutMs: 240_000, intervalMs: 200 }),
          new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`exited (${code}) before it started: ${output.slice(-2_000)}`)))),
        ]);
        let ids: string[] = [];
        if (role === 'worker') {
          // Sends in flight at SIGTERM: slow answers, and a relay feeding the queue.
          fake.fail('slow', { ms: 400 });
          const relay = await startRole({ roles: ['relay'], databaseUrl: testDb.url, env: { REDIS_URL, QUEUE_NAME: 'graceful_worker' }, fake });
          ids = await insertDueFollowups(testDb.db, { count: 20, phonePrefix: '55859', text: (i) => `graceful ${i}` });
          await waitFor('sending', async () => fake.requests.some((r) => r.path.includes('sendText')), { timeoutMs: 30_000 });
          await relay.stop();
        }
        const started = Date.now();
        const code = await new Promise<number | null>((resolve) => {
          child.once('exit', resolve);
          child.kill('SIGTERM');
        });
        assert.equal(code, 0, output.slice(-2_000));
        // Against the configured SHUTDOWN_TIMEOUT_MS (120 s), with a margin a loaded machine cannot eat.
        assert.ok(Date.now() - started < 60_000, `without waiting for the 120 s shutdown timeout (${Date.now() - started} ms)`);
        if (ids.length) {
          const { rows } = await testDb.db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM follow_ups WHERE id = ANY($1::uuid[]) AND status = 'sending'`,
            [ids],
          );
          assert.equal(rows[0]!.n, 0, 'nothing left half-sent: in-flight sends finished before exit');
        }
      } finally {
        fake.clearFaults();
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
  }
});
