#!/usr/bin/env node
/**
 * The `followups` command: one CLI, several roles.
 *   followups start    api + relay + worker in one process (the embedded default)
 *   followups api | relay | worker
 *   followups migrate
 *   followups import fans.csv --campaign nautico
 *   followups status | doctor | webhook setup | retry | cancel | send-now   (operator commands, src/operator/)
 */
import { createWriteStream } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, RedisConfigurationError } from './errors.js';
import { type Config, loadConfig } from './config.js';
import { createContext, type Context } from './context.js';
import { readDbError } from './db/db-errors.js';
import { migrate } from './db/migrate.js';
import { createLogger, type Logger } from './log.js';
import { type Role, startRoles } from './roles.js';

function readConfig(overrides: Record<string, string | undefined> = {}): Config {
  try {
    return loadConfig({ ...process.env, ...overrides });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

function makeLog(config: Config): Logger {
  return createLogger({ level: config.logLevel, pretty: config.logPretty || Boolean(process.stdout.isTTY) });
}

/**
 * A refused login (wrong password or user, from PostgreSQL or a pooler) is a configuration
 * error: no retry, exit 2 with the server's own words, like an invalid setting.
 */
function exitIfAuthError(error: unknown, log: Logger): void {
  const meaning = readDbError(error);
  if (!meaning.auth) return;
  const message = (error as Error).message;
  log.fatal({ err: { message, code: meaning.code } }, 'the database refused the login');
  log.flush?.();
  process.stderr.write(`DATABASE_URL: the database refused the login: ${message}\n`);
  process.exit(2);
}

/**
 * A role that starts while PostgreSQL is down (a restart, a deploy racing the database)
 * waits for it instead of exiting: up to a minute, then it gives up and says why.
 * A refused login is not "down": it exits 2 at once.
 */
async function createContextPatiently(config: Config, log: Logger): Promise<Context> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await createContext(config, log);
    } catch (error) {
      exitIfAuthError(error, log);
      if (!readDbError(error).unreachable || attempt >= 30) throw error;
      log.warn({ err: { message: (error as Error).message }, attempt }, 'database unreachable at start; retrying');
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
}

async function runRoles(roles: Role[], opts: { migrate?: boolean }) {
  const config = readConfig(opts.migrate === false ? { MIGRATE_ON_START: 'false' } : {});
  const log = makeLog(config);
  let ctx: Context | undefined;
  try {
    ctx = await createContextPatiently(config, log);
    // Without Redis there is no worker: the relay sends follow-ups itself.
    const effective = roles.filter((r) => r !== 'worker' || config.redis.connection);
    log.info(
      {
        roles: effective,
        database: config.database.url ? 'postgresql' : `pglite:${config.database.dataDir}`,
        queue: config.redis.connection ? `redis (${config.redis.connection.mode})` : 'direct',
        transport: ctx.transport.name,
      },
      'starting',
    );
    if (config.apiTokenIsDefault && effective.includes('api')) {
      log.warn({ host: config.host }, 'FOLLOWUPS_API_TOKEN is not set: the API accepts the development token from the README (loopback, dry-run only)');
    }
    const running = await startRoles(ctx, effective);
    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal; exiting now');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'shutting down');
      const force = setTimeout(() => {
        log.error('shutdown took too long; exiting');
        process.exit(1);
      }, config.shutdownTimeoutMs + 5_000);
      force.unref();
      try {
        await running.stop();
        await ctx!.close();
        log.info('stopped');
        log.flush?.();
        process.exit(0);
      } catch (error) {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      }
    };
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
  } catch (error) {
    await ctx?.close().catch(() => undefined);
    if (error instanceof RedisConfigurationError) {
      // Retrying cannot fix it: exit 2, like any other configuration problem, in Redis's own words.
      log.fatal({ kind: error.kind, redis: error.redisMessage }, error.message);
      log.flush?.();
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    log.fatal({ err: error }, 'failed to start');
    process.exit(1);
  }
}

const program = new Command()
  .name('followups')
  .description('Follow-up engine for the Náutico WhatsApp sales agent')
  // Usage errors exit 2, like configuration errors (see src/operator/exit-codes.ts).
  .exitOverride();

const noMigrate = new Option('--no-migrate', 'do not apply database migrations on start');

program.command('start').description('run api, relay and worker in one process').addOption(noMigrate).action((o) => runRoles(['api', 'relay', 'worker'], o));
program.command('api').description('run the HTTP API').addOption(noMigrate).action((o) => runRoles(['api'], o));
program.command('relay').description('run the relay (scheduler): due follow-ups → queue').addOption(noMigrate).action((o) => runRoles(['relay'], o));
program.command('worker').description('run a queue worker: compose and send follow-ups').addOption(noMigrate).action((o) => runRoles(['worker'], o));

program
  .command('migrate')
  .description('apply database migrations and exit')
  .action(async () => {
    const config = readConfig({ MIGRATE_ON_START: 'false' });
    const log = makeLog(config);
    let ctx: Context;
    try {
      ctx = await createContext(config, log, { queue: null });
    } catch (error) {
      exitIfAuthError(error, log);
      throw error;
    }
    try {
      const applied = await migrate(ctx.db, log).catch((error: unknown) => {
        exitIfAuthError(error, log);
        throw error;
      });
      log.info({ applied }, applied.length ? 'migrations applied' : 'database is up to date');
    } finally {
      await ctx.close();
    }
  });

program
  .command('import <file>')
  .description('enroll the leads of a CSV file (columns phone/telefone/whatsapp, name/nome, optional anchorAt/ultima_interacao) in a campaign')
  .requiredOption('--campaign <name>', 'campaign to enroll them in, e.g. nautico')
  .option('--batch-size <n>', 'leads per enrollment batch (at most 10000)', '5000')
  .option('--rejections <file>', 'write every rejected row (line, phone, reason) to this CSV file')
  .action(async (file: string, o: { campaign: string; batchSize: string; rejections?: string }) => {
    // Loaded here, not at the top: the CSV parser and progress bar are for this command only.
    const { formatRejectionLine, importCsv } = await import('./campaigns/import-csv.js');
    const { formatImportSummary, makeImportProgress } = await import('./campaigns/import-progress.js');
    const config = readConfig();
    const log = makeLog(config);
    const ctx = await createContext(config, log, { queue: null });
    const out = o.rejections ? createWriteStream(o.rejections) : null;
    out?.write('line,phone,reason\n');
    const progress = makeImportProgress(process.stderr);
    try {
      const summary = await importCsv(ctx, {
        file,
        campaign: o.campaign,
        batchSize: Number(o.batchSize),
        timeZone: config.sending.timeZone,
        onProgress: (p) => progress.update(p),
        onRejection: (r) => out?.write(formatRejectionLine(r)),
      });
      progress.stop();
      process.stdout.write(formatImportSummary(summary, { campaign: o.campaign, rejectionsFile: o.rejections }));
    } catch (error) {
      progress.stop();
      process.exitCode = 1;
      process.stderr.write(`import failed: ${(error as Error).message}\n`);
    } finally {
      if (out) await new Promise((resolve) => out.end(resolve));
      await ctx.close();
    }
  });

// Operator commands: thin here, the logic is in src/operator/. Loaded on use, like import.
const json = new Option('--json', 'print one JSON document on stdout (for scripts)');
const exitWith = (code: number) => {
  process.exitCode = code;
};

program
  .command('status')
  .description('counts by status, overdue and due soon, queue depth and mode, sending state, sends today against the daily cap')
  .addOption(json)
  .action(async (o: { json?: boolean }) => {
    const { runOperatorCommand } = await import('./run-operator-command.js');
    const { formatStatus, readStatus } = await import('./operator/read-status.js');
    exitWith(await runOperatorCommand({ json: o.json, queue: true }, async (ctx) => ({ result: await readStatus(ctx), human: formatStatus })));
  });

program
  .command('doctor')
  .description('check PostgreSQL, Redis, Evolution API, the LLM and the clock; each failure with its fix')
  .addOption(json)
  .action(async (o: { json?: boolean }) => {
    const { runOperatorCommand } = await import('./run-operator-command.js');
    const { doctorExitCode, formatDoctor, runDoctor } = await import('./operator/run-doctor.js');
    exitWith(
      await runOperatorCommand({ json: o.json }, async (ctx) => {
        const report = await runDoctor(ctx);
        return { result: report, exitCode: doctorExitCode(report), human: formatDoctor };
      }),
    );
  });

program
  .command('webhook')
  .description('the instance\'s webhook on Evolution API')
  .command('setup')
  .description('point the instance\'s webhook at this service, with the secret header and the events it needs')
  .option('--url <public url>', 'this service\'s public URL as Evolution reaches it (default PUBLIC_URL)')
  .option('--instance <name>', 'with several numbers (EVOLUTION_INSTANCES): which one (default: the first); run once per number')
  .addOption(json)
  .action(async (o: { url?: string; instance?: string; json?: boolean }) => {
    const { runOperatorCommand } = await import('./run-operator-command.js');
    const { formatSetupWebhook, setupWebhook } = await import('./operator/setup-webhook.js');
    exitWith(await runOperatorCommand({ json: o.json }, async (ctx) => ({ result: await setupWebhook(ctx.config, { url: o.url, instance: o.instance }), human: formatSetupWebhook })));
  });

program
  .command('retry')
  .description('put failed follow-ups back to pending, due now')
  .requiredOption('--failed', 'retry failed follow-ups (the only selection for now)')
  .option('--reason <reason>', 'only those that failed with this reason (retries_exhausted, ambiguous_send, rejected, …)')
  .option('--since <when>', 'only those that failed since then: ISO date/time or a span back (90m, 6h, 2d)')
  .option('--limit <n>', 'at most this many', '10000')
  .option('--dry-run', 'list what would be retried, change nothing')
  .addOption(json)
  .action(async (o: { reason?: string; since?: string; limit: string; dryRun?: boolean; json?: boolean }) => {
    const { runOperatorCommand } = await import('./run-operator-command.js');
    const { formatRetryFailed, parseSince, retryFailedFollowups } = await import('./operator/retry-failed-followups.js');
    const { ValidationError } = await import('./errors.js');
    exitWith(
      await runOperatorCommand({ json: o.json }, async (ctx) => {
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1_000_000) throw new ValidationError('--limit: must be a whole number from 1 to 1000000', 'limit');
        const since = o.since === undefined ? undefined : parseSince(o.since, ctx.clock.now());
        const result = await retryFailedFollowups(ctx, { reason: o.reason, since, limit, dryRun: o.dryRun });
        return { result, exitCode: result.matched === 0 ? 1 : 0, human: formatRetryFailed };
      }),
    );
  });

program
  .command('mcp')
  .description('serve the agent tools (MCP) on stdin/stdout, for agents that spawn their tools; needs DATABASE_URL (with the embedded database use POST /mcp)')
  .action(async () => {
    const { runMcpStdio } = await import('./agent/mcp-stdio.js');
    await runMcpStdio(readConfig());
  });

program
  .command('tools')
  .description("print the agent's tools as function-calling definitions (JSON), as GET /v1/agent/tools does")
  .option('--format <format>', 'openai | anthropic', 'openai')
  .action(async (o: { format: string }) => {
    const { toolDefinitions } = await import('./agent/tools.js');
    const { TOOL_FORMATS } = await import('./agent/tool-schemas.js');
    const format = TOOL_FORMATS.find((f) => f === o.format);
    if (!format) {
      process.stderr.write(`--format: must be one of ${TOOL_FORMATS.join(', ')}\n`);
      process.exit(2);
    }
    process.stdout.write(`${JSON.stringify(toolDefinitions(format), null, 2)}\n`);
  });

program
  .command('cancel')
  .description('cancel every pending or queued follow-up of a lead (reason: operator)')
  .requiredOption('--lead <phone>', 'the lead\'s phone number, any spelling')
  .addOption(json)
  .action(async (o: { lead: string; json?: boolean }) => {
    const { runOperatorCommand } = await import('./run-operator-command.js');
    const { cancelLeadFollowups, formatCancelLead } = await import('./operator/cancel-lead-followups.js');
    exitWith(
      await runOperatorCommand({ json: o.json }, async (ctx) => {
        const result = await cancelLeadFollowups(ctx, o.lead);
        return { result, exitCode: result.cancelled.length === 0 ? 1 : 0, human: formatCancelLead };
      }),
    );
  });

for (const [name, description] of [
  ['pause', 'pause sending (everything, or one campaign) with a reason; held follow-ups wait, deferred operator_paused'],
  ['resume', 'resume sending paused with `followups pause`; the follow-ups it held go out now'],
] as const) {
  const command = program.command(name).description(description);
  if (name === 'pause') command.requiredOption('--reason <text>', 'why (shown on the dashboard, /health/ready and the record)');
  else command.option('--reason <text>', 'why it may send again');
  command
    .option('--campaign <name>', 'only this campaign (default: everything)')
    .option('--who <name>', "who asks (default 'cli')")
    .addOption(json)
    .action(async (o: { reason?: string; campaign?: string; who?: string; json?: boolean }) => {
      const { runOperatorCommand } = await import('./run-operator-command.js');
      const c = await import('./operator/pause-commands.js');
      exitWith(
        name === 'pause'
          ? await runOperatorCommand({ json: o.json }, async (ctx) => ({ result: await c.pauseCommand(ctx, o), human: c.formatPause }))
          : await runOperatorCommand({ json: o.json }, async (ctx) => ({ result: await c.resumeCommand(ctx, o), human: c.formatResume })),
      );
    });
}

program
  .command('send-now <id>')
  .description('make a pending follow-up due now (still within the sending window unless --ignore-window)')
  .option('--ignore-window', 'send it even outside the sending window (the other rules still apply)')
  .addOption(json)
  .action(async (id: string, o: { ignoreWindow?: boolean; json?: boolean }) => {
    const { runOperatorCommand } = await import('./run-operator-command.js');
    const { formatSendNow, sendFollowupNow } = await import('./operator/send-followup-now.js');
    exitWith(
      await runOperatorCommand({ json: o.json }, async (ctx) => ({
        result: await sendFollowupNow(ctx, id, { ignoreWindow: o.ignoreWindow === true }),
        human: formatSendNow,
      })),
    );
  });

const numbers = program.command('numbers').description('the WhatsApp numbers: state, pace, daily cap, sent today; pause, resume, retire');
numbers
  .command('list', { isDefault: true })
  .description('every number with its state, sent today against its daily cap, pace and leads')
  .addOption(json)
  .action(async (o: { json?: boolean }) => {
    const { runOperatorCommand } = await import('./run-operator-command.js');
    const { formatNumbers, readNumbers } = await import('./operator/manage-numbers.js');
    exitWith(await runOperatorCommand({ json: o.json }, async (ctx) => ({ result: await readNumbers(ctx), human: formatNumbers })));
  });
for (const [action, description] of [
  ['pause', "hold the number's follow-ups (deferred operator_paused) until resumed"],
  ['resume', 'send from the number again (after an operator pause, or a WhatsApp one)'],
  ['retire', 'stop using the number for good: its leads move to the active numbers, each once'],
] as const) {
  numbers
    .command(`${action} <name>`)
    .description(description)
    .option('--reason <text>', 'a note shown with the state')
    .addOption(json)
    .action(async (name: string, o: { reason?: string; json?: boolean }) => {
      const { runOperatorCommand } = await import('./run-operator-command.js');
      const { changeNumber, formatChangedNumber } = await import('./operator/manage-numbers.js');
      exitWith(await runOperatorCommand({ json: o.json }, async (ctx) => ({ result: await changeNumber(ctx, name, action, o.reason), human: formatChangedNumber })));
    });
}

export { program };

program.parseAsync(process.argv).catch((error) => {
  if (error instanceof CommanderError) {
    // Help and --version are not errors; commander has already printed what was wrong.
    process.exit(error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0 ? 0 : 2);
  }
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
});
