/**
 * Fault injection for tests (kopia's faulty storage, SQLite's I/O-error tests): `VIVA_FAULT`, read once per thread,
 * makes the Nth write transaction, pack read or transaction flush of the store fail with ENOSPC or EIO, or kills the
 * process. Never set in normal use; documented in docs/architecture.md ("Fault injection").
 *
 *   VIVA_FAULT=write:3:ENOSPC        the 3rd write transaction fails before anything is written
 *   VIVA_FAULT=read:10:EIO           the 10th pack read fails
 *   VIVA_FAULT=flush:2:kill          the process dies (SIGKILL) right after its 2nd transaction committed
 *   VIVA_FAULT=write:1:EIO,read:5:EIO  several, comma-separated
 *
 * Counts are per thread (commit's writer thread counts its own writes). With `VIVA_FAULT_COUNTS=FILE`, the main
 * thread writes its counts as JSON to FILE at exit, so that a test can choose N within the range an operation reaches.
 */
import fs from 'node:fs';
import { workerThreads } from '../lazy.js';
import { UsageError } from '../errors.js';

export type FaultPoint = 'write' | 'read' | 'flush';
export type FaultAction = 'ENOSPC' | 'EIO' | 'kill';

interface Fault { point: FaultPoint; n: number; action: FaultAction }

const ERRNO: Record<Exclude<FaultAction, 'kill'>, { errno: number; text: string }> = {
  ENOSPC: { errno: -28, text: 'no space left on device' },
  EIO: { errno: -5, text: 'i/o error' },
};

/** Parses a VIVA_FAULT value; throws UsageError (exit 2) on a malformed one, so a typo never passes for a fault. */
export function parseFaults(spec: string | undefined): Fault[] {
  if (!spec) return [];
  return spec.split(',').map((part) => {
    const m = /^(write|read|flush):(\d+):(ENOSPC|EIO|kill)$/.exec(part.trim());
    if (!m) throw new UsageError(`bad VIVA_FAULT entry '${part}' (want write|read|flush:N:ENOSPC|EIO|kill)`);
    return { point: m[1] as FaultPoint, n: Number(m[2]), action: m[3] as FaultAction };
  });
}

let faults: Fault[] | undefined;
const counts: Record<FaultPoint, number> = { write: 0, read: 0, flush: 0 };

/** Replaces the faults of this thread (in-process tests); resets the counters. */
export function setFaults(spec: string | undefined): void {
  faults = parseFaults(spec);
  counts.write = counts.read = counts.flush = 0;
}

/** How many times each point was reached in this thread (for tests choosing N). */
export function faultCounts(): Readonly<Record<FaultPoint, number>> {
  return counts;
}

/** Counts one pass through `point` and injects the fault set for it, if any. */
export function faultPoint(point: FaultPoint): void {
  if (faults === undefined) {
    faults = parseFaults(process.env.VIVA_FAULT);
    const file = process.env.VIVA_FAULT_COUNTS;
    if (file && workerThreads().isMainThread) process.on('exit', () => fs.writeFileSync(file, JSON.stringify(counts)));
  }
  const n = ++counts[point];
  if (faults.length === 0) return;
  for (const f of faults) {
    if (f.point !== point || f.n !== n) continue;
    if (f.action === 'kill') process.kill(process.pid, 'SIGKILL');
    else {
      const { errno, text } = ERRNO[f.action];
      throw Object.assign(new Error(`${f.action}: ${text}, ${point} (injected)`), { code: f.action, errno, syscall: point });
    }
  }
}
