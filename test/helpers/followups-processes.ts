/**
 * `followups start` child processes (this tree's sources, compiled as in production:
 * helpers/cli.ts), their logs kept for assertions, and the follow-ups they delivered with
 * the dry-run transport (`dry_run_messages`), with each one's lateness.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import pg from 'pg';
import { freePort } from './redis-server.js';
import { waitFor } from './pipeline.js';
import { cliArgs } from './cli.js';

export interface FollowupsProcess {
  base: string;
  /** Everything it wrote so far (JSON log lines, then anything on stderr). */
  output(): string;
  /** Resolves with the exit code once it has exited. */
  exited: Promise<number | null>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export async function spawnFollowups(command: string, env: Record<string, string>): Promise<FollowupsProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [...cliArgs(), command], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    base: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(killer);
      return code;
    },
  };
}

/**
 * Waits for the process to answer ready, however long it takes to start on a loaded
 * machine (over 60 s seen when children loaded the sources through tsx); it exiting first fails at once. `timeoutMs` is only a backstop.
 */
export async function waitUntilReady(p: FollowupsProcess, timeoutMs = 240_000): Promise<void> {
  await Promise.race([
    waitFor(
      `${p.base} ready`,
      async () => {
        const res = await fetch(`${p.base}/health/ready`);
        return res.ok && ((await res.json()) as { status: string }).status === 'ok';
      },
      { timeoutMs, intervalMs: 200 },
    ),
    p.exited.then((code) => Promise.reject(new Error(`${p.base} exited (${code}) before it was ready`))),
  ]).catch((error: Error) => {
    throw new Error(`${error.message}\n${p.output().slice(-3_000)}`);
  });
}

/** Schedules `count` follow-ups (one lead each) over the APIs given, `parallel` requests at a time; returns every status code. */
export async function scheduleFollowups(
  bases: string[],
  options: { count: number; token: string; dueAt: (i: number) => Date; parallel?: number },
): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  const one = async () => {
    for (let i = next++; i < options.count; i = next++) {
      const res = await fetch(`${bases[i % bases.length]}/v1/followups`, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          phone: `55819${String(70_000_000 + i).padStart(8, '0')}`,
          message: `Oi! Follow-up ${i}`,
          dueAt: options.dueAt(i).toISOString(),
        }),
      });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: options.parallel ?? 10 }, one));
  return statuses;
}

export interface Deliveries {
  /** Rows in dry_run_messages. */
  messages: number;
  /** Distinct numbers they went to (one follow-up per number in these tests). */
  numbers: number;
  /** Follow-ups executed. */
  executed: number;
  /** Lateness of each delivery (sent at − due at), ms, sorted. */
  latenessMs: number[];
  /** Due at → a worker's claim (`sending`), ms, sorted. */
  claimLatenessMs: number[];
}

export async function readDeliveries(url: string): Promise<Deliveries> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ messages: number; numbers: number; executed: number }>(
      `SELECT (SELECT count(*)::int FROM dry_run_messages) AS messages,
              (SELECT count(DISTINCT number)::int FROM dry_run_messages) AS numbers,
              (SELECT count(*)::int FROM follow_ups WHERE status = 'executed') AS executed`,
    );
    const lateness = await client.query<{ ms: number }>(
      `SELECT extract(epoch FROM (m.at - f.due_at)) * 1000 AS ms
         FROM dry_run_messages m JOIN follow_ups f ON f.provider_message_id = m.provider_message_id`,
    );
    // Where the time went: due → claimed by a worker (sending) → sent.
    const stages = await client.query<{ claim_ms: number }>(
      `SELECT extract(epoch FROM (e.at - f.due_at)) * 1000 AS claim_ms
         FROM follow_ups f JOIN follow_up_events e ON e.follow_up_id = f.id AND e.to_status = 'sending'`,
    );
    return {
      ...rows[0]!,
      latenessMs: lateness.rows.map((r) => Number(r.ms)).sort((a, b) => a - b),
      claimLatenessMs: stages.rows.map((r) => Number(r.claim_ms)).sort((a, b) => a - b),
    };
  } finally {
    await client.end();
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
