/**
 * `followups import fans.csv --campaign nautico`: the list of fans who answered
 * the president's audio, enrolled in batches through the same bulk enrollment
 * as POST /v1/enrollments/bulk.
 *
 * Streaming: the file is parsed as it is read (csv-parse, with backpressure) and
 * at most three batches are held at once — two being enrolled (on two database
 * connections: the enrollment is database-bound, so this uses a second core)
 * while the next is filled. Their results are counted in file order, so the
 * progress only moves forward. Two batches never hold the same lead (duplicates
 * within the file are rejected before batching), so they never wait on each
 * other. The only thing that grows with the file is the set of phone numbers
 * already seen (to report duplicates within the file): about 100 bytes a lead.
 *
 * Hostile or broken files: a record is at most MAX_RECORD_BYTES (an unclosed
 * quote would otherwise swallow the rest of the file into one field, in
 * memory); a row the parser cannot read, a row with a NUL and a row that is not
 * valid UTF-8 are rejected with their line (`bad_row`, `bad_encoding`) and the
 * import goes on. What goes back out — the rejections file, the terminal — is
 * neutralised by formatRejectionLine and forTerminal below.
 *
 * csv-parse options used exist in both its v5 and later majors (encoding: null,
 * max_record_size, skip_records_with_error and its 'skip' event).
 *
 * Safe to run twice: a lead with an active enrollment is counted as "already
 * active", never enrolled again.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { parse } from 'csv-parse';
import type { Clock } from '../clock.js';
import type { Queryable } from '../db/db.js';
import { ValidationError } from '../errors.js';
import { tryNormalizePhone } from '../whatsapp/phone.js';
import type { Campaigns } from './campaign.js';
import { type EnrollRow, enrollLeads, findCampaign } from './enroll-leads.js';
import { type BulkEnrollResult, MAX_BULK_LEADS, MAX_NAME_LENGTH, type RejectReason } from './enrollment-schemas.js';
import { parseLocalTime } from './parse-local-time.js';

/** Batches enrolled at once (each on its own connection). */
const CONCURRENT_BATCHES = 2;
/** Longest record the parser holds; beyond, the row is rejected (an unclosed quote). */
export const MAX_RECORD_BYTES = 64 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A cell as it may go into a CSV that someone opens in a spreadsheet (OWASP,
 * CSV injection): one starting with = + - @, a tab or a carriage return would be
 * read as a formula, so it is prefixed with a quote; then quoted as CSV.
 */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return `"${safe.replace(/"/g, '""')}"`;
}

/** One line of the rejections file: line, phone as written (neutralised), reason. */
export function formatRejectionLine(r: ImportRejection): string {
  return `${r.line},${csvCell(r.phone)},${r.reason}\n`;
}

/** Text from the file, safe to print: control characters (escape sequences) and bidi overrides shown escaped. */
export function forTerminal(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface ImportRejection {
  /** Line in the file (the header is line 1). */
  line: number;
  /** As written in the file. */
  phone: string;
  reason: RejectReason;
}

export interface ImportProgress {
  rows: number;
  bytes: number;
  totalBytes: number;
  enrolled: number;
  alreadyActive: number;
  rejected: number;
  elapsedMs: number;
}

export interface ImportSummary extends ImportProgress {
  rejectedByReason: Partial<Record<RejectReason, number>>;
  /** In line order; at most `keepRejections` of them (the counts are always complete). */
  rejections: ImportRejection[];
  rejectionsTruncated: boolean;
}

export interface ImportCsvOptions {
  file: string;
  campaign: string;
  /** Leads per enrollment batch (default 5,000; at most 10,000). */
  batchSize?: number;
  /** Zone of dates written without an offset ("05/01/2026 14:30"). */
  timeZone: string;
  onProgress?: (progress: ImportProgress) => void;
  /** Every rejected row, as it is found (e.g. to write them all to a file). */
  onRejection?: (rejection: ImportRejection) => void;
  /** How many rejections the summary keeps (default 10,000). */
  keepRejections?: number;
}

// Header names are compared without case, accents, spaces or punctuation.
const COLUMN_NAMES = {
  phone: ['phone', 'telefone', 'whatsapp', 'celular', 'fone', 'tel', 'numero', 'phonenumber', 'numerowhatsapp'],
  name: ['name', 'nome', 'nomecompleto', 'fullname', 'firstname', 'primeironome'],
  anchorAt: ['anchorat', 'anchor', 'ultimainteracao', 'ultimainteracaoem', 'lastinteraction', 'lastinteractionat', 'datainteracao'],
} as const;

const headerKey = (h: string) => h.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().replace(/[^a-z0-9]/g, '');

function mapHeader(header: string[], file: string): { phone: number; name: number; anchorAt: number } {
  const keys = header.map(headerKey);
  const find = (names: readonly string[]) => keys.findIndex((k) => names.includes(k));
  const columns = { phone: find(COLUMN_NAMES.phone), name: find(COLUMN_NAMES.name), anchorAt: find(COLUMN_NAMES.anchorAt) };
  const missing = (['phone', 'name'] as const).filter((c) => columns[c] < 0);
  if (missing.length) {
    throw new ValidationError(
      `${file}: the header row has no ${missing.map((c) => `${c} column (one of: ${COLUMN_NAMES[c].join(', ')})`).join(' and no ')}; found: ${forTerminal(header.join(', '))}`,
      'header',
    );
  }
  return columns;
}

/** Brazilian spreadsheets often export with ';' (the comma is the decimal mark): look at the header line. */
async function sniffDelimiter(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const firstLine = buffer.subarray(0, bytesRead).toString('utf8').split(/\r?\n/)[0] ?? '';
    const counts = [',', ';', '\t'].map((d) => [d, firstLine.split(d).length - 1] as const);
    return counts.reduce((best, c) => (c[1] > best[1] ? c : best))[0];
  } finally {
    await handle.close();
  }
}

export async function importCsv(ctx: { db: Queryable; clock: Clock; campaigns: Campaigns }, options: ImportCsvOptions): Promise<ImportSummary> {
  findCampaign(ctx.campaigns, options.campaign); // an unknown campaign fails before the file is read
  const requested = Math.floor(options.batchSize ?? 5_000);
  const batchSize = Number.isFinite(requested) ? Math.min(MAX_BULK_LEADS, Math.max(1, requested)) : 5_000;
  const keep = options.keepRejections ?? 10_000;
  const totalBytes = (await stat(options.file)).size;
  const started = Date.now();
  const summary: ImportSummary = {
    rows: 0, bytes: 0, totalBytes, enrolled: 0, alreadyActive: 0, rejected: 0, elapsedMs: 0,
    rejectedByReason: {}, rejections: [], rejectionsTruncated: false,
  };

  const reject = (rejection: ImportRejection) => {
    summary.rejected++;
    summary.rejectedByReason[rejection.reason] = (summary.rejectedByReason[rejection.reason] ?? 0) + 1;
    if (summary.rejections.length < keep) summary.rejections.push(rejection);
    else summary.rejectionsTruncated = true;
    options.onRejection?.(rejection);
  };
  const progress = () => {
    summary.elapsedMs = Date.now() - started;
    const { rows, bytes, enrolled, alreadyActive, rejected, elapsedMs } = summary;
    options.onProgress?.({ rows, bytes, totalBytes, enrolled, alreadyActive, rejected, elapsedMs });
  };

  type Pending = { line: number; shown: string; row: EnrollRow };
  type Running = { batch: Pending[]; bytes: number; result: Promise<BulkEnrollResult> };
  const count = (batch: Pending[], bytes: number, result: BulkEnrollResult) => {
    summary.enrolled += result.enrolled;
    summary.alreadyActive += result.alreadyActive;
    for (const r of result.rejected) reject({ line: batch[r.index]!.line, phone: batch[r.index]!.shown, reason: r.reason });
    summary.bytes = bytes;
    progress();
  };
  // Batches being enrolled, oldest first; a failure surfaces when its batch is counted.
  const running: Running[] = [];
  const countOldest = async () => {
    const { batch, bytes, result } = running.shift()!;
    count(batch, bytes, await result);
  };
  const submit = async (batch: Pending[], bytes: number) => {
    if (running.length >= CONCURRENT_BATCHES) await countOldest();
    const result = enrollLeads(ctx, { campaign: options.campaign, leads: batch.map((b) => b.row) }, { requireName: true });
    result.catch(() => undefined);
    running.push({ batch, bytes, result });
  };

  const parser = createReadStream(options.file).pipe(
    parse({
      delimiter: await sniffDelimiter(options.file),
      bom: true,
      info: true,
      // No `trim`: it cannot work on bytes; fields are trimmed once decoded.
      skip_empty_lines: true,
      relax_column_count: true,
      relax_quotes: true,
      // Fields as bytes (null is documented, though the v5 types leave it out): invalid UTF-8 is
      // found and rejected, not silently replaced.
      encoding: null as unknown as undefined,
      max_record_size: MAX_RECORD_BYTES,
      skip_records_with_error: true,
    }),
  );
  // A record the parser gave up on (skip_records_with_error): rejected with its line, the import goes on.
  parser.on('skip', (error: { lines?: number } | undefined) => {
    if (!columns) return;
    summary.rows++;
    reject({ line: error?.lines ?? 0, phone: '', reason: 'bad_row' });
  });
  let columns: ReturnType<typeof mapHeader> | null = null;
  const seen = new Set<string>();
  let batch: Pending[] = [];
  try {
    for await (const { record: raw, info } of parser as AsyncIterable<{ record: Buffer[]; info: { lines: number; bytes: number } }>) {
      if (!columns) {
        columns = mapHeader(raw.map((b) => b.toString('utf8').trim()), options.file);
        continue;
      }
      summary.rows++;
      const line = info.lines;
      let record: string[];
      try {
        record = raw.map((field) => utf8.decode(field).trim());
      } catch {
        reject({ line, phone: (raw[columns.phone] ?? Buffer.alloc(0)).toString('utf8'), reason: 'bad_encoding' });
        continue;
      }
      const shown = record[columns.phone] ?? '';
      if (record.some((field) => field.includes('\0'))) {
        reject({ line, phone: shown.replace(/\0/g, ''), reason: 'bad_row' });
        continue;
      }
      const name = (record[columns.name] ?? '').trim();
      const anchorText = columns.anchorAt >= 0 ? (record[columns.anchorAt] ?? '').trim() : '';
      const phone = tryNormalizePhone(shown);
      let reason: RejectReason | null = null;
      let anchorAt: Date | null = null;
      if (!phone) reason = 'bad_phone';
      else if (!name) reason = 'empty_name';
      else if (name.length > MAX_NAME_LENGTH) reason = 'bad_name';
      else if (anchorText && !(anchorAt = parseLocalTime(anchorText, options.timeZone))) reason = 'bad_anchor';
      else if (seen.has(phone)) reason = 'duplicate';
      if (reason) {
        reject({ line, phone: shown, reason });
        continue;
      }
      seen.add(phone!);
      batch.push({ line, shown, row: { phone: phone!, name, anchorAt } });
      if (batch.length >= batchSize) {
        await submit(batch, info.bytes);
        batch = [];
      }
    }
    if (!columns) throw new ValidationError(`${options.file}: is empty (no header row)`, 'header');
    if (batch.length) await submit(batch, totalBytes);
    while (running.length) await countOldest();
  } finally {
    parser.destroy();
    // On failure, let the other batch finish before the caller closes the database.
    await Promise.allSettled(running.map((r) => r.result));
  }
  summary.bytes = totalBytes;
  summary.rejections.sort((a, b) => a.line - b.line);
  progress();
  return summary;
}
