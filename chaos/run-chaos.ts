/**
 * `npm run chaos` / `npm run chaos:quick`: the whole pipeline under the worst
 * conditions we can make on one machine, then a proof that nothing was lost,
 * nothing doubled, nothing sent after "stop".
 *
 * It starts its own PostgreSQL cluster and redis-server (AOF on), a fake
 * Evolution API (in this process), the API, 2 relays and 3 workers as child
 * processes; makes follow-ups come due while leads answer through webhooks; kills
 * and restarts processes, Redis (with its data, then empty) and PostgreSQL; makes
 * Evolution fail in every way it does; waits for quiescence; checks (checks.ts);
 * prints the figures and writes them to chaos/report.json. Exit 1 on any violation.
 *
 * Everything it started is stopped and every temp dir removed, even on failure.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makePgDb } from '../src/db/pg-db.js';
import type { Db } from '../src/db/db.js';
import { migrate } from '../src/db/migrate.js';
import { createLogger } from '../src/log.js';
import { type FakeEvolution, startFakeEvolution } from '../test/helpers/fake-evolution.js';
import { checkRun, historyOf, type Violation } from './checks.js';
import { freePort } from '../test/helpers/redis-server.js';
import { type OwnPostgres, startOwnPostgres } from './own-postgres.js';
import { type OwnRedis, startOwnRedis } from './own-redis.js';
import { makeRoleProcess, type RoleProcess } from './role-process.js';
import { FULL, QUICK, type Scenario } from './scenario.js';
import { answerAsLead, insertPlanned, planLeads, scheduleThroughApi, webhookRouteExists, type WebhookStats } from './traffic.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const API_TOKEN = 'chaos-api-token-123-abcdefghijkl';
const WEBHOOK_SECRET = 'chaos-webhook-secret-abcdefghijkl';

export interface ChaosReport {
  scenario: string;
  ok: boolean;
  violations: Violation[];
  startedAt: string;
  durationMs: number;
  /** From the end of the chaos (every fault cleared, every process up) to no follow-up open. */
  timeToQuiescenceMs: number | null;
  /** From the last due time to no follow-up open. */
  quiescentAfterLastDueMs: number | null;
  figures: Record<string, unknown>;
  faults: Record<string, unknown>;
  traffic: Record<string, unknown>;
  processes: Record<string, unknown>;
  notes: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const between = ([lo, hi]: [number, number]) => lo + Math.random() * (hi - lo);
const stamp = () => new Date().toISOString().slice(11, 23);

export async function runChaos(scenario: Scenario, options: { reportPath?: string; keepLogs?: string; say?: (line: string) => void } = {}): Promise<ChaosReport> {
  const say = options.say ?? ((line: string) => process.stdout.write(`[chaos ${stamp()}] ${line}\n`));
  const runId = randomBytes(3).toString('hex');
  const started = Date.now();
  const logDir = mkdtempSync(join(tmpdir(), 'followups-chaos-logs-'));
  const notes: string[] = [];
  const violations: Violation[] = [];
  const unexpectedExits: string[] = [];
  const faults = {
    workerKills: 0,
    relayKills: 0,
    workerFreezes: 0,
    redisRestartsWithData: 0,
    redisRestartsEmpty: 0,
    postgresRestarts: 0,
    evolution: {} as Record<string, number>,
    evolutionWindows: {} as Record<string, string>,
    webhooks: {} as Record<string, unknown>,
  };
  const traffic = {
    planned: 0,
    insertedBySql: 0,
    scheduledViaApi: 0,
    apiScheduleFailures: 0,
    apiScheduleRefused: 0,
    retries: 0,
    repliesWired: false,
    replies: 0,
    optOuts: 0,
    notOnWhatsApp: 0,
    webhooks: { sent: 0, duplicates: 0, outOfOrder: 0, accepted: 0, refused: 0, retries: 0, undelivered: [] as string[], lost: 0, lostPhones: [] as string[] } as WebhookStats,
  };

  let pgCluster: OwnPostgres | undefined;
  let redis: OwnRedis | undefined;
  let fake: FakeEvolution | undefined;
  let db: Db | undefined;
  const roles: RoleProcess[] = [];
  let timeToQuiescenceMs: number | null = null;
  let quiescentAfterLastDueMs: number | null = null;
  let figures: Record<string, unknown> = {};
  const exitCodes: Record<string, number | null> = {};
  let stopping = false;
  let cleanedUp: Promise<void> | undefined;
  // Idempotent: called from `finally`, and at once on Ctrl-C (the run's sleeps are long).
  const cleanup = () =>
    (cleanedUp ??= (async () => {
      for (const p of roles) await p.kill().catch(() => undefined);
      await db?.close().catch(() => undefined);
      await fake?.close().catch(() => undefined);
      await redis?.destroy().catch(() => undefined);
      await pgCluster?.stop().catch(() => undefined);
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    stopping = true;
    say(`${signal}: stopping everything`);
    void cleanup().finally(() => {
      rmSync(logDir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // --- the world ---------------------------------------------------------
    pgCluster = await startOwnPostgres();
    const databaseUrl = await pgCluster.createDatabase('followups');
    say(`postgres on ${pgCluster.port}, dir ${pgCluster.dir}`);
    db = makePgDb({ url: databaseUrl, poolSize: 4, log: createLogger({ level: 'silent' }) });
    await migrate(db);
    redis = await startOwnRedis();
    say(`redis on ${redis.port} (appendonly yes, appendfsync everysec)`);
    const numbers = Math.max(1, Number(process.env.CHAOS_NUMBERS ?? scenario.numbers) || 1);
    const instances = Array.from({ length: numbers }, (_, i) => (i === 0 ? 'nautico' : `nautico${i + 1}`));
    fake = await startFakeEvolution({ delayScale: 0, recordRequests: false, moreInstances: instances.slice(1) });
    say(`fake evolution on ${fake.url}, WhatsApp numbers: ${instances.join(', ')}`);
    const apiPort = await freePort();
    const apiUrl = `http://127.0.0.1:${apiPort}`;

    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      TMPDIR: tmpdir(),
      NODE_ENV: 'production',
      LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? 'warn',
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_SIZE: '6',
      REDIS_URL: redis.url,
      QUEUE_NAME: 'followup_tasks',
      REDIS_COMMAND_TIMEOUT_MS: '1000',
      EVOLUTION_API_URL: fake.url,
      EVOLUTION_API_KEY: fake.apiKey,
      ...(numbers > 1 ? { EVOLUTION_INSTANCES: instances.join(',') } : { EVOLUTION_INSTANCE_NAME: fake.instance }),
      FOLLOWUPS_API_TOKEN: API_TOKEN,
      ERASURE_KEY: 'test-erasure-key-0123456789abcdef-0123456789',
      WEBHOOK_SECRET,
      // Traffic bursts (API scheduling, webhooks) must not meet the per-token cap.
      API_REQUESTS_PER_MINUTE: '0',
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      LEASE_SECONDS: '8',
      WORKER_LOCK_SECONDS: '3',
      WORKER_CONCURRENCY: '10',
      SEND_TIMEOUT_MS: '2000',
      RECONCILE_DELAY_MS: '300',
      RETRY_BASE_SECONDS: '1',
      MAX_SEND_ATTEMPTS: '30',
      PAUSE_RETRY_SECONDS: '2',
      SHUTDOWN_TIMEOUT_MS: '5000',
      TYPING_DELAY_ENABLED: 'false',
      SENDING_WINDOW_ENABLED: 'false',
      SEND_RATE_PER_MINUTE: '0',
      SEND_DAILY_CAP: '0',
      MAX_FOLLOWUPS_PER_LEAD_PER_WEEK: '0',
      // The pre-send reply check is on (required, the default with Evolution); a failed check
      // (Connection Closed) is retried soon, and the silence detector reacts within the outage.
      PRESEND_CHECK_RETRY_SECONDS: '2',
      WEBHOOK_ECHO_TIMEOUT_SECONDS: '5',
    };
    // Acts as the supervisor would (docker's restart policy): a role that exits by itself
    // — e.g. it was starting while PostgreSQL restarted — is noted and started again.
    const onUnexpectedExit = (name: string, code: number | null, signal: NodeJS.Signals | null) => {
      unexpectedExits.push(`${name} exited by itself (${code ?? signal}) at ${stamp()}; restarted`);
      say(`!! ${name} exited by itself (${code ?? signal}); restarting it`);
      setTimeout(() => {
        const p = roles.find((r) => r.name === name);
        if (p && !p.alive && !stopping && !cleanedUp) p.start();
      }, 1_000);
    };
    const spawnRole = (name: string, role: 'api' | 'relay' | 'worker') => {
      const p = makeRoleProcess({ name, role, cwd: ROOT, env, logDir, onUnexpectedExit });
      roles.push(p);
      p.start();
      return p;
    };
    const api = spawnRole('api', 'api');
    const relays = Array.from({ length: scenario.relays }, (_, i) => spawnRole(`relay-${i + 1}`, 'relay'));
    const workers = Array.from({ length: scenario.workers }, (_, i) => spawnRole(`worker-${i + 1}`, 'worker'));
    await waitForApi(apiUrl, 60_000);
    say(`api on ${apiUrl}; ${relays.length} relays, ${workers.length} workers`);

    traffic.repliesWired = await webhookRouteExists(apiUrl, WEBHOOK_SECRET);
    // The echoes of our sends (send.message) reach the API as from Evolution; the leads' answers
    // are posted by the traffic below (duplicated, out of order, retried), or lost.
    fake.deliverWebhooksTo({ url: `${apiUrl}/webhooks/evolution`, headers: { 'x-webhook-secret': WEBHOOK_SECRET } });
    let webhookOutage = false;
    if (!traffic.repliesWired) {
      notes.push('POST /webhooks/evolution does not exist yet: leads do not reply in this run (the reply checks are skipped).');
      say('!! no webhook route yet: running without replies');
    }

    // --- the traffic -------------------------------------------------------
    const loadStart = new Date(Date.now() + scenario.leadInMs);
    const leads = planLeads({
      runId,
      count: scenario.followups,
      viaApi: scenario.viaApi,
      start: loadStart,
      windowMs: scenario.windowMs,
      replyShare: traffic.repliesWired ? scenario.replyShare : 0,
      optOutShare: traffic.repliesWired ? scenario.optOutShare : 0,
      notOnWhatsAppShare: scenario.notOnWhatsAppShare,
      replyJitterMs: scenario.replyJitterMs,
      random: Math.random,
    });
    traffic.planned = leads.length;
    for (const lead of leads) {
      if (lead.notOnWhatsApp) {
        fake.notOnWhatsApp.add(lead.phone);
        traffic.notOnWhatsApp += 1;
      }
      if (lead.answer === 'reply') traffic.replies += 1;
      if (lead.answer === 'opt-out') traffic.optOuts += 1;
    }
    traffic.insertedBySql = await insertPlanned(db, leads);
    say(`${traffic.insertedBySql} follow-ups written, ${scenario.viaApi} more through the API; due over ${scenario.windowMs / 1000} s`);

    const windowEnd = loadStart.getTime() + scenario.windowMs;
    const at = (fraction: number) => loadStart.getTime() + fraction * scenario.windowMs;
    const untilTime = (t: number) => sleep(t - Date.now());
    const background: Array<Promise<void>> = [];

    // Traffic: API scheduling, replies.
    for (const lead of leads.filter((l) => l.viaApi)) {
      background.push(
        untilTime(lead.dueAt.getTime() - 5_000).then(() => scheduleThroughApi(apiUrl, API_TOKEN, lead, traffic)),
      );
    }
    for (const lead of leads.filter((l) => l.answer)) {
      background.push(
        untilTime(lead.answerAt!.getTime()).then(() =>
          answerAsLead(
            {
              apiUrl,
              secret: WEBHOOK_SECRET,
              runId,
              lead,
              duplicate: Math.random() < scenario.duplicateShare,
              outOfOrder: Math.random() < scenario.outOfOrderShare,
              fake,
              lost: webhookOutage || Math.random() < scenario.webhooksLostShare,
            },
            traffic.webhooks,
          ),
        ),
      );
    }

    // Process kills.
    const killLoop = async (pool: RoleProcess[], every: [number, number], counter: 'workerKills' | 'relayKills') => {
      await untilTime(loadStart.getTime() + between(every) / 2);
      while (!stopping && Date.now() < windowEnd) {
        const victim = pool[Math.floor(Math.random() * pool.length)]!;
        if (victim.alive && !victim.frozen) {
          await victim.kill();
          faults[counter] += 1;
          say(`SIGKILL ${victim.name}`);
          await sleep(between(scenario.downForMs));
          victim.start();
        }
        await sleep(Math.min(between(every), windowEnd - Date.now()));
      }
    };
    background.push(killLoop(workers, scenario.workerKillEveryMs, 'workerKills'));
    background.push(killLoop(relays, scenario.relayKillEveryMs, 'relayKills'));

    // Redis and PostgreSQL.
    const infra = async () => {
      const steps: Array<[number, () => Promise<void>]> = [
        [
          scenario.redisRestartWithDataAt,
          async () => {
            say('redis: stop (data kept)');
            await redis!.stop();
            await sleep(scenario.redisDownMs);
            await redis!.start();
            faults.redisRestartsWithData += 1;
            say('redis: back with its data');
          },
        ],
        [
          scenario.redisRestartEmptyAt,
          async () => {
            say('redis: stop, AOF deleted');
            await redis!.stop();
            redis!.wipe();
            await sleep(scenario.redisDownMs);
            await redis!.start();
            faults.redisRestartsEmpty += 1;
            say('redis: back empty');
          },
        ],
        [
          scenario.workerFreezeAt,
          async () => {
            // Not killed: frozen with its claims in hand, past their lease, then woken up. What
            // it was about to do it still does — unless the product checks it still holds the claim.
            const victim = workers.find((w) => w.alive);
            if (!victim) return;
            say(`SIGSTOP ${victim.name} for ${scenario.workerFreezeMs / 1000} s`);
            victim.freeze();
            await sleep(scenario.workerFreezeMs);
            victim.thaw();
            faults.workerFreezes += 1;
            say(`SIGCONT ${victim.name}`);
          },
        ],
        ...scenario.postgresRestartsAt.map(
          (fraction): [number, () => Promise<void>] => [
            fraction,
            async () => {
              say('postgres: pg_ctl restart -m fast');
              const t = Date.now();
              await pgCluster!.restart();
              faults.postgresRestarts += 1;
              say(`postgres: back after ${Date.now() - t} ms`);
            },
          ],
        ),
      ];
      steps.sort((a, b) => a[0] - b[0]);
      for (const [fraction, step] of steps) {
        await untilTime(at(fraction));
        if (stopping) return;
        await step();
      }
    };
    background.push(infra());

    // Evolution misbehaving.
    const evolutionFaults = async () => {
      const windows: Array<[number, number, string, () => void]> = [
        [...scenario.connectionClosed, 'connection-closed', () => fake!.fail('connection-closed')],
        [
          ...scenario.ambiguous,
          'timeout-after-delivery 5% + timeout-before-delivery 2%',
          () => {
            fake!.fail('timeout-after-delivery', { probability: 0.05 });
            fake!.fail('timeout-before-delivery', { probability: 0.02 });
          },
        ],
        [
          scenario.slow[0],
          (scenario.slow[0] + scenario.slow[1]) / 2,
          'slow: 1200 ms on 30%',
          () => fake!.fail('slow', { probability: 0.3, ms: 1_200 }),
        ],
        // Slower than the client's timeout (2 s), yet delivered — as a real sendText blocked
        // behind WhatsApp would be: the timeout is ambiguous and the text lands after the look.
        [
          (scenario.slow[0] + scenario.slow[1]) / 2,
          scenario.slow[1],
          'slow: 2600 ms on 10% (past the client timeout, delivered late)',
          () => fake!.fail('slow', { probability: 0.1, ms: 2_600 }),
        ],
        [
          ...scenario.serverErrors,
          'server-error 8% + drop-connection 3%',
          () => {
            fake!.fail('server-error', { probability: 0.08 });
            fake!.fail('drop-connection', { probability: 0.03 });
          },
        ],
      ];
      for (const [from, to, name, apply] of windows) {
        await untilTime(at(from));
        if (stopping) return;
        say(`evolution: ${name}`);
        faults.evolutionWindows[name] = `${Math.round((to - from) * scenario.windowMs / 100) / 10} s`;
        apply();
        await untilTime(at(to));
        fake!.clearFaults();
        say('evolution: healthy again');
      }
    };
    background.push(evolutionFaults());

    // Webhooks lost: a share of the answers all along (above), and a total outage.
    const webhookOutageTask = async () => {
      await untilTime(at(scenario.webhookOutageAt));
      if (stopping) return;
      say(`webhooks: total outage for ${scenario.webhookOutageMs / 1000} s (answers and echoes)`);
      webhookOutage = true;
      fake!.loseWebhooks({ share: 1 });
      await sleep(scenario.webhookOutageMs);
      webhookOutage = false;
      fake!.restoreWebhooks();
      say('webhooks: delivered again');
    };
    background.push(webhookOutageTask());

    await Promise.all(background);
    fake.clearFaults();
    // Whatever is down comes back for the end game.
    for (const p of roles) if (!p.alive) p.start();
    const chaosOver = Date.now();
    say(`chaos over ${Math.round((chaosOver - loadStart.getTime()) / 1000)} s after the first due time; waiting for quiescence`);

    // --- quiescence --------------------------------------------------------
    const deadline = chaosOver + scenario.quiescenceTimeoutMs;
    let lastReport = 0;
    for (;;) {
      const open = await db
        .query<{ status: string; n: number }>(
          `SELECT status, count(*)::int AS n FROM follow_ups WHERE status IN ('pending', 'queued', 'sending') GROUP BY status`,
        )
        .then((r) => r.rows)
        .catch(() => null);
      const total = open?.reduce((sum, r) => sum + r.n, 0) ?? -1;
      const all = traffic.insertedBySql + traffic.scheduledViaApi;
      if (open && total === 0) {
        timeToQuiescenceMs = Date.now() - chaosOver;
        quiescentAfterLastDueMs = Date.now() - windowEnd;
        break;
      }
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        say(`open follow-ups: ${open ? JSON.stringify(Object.fromEntries(open.map((r) => [r.status, r.n]))) : '?'} of ${all}; delivered ${fake.delivered.length}`);
      }
      if (Date.now() > deadline || stopping) {
        notes.push(`no quiescence within ${scenario.quiescenceTimeoutMs / 1000} s of the end of the chaos`);
        break;
      }
      await sleep(500);
    }
    if (timeToQuiescenceMs !== null) say(`quiescent ${Math.round(timeToQuiescenceMs / 100) / 10} s after the chaos`);
    // A straggler (a send still in flight somewhere) would show up now.
    const deliveredAtQuiescence = fake.delivered.length;
    const byNumber: Record<string, number> = {};
    for (const d of fake.delivered) byNumber[d.instance ?? '?'] = (byNumber[d.instance ?? '?'] ?? 0) + 1;
    say(`deliveries by WhatsApp number: ${JSON.stringify(byNumber)}`);
    await sleep(3_000);
    if (fake.delivered.length !== deliveredAtQuiescence) {
      notes.push(`${fake.delivered.length - deliveredAtQuiescence} deliveries arrived after every follow-up was terminal`);
    }

    // --- stop the roles, then judge ----------------------------------------
    stopping = true; // no supervisor restarts from here on
    for (const p of [...roles].reverse()) exitCodes[p.name] = await p.stop(15_000);
    const result = await checkRun(db, {
      leads,
      delivered: fake.delivered,
      repliesWired: traffic.repliesWired,
      whatsapp: { inbound: fake.inbound, looksAt: (phone) => fake!.inboundLooksAt(phone) },
      lostPhones: new Set(traffic.webhooks.lostPhones),
    });
    violations.push(...result.violations);
    const { rows: silence } = await db.query<{ at: Date; kind: string; reason: string | null }>('SELECT at, kind, reason FROM webhook_health_events ORDER BY id');
    figures = { ...result.figures, webhookSilence: silence.map((e) => `${e.at.toISOString().slice(11, 23)} ${e.kind}${e.reason ? ` (${e.reason})` : ''}`) };
    faults.evolution = { ...fake.faultCounts };
    faults.webhooks = {
      lostShareOfAnswers: scenario.webhooksLostShare,
      outage: `${scenario.webhookOutageMs / 1000} s at ${scenario.webhookOutageAt} of the window`,
      answersLost: traffic.webhooks.lost,
      echoes: { ...fake.webhookCounts },
    };
    for (const line of unexpectedExits) notes.push(line);
    for (const [name, code] of Object.entries(exitCodes)) {
      if (code !== 0) notes.push(`${name} did not exit 0 on SIGTERM (${code})`);
    }
    if (violations.length > 0) {
      say(`${violations.length} violation(s):`);
      for (const v of violations.slice(0, 50)) say(`  ${v.kind} ${v.followupId ?? ''} ${v.phone ?? ''}: ${v.detail}`);
      for (const id of result.suspects.slice(0, 10)) process.stdout.write(`${await historyOf(db, id, fake.delivered)}\n`);
    }
  } catch (error) {
    violations.push({ kind: 'harness_error', detail: (error as Error).stack ?? String(error) });
    say(`harness error: ${(error as Error).message}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
    if (options.keepLogs || violations.length > 0) {
      const keep = options.keepLogs ?? join(ROOT, '.tmp', `chaos-logs-${runId}`);
      mkdirSync(keep, { recursive: true });
      cpSync(logDir, keep, { recursive: true });
      notes.push(`role logs kept in ${keep}`);
    } else if (violations.length === 0) {
      // Crashes and errors of roles are worth a look even on a green run.
      const errors = countLogErrors(logDir);
      if (errors > 0) notes.push(`${errors} error-level log lines across the roles`);
    }
    rmSync(logDir, { recursive: true, force: true });
  }

  const report: ChaosReport = {
    scenario: scenario.name,
    ok: violations.length === 0,
    violations: violations.slice(0, 500),
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    timeToQuiescenceMs,
    quiescentAfterLastDueMs,
    figures,
    faults,
    traffic: { ...traffic, webhooks: { ...traffic.webhooks, undelivered: traffic.webhooks.undelivered.length, lostPhones: traffic.webhooks.lostPhones.length } },
    processes: { starts: Object.fromEntries(roles.map((p) => [p.name, p.starts])), exitCodesOnSigterm: exitCodes },
    notes,
  };
  const reportPath = options.reportPath ?? join(ROOT, 'chaos', 'report.json');
  writeFileSync(reportPath, `${JSON.stringify(report, null, 2)}\n`);
  printSummary(report, say);
  say(`report written to ${reportPath}`);
  return report;
}

function countLogErrors(dir: string): number {
  let n = 0;
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (/"level":(50|60)/.test(line)) n += 1;
    }
  }
  return n;
}

async function waitForApi(url: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {
      // not yet
    }
    await sleep(250);
  }
  throw new Error(`the API did not become ready at ${url} within ${timeoutMs / 1000} s`);
}

function printSummary(report: ChaosReport, say: (line: string) => void) {
  const f = report.figures as { byStatus?: unknown; deliveries?: unknown; recoveries?: unknown; cancelledByReason?: unknown; failedByReason?: unknown };
  say(`scenario ${report.scenario}: ${report.ok ? 'OK — no violations' : `${report.violations.length} VIOLATION(S)`}`);
  say(`follow-ups by status: ${JSON.stringify(f.byStatus)}; deliveries: ${String(f.deliveries)}`);
  say(`cancelled: ${JSON.stringify(f.cancelledByReason)}; failed: ${JSON.stringify(f.failedByReason)}`);
  say(`faults: ${JSON.stringify(report.faults)}`);
  say(`recoveries: ${JSON.stringify(f.recoveries)}`);
  say(`pre-send check: ${JSON.stringify((report.figures as { presend?: unknown }).presend)}; webhook silence: ${JSON.stringify((report.figures as { webhookSilence?: unknown }).webhookSilence)}`);
  say(`traffic: ${JSON.stringify(report.traffic)}`);
  say(`time to quiescence: ${report.timeToQuiescenceMs === null ? 'none' : `${report.timeToQuiescenceMs} ms after the chaos, ${report.quiescentAfterLastDueMs} ms after the last due time`}; whole run ${Math.round(report.durationMs / 1000)} s`);
  for (const note of report.notes) say(`note: ${note}`);
}

// `tsx chaos/run-chaos.ts [--quick] [--report path] [--keep-logs dir]`
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const valueOf = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const scenario = args.includes('--quick') ? QUICK : FULL;
  runChaos(scenario, { reportPath: valueOf('--report') ?? process.env.CHAOS_REPORT, keepLogs: valueOf('--keep-logs') })
    .then((report) => process.exit(report.ok ? 0 : 1))
    .catch((error) => {
      process.stderr.write(`${(error as Error).stack}\n`);
      process.exit(1);
    });
}
