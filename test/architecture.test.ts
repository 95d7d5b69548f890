/**
 * The architecture (.dependency-cruiser.cjs, README.md#architecture) holds: src/'s layers
 * point one way, nothing goes round in a circle, the client stays apart. dependency-cruiser
 * reads the imports (type-only ones too) and checks them against the rules; a violation
 * fails this test with dependency-cruiser's own report.
 *
 * The second test proves the rules bite: a scratch tree with an upward import, a circle of
 * folders and a client that reaches into the service must fail with those rules named.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';

const root = resolve(import.meta.dirname, '..');
const depcruise = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruiser.mjs');
const config = join(root, '.dependency-cruiser.cjs');

function cruise(cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [depcruise, 'src', '--config', config, '--output-type', 'err'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    child.on('error', fail);
    child.on('close', (code) => done({ code, output }));
  });
}

describe('architecture (dependency-cruiser)', () => {
  test('src/ follows the layers: no upward import, no cycle, the client apart, no orphan', async () => {
    const { code, output } = await cruise(root);
    assert.equal(code, 0, output);
    assert.match(output, /no dependency violations found/);
  });

  test('the rules catch an upward import, a circle of folders and a client reaching into the service', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'architecture-'));
    try {
      const write = (path: string, text: string) => {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), text);
      };
      write('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src'] }));
      write('src/cli.ts', "import { run } from './worker/start-worker.js';\nimport './client/index.js';\nrun();\n");
      write('src/worker/start-worker.ts', "import { due } from '../followups/due.js';\nexport const run = () => due();\n");
      // core -> app: upward.
      write('src/followups/due.ts', "import { limit } from '../worker/limit.js';\nimport { pace } from '../policy/pace.js';\nexport const due = () => limit + pace;\n");
      write('src/worker/limit.ts', 'export const limit = 1;\n');
      // campaigns -> compose -> campaigns, through different modules: no module cycle, a folder cycle.
      write('src/policy/pace.ts', "import { a } from '../campaigns/a.js';\nexport const pace = a;\n");
      write('src/campaigns/a.ts', "import { b } from '../compose/b.js';\nexport const a = b;\n");
      write('src/compose/b.ts', "import { c } from '../campaigns/c.js';\nexport const b = c;\n");
      write('src/campaigns/c.ts', 'export const c = 1;\n');
      // The client imports a module with database code.
      write('src/client/index.ts', "import type { limit } from '../worker/limit.js';\nexport type Limit = typeof limit;\n");
      const { code, output } = await cruise(dir);
      assert.notEqual(code, 0, output);
      assert.match(output, /no-upward-from-core: src\/followups\/due\.ts → src\/worker\/limit\.ts/);
      assert.match(output, /no-upward-from-core: src\/policy\/pace\.ts → src\/campaigns\/a\.ts/);
      assert.match(output, /no-circular-folders: src\/c(ampaigns|ompose) →/);
      assert.match(output, /client-isolation: src\/client\/index\.ts → src\/worker\/limit\.ts/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
