/**
 * One `followups <role>` child process (relay, worker, api), run from the
 * TypeScript sources as the tests do. Each child leads its own process group, so
 * a SIGKILL takes whatever it spawned with it and nothing is left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';

export interface RoleProcess {
  readonly name: string;
  readonly role: string;
  readonly alive: boolean;
  readonly starts: number;
  readonly frozen: boolean;
  start(): void;
  /** SIGKILL to the whole process group; resolves when the child is gone. */
  kill(): Promise<void>;
  /** SIGSTOP to the whole group: the process holds its claims, sockets and locks but does nothing (a long GC pause, a frozen VM). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit code (null when killed). */
  stop(graceMs?: number): Promise<number | null>;
}

export function makeRoleProcess(options: {
  name: string;
  role: 'api' | 'relay' | 'worker';
  cwd: string;
  env: Record<string, string>;
  logDir: string;
  /** Called when the child exits without being asked to (a crash). */
  onUnexpectedExit?: (name: string, code: number | null, signal: NodeJS.Signals | null) => void;
}): RoleProcess {
  let child: ChildProcess | undefined;
  let expectingExit = false;
  let starts = 0;
  let frozen = false;
  let log: WriteStream | undefined;

  function exited(c: ChildProcess): Promise<void> {
    if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => c.once('exit', () => resolve()));
  }

  function signalGroup(c: ChildProcess, signal: NodeJS.Signals) {
    try {
      process.kill(-c.pid!, signal);
    } catch {
      try {
        c.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  return {
    name: options.name,
    role: options.role,
    get alive() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    get starts() {
      return starts;
    },
    get frozen() {
      return frozen;
    },
    start() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      starts += 1;
      expectingExit = false;
      log ??= createWriteStream(join(options.logDir, `${options.name}.log`), { flags: 'a' });
      log.write(`\n--- start #${starts} at ${new Date().toISOString()} ---\n`);
      const c = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', options.role], {
        cwd: options.cwd,
        env: options.env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      c.stdout!.pipe(log, { end: false });
      c.stderr!.pipe(log, { end: false });
      c.once('exit', (code, signal) => {
        if (!expectingExit) options.onUnexpectedExit?.(options.name, code, signal);
      });
      child = c;
    },
    freeze() {
      frozen = true;
      if (child) signalGroup(child, 'SIGSTOP');
    },
    thaw() {
      frozen = false;
      if (child) signalGroup(child, 'SIGCONT');
    },
    async kill() {
      const c = child;
      if (!c) return;
      expectingExit = true;
      signalGroup(c, 'SIGKILL');
      await exited(c);
    },
    async stop(graceMs = 15_000) {
      const c = child;
      if (!c) return null;
      expectingExit = true;
      if (c.exitCode !== null || c.signalCode !== null) return c.exitCode;
      signalGroup(c, 'SIGCONT');
      signalGroup(c, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(c, 'SIGKILL'), graceMs);
      await exited(c);
      clearTimeout(timer);
      // Anything the role left in its group goes too.
      signalGroup(c, 'SIGKILL');
      log?.end();
      log = undefined;
      return c.exitCode;
    },
  };
}
