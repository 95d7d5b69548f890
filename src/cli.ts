#!/usr/bin/env node
/**
 * The `followups` command: one CLI, several roles.
 *   followups start    api + relay + worker in one process (the embedded default)
 *   followups api | relay | worker
 *   followups migrate
 *   followups import fans.csv --campaign nautico
 */
import { createWriteStream } from 'node:fs';
import { Command, Option } from 'commander';
import { ConfigError } from './errors.js';
import { type Config, loadConfig } from './config.js';
import { createContext, type Context } from './context.js';
import { isConnectionError } from './db/db.js';
import { migrate } from './db/migrate.js';
import { createLogger, type Logger } from './log.js';
import { RedisConfigurationError } from './queue/redis-connection.js';
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
 * A role that starts while PostgreSQL is down (a restart, a deploy racing the database)
 * waits for it instead of exiting: up to a minute, then it gives up and says why.
 */
async function createContextPatiently(config: Config, log: Logger): Promise<Context> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await createContext(config, log);
    } catch (error) {
      if (!isConnectionError(error) || attempt >= 30) throw error;
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
      log.warn('FOLLOWUPS_API_TOKEN is not set: the API accepts the development token from the README');
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
  .description('Follow-up engine for the Náutico WhatsApp sales agent');

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
    const ctx = await createContext(config, log, { queue: null });
    try {
      const applied = await migrate(ctx.db, log);
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
    const { importCsv } = await import('./campaigns/import-csv.js');
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
        onRejection: (r) => out?.write(`${r.line},"${r.phone.replace(/"/g, '""')}",${r.reason}\n`),
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

export { program };

program.parseAsync(process.argv).catch((error) => {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
});
