/**
 * The key behind erased phones (ERASURE_KEY). An erased lead's phone becomes
 * 'erased:' || HMAC-SHA256(phone) under this key: a later contact from the same
 * number is recognised (its opt-out carries over, migration 006) while the
 * database alone, without the key, cannot tell which number it was — an
 * unkeyed hash of a Brazilian mobile number falls to brute force in minutes.
 *
 * The key lives in the configuration, never in the database. With PostgreSQL
 * it is required (config.ts). On the embedded default it is generated once and
 * kept next to the PGlite data (`<DATA_DIR>/erasure.key`, mode 0600): the data
 * and its key travel together in a backup of that folder; lose the key and the
 * opt-outs of leads erased before no longer carry over. `memory://` gets a
 * fresh key per process, as its data is.
 *
 * One key per process: createContext sets it before anything can write a lead
 * (every place that inserts a lead hashes its phone with it). Code that writes
 * leads without a context (a test driving a function directly) gets a random
 * key for the process: nothing it erases outlives it anyway.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

let key: Buffer | null = null;

export function useErasureKey(secret: string): void {
  key = Buffer.from(secret, 'utf8');
}

/** HMAC-SHA256 of the canonical phone under ERASURE_KEY, hex. */
export function phoneHmac(phone: string): string {
  key ??= randomBytes(32);
  return createHmac('sha256', key).update(phone, 'utf8').digest('hex');
}

/** What an erased lead's phone becomes. */
export function erasedPhone(phone: string): string {
  return `erased:${phoneHmac(phone)}`;
}

/** The embedded default's key: read from the data folder, or made there the first time. */
export async function embeddedErasureKey(dataDir: string): Promise<string> {
  if (dataDir.startsWith('memory://')) return randomBytes(32).toString('hex');
  const file = join(dataDir, 'erasure.key');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true });
  try {
    await writeFile(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process made it first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return (await readFile(file, 'utf8')).trim();
}
