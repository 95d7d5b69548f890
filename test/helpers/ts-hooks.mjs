// Runs the TypeScript sources and tests in the test runner's processes (`--import` it first):
// synchronous, in-thread module hooks (module.registerHooks) that transpile each .ts file with
// esbuild — what tsx uses — once, cached on disk by content, and resolve the `.js` specifiers
// the sources use (NodeNext style) to the `.ts` files beside them. The same output as tsx
// (esbuild's per-file TypeScript transform, with this project's tsconfig), without tsx's
// loader thread: every import through it cost a round trip to that thread, about half of what
// a test file spent on loading the sources (~1.6 of ~3.1 s of CPU for the roles and their context).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire, registerHooks } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CACHE = join(ROOT, 'node_modules', '.cache', 'followups-ts');
const require = createRequire(import.meta.url);
// esbuild as tsx (a devDependency) depends on it: the same compiler, no dependency of our own.
const esbuildPath = createRequire(require.resolve('tsx/package.json')).resolve('esbuild');
const esbuildVersion = JSON.parse(readFileSync(join(dirname(esbuildPath), '..', 'package.json'), 'utf8')).version;
const { compilerOptions } = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8'));
const OPTIONS = {
  loader: 'ts',
  format: 'esm',
  target: 'node22',
  sourcemap: 'inline',
  tsconfigRaw: { compilerOptions },
};
const SALT = `${esbuildVersion}\0${JSON.stringify(OPTIONS)}\0`;
let esbuild;

mkdirSync(CACHE, { recursive: true });
// Stack traces name the .ts file and line, as with tsx.
process.setSourceMapsEnabled(true);

function transpile(path) {
  const source = readFileSync(path, 'utf8');
  const key = createHash('sha256').update(SALT).update(path).update('\0').update(source).digest('hex').slice(0, 32);
  const cached = join(CACHE, `${key}.mjs`);
  try {
    return readFileSync(cached, 'utf8');
  } catch {
    // not compiled yet
  }
  esbuild ??= require(esbuildPath);
  const { code } = esbuild.transformSync(source, { ...OPTIONS, sourcefile: path });
  // Written aside, then renamed: a concurrent test file never reads half a file.
  const aside = `${cached}.${process.pid}`;
  writeFileSync(aside, code);
  renameSync(aside, cached);
  return code;
}

registerHooks({
  resolve(specifier, context, nextResolve) {
    // `./x.js` written in a .ts file means `./x.ts` when only that exists (TypeScript's NodeNext convention).
    if (specifier.endsWith('.js') && (specifier.startsWith('./') || specifier.startsWith('../')) && context.parentURL?.startsWith('file:')) {
      const target = new URL(specifier, context.parentURL);
      const path = fileURLToPath(target);
      if (!existsSync(path)) {
        const ts = `${path.slice(0, -3)}.ts`;
        if (existsSync(ts)) return nextResolve(pathToFileURL(ts).href, context);
      }
    }
    return nextResolve(specifier, context);
  },
  load(url, context, nextLoad) {
    if (url.startsWith('file:') && url.endsWith('.ts') && !url.includes('/node_modules/')) {
      return { format: 'module', source: transpile(fileURLToPath(url)), shortCircuit: true };
    }
    return nextLoad(url, context);
  },
});
