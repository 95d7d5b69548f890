/**
 * The npm package installs and its `followups` command works, as a user gets it:
 * `npm pack` (which runs `prepare`, the build), `npm install <tarball>` in an empty folder
 * (dependencies from the npm registry), then `npx followups …` there, and the typed client
 * (`nautico-followups/client`) imported and type-checked from there.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from './helpers/redis-server.js';
import { waitFor } from './helpers/pipeline.js';

const npmCli = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npxCli = process.platform === 'win32' ? 'npx.cmd' : 'npx';

function run(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let dir: string;
let app: string;
let tarball: string;
let packedFiles: string[];
const timings: Record<string, number> = {};
/** A user's environment: no DATABASE_URL, REDIS_URL, … from this machine; its way to the registry (proxy, CA certificates) kept. */
const userEnv = () => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(https?_proxy|no_proxy|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR)$/i.test(k))),
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  npm_config_update_notifier: 'false',
});

// npm pack builds (tsc) and npm install fetches ~100 packages: minutes on a busy machine.
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'followups-package-'));
  app = join(dir, 'app');
  mkdirSync(app);
  let t = Date.now();
  const packed = await run(npmCli, ['pack', '--json', '--pack-destination', dir], { cwd: process.cwd() });
  timings.packMs = Date.now() - t;
  assert.equal(packed.code, 0, `npm pack failed:\n${packed.stderr}`);
  // `prepare` (the build) writes to stdout before the JSON: the JSON is the last array printed.
  const json = JSON.parse(packed.stdout.slice(packed.stdout.lastIndexOf('\n[') + 1)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(dir, json[0]!.filename);
  packedFiles = json[0]!.files.map((f) => f.path);
  t = Date.now();
  // --prefer-offline: packages already in npm's cache are not asked for again; a hung
  // connection is given up after a minute (and retried) instead of npm's five.
  const installed = await run(npmCli, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--fetch-timeout=60000', tarball], { cwd: app, env: userEnv() });
  timings.installMs = Date.now() - t;
  assert.equal(installed.code, 0, `npm install <tarball> failed:\n${installed.stderr}`);
}, { timeout: 900_000 });

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the npm package', () => {
  test('holds the compiled command, its migrations and campaigns, and no sources, tests or source maps', (t) => {
    for (const file of ['package.json', 'README.md', 'dist/cli.js', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/db/migrations/001_init.sql', 'dist/campaigns/definitions/nautico.json']) {
      assert.ok(packedFiles.includes(file), `${file} is in the package`);
    }
    assert.deepEqual(packedFiles.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md'].includes(f)), []);
    assert.deepEqual(packedFiles.filter((f) => f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts'))), []);
    const manifest = JSON.parse(readFileSync(join(app, 'node_modules/nautico-followups/package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(manifest.main, undefined, 'no main pointing at a file that does not exist');
    const targets = Object.values(manifest.exports as Record<string, string | Record<string, string>>).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t)));
    for (const target of targets) {
      assert.ok(existsSync(join(app, 'node_modules/nautico-followups', target)), `exports target ${target} exists`);
    }
    t.diagnostic(`${packedFiles.length} files; npm pack ${timings.packMs} ms, npm install ${timings.installMs} ms`);
  });

  test("`import('nautico-followups/client')` resolves in a fresh process and loads nothing of the server (nor any other package)", async () => {
    const script = `
      import { registerHooks } from 'node:module';
      const loaded = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
      const client = await import('nautico-followups/client');
      const api = client.createFollowupsClient({ baseUrl: 'http://127.0.0.1:9', token: 't' });
      console.log(JSON.stringify({ loaded, exports: Object.keys(client).sort(), methods: Object.keys(api) }));`;
    const { code, stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env: userEnv() });
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout) as { loaded: string[]; exports: string[]; methods: string[] };
    const packageDir = `${app}/node_modules/nautico-followups/`;
    assert.deepEqual(
      result.loaded.map((url) => (url.startsWith('node:') ? url : decodeURIComponent(new URL(url).pathname).replace(packageDir, ''))).sort(),
      ['dist/client/index.js', 'dist/forwarding/webhook-signature.js', 'node:crypto'],
    );
    assert.ok(result.exports.includes('FollowupsApiError') && result.exports.includes('verifyAgentWebhookSignature'));
    for (const method of ['scheduleFollowup', 'sendMessage', 'callAgentTool', 'listAgentOutbox']) assert.ok(result.methods.includes(method), method);
  });

  test('a TypeScript program using the client type-checks against the installed declarations (strict, no skipLibCheck)', async () => {
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], types: [], skipLibCheck: false },
        files: ['agent.ts'],
      }),
    );
    writeFileSync(
      join(app, 'agent.ts'),
      [
        "import { createFollowupsClient, FollowupsApiError, type ScheduleFollowupInput } from 'nautico-followups/client';",
        "const followups = createFollowupsClient({ baseUrl: 'http://127.0.0.1:3000', token: 'x'.repeat(24) });",
        "const input: ScheduleFollowupInput = { phone: '5581999998888', delayHours: 4, intent: 'check_in' };",
        'export async function go(): Promise<string> {',
        '  const scheduled = await followups.scheduleFollowup(input, { idempotencyKey: "k1" });',
        "  const tools = await followups.listAgentTools('openai');",
        '  const names: string[] = tools.tools.map((t) => t.function.name);',
        "  try { await followups.sendMessage('5581999998888', { text: 'Oi!' }); } catch (e) { if (e instanceof FollowupsApiError) return e.code; }",
        '  return `${scheduled.id} ${scheduled.dueAt} ${names.length}`;',
        '}',
        '// @ts-expect-error delayHours is a number',
        "void followups.scheduleFollowup({ phone: '5581999998888', delayHours: '4' });",
        '',
      ].join('\n'),
    );
    const tsc = join(process.cwd(), 'node_modules', 'typescript', 'bin', 'tsc');
    const { code, stdout, stderr } = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app, env: userEnv() });
    assert.equal(code, 0, stdout + stderr);
  });

  test('`npx followups --help` lists the roles', async () => {
    const { code, stdout } = await run(npxCli, ['followups', '--help'], { cwd: app, env: userEnv() });
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: followups \[options\] \[command\]/m);
    for (const command of ['start', 'api', 'relay', 'worker', 'migrate', 'import']) assert.match(stdout, new RegExp(`^  ${command}\\b`, 'm'));
  });

  test('`npx followups start` runs the embedded default (PGlite, dry-run), answers /health/ready, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const dataDir = join(dir, 'data');
    const env = { ...userEnv(), DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' };
    // Its own process group: npm exec does not pass a SIGTERM sent to npx alone on to the
    // command (npx dies and the command is orphaned), so the signal goes to the group, as a
    // terminal's or a supervisor's would.
    const child = spawn(npxCli, ['followups', 'start'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    // 'close': every process holding the pipes (npx, sh, followups) has ended.
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    try {
      const ready = await waitFor(
        '/health/ready',
        async () => {
          if (child.exitCode !== null) return { exited: child.exitCode };
          const res = await fetch(`http://127.0.0.1:${port}/health/ready`, { headers: { authorization: 'Bearer dev-token-change-me' } }).catch(() => null);
          return res?.ok ? ((await res.json()) as { status: string; checks: { transport: { name: string }; queue: { status: string } } }) : false;
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
      assert.ok(!('exited' in ready), `followups start exited early:\n${output}`);
      assert.equal(ready.checks.transport.name, 'dry-run');
      assert.equal(ready.checks.queue.status, 'direct');
      assert.ok(existsSync(dataDir), 'PGlite keeps its files in DATA_DIR');
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
    }
    await closed;
    const logs = output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string });
    // The CLI logs "stopped" right before process.exit(0); a failed shutdown logs "shutdown failed" and exits 1.
    assert.deepEqual(logs.filter((l) => ['shutting down', 'stopped', 'shutdown failed', 'shutdown took too long; exiting'].includes(l.msg)).map((l) => l.msg), ['shutting down', 'stopped'], output);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health/live`), 'nothing listens any more');
  });
});
