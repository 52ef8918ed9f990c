/**
 * Progress on a terminal for long operations: one line on stderr, redrawn at most 10 times a second by cli-progress,
 * with a bar, percentage and ETA when the op knows its total (a tar's size, a checkout's bytes, the objects of a
 * transfer), and counts and a rate when it does not. Drawn from the first moment (before the op's first event), so
 * something shows within 0.5 s; cleared when the op ends, so the command's own output starts on a clean line.
 */
import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';
import type { ProgressEvent } from '../ops/commit.js';
import { formatBytes, plural } from './format.js';

/** Redraws per second at most. */
export const PROGRESS_FPS = 10;

/** `7s`, `2m05s`, `1h02m`: an ETA as a person reads it; `?` when it cannot be told yet. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The unit an op counts in `files`: files for commit and checkout, packs for gc's compaction, else objects. */
function noun(phase: string): string {
  if (phase === 'commit' || phase === 'checkout') return 'file';
  return phase.endsWith('packs') ? 'pack' : 'object';
}

/**
 * The status line for event `e` (undefined before the first event) of an op labelled `label`:
 * `committing: 42% [########------------] 120.0 MiB/285.0 MiB, 12.3 MiB/s, ETA 14s` with a total,
 * `committing: 1204 files, 120.0 MiB, 12.3 MiB/s` without.
 */
export function progressLine(label: string, e: ProgressEvent | undefined, secs: number, bar: (progress: number) => string, eta: number): string {
  if (!e) return `${label}: …`;
  const rate = secs > 0 && e.bytes > 0 ? `, ${formatBytes(e.bytes / secs)}/s` : '';
  const total = e.totalBytes ?? e.totalFiles;
  if (total !== undefined && total > 0) {
    const done = e.totalBytes !== undefined ? e.bytes : e.files;
    const p = Math.min(1, done / total);
    const amount = e.totalBytes !== undefined ? `${formatBytes(e.bytes)}/${formatBytes(e.totalBytes)}` : `${e.files}/${plural(e.totalFiles!, noun(e.phase))}`;
    return `${label}: ${String(Math.floor(p * 100)).padStart(3)}% [${bar(p)}] ${amount}${rate}, ETA ${formatEta(eta)}`;
  }
  return `${label}: ${plural(e.files, noun(e.phase))}${e.bytes > 0 ? `, ${formatBytes(e.bytes)}` : ''}${rate}`;
}

/** One progress line on `stream` (a terminal), from construction until `stop()`. */
export class ProgressBar {
  private readonly bar: cliProgressModule.SingleBar;
  private last: ProgressEvent | undefined;
  private readonly start = Date.now();

  /** `label` names the op (`committing`); without one each event's phase does (gc's `counting objects`, …). */
  constructor(private readonly label: string | undefined, stream: NodeJS.WriteStream = process.stderr) {
    // Loaded when a bar is drawn (on a terminal), not by every command that might draw one.
    const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;
    this.bar = new cliProgress.SingleBar({
      stream, fps: PROGRESS_FPS, barsize: 20, clearOnComplete: true, hideCursor: false, gracefulExit: false, etaBuffer: 50,
      barCompleteChar: '#', barIncompleteChar: '-',
      format: (options, params) => progressLine(this.label ?? this.last?.phase ?? 'working', this.last, (Date.now() - this.start) / 1000,
        (p) => cliProgress.Format.BarFormat(p, options), params.eta),
    });
    this.bar.start(0, 0);
  }

  /** Takes the op's latest counts; redraws when the last redraw is old enough (also inside a synchronous op's loop). */
  update(e: ProgressEvent): void {
    const total = e.totalBytes ?? e.totalFiles ?? 0;
    if (total !== this.bar.getTotal()) this.bar.setTotal(total);
    this.last = e;
    this.bar.update(e.totalBytes !== undefined ? e.bytes : e.files);
  }

  /** Removes the line. */
  stop(): void {
    this.bar.stop();
  }
}
