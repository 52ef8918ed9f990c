/**
 * What the file-system readers share: the depth-first walk (each entry before its children, siblings in list order),
 * the walk of a whole tree for `ImageReader.entries()`, the root's empty path and the abort check.
 */
import { AbortedError } from '../errors.js';
import type { ImageEntry } from './types.js';

const SLASH = Buffer.from('/');
/** The root's path (and an empty buffer to share). */
export const EMPTY = Buffer.alloc(0);

/** An image path for messages: the path as UTF-8, '/' for the root (''). */
export function showPath(p: Buffer): string {
  return p.length ? p.toString('utf8') : '/';
}

/** Throws AbortedError when any of `signals` is aborted. */
export function throwIfAborted(...signals: Array<AbortSignal | undefined>): void {
  for (const s of signals) if (s?.aborted) throw new AbortedError();
}

/**
 * Yields every child below `children` (the root's) with its path, depth first: after a directory is yielded, the
 * caller's `descend(itsChildren)` puts them next, before the directory's siblings. `check()` runs before each step
 * (an abort check).
 *
 * @example
 * for await (const { path, child, descend } of depthFirst(rootChildren, () => throwIfAborted(signal))) {
 *   yield entryOf(path, child);
 *   if (isDir(child)) descend(await listDir(child));
 * }
 */
export async function* depthFirst<C extends { name: Buffer }>(children: C[], check: () => void): AsyncGenerator<{ path: Buffer; child: C; descend: (kids: C[]) => void }> {
  const stack: Array<{ path: Buffer; children: C[]; next: number }> = [{ path: EMPTY, children, next: 0 }];
  while (stack.length > 0) {
    check();
    const top = stack[stack.length - 1]!;
    if (top.next >= top.children.length) {
      stack.pop();
      continue;
    }
    const child = top.children[top.next++]!;
    const path = top.path.length ? Buffer.concat([top.path, SLASH, child.name]) : child.name;
    yield { path, child, descend: (kids) => stack.push({ path, children: kids, next: 0 }) };
  }
}

/** One entry of a {@link walkEntries} walk, and for a directory how to list its children (called after it is yielded). */
export interface WalkStep<C> {
  entry: ImageEntry;
  children?: () => Promise<C[]>;
}

/** A reader's functions for one {@link walkEntries} walk: the root's step, and the step of each child at its path. */
export interface TreeWalk<C> {
  root(): Promise<WalkStep<C>>;
  entry(path: Buffer, child: C): Promise<WalkStep<C>>;
}

/**
 * The whole tree as `ImageReader.entries()` yields it: throws AbortedError at once when the reader's `outer` signal or
 * the call's `signal` is aborted; else calls `start` with the two combined (set up per-walk state there) and yields
 * the root's entry, then every child depth first via {@link depthFirst}, checking both signals before each step. A
 * directory's children are listed only after its entry has been yielded.
 *
 * @example
 * async *entries(signal) {
 *   yield* walkEntries(outer, signal, (sig) => ({
 *     root: async () => ({ entry: rootEntry, children: () => listDir(rootDir, sig) }),
 *     entry: async (path, child) => stepOf(path, child, sig),
 *   }));
 * }
 */
export async function* walkEntries<C extends { name: Buffer }>(
  outer: AbortSignal | undefined, signal: AbortSignal | undefined, start: (signal: AbortSignal | undefined) => TreeWalk<C>,
): AsyncGenerator<ImageEntry> {
  throwIfAborted(outer, signal);
  const sig = outer && signal ? AbortSignal.any([outer, signal]) : outer ?? signal;
  const walk = start(sig);
  const root = await walk.root();
  yield root.entry;
  if (!root.children) return;
  for await (const { path, child, descend } of depthFirst(await root.children(), () => throwIfAborted(sig))) {
    const step = await walk.entry(path, child);
    yield step.entry;
    if (step.children) descend(await step.children());
  }
}

/**
 * The {@link TreeWalk} of a file system of numbered inodes (ext4, XFS), with the checks they share: the root inode
 * `rootIno` must be a directory, and a directory met a second time (linked twice: a loop) is corruption, made by the
 * reader's `corrupt(where, reason)`. `read(path, ino, child)` reads an entry (`child` undefined for the root) with
 * whatever `list(read, path)` needs to list the children of a directory. Make one per walk: it remembers directories.
 */
export function inodeTreeWalk<C extends { name: Buffer; ino: number }, R extends { entry: ImageEntry }>(
  rootIno: number,
  read: (path: Buffer, ino: number, child?: C) => Promise<R>,
  list: (dir: R, path: Buffer) => Promise<C[]>,
  corrupt: (where: string, reason: string) => Error,
): TreeWalk<C> {
  const visitedDirs = new Set<number>([rootIno]);
  return {
    async root() {
      const r = await read(EMPTY, rootIno);
      if (r.entry.type !== 'dir') throw corrupt(`inode ${rootIno}`, 'the root inode is not a directory');
      return { entry: r.entry, children: () => list(r, EMPTY) };
    },
    async entry(path, child) {
      const r = await read(path, child.ino, child);
      if (r.entry.type !== 'dir') return { entry: r.entry };
      if (visitedDirs.has(child.ino)) throw corrupt(`inode ${child.ino}`, `directory is linked twice (again at '${showPath(path)}'): a loop`);
      visitedDirs.add(child.ino);
      return { entry: r.entry, children: () => list(r, path) };
    },
  };
}
