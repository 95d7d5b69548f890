#!/usr/bin/env node
/**
 * Replays the Dockerfile without a Docker engine, to prove it builds and that the image runs:
 *
 *   1. the build context is the repository's files (`git ls-files`, tracked and new, not
 *      git-ignored) minus `.dockerignore`, copied into a scratch folder: nothing else;
 *   2. each stage gets its own empty root folder; FROM, WORKDIR, COPY (also --from=<stage>),
 *      RUN, ENV, USER, EXPOSE, HEALTHCHECK, ENTRYPOINT and CMD are applied in order: COPY
 *      copies exactly the paths it names (a missing one fails the check), RUN runs with
 *      `sh -c` in the stage's WORKDIR with the stage's ENV;
 *   3. the final stage's entrypoint runs `migrate`, then its CMD (`start`) until
 *      `/health/ready` answers, then the HEALTHCHECK command, then SIGTERM must exit 0;
 *   4. it prints the size of the final stage's node_modules + dist.
 *
 * What only the base image has is skipped or emulated, and said so in the output: a RUN that
 * starts with `apt-get` (Debian packages) is skipped; `chown`/`useradd`/`groupadd` (image users)
 * print what they would do; `tini` as PID 1 is left out (node gets the signals directly);
 * `node` and `npm` are this machine's (the check tells if the major differs from the image's).
 * A RUN may not touch an absolute path (it would touch this machine): keep RUNs inside WORKDIR.
 *
 * Usage: node scripts/check-dockerfile.mjs [--database-url postgresql://…] [--dockerfile PATH] [--keep]
 * Without --database-url the entrypoint runs on the embedded default (PGlite in a temp folder).
 * Needs the npm registry (the build stage's `npm ci`). Exit code 0 when everything held.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    dockerfile: { type: 'string', default: join(REPO, 'Dockerfile') },
    keep: { type: 'boolean', default: false },
  },
});

// Not npm_config_*: under `npm test` they carry the repository's own prefix.
const NETWORK_ENV = /^(https?_proxy|no_proxy|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR)$/i;

class CheckError extends Error {}
const fail = (message) => {
  throw new CheckError(message);
};
const say = (line) => process.stdout.write(`${line}\n`);
const notes = { skipped: [], emulated: [] };
const skipped = (what, why) => {
  notes.skipped.push(what);
  say(`  SKIPPED (${why}): ${what}`);
};
const emulated = (what, how) => {
  notes.emulated.push(what);
  say(`  EMULATED: ${what}: ${how}`);
};

// ---------------------------------------------------------------- parsing the Dockerfile

/** Instructions with their arguments: continuation lines joined, comments and blank lines dropped. */
export function parseDockerfile(text) {
  const instructions = [];
  let pending = '';
  let startLine = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*#/.test(line) || (pending === '' && line.trim() === '')) continue; // comments, also inside continuations
    if (pending === '') startLine = i + 1;
    if (/\\\s*$/.test(line)) {
      pending += `${line.replace(/\\\s*$/, '')} `;
      continue;
    }
    pending += line;
    const match = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(pending);
    if (!match) fail(`Dockerfile line ${startLine}: cannot read "${pending.trim()}"`);
    instructions.push({ instruction: match[1].toUpperCase(), args: match[2].trim(), line: startLine });
    pending = '';
  }
  if (pending) fail('Dockerfile ends inside a continued line');
  return instructions;
}

/** `KEY=value KEY2="a b"` (or the legacy `KEY value`) with $VAR / ${VAR} expanded from `vars`. */
function parseEnvArgs(args, vars) {
  const expand = (s) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => vars[a ?? b] ?? '');
  if (!/^\w+=/.test(args)) {
    const [key, ...rest] = args.split(/\s+/);
    return { [key]: expand(rest.join(' ')) };
  }
  const out = {};
  const re = /(\w+)=("((?:[^"\\]|\\.)*)"|'([^']*)'|(\S*))/g;
  let m;
  while ((m = re.exec(args))) out[m[1]] = m[3] !== undefined ? expand(m[3].replace(/\\(.)/g, '$1')) : m[4] !== undefined ? m[4] : expand(m[5]);
  return out;
}

/** Exec form (JSON array) or shell form (→ sh -c). */
function commandOf(args, where) {
  if (args.startsWith('[')) {
    try {
      const list = JSON.parse(args);
      if (Array.isArray(list) && list.every((s) => typeof s === 'string')) return { exec: list };
    } catch {
      /* fall through */
    }
    fail(`${where}: not a JSON array of strings: ${args}`);
  }
  return { shell: args };
}

function splitFlags(args) {
  const flags = {};
  let rest = args;
  for (let m; (m = /^--([\w-]+)(?:=(\S+))?\s+/.exec(rest)); rest = rest.slice(m[0].length)) flags[m[1]] = m[2] ?? true;
  return { flags, rest };
}

// ---------------------------------------------------------------- the build context

function dockerignoreMatchers() {
  const file = join(REPO, '.dockerignore');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((pattern) => {
      if (pattern.startsWith('!')) fail(`.dockerignore: exceptions (${pattern}) are not replayed; extend scripts/check-dockerfile.mjs`);
      const body = pattern.replace(/^\/+|\/+$/g, '').split('/').map((part) => (part === '**' ? '.*' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))).join('/');
      return new RegExp(`^${body}(/.*)?$`);
    });
}

function buildContext(dir) {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' });
  if (listed.status !== 0) fail(`git ls-files failed: ${listed.stderr}`);
  const ignore = dockerignoreMatchers();
  let count = 0;
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    if (ignore.some((re) => re.test(file)) || !existsSync(join(REPO, file))) continue;
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(REPO, file), join(dir, file), { verbatimSymlinks: true });
    count++;
  }
  return count;
}

// ---------------------------------------------------------------- replaying the stages

/** Shims for what needs the image's users: they say what they would do and succeed. */
function makeShims(dir) {
  mkdirSync(dir, { recursive: true });
  for (const name of ['chown', 'useradd', 'groupadd', 'adduser', 'addgroup']) {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\necho "  EMULATED: ${name} $*: needs the image's users; not run here" >&2\nexit 0\n`);
    chmodSync(path, 0o755);
  }
  return dir;
}

function run(command, { cwd, env, label }) {
  return new Promise((resolvePromise, reject) => {
    const [file, ...args] = command.exec ?? ['sh', '-c', command.shell];
    const child = spawn(file, args, { cwd, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (error) => reject(new CheckError(`${label}: ${error.message}`)));
    child.on('exit', (code, signal) => (code === 0 ? resolvePromise() : reject(new CheckError(`${label}: exited with ${signal ?? code}`))));
  });
}

function sizeOf(path) {
  let bytes = 0;
  let files = 0;
  const walk = (p) => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const name of readdirSync(p)) walk(join(p, name));
    else {
      bytes += st.size;
      files++;
    }
  };
  if (existsSync(path)) walk(path);
  return { bytes, files };
}

const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function freePort() {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePromise(port));
    });
  });
}

async function main() {
  const started = Date.now();
  const scratch = mkdtempSync(join(tmpdir(), 'followups-dockerfile-'));
  const timings = {};
  const time = async (name, fn) => {
    const t = Date.now();
    try {
      return await fn();
    } finally {
      timings[name] = Date.now() - t;
    }
  };
  try {
    const instructions = parseDockerfile(readFileSync(opts.dockerfile, 'utf8'));
    say(`dockerfile: ${opts.dockerfile} (${instructions.length} instructions)`);
    const context = join(scratch, 'context');
    say(`context: ${buildContext(context)} files (git ls-files minus .dockerignore) in ${context}`);
    const shims = makeShims(join(scratch, 'shims'));
    const hostPath = process.env.PATH ?? '/usr/bin:/bin';

    const stages = [];
    let stage;
    const imagePath = (p) => join(stage.root, posix.resolve(stage.workdir, p));
    /** Absolute entries of a value that live in the stage's own tree point into its root. */
    const mapValue = (value, s) => value.split(':').map((part) => (part.startsWith('/') && existsSync(join(s.root, part.split('/')[1] ?? '')) && part.split('/')[1] ? join(s.root, part) : part)).join(':');
    const stageEnv = (s, extra = {}) => {
      // This machine's way to the registry (proxy, extra CA certificates; ~/.npmrc through HOME)
      // stands in for the builder's network.
      const network = Object.fromEntries(Object.entries(process.env).filter(([k]) => NETWORK_ENV.test(k)));
      const env = { ...network, PATH: hostPath };
      for (const [k, v] of Object.entries(s.env)) env[k] = mapValue(v, s);
      return { ...env, HOME: process.env.HOME ?? scratch, ...extra };
    };

    await time('build', async () => {
      for (const { instruction, args, line } of instructions) {
        const where = `line ${line} ${instruction}`;
        if (instruction === 'FROM') {
          const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
          if (!m) fail(`${where}: cannot read "${args}"`);
          stage = { index: stages.length, name: m[2], image: m[1], root: join(scratch, `stage-${stages.length}`), workdir: '/', env: {}, apt: [], user: 'root' };
          stages.push(stage);
          mkdirSync(stage.root, { recursive: true });
          say(`stage ${stage.index}${stage.name ? ` (${stage.name})` : ''}: FROM ${stage.image} → empty root ${stage.root}`);
          const major = /^node:(\d+)/.exec(stage.image)?.[1];
          if (major && major !== process.versions.node.split('.')[0]) {
            say(`  NOTE: the image's node is ${major}; this machine's node ${process.version} stands in for it`);
          }
          continue;
        }
        if (!stage) fail(`${where}: before any FROM`);
        say(`  ${instruction} ${args}`);
        switch (instruction) {
          case 'WORKDIR':
            stage.workdir = posix.resolve(stage.workdir, args);
            mkdirSync(join(stage.root, stage.workdir), { recursive: true });
            break;
          case 'ENV':
            Object.assign(stage.env, parseEnvArgs(args, { PATH: '$PATH', ...stage.env }));
            // $PATH in an ENV means the image's PATH: here, this machine's.
            for (const [k, v] of Object.entries(stage.env)) stage.env[k] = v.replaceAll('$PATH', hostPath);
            break;
          case 'COPY': {
            const { flags, rest } = splitFlags(args);
            const list = rest.startsWith('[') ? commandOf(rest, where).exec : rest.split(/\s+/);
            if (list.length < 2) fail(`${where}: needs a source and a destination`);
            const dest = list.at(-1);
            const sources = list.slice(0, -1);
            if (flags.chown) emulated(`COPY --chown=${flags.chown}`, 'ownership needs the image\'s users; files copied as they are');
            let fromRoot = context;
            if (flags.from) {
              const from = stages.find((s) => s.name === flags.from || String(s.index) === flags.from);
              if (!from) fail(`${where}: --from=${flags.from} names no earlier stage (an external image is not replayed)`);
              fromRoot = from.root;
            }
            const target = imagePath(dest);
            const intoDir = dest.endsWith('/') || sources.length > 1 || (existsSync(target) && statSync(target).isDirectory());
            for (const source of sources) {
              if (/[*?[]/.test(source)) fail(`${where}: wildcards are not replayed (${source}); name the paths`);
              const from = join(fromRoot, flags.from ? posix.resolve('/', source) : posix.normalize(source).replace(/^\/+/, ''));
              if (!existsSync(from)) {
                fail(`${where}: ${source} does not exist in ${flags.from ? `stage ${flags.from}` : 'the build context (git ls-files minus .dockerignore)'}`);
              }
              const to = statSync(from).isDirectory() ? target : intoDir ? join(target, posix.basename(source)) : target;
              mkdirSync(statSync(from).isDirectory() ? to : dirname(to), { recursive: true });
              cpSync(from, to, { recursive: true, verbatimSymlinks: true });
            }
            break;
          }
          case 'RUN': {
            const command = commandOf(args, where);
            const text = command.shell ?? command.exec.join(' ');
            if (/^apt-get\s/.test(text)) {
              stage.apt.push(...[...text.matchAll(/apt-get install\s+([^&;|]+)/g)].flatMap((m) => m[1].split(/\s+/).filter((w) => w && !w.startsWith('-'))));
              skipped(`RUN ${text}`, 'Debian packages of the base image');
              break;
            }
            const absolute = /(?:^|[\s=:'"`(])(\/(?!dev\/null\b)[\w.-]+)/.exec(text);
            if (absolute) fail(`${where}: touches the absolute path ${absolute[1]}; the replay runs RUN on this machine, so keep it inside WORKDIR (relative paths)`);
            const cwd = join(stage.root, stage.workdir);
            mkdirSync(cwd, { recursive: true });
            const env = stageEnv(stage);
            env.PATH = `${shims}:${env.PATH}`;
            await run(command, { cwd, env, label: where });
            break;
          }
          case 'USER':
            stage.user = args;
            emulated(`USER ${args}`, `the replay runs as ${process.env.USER ?? 'this machine\'s user'}; the image runs as ${args}`);
            break;
          case 'EXPOSE':
          case 'LABEL':
            break;
          case 'HEALTHCHECK': {
            const m = /^(?:--[\w-]+=\S+\s+)*CMD\s+(.+)$/s.exec(args);
            if (!m) fail(`${where}: expected HEALTHCHECK [options] CMD …`);
            stage.healthcheck = commandOf(m[1], where);
            break;
          }
          case 'ENTRYPOINT':
          case 'CMD': {
            const command = commandOf(args, where);
            if (!command.exec) fail(`${where}: use the exec form (JSON array) so the process gets the signals`);
            stage[instruction === 'CMD' ? 'cmd' : 'entrypoint'] = command.exec;
            break;
          }
          default:
            fail(`${where}: not replayed by scripts/check-dockerfile.mjs; extend it`);
        }
      }
    });
    if (!stage) fail('no FROM');
    const final = stage;
    say(`build: ok (${(timings.build / 1000).toFixed(1)} s)`);

    // ------------------------------------------------------------ the final stage's contents
    const app = join(final.root, final.workdir);
    say(`final stage ${final.workdir}: ${readdirSync(app).sort().join(', ')}`);
    for (const dev of ['typescript', 'tsx', '@types/node']) {
      if (existsSync(join(app, 'node_modules', dev))) fail(`the final stage holds the dev dependency ${dev}: prune dev dependencies`);
    }
    const nodeModules = sizeOf(join(app, 'node_modules'));
    const dist = sizeOf(join(app, 'dist'));
    const total = nodeModules.bytes + dist.bytes;
    say(`size: node_modules ${mb(nodeModules.bytes)} (${nodeModules.files} files) + dist ${mb(dist.bytes)} (${dist.files} files) = ${mb(total)}`);

    // ------------------------------------------------------------ running the entrypoint
    if (!final.entrypoint && !final.cmd) fail('the final stage has no ENTRYPOINT or CMD');
    let entry = [...(final.entrypoint ?? [])];
    if (/(^|\/)tini$/.test(entry[0] ?? '')) {
      if (!final.apt.includes('tini') && entry[0].startsWith('/usr/bin/')) fail(`ENTRYPOINT uses ${entry[0]} but no RUN apt-get installs tini`);
      emulated(`ENTRYPOINT ${entry[0]}`, 'tini (a Debian package) is PID 1 in the image and forwards signals; here node is started directly and gets them itself');
      entry = entry.slice(entry[1] === '--' ? 2 : 1);
    }
    const resolveArg = (arg, i) => {
      if (i === 0 && arg === 'node') return process.execPath;
      if (arg.startsWith('/')) {
        const inStage = join(final.root, arg);
        if (!existsSync(inStage)) fail(`ENTRYPOINT/CMD: ${arg} does not exist in the final stage`);
        return inStage;
      }
      return arg;
    };
    const command = (args) => [...entry, ...args].map(resolveArg);
    const port = await freePort();
    const dataDir = join(scratch, 'data');
    const runEnv = stageEnv(final, {
      HOME: join(scratch, 'home'),
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...(opts['database-url']
        ? { DATABASE_URL: opts['database-url'], FOLLOWUPS_API_TOKEN: 'check-dockerfile-token-0123456789', ERASURE_KEY: 'check-dockerfile-erasure-key-0123456789abcdef' }
        : { DATA_DIR: dataDir }),
    });
    mkdirSync(runEnv.HOME, { recursive: true });
    const database = opts['database-url'] ? 'PostgreSQL (--database-url)' : `PGlite in ${dataDir}`;

    await time('migrate', async () => {
      const [file, ...args] = command(['migrate']);
      say(`run: ${[...(final.entrypoint ?? []), 'migrate'].join(' ')} against ${database}`);
      await run({ exec: [file, ...args] }, { cwd: app, env: runEnv, label: 'migrate' });
    });
    say(`migrate: ok (${(timings.migrate / 1000).toFixed(1)} s)`);

    const [file, ...args] = command(final.cmd ?? []);
    say(`run: ${[...(final.entrypoint ?? []), ...(final.cmd ?? [])].join(' ')} on port ${port}`);
    const child = spawn(file, args, { cwd: app, env: runEnv, stdio: ['ignore', 'inherit', 'inherit'] });
    const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    try {
      const body = await time('ready', async () => {
        const deadline = Date.now() + 120_000;
        for (;;) {
          if (child.exitCode !== null) fail(`the entrypoint exited with ${child.exitCode} before /health/ready answered`);
          try {
            const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
            if (res.ok) return await res.text();
          } catch {
            /* not listening yet */
          }
          if (Date.now() > deadline) fail('/health/ready did not answer 200 within 120 s');
          await new Promise((r) => setTimeout(r, 250));
        }
      });
      say(`/health/ready: 200 after ${(timings.ready / 1000).toFixed(1)} s: ${body}`);
      if (final.healthcheck) {
        await time('healthcheck', () => run(final.healthcheck, { cwd: app, env: runEnv, label: 'HEALTHCHECK' }));
        say(`HEALTHCHECK: exit 0 (${final.healthcheck.shell ?? final.healthcheck.exec.join(' ')})`);
      } else {
        say('HEALTHCHECK: none in the final stage');
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
    }
    const { code, signal } = await time('stop', async () => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    });
    if (code !== 0) fail(`SIGTERM: the entrypoint exited with ${signal ?? code}, not 0`);
    say(`SIGTERM: exit 0 after ${(timings.stop / 1000).toFixed(1)} s`);

    const result = {
      ok: true,
      stages: stages.map((s) => ({ name: s.name ?? String(s.index), image: s.image })),
      size: { nodeModulesBytes: nodeModules.bytes, distBytes: dist.bytes, totalBytes: total, files: nodeModules.files + dist.files },
      healthcheck: final.healthcheck ? (final.healthcheck.shell ?? final.healthcheck.exec.join(' ')) : null,
      user: final.user,
      skipped: notes.skipped,
      emulated: notes.emulated,
      timingsMs: { ...timings, total: Date.now() - started },
    };
    say(`RESULT ${JSON.stringify(result)}`);
    say(`dockerfile check: ok in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    if (opts.keep) say(`kept: ${scratch}`);
    else rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    process.stdout.write(`dockerfile check FAILED: ${error instanceof CheckError ? error.message : error?.stack ?? error}\n`);
    process.exit(1);
  });
}
