import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { createContext } from '../src/context.js';
import { createLogger } from '../src/log.js';
import { startRoles } from '../src/roles.js';
import { freePort } from './helpers/redis-server.js';
import { waitFor } from './helpers/pipeline.js';
import { cliArgs } from './helpers/cli.js';

describe('the embedded default: PGlite, direct mode, dry-run transport', () => {
  test('delivers a follow-up scheduled 2 s ahead once, on time, and shows it executed', async () => {
    const config = loadConfig({ DATA_DIR: 'memory://', LOG_LEVEL: 'silent', RELAY_MAX_SLEEP_MS: '200', TYPING_DELAY_ENABLED: 'false', SENDING_WINDOW_ENABLED: 'false', SEND_RATE_PER_MINUTE: '0' });
    const ctx = await createContext(config, createLogger({ level: 'silent' }));
    const running = await startRoles(ctx, ['api', 'relay'], { listen: false });
    try {
      assert.equal(ctx.transport.name, 'dry-run');
      assert.equal(running.relay!.mode, 'direct');
      const dueAt = new Date(Date.now() + 2_000);
      const created = await running.app!.inject({
        method: 'POST',
        url: '/v1/followups',
        headers: { authorization: `Bearer ${config.apiToken}` },
        payload: { phone: '+55 (81) 99999-8888', message: 'Oi João, tudo certo?', dueAt: dueAt.toISOString() },
      });
      assert.equal(created.statusCode, 201, created.body);
      const { id } = created.json() as { id: string };
      const followup = await waitFor('executed', async () => {
        const res = await running.app!.inject({ method: 'GET', url: `/v1/followups/${id}`, headers: { authorization: `Bearer ${config.apiToken}` } });
        const body = res.json() as { status: string; providerMessageId: string; events: Array<{ to: string }> };
        return body.status === 'executed' && body;
      });
      const { rows } = await ctx.db.query<{ number: string; text: string; provider_message_id: string; at: Date }>(
        'SELECT number, text, provider_message_id, at FROM dry_run_messages',
      );
      assert.equal(rows.length, 1, 'recorded once');
      assert.equal(rows[0]!.number, '5581999998888');
      assert.equal(rows[0]!.text, 'Oi João, tudo certo?');
      assert.ok(new Date(rows[0]!.at).getTime() >= dueAt.getTime(), 'not before its time');
      assert.equal(followup.providerMessageId, rows[0]!.provider_message_id);
      assert.deepEqual(followup.events.map((e) => e.to), ['pending', 'sending', 'executed']);
    } finally {
      await running.stop();
      await ctx.close();
    }
  });

  test('`followups start` serves, sends, stops with exit 0 on SIGTERM and keeps pending follow-ups across a restart', { timeout: 600_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'followups-embedded-'));
    const port = await freePort();
    // A long shutdown timeout, so that exiting well before it shows shutdown does not wait it out.
    const env = { PATH: process.env.PATH, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', TYPING_DELAY_ENABLED: 'false', SENDING_WINDOW_ENABLED: 'false', SHUTDOWN_TIMEOUT_MS: '120000' };
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: 'Bearer dev-token-change-me', 'content-type': 'application/json' };
    const start = () => spawn(process.execPath, [...cliArgs(), 'start'], { env, stdio: 'ignore' });
    // Ready is the event waited for, however long it takes to start on a loaded machine (over
    // 90 s seen with 4 sessions on 2 cores); the process exiting first fails at once. The bound is only a
    // backstop, within the test's own timeout below.
    const ready = () =>
      Promise.race([
        waitFor('ready', async () => (await fetch(`${base}/health/ready`)).ok, { timeoutMs: 240_000, intervalMs: 200 }),
        new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`\`followups start\` exited (${code}) before it was ready`)))),
      ]);
    let child = start();
    try {
      await ready();
      const soon = await fetch(`${base}/v1/followups`, { method: 'POST', headers: auth, body: JSON.stringify({ phone: '5581999998888', message: 'Já já', delayMinutes: 0.02 }) });
      assert.equal(soon.status, 201);
      const later = await fetch(`${base}/v1/followups`, { method: 'POST', headers: auth, body: JSON.stringify({ phone: '5581988887777', message: 'Amanhã', delayHours: 24 }) });
      const { id: soonId } = (await soon.json()) as { id: string };
      const { id: laterId } = (await later.json()) as { id: string };
      await waitFor('executed', async () => ((await (await fetch(`${base}/v1/followups/${soonId}`, { headers: auth })).json()) as { status: string }).status === 'executed', { timeoutMs: 60_000 });

      const started = Date.now();
      const code = await new Promise<number | null>((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      });
      assert.equal(code, 0, 'exits 0 on SIGTERM');
      // Against the configured SHUTDOWN_TIMEOUT_MS (120 s), with a margin a loaded machine cannot eat.
      assert.ok(Date.now() - started < 60_000, `without waiting for the 120 s shutdown timeout (${Date.now() - started} ms)`);

      child = start();
      await ready();
      const res = await fetch(`${base}/v1/followups/${laterId}`, { headers: auth });
      assert.equal(((await res.json()) as { status: string }).status, 'pending', 'a restart never cancels pending follow-ups');
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
