/**
 * The tree walker: N trees walked in step, entries merge-joined by name bytes (isomorphic-git's `walk()`, git's
 * `traverse_trees`). Every op that reads stored manifests — diff, checkout plans, disk export and rebuild, stats, du,
 * grep, ls, find, partial clones' content lists, reachability (fsck, gc) — is a callback on this one walk.
 */
import { AbortedError } from '../errors.js';
import { sameMeta } from '../model/codec.js';
import type { Oid } from '../model/oid.js';
import { type TreeEntry, type TreeListing, compareListedNames, listingEntry, sameListedEntry } from '../model/tree.js';
import type { ObjectReader } from '../store/object-store.js';
import { readTreeListing } from '../store/typed.js';

/** One step of the walk: the path (bytes, '' for the roots) and what each tree has there (undefined: absent). */
export type WalkEntries = ReadonlyArray<TreeEntry | undefined>;

export interface WalkOptions {
  /**
   * Called for every path in pre-order (a directory before its children), roots excluded. Return `false` to skip
   * the children of a directory (prune); anything else descends into every side that is a directory.
   */
  enter(path: Buffer, entries: WalkEntries): boolean | void;
  /** Called after a directory's children were walked (post-order), for the directories that were descended into. */
  leave?(path: Buffer, entries: WalkEntries): void;
  /**
   * With two or more trees: a path where every tree has a directory with the same id is not descended into —
   * content addressing makes "same id" mean "same everything below" — and not reported either when the
   * directories' own metadata is equal too (default true). With one tree this has no effect.
   */
  skipIdentical?: boolean;
  /**
   * With two or more trees: a path where every tree has the very same entry (name, type, metadata, xattrs, content
   * id, holes, hardlink group) is not reported at all, and its entries are not even decoded — for callers that only
   * want what differs (diff). Default false: a file equal on every side is still reported.
   */
  skipEqualEntries?: boolean;
  /**
   * The image path of the roots (default '': paths are relative to them). Reported paths are below it, and a tree
   * that cannot be read is named by its path from here ('/' for the image root).
   */
  path?: Buffer;
  /**
   * A directory that cannot be read (missing, damaged) is reported here, with the error as the read threw it (the
   * path is an argument, not added to the message), and walked as empty: the walk goes on around it, and `leave` is
   * still called for it. Without it the error is thrown, naming the path. For checks that list every problem (fsck).
   */
  onReadError?(error: unknown, path: Buffer, oid: Oid): void;
  signal?: AbortSignal;
}

/** Joins a parent path and a name: `a/b`, or `b` when the parent is the root (''). */
export function childPath(parent: Buffer, name: Buffer): Buffer {
  if (parent.length === 0) return name;
  const out = Buffer.allocUnsafe(parent.length + 1 + name.length);
  // TypedArray#set, not Buffer#copy: no argument checks in JS on every call.
  out.set(parent, 0);
  out[parent.length] = 0x2f;
  out.set(name, parent.length + 1);
  return out;
}

/**
 * Walks the trees `roots` in step (an undefined root is an empty tree). Reads a directory only when the walk
 * descends into it, and each directory at most once per side.
 *
 * Locking: none (reads only). Throws ObjectNotFoundError / RepositoryCorruptError from tree reads (naming the path;
 * with `onReadError` they are reported there instead), AbortedError when `signal` aborts (checked at every directory), and whatever the callbacks throw.
 *
 * @example
 * // every path that differs between two trees
 * walkTrees(repo.objects, [a, b], { enter(p, [x, y]) { if (x?.oid !== y?.oid || x?.mode !== y?.mode) console.log(p.toString()); } });
 */
export function walkTrees(objects: ObjectReader, roots: ReadonlyArray<Oid | undefined>, options: WalkOptions): void {
  const skipIdentical = (options.skipIdentical ?? true) && roots.length > 1;
  const skipEqual = (options.skipEqualEntries ?? false) && roots.length > 1;
  if (skipIdentical && roots.every((r) => r !== undefined && r === roots[0])) return;
  const base = options.path ?? Buffer.alloc(0);
  const lists = roots.map((r) => (r ? readListing(objects, r, base, options) : EMPTY));
  walkLevel(objects, base, lists, options, skipIdentical, skipEqual);
}

const EMPTY: TreeListing = { buf: Buffer.alloc(0), length: 0, starts: new Uint32Array(1), nameStarts: new Uint32Array(0), nameEnds: new Uint32Array(0) };

/** The entries of the directory `oid` at `path`: a failed read names the path ('/' for the image root), or goes to onReadError. */
function readListing(objects: ObjectReader, oid: Oid, path: Buffer, options: WalkOptions): TreeListing {
  if (!options.onReadError) return readTreeListing(objects, oid, path.length ? path.toString('utf8') : '/');
  try {
    return readTreeListing(objects, oid);
  } catch (e) {
    options.onReadError(e, path, oid);
    return EMPTY;
  }
}

function walkLevel(objects: ObjectReader, dir: Buffer, lists: TreeListing[], options: WalkOptions, skipIdentical: boolean, skipEqual: boolean): void {
  if (options.signal?.aborted) throw new AbortedError();
  const n = lists.length;
  const pos = new Array<number>(n).fill(0);
  const at = new Array<number>(n);
  const row = new Array<TreeEntry | undefined>(n);
  for (;;) {
    // One pass over the heads: the smallest name so far and the sides that have it, one comparison per side.
    let m = -1;
    let count = 0;
    for (let i = 0; i < n; i++) {
      at[i] = -1;
      if (pos[i]! >= lists[i]!.length) continue;
      const c = m < 0 ? -1 : compareListedNames(lists[i]!, pos[i]!, lists[m]!, pos[m]!);
      if (c < 0) {
        for (let k = 0; k < i; k++) at[k] = -1;
        m = i;
        count = 0;
      }
      if (c <= 0) {
        at[i] = pos[i]!;
        count++;
      }
    }
    if (m < 0) return;
    // Whether every side has the very same entry there.
    let equal = skipEqual && count === n;
    for (let i = 0; equal && i < n; i++) if (i !== m && !sameListedEntry(lists[i]!, at[i]!, lists[m]!, at[m]!)) equal = false;
    for (let i = 0; i < n; i++) if (at[i]! >= 0) pos[i]!++;
    if (equal) continue;
    for (let i = 0; i < n; i++) row[i] = at[i]! >= 0 ? listingEntry(lists[i]!, at[i]!) : undefined;
    const same = skipIdentical ? sameSubtree(row) : 'no';
    if (same === 'all') continue;
    const p = childPath(dir, row[m]!.name);
    const entries = row.slice();
    if (options.enter(p, entries) === false || same === 'content') continue;
    if (!entries.some((e) => e?.type === 'dir')) continue;
    const children = entries.map((e) => (e?.type === 'dir' && e.oid ? readListing(objects, e.oid, p, options) : EMPTY));
    walkLevel(objects, p, children, options, skipIdentical, skipEqual);
    options.leave?.(p, entries);
  }
}

/**
 * 'all': every side is a directory with one and the same id and the same metadata of its own (nothing to report);
 * 'content': the same id but the directories' own metadata differs (report it, nothing below differs); 'no'.
 */
function sameSubtree(row: ReadonlyArray<TreeEntry | undefined>): 'all' | 'content' | 'no' {
  const first = row[0];
  if (first?.type !== 'dir') return 'no';
  let meta = true;
  for (let i = 1; i < row.length; i++) {
    const e = row[i];
    if (e?.type !== 'dir' || e.oid !== first.oid) return 'no';
    if (meta && !sameMeta(e, first)) meta = false;
  }
  return meta ? 'all' : 'content';
}

/**
 * Walks one tree in pre-order: `visit(path, entry)` for every entry below `root` (not for the root itself); return
 * `false` to skip a directory's children. `options.path` is the root's image path (see WalkOptions).
 *
 * @example
 * let files = 0; walkTree(repo.objects, tree, (p, e) => { if (e.type === 'file') files++; });
 */
export function walkTree(
  objects: ObjectReader, root: Oid, visit: (path: Buffer, entry: TreeEntry) => boolean | void,
  options: Pick<WalkOptions, 'path' | 'onReadError' | 'signal'> & { leave?: (path: Buffer, entry: TreeEntry) => void } = {},
): void {
  const { leave, ...rest } = options;
  walkTrees(objects, [root], { ...rest, enter: (p, es) => visit(p, es[0]!), ...(leave ? { leave: (p, es) => leave(p, es[0]!) } : {}) });
}
