/**
 * The grep op: search file contents of one image. Streams each file's blob chunk by chunk (constant memory), skips
 * binary files (a NUL in the first 8000 bytes, as git does), and yields matching lines with their numbers.
 */
import { UsageError } from '../errors.js';
import type { TreeEntry } from '../model/tree.js';
import type { Repository } from '../store/repository.js';
import { walkTree } from '../tree/walk.js';
import { filePieces } from './checkout.js';
import { ensureContent } from '../sync/partial.js';
import { normalizeImagePath, resolveEntry, resolveSpec } from './resolve.js';
import { hexIfNotUtf8 } from '../model/quote.js';

/** The options of {@link grep}: the pattern, the image (`REV` or `REV:path`), path limits and matching flags. */
export interface GrepOptions {
  pattern: string;
  /** `REV` or `REV:path`. */
  rev: string;
  /** Only files at or below these image paths. */
  paths?: string[];
  ignoreCase?: boolean;
  /** The pattern is a fixed string, not a regular expression. */
  fixed?: boolean;
  /** Lines longer than this are matched but shown cut (default 1000 characters). */
  maxLine?: number;
}

/** One matching line: the file's path, the 1-based line number and the line's text. */
export interface GrepHit {
  /** UTF-8 text (lossy); `pathHex` holds the exact bytes when they are not UTF-8. */
  path: string;
  pathHex?: string;
  line: number;
  text: string;
}

function join(a: Buffer, b: Buffer): Buffer {
  return a.length ? Buffer.concat([a, SLASH, b]) : b;
}
const SLASH = Buffer.from('/');

/** Yields matching lines in path order. Locking: none. Throws UsageError for a bad pattern, PathNotFoundError. */
export async function* grep(repo: Repository, options: GrepOptions): AsyncGenerator<GrepHit> {
  let re: RegExp;
  try {
    const src = options.fixed ? options.pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : options.pattern;
    re = new RegExp(src, options.ignoreCase ? 'i' : '');
  } catch (e) {
    throw new UsageError(`pattern '${options.pattern}' is not a valid regular expression: ${(e as Error).message}`);
  }
  const maxLine = options.maxLine ?? 1000;
  const roots = options.paths?.length ? options.paths.map((p) => normalizeImagePath(p)) : [Buffer.alloc(0)];
  const base = resolveSpec(repo, options.rev);
  const seen = new Set<string>();
  for (const root of roots) {
    const full = join(base.path, root);
    const start = root.length ? resolveEntry(repo, base.commitOid, base.commit, full, options.rev) : base;
    // The files below the root, in path order (the walk is synchronous; the content reads that follow are not).
    const files: Array<{ path: Buffer; e: TreeEntry }> = [];
    if (start.entry.type === 'dir') {
      if (start.entry.oid) walkTree(repo.objects, start.entry.oid, (p, e) => { if (e.type === 'file') files.push({ path: p, e }); }, { path: full });
    } else {
      files.push({ path: full, e: start.entry });
    }
    for (const { path, e } of files) {
      const key = path.toString('latin1');
      if (e.type !== 'file' || !e.oid || seen.has(key)) continue;
      seen.add(key);
      await ensureContent(repo, [e.oid]);
      const hex = hexIfNotUtf8(path);
      yield* grepFile(repo, { path: path.toString('utf8'), ...(hex ? { pathHex: hex } : {}) }, e, re, maxLine);
    }
  }
}

async function* grepFile(repo: Repository, name: { path: string; pathHex?: string }, e: TreeEntry, re: RegExp, maxLine: number): AsyncGenerator<GrepHit> {
  let head = true;
  let carry = '';
  let lineNo = 0;
  let binary = false;
  let expected = 0;
  const decoder = new TextDecoder('utf-8');
  const emit = (line: string): GrepHit | undefined => {
    lineNo++;
    return re.test(line) ? { ...name, line: lineNo, text: line.length > maxLine ? `${line.slice(0, maxLine)}…` : line } : undefined;
  };
  for await (const piece of filePieces(repo.objects, e, name.path)) {
    // Holes read as zeros: a NUL in the first 8000 bytes, or a hole there, makes the file binary.
    if (head) {
      head = false;
      if (piece.offset > 0 || piece.data.subarray(0, 8000).includes(0)) { binary = true; break; }
    }
    if (piece.offset !== expected) { binary = true; break; }
    expected = piece.offset + piece.data.length;
    const text = carry + decoder.decode(piece.data, { stream: true });
    const lines = text.split('\n');
    carry = lines.pop()!;
    for (const l of lines) { const h = emit(l); if (h) yield h; }
    if (carry.length > 1 << 20) { const h = emit(carry); if (h) yield h; carry = ''; }
  }
  if (binary) return;
  carry += decoder.decode();
  if (carry.length) { const h = emit(carry); if (h) yield h; }
}
