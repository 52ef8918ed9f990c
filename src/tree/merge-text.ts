/**
 * Line-based three-way merge of text files (node-diff3), as git's merge of a file both sides changed: lines keep their
 * endings, changes that do not overlap are combined, overlapping ones become git's diff3-style conflict markers.
 */
import { isUtf8 } from 'node:buffer';
import { diff3Merge } from 'node-diff3';

/** Files larger than this (on any side) are not merged line by line: they conflict as binary files do. */
export const MAX_TEXT_MERGE_BYTES = 16 * 1024 * 1024;

/** The names after the conflict markers: `<<<<<<< ours`, `||||||| base`, `>>>>>>> theirs` by default. */
export interface MergeLabels {
  ours?: string;
  base?: string;
  theirs?: string;
}

/** The merged bytes and how many overlaps they hold as marker blocks. */
export interface TextMergeResult {
  /** The merged text; with conflicts, holding one marker block per overlap. */
  data: Buffer;
  /** Number of overlapping changes (0: a clean merge). */
  conflicts: number;
}

/** Text as the merge understands it: valid UTF-8 without NUL bytes. */
export function isText(data: Buffer): boolean {
  return !data.includes(0) && isUtf8(data);
}

/** Lines with their endings (`a\n`, `b\r\n`); the last may have none. */
function splitLines(text: string): string[] {
  return text.length === 0 ? [] : text.split(/(?<=\n)/);
}

/** Lines equal at the start (then the end) of all three lists: left out of the diff, which costs time per line. */
function commonEnds(o: string[], a: string[], b: string[]): { head: number; tail: number } {
  const n = Math.min(o.length, a.length, b.length);
  let head = 0;
  while (head < n && o[head] === a[head] && o[head] === b[head]) head++;
  let tail = 0;
  const at = (l: string[]) => l[l.length - 1 - tail];
  while (tail < n - head && at(o) === at(a) && at(o) === at(b)) tail++;
  return { head, tail };
}

/** A conflict block's section: its lines, the last one ended so that the next marker starts a line. */
function section(lines: string[]): string[] {
  const last = lines[lines.length - 1];
  return last === undefined || last.endsWith('\n') ? lines : [...lines.slice(0, -1), `${last}\n`];
}

/**
 * Merges `ours` and `theirs` (UTF-8 text, see isText) against `base` line by line. Changes of one side, and the same
 * change made on both, are taken; overlapping or adjacent different changes become
 * `<<<<<<< ours` / ours' lines / `||||||| base` / base's / `=======` / theirs' / `>>>>>>> theirs`.
 * A clean merge does not depend on which side is "ours".
 *
 * @example
 * mergeText(Buffer.from('a\nb\nc\n'), Buffer.from('A\nb\nc\n'), Buffer.from('a\nb\nC\n')).data.toString(); // 'A\nb\nC\n'
 */
export function mergeText(base: Buffer, ours: Buffer, theirs: Buffer, labels: MergeLabels = {}): TextMergeResult {
  const o = splitLines(base.toString('utf8'));
  const a = splitLines(ours.toString('utf8'));
  const b = splitLines(theirs.toString('utf8'));
  const { head, tail } = commonEnds(o, a, b);
  const mid = (l: string[]) => l.slice(head, l.length - tail);
  const out: string[] = o.slice(0, head);
  let conflicts = 0;
  for (const region of diff3Merge(mid(a), mid(o), mid(b), { excludeFalseConflicts: true })) {
    if (region.ok) {
      out.push(...region.ok);
      continue;
    }
    const c = region.conflict!;
    conflicts++;
    out.push(`<<<<<<< ${labels.ours ?? 'ours'}\n`, ...section(c.a), `||||||| ${labels.base ?? 'base'}\n`, ...section(c.o));
    out.push('=======\n', ...section(c.b), `>>>>>>> ${labels.theirs ?? 'theirs'}\n`);
  }
  out.push(...o.slice(o.length - tail));
  return { data: Buffer.from(out.join(''), 'utf8'), conflicts };
}
