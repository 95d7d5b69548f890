/**
 * How `followups import` shows its progress: a bar on a terminal (cli-progress),
 * plain lines every few seconds otherwise (CI logs, `> import.log`), and the
 * summary at the end.
 */
import cliProgress from 'cli-progress';
import { forTerminal, type ImportProgress, type ImportSummary } from './import-csv.js';

const number = (n: number) => n.toLocaleString('en-US');
const rate = (p: ImportProgress) => Math.round(p.rows / Math.max(0.001, p.elapsedMs / 1000));

export interface ImportProgressView {
  update(progress: ImportProgress): void;
  stop(): void;
}

export function makeImportProgress(stream: NodeJS.WriteStream, options: { intervalMs?: number } = {}): ImportProgressView {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: 'importing |{bar}| {percentage}% | {rows} rows, {rate} rows/s | enrolled {enrolled}, already active {alreadyActive}, rejected {rejected}',
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(p) {
        const payload = { rows: number(p.rows), rate: number(rate(p)), enrolled: number(p.enrolled), alreadyActive: number(p.alreadyActive), rejected: number(p.rejected) };
        if (!started) {
          bar.start(Math.max(1, p.totalBytes), p.bytes, payload);
          started = true;
        } else bar.update(p.bytes, payload);
      },
      stop: () => started && bar.stop(),
    };
  }
  const intervalMs = options.intervalMs ?? 2_000;
  let last = 0;
  let lastShown = '';
  return {
    update(p) {
      const now = Date.now();
      const shown = `${p.rows}/${p.bytes}`;
      if (shown === lastShown || (now - last < intervalMs && p.bytes < p.totalBytes)) return;
      last = now;
      lastShown = shown;
      const percent = p.totalBytes ? Math.floor((p.bytes / p.totalBytes) * 100) : 100;
      stream.write(
        `import: ${percent}% ${number(p.rows)} rows (${number(rate(p))} rows/s): enrolled ${number(p.enrolled)}, already active ${number(p.alreadyActive)}, rejected ${number(p.rejected)}\n`,
      );
    },
    stop() {},
  };
}

export function formatImportSummary(summary: ImportSummary, options: { campaign: string; rejectionsFile?: string; show?: number }): string {
  const show = options.show ?? 20;
  const lines = [
    `campaign ${options.campaign}: ${number(summary.rows)} rows in ${(summary.elapsedMs / 1000).toFixed(1)} s (${number(rate(summary))} rows/s)`,
    `  enrolled        ${number(summary.enrolled)}`,
    `  already active  ${number(summary.alreadyActive)}`,
    `  rejected        ${number(summary.rejected)}${
      summary.rejected ? ` (${Object.entries(summary.rejectedByReason).map(([reason, n]) => `${reason}: ${number(n!)}`).join(', ')})` : ''
    }`,
  ];
  // A cell is printed escaped: a file must not send escape sequences to the operator's terminal.
  for (const r of summary.rejections.slice(0, show)) lines.push(`    line ${r.line}: ${r.reason}${r.phone ? ` (${forTerminal(r.phone)})` : ''}`);
  if (summary.rejected > show) {
    lines.push(`    ... and ${number(summary.rejected - show)} more${options.rejectionsFile ? ` in ${options.rejectionsFile}` : '; --rejections FILE writes them all'}`);
  }
  return `${lines.join('\n')}\n`;
}
