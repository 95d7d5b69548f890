/**
 * The operator CLI as an operator runs it: `node cli.js …` (helpers/cli.ts) in a child
 * process, with the environment of a deployment pointing at a test database (the real
 * PostgreSQL), the shared Redis under a queue name of its own, the fake Evolution API and
 * the fake LLM. One world per test file (each file runs in its own process).
 */
import { execFile } from 'node:child_process';
import { systemClock } from '../../src/clock.js';
import { scheduleFollowup } from '../../src/followups/schedule-followup.js';
import { createLogger } from '../../src/log.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { type FakeEvolution, startFakeEvolution } from './fake-evolution.js';
import { type FakeLlm, startFakeLlm } from './fake-llm.js';
import { cliArgs } from './cli.js';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const QUEUE_NAME = `operator_cli_${process.pid}_${Date.now()}`;
export const SECRET = 'operator-cli-webhook-secret-0123456789';
export const PUBLIC_URL = 'https://followups.example.com';
export const silent = createLogger({ level: 'silent' });

let testDb: TestDatabase;
let evolution: FakeEvolution;
let llm: FakeLlm;

export async function startOperatorWorld(): Promise<{ testDb: TestDatabase; evolution: FakeEvolution; llm: FakeLlm }> {
  [testDb, evolution, llm] = await Promise.all([createTestDatabase({ poolSize: 3 }), startFakeEvolution(), startFakeLlm()]);
  return { testDb, evolution, llm };
}

export async function stopOperatorWorld(): Promise<void> {
  await Promise.all([evolution?.close(), llm?.close()]);
  await testDb?.drop();
}

export function baseEnv(): Record<string, string> {
  return {
    DATABASE_URL: testDb.url,
    FOLLOWUPS_API_TOKEN: 'operator-cli-token-0123456789abcdef',
    ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
    REDIS_URL,
    QUEUE_NAME,
    EVOLUTION_API_URL: evolution.url,
    EVOLUTION_API_KEY: evolution.apiKey,
    EVOLUTION_INSTANCE_NAME: evolution.instance,
    WEBHOOK_SECRET: SECRET,
    PUBLIC_URL,
    LLM_BASE_URL: llm.url,
    LLM_API_KEY: llm.apiKey,
    LLM_MODEL: 'gpt-test',
    SEND_DAILY_CAP: '500',
    LOG_LEVEL: 'warn',
  };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

/** Runs the real CLI in a child process (asynchronously: the fakes answer from this process). */
export function followups(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...baseEnv(), ...env })) if (value !== undefined) childEnv[key] = value;
  return new Promise((resolve) => {
    execFile(process.execPath, [...cliArgs(), ...args], { env: childEnv, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

export async function schedule(phone: string, options: { inMinutes?: number } = {}) {
  const { followup } = await scheduleFollowup({ db: testDb.db, clock: systemClock }, { phone, message: 'Oi! Ficou alguma dúvida?', delayMinutes: options.inMinutes ?? 300 });
  return followup;
}

export async function row(id: string) {
  const { rows } = await testDb.db.query<{ status: string; due_at: Date; cancel_reason: string | null; ignore_window: boolean; defer_reason: string | null }>(
    'SELECT status, due_at, cancel_reason, ignore_window, defer_reason FROM follow_ups WHERE id = $1::uuid',
    [id],
  );
  return rows[0]!;
}

export async function lastEvent(id: string) {
  const { rows } = await testDb.db.query<{ from_status: string; to_status: string; reason: string; detail: Record<string, unknown> }>(
    'SELECT from_status, to_status, reason, detail FROM follow_up_events WHERE follow_up_id = $1::uuid ORDER BY id DESC LIMIT 1',
    [id],
  );
  return rows[0]!;
}
