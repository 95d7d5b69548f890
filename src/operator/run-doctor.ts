/**
 * `followups doctor`: every check an operator would otherwise make by hand with
 * psql, redis-cli and curl, each with the fix when it fails. The checks of one
 * dependency run in order; the dependencies run side by side.
 */
import type { Config } from '../config.js';
import type { Db } from '../db/db.js';
import type { Logger } from '../log.js';
import type { Transport } from '../whatsapp/transport.js';
import type { Check } from './check.js';
import { checkEvolution } from './check-evolution.js';
import { checkLlm } from './check-llm.js';
import { checkPostgres } from './check-postgres.js';
import { checkRedis } from './check-redis.js';
import { EXIT, type ExitCode } from './exit-codes.js';

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

export async function runDoctor(ctx: { config: Config; db: Db; log: Logger; transport: Transport }): Promise<DoctorReport> {
  const groups = await Promise.all([
    checkPostgres(ctx),
    checkRedis(ctx.config, ctx.log),
    checkEvolution(ctx),
    checkLlm(ctx.config),
  ]);
  const checks = groups.flat();
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}

/** 0 when nothing failed, 3 when a failure is a dependency that did not answer, else 1. */
export function doctorExitCode(report: DoctorReport): ExitCode {
  if (report.ok) return EXIT.ok;
  return report.checks.some((c) => c.status === 'fail' && c.unreachable) ? EXIT.unreachable : EXIT.failed;
}

const MARK = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: '--  ' } as const;

export function formatDoctor(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines: string[] = [];
  for (const c of report.checks) {
    lines.push(`${MARK[c.status]}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (c.fix && (c.status === 'fail' || c.status === 'warn')) lines.push(`      ${' '.repeat(width)}  fix: ${c.fix}`);
  }
  const failed = report.checks.filter((c) => c.status === 'fail').length;
  lines.push('', failed === 0 ? 'all checks passed' : `${failed} check(s) failed`);
  return lines.join('\n');
}
