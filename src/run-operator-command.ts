/**
 * The frame every operator command runs in: the service's own configuration
 * (loadConfig), a context without migrations (an operator command never changes the
 * schema; `doctor` reports it), logs on stderr only, and one answer on stdout —
 * readable text, or with `--json` one JSON document — with an exit code that means
 * something (exit-codes.ts).
 */
import pino from 'pino';
import { type Config, loadConfig } from './config.js';
import { createContext, type Context } from './context.js';
import { readDbError } from './db/db-errors.js';
import { ConfigError, ConflictError, NotFoundError, ValidationError } from './errors.js';
import { createLogger } from './log.js';
import { EXIT, type ExitCode, OperatorError } from './operator/exit-codes.js';

export interface CommandResult<T> {
  result: T;
  exitCode?: ExitCode;
  /** The text a person reads (ends without a newline). */
  human: (result: T) => string;
}

export interface OutputOptions {
  json?: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export function readOperatorConfig(env: Record<string, string | undefined> = process.env): Config {
  return loadConfig({ ...env, MIGRATE_ON_START: 'false' });
}

/** A context for one command: no migrations, no queue unless asked for, logs (warnings and worse) on stderr. */
export async function openOperatorContext(config: Config, options: { queue?: boolean } = {}): Promise<Context> {
  const level = config.logLevel === 'info' ? 'warn' : config.logLevel;
  const log = createLogger({ level, destination: pino.destination({ dest: 2, sync: true }) });
  return createContext(config, log, options.queue ? {} : { queue: null });
}

export async function runOperatorCommand<T>(
  options: OutputOptions & { queue?: boolean },
  run: (ctx: Context) => Promise<CommandResult<T>>,
): Promise<ExitCode> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  let ctx: Context | undefined;
  try {
    const config = readOperatorConfig();
    ctx = await openOperatorContext(config, { queue: options.queue });
    const outcome = await run(ctx);
    const exitCode = outcome.exitCode ?? EXIT.ok;
    stdout.write(options.json ? `${JSON.stringify(outcome.result, null, 2)}\n` : `${outcome.human(outcome.result)}\n`);
    return exitCode;
  } catch (error) {
    const { exitCode, code, message } = describeFailure(error);
    if (options.json) stdout.write(`${JSON.stringify({ ok: false, error: { code, message } }, null, 2)}\n`);
    stderr.write(`${message}\n`);
    return exitCode;
  } finally {
    await ctx?.close().catch(() => undefined);
  }
}

export function describeFailure(error: unknown): { exitCode: ExitCode; code: string; message: string } {
  const message = (error as Error)?.message ?? String(error);
  if (error instanceof OperatorError) return { exitCode: error.exitCode, code: error.code, message };
  if (error instanceof ConfigError) return { exitCode: EXIT.usage, code: 'invalid_configuration', message };
  if (error instanceof ValidationError) return { exitCode: EXIT.usage, code: 'invalid_argument', message };
  if (error instanceof NotFoundError) return { exitCode: EXIT.failed, code: 'not_found', message };
  if (error instanceof ConflictError) return { exitCode: EXIT.failed, code: error.code, message };
  const db = readDbError(error);
  if (db.undefinedTable) {
    return { exitCode: EXIT.failed, code: 'not_migrated', message: `the database is not migrated (${message}): run \`followups migrate\`` };
  }
  if (db.unreachable) return { exitCode: EXIT.unreachable, code: 'database_unreachable', message: `PostgreSQL is unreachable: ${message}` };
  return { exitCode: EXIT.failed, code: 'error', message };
}
