/**
 * The Dockerfile builds and its image runs, proved without a Docker engine by
 * scripts/check-dockerfile.mjs (it replays the stages in scratch folders; see its header).
 * Needs the npm registry (the build stage's `npm ci`) and the test PostgreSQL.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import { readMigrations } from '../src/db/migrate.js';
import { createEmptyDatabase } from './helpers/db.js';

const SCRIPT = 'scripts/check-dockerfile.mjs';

function check(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

/** A Dockerfile of a few lines in a temp folder; the context is still this repository. */
function tempDockerfile(text: string): { path: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'followups-dockerfile-test-'));
  const path = join(dir, 'Dockerfile');
  writeFileSync(path, text);
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('the Dockerfile', () => {
  test('builds from exactly the files it copies, migrates an empty PostgreSQL, serves /health/ready, passes its HEALTHCHECK and exits 0 on SIGTERM', { timeout: 900_000 }, async (t) => {
    const database = await createEmptyDatabase();
    try {
      const started = Date.now();
      const { code, output } = await check(['--database-url', database.url]);
      if (code !== 0) assert.fail(`the check failed (exit ${code}):\n${output.split('\n').slice(-60).join('\n')}`);
      const line = output.split('\n').find((l) => l.startsWith('RESULT '));
      assert.ok(line, 'the check prints its result');
      const result = JSON.parse(line.slice('RESULT '.length)) as {
        size: { nodeModulesBytes: number; distBytes: number; totalBytes: number };
        healthcheck: string;
        user: string;
        skipped: string[];
        emulated: string[];
        timingsMs: Record<string, number>;
      };
      assert.match(result.healthcheck, /\/health\/ready/, 'the HEALTHCHECK asks /health/ready');
      assert.equal(result.user, 'node', 'the image runs as the unprivileged node user');
      assert.deepEqual(result.skipped.map((s) => s.split(' ').slice(0, 2).join(' ')), ['RUN apt-get'], 'only the Debian package install is skipped');
      assert.ok(result.size.totalBytes < 80 * 1024 * 1024, `node_modules + dist stays under 80 MB (${result.size.totalBytes} bytes)`);

      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
        assert.equal(rows[0]!.n, readMigrations().length, '`migrate` applied every migration');
      } finally {
        await client.end();
      }
      const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
      t.diagnostic(`image node_modules ${mb(result.size.nodeModulesBytes)} MB + dist ${mb(result.size.distBytes)} MB = ${mb(result.size.totalBytes)} MB`);
      t.diagnostic(`timings ms: ${JSON.stringify(result.timingsMs)}; whole check ${Date.now() - started} ms`);
    } finally {
      await database.drop();
    }
  });

  test('fails, naming the path, when a COPY names a path the build context does not have', async () => {
    const file = tempDockerfile('FROM node:24-bookworm-slim\nWORKDIR /app\nCOPY package.json ./\nCOPY campaigns ./campaigns\n');
    try {
      const { code, output } = await check(['--dockerfile', file.path]);
      assert.equal(code, 1);
      assert.match(output, /line 4 COPY: campaigns does not exist in the build context/);
    } finally {
      file.cleanup();
    }
  });

  test('fails when a COPY names a path that .dockerignore leaves out', async () => {
    const file = tempDockerfile('FROM node:24-bookworm-slim\nWORKDIR /app\nCOPY node_modules ./node_modules\n');
    try {
      const { code, output } = await check(['--dockerfile', file.path]);
      assert.equal(code, 1);
      assert.match(output, /node_modules does not exist in the build context/);
    } finally {
      file.cleanup();
    }
  });

  test('fails when a RUN fails, and refuses a RUN that would touch this machine outside WORKDIR', async () => {
    const failing = tempDockerfile('FROM node:24-bookworm-slim\nWORKDIR /app\nCOPY package.json ./\nRUN test -f package.json && false\n');
    const outside = tempDockerfile('FROM node:24-bookworm-slim\nWORKDIR /app\nRUN ln -s /app/dist/cli.js /usr/local/bin/followups\n');
    try {
      const a = await check(['--dockerfile', failing.path]);
      assert.equal(a.code, 1);
      assert.match(a.output, /line 4 RUN: exited with 1/);
      const b = await check(['--dockerfile', outside.path]);
      assert.equal(b.code, 1);
      assert.match(b.output, /line 3 RUN: touches the absolute path \/app/);
    } finally {
      failing.cleanup();
      outside.cleanup();
    }
  });

  test('runs the image as the unprivileged node user with tini as PID 1, on Node 24', () => {
    const text = readFileSync('Dockerfile', 'utf8');
    const froms = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(froms, ['node:24-bookworm-slim', 'node:24-bookworm-slim']);
    assert.match(text, /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "\/app\/dist\/cli\.js"\]$/m);
    assert.match(text, /apt-get install -y --no-install-recommends tini/);
    assert.match(text, /^USER node$/m);
  });
});
