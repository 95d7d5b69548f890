/**
 * An in-memory PGlite (`memory://`, the embedded default's engine) for a test file, started
 * from a saved copy of a freshly initialised cluster instead of running initdb: initdb is
 * most of PGlite's start (~8 of ~9.5 s of CPU on this 2-core machine; starting from the copy
 * ~1.5 s). The copy is what `memory://` starts with (no migration applied), made once per
 * PGlite version and kept in the system's temporary folder (it survives `npm ci`); a
 * concurrent first start is harmless (each writes aside, then renames into place).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Db } from '../../src/db/db.js';
import { makePgliteDb } from '../../src/db/pglite-db.js';

// Its package.json is not exported: read next to its entry point (dist/index.cjs).
const pgliteEntry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
const { version } = JSON.parse(readFileSync(join(dirname(pgliteEntry), '..', 'package.json'), 'utf8')) as { version: string };
const SAVED = join(tmpdir(), `followups-test-pglite-${version}.tar`);

async function savedCluster(): Promise<Blob> {
  if (!existsSync(SAVED)) {
    const fresh = await PGlite.create('memory://');
    try {
      const tar = await fresh.dumpDataDir('none');
      const aside = `${SAVED}.${process.pid}`;
      writeFileSync(aside, Buffer.from(await tar.arrayBuffer()));
      renameSync(aside, SAVED);
    } finally {
      await fresh.close();
    }
  }
  return new Blob([readFileSync(SAVED)]);
}

/** A new, empty in-memory PGlite (as `makePgliteDb({ dataDir: 'memory://' })` gives). */
export async function startTestPglite(): Promise<Db> {
  return makePgliteDb({ dataDir: 'memory://', loadDataDir: await savedCluster() });
}
