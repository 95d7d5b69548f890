/**
 * Fails a test file that leaves something running after its tests: loaded into every
 * test file's process by scripts/run-tests.mjs (`--import`).
 *
 * - A pool, a connection, a server, a ref'd timer or a child process still open keeps the
 *   file's process alive after its last test; Node's runner would then wait for it until
 *   the 5-minute test timeout. Once the file's own `after` hooks have had `GRACE_MS`, this
 *   lists what is still open (`process.getActiveResourcesInfo()`, with the address of each
 *   socket and the child processes) and exits 1, so the runner reports the file as failed.
 * - A child process left running without keeping the process alive (spawned and unref'd)
 *   is caught when the process is about to exit.
 *
 * Allowed: the process's own stdio pipes (what Node keeps for the runner's report) and
 * the esbuild service that compiles the TypeScript (test/helpers/ts-hooks.mjs, tsx; unref'd, it ends with us).
 */
import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';
import { after } from 'node:test';

/** Long enough for any file's own cleanup (a graceful stop waits for work in flight). */
const GRACE_MS = Number(process.env.TEST_LEAK_GRACE_MS ?? 60_000);
const file = basename(process.argv[1] ?? 'this test file');

interface Handle {
  constructor?: { name?: string };
  fd?: number;
  remoteAddress?: string;
  remotePort?: number;
  localPort?: number;
  address?: () => { port?: number } | string | null;
  pid?: number;
  spawnfile?: string;
}

/** Ends the child processes a file left running (by pid, after they were listed). */
function endChildren(listed: string[]): void {
  for (const line of listed) {
    const pid = Number(line.split(' ')[0]);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/** Child processes still running under this process (the `ps` asked here excluded), as "pid args". */
function liveChildren(): string[] {
  try {
    const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^\d+ ps -o pid=,args= --ppid/.test(l) && !/^\d+ \S*\/esbuild --service=/.test(l));
  } catch {
    return []; // ps exits 1 when there is no child
  }
}

function describeHandle(h: Handle): string | null {
  const kind = h.constructor?.name ?? 'handle';
  if (typeof h.fd === 'number' && h.fd >= 0 && h.fd <= 2) return null; // stdio
  if (kind === 'Socket' && h.remotePort) return `a connection to ${h.remoteAddress}:${h.remotePort}`;
  if (kind === 'Server' && typeof h.address === 'function') {
    const a = h.address();
    return `a server listening${a && typeof a === 'object' && a.port ? ` on port ${a.port}` : ''}`;
  }
  if (kind === 'ChildProcess') return `child process ${h.pid} (${h.spawnfile})`;
  return kind;
}

function whatIsOpen(): string[] {
  const found: string[] = [];
  const resources = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap');
  const counts = new Map<string, number>();
  for (const r of resources) counts.set(r, (counts.get(r) ?? 0) + 1);
  // The watchdog's own timer is not a leak.
  if (counts.has('Timeout')) counts.set('Timeout', counts.get('Timeout')! - 1);
  for (const [r, n] of counts) if (n > 0) found.push(`${n} × ${r}`);
  const handles = (process as unknown as { _getActiveHandles(): Handle[] })._getActiveHandles();
  for (const h of handles) {
    const d = describeHandle(h);
    if (d && d !== 'Socket' && d !== 'Timeout') found.push(d);
  }
  const children = liveChildren();
  for (const c of children) found.push(`running child process: ${c}`);
  endChildren(children);
  return found;
}

after(() => {
  // Runs before the file's own top-level `after` hooks (registered later); hence the grace.
  setTimeout(() => {
    const open = whatIsOpen();
    process.stderr.write(
      `\nleak check: ${file} is still running ${GRACE_MS} ms after its tests; still open:\n  ${open.join('\n  ') || '(nothing Node can name)'}\n`,
    );
    process.exit(1);
  }, GRACE_MS).unref();
});

process.once('beforeExit', () => {
  const children = liveChildren();
  if (children.length === 0) return;
  process.stderr.write(`\nleak check: ${file} leaves child processes running:\n  ${children.join('\n  ')}\n`);
  endChildren(children);
  process.exitCode = 1;
});
