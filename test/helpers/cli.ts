/**
 * How the tests run the `followups` CLI in a child process: `node ...cliArgs(), 'start'`.
 *
 * The child runs the sources of this working tree, transpiled once by esbuild (the compiler
 * tsx itself uses) file by file, without bundling: the same modules, the same relative imports,
 * the SQL migrations and campaign files copied next to them, as `npm run build` lays out dist/.
 * Starting each child through `--import tsx` instead cost its loader's start and a round trip
 * to the loader's thread for every module it imports: ~3 s of CPU per child, and tens of
 * seconds of wall time under load, for files that start a dozen children.
 *
 * The output lives in node_modules/.cache/followups-test-cli/<hash of src/>/ (inside the
 * project, so `pg`, `fastify`… resolve from its node_modules as they do from src/): every test
 * file of a run shares it, a changed source builds a new one, and a concurrent build is
 * harmless (each builds aside, then renames into place; the first rename wins).
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

// esbuild as tsx (a devDependency) depends on it: the same compiler, no dependency of our own.
const { buildSync } = createRequire(createRequire(import.meta.url).resolve('tsx/package.json'))('esbuild') as typeof import('esbuild');

const ROOT = join(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');
const CACHE = join(ROOT, 'node_modules', '.cache', 'followups-test-cli');

function listFiles(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...listFiles(path));
    else found.push(path);
  }
  return found;
}

function build(): string {
  const files = listFiles(SRC);
  const hash = createHash('sha256');
  for (const file of files) hash.update(relative(SRC, file)).update('\0').update(readFileSync(file)).update('\0');
  hash.update(readFileSync(join(ROOT, 'tsconfig.json')));
  const out = join(CACHE, hash.digest('hex').slice(0, 16));
  if (existsSync(join(out, 'cli.js'))) return out;

  const aside = `${out}.${process.pid}.${Date.now()}`;
  mkdirSync(aside, { recursive: true });
  try {
    buildSync({
      entryPoints: files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
      outdir: aside,
      outbase: SRC,
      bundle: false,
      format: 'esm',
      platform: 'node',
      target: 'node22',
      tsconfig: join(ROOT, 'tsconfig.json'),
      logLevel: 'silent',
    });
    // What the compiled service reads at run time (scripts/copy-assets.mjs copies the same into dist/).
    for (const file of files.filter((f) => !f.endsWith('.ts'))) cpSync(file, join(aside, relative(SRC, file)));
    // node_modules/ ends the search for a package.json: say here that these .js files are ES modules.
    writeFileSync(join(aside, 'package.json'), '{ "type": "module" }\n');
    try {
      renameSync(aside, out);
    } catch (error) {
      // Another test file built the same sources at the same time: use its copy.
      if (!existsSync(join(out, 'cli.js'))) throw error;
    }
    // Copies built from other sources over a day ago go (the cache would otherwise grow with every edit).
    for (const name of readdirSync(CACHE)) {
      const path = join(CACHE, name);
      if (path !== out && Date.now() - statSync(path).mtimeMs > 86_400_000) rmSync(path, { recursive: true, force: true });
    }
  } finally {
    rmSync(aside, { recursive: true, force: true });
  }
  return out;
}

let built: string | undefined;

/** The node arguments that run `followups` from this tree's sources: `[path of cli.js]`. */
export function cliArgs(): string[] {
  built ??= build();
  return [join(built, 'cli.js')];
}
