/**
 * What the file-system readers share: the depth-first walk (each entry before its children, siblings in list order),
 * the root's empty path and the abort check.
 */
import { AbortedError } from '../errors.js';

const SLASH = Buffer.from('/');
/** The root's path (and an empty buffer to share). */
export const EMPTY = Buffer.alloc(0);

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
