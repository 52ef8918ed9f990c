/**
 * The diff op: what changed between two images, from their manifests. Trees are compared entry by entry, and a
 * subtree whose id is the same on both sides is skipped without being read (content addressing makes "same id"
 * mean "same everything below"). Content is read only for `-p` patches and for package databases.
 */
import { UsageError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import type { TreeEntry } from '../model/tree.js';
import type { ObjectReader } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import type { HostSide } from './diff-source.js';
import { readBlobBytes } from '../store/typed.js';
import { walkTrees } from '../tree/walk.js';
import { ensureContent } from '../sync/partial.js';
import { normalizeImagePath, resolveRevision, resolveSpec } from './resolve.js';
import { hexIfNotUtf8, quoteResultPath } from '../model/quote.js';
import { mergeBase } from './merge-base.js';
import type { DiffEntry, DiffField, DiffSide } from './diff-entry.js';

export type { DiffStatus, DiffField, DiffSide, DiffEntry } from './diff-entry.js';

/** The options of {@link diff}: the two sides, path limits, and what counts as a change. */
export interface DiffOptions {
  /** `REV[:path]` of each side; `a: null` is an empty image (everything in B is added: what a root commit did). */
  a: string | null;
  b: string;
  /** Only entries at or below these image paths (as given, or as bytes). */
  paths?: Array<string | Buffer>;
  ignoreMtime?: boolean;
  /** Detect renames by blob id (default true). */
  renames?: boolean;
  /** A side read from the host instead of `a` / `b` (diff-source.ts readHostSide; the revision string names it). */
  hosts?: { a?: HostSide; b?: HostSide };
}

/** What {@link diff} found: both sides and the entries that differ, in path order. */
export interface DiffResult {
  /** `commit` is null for a side read from the host (a directory or a tar); '' (rev '') for the empty side of a root commit. */
  a: { rev: string; commit: Oid | null };
  b: { rev: string; commit: Oid | null };
  entries: DiffEntry[];
}

function side(e: TreeEntry): DiffSide {
  return {
    type: e.type, mode: e.mode.toString(8).padStart(4, '0'), uid: e.uid, gid: e.gid, size: e.size, mtimeNs: e.mtimeNs.toString(),
    ...(e.oid && e.type !== 'dir' ? { oid: e.oid } : {}), ...(e.linkTarget ? { linkTarget: e.linkTarget.toString('utf8') } : {}),
  };
}

/** An entry's path as results carry it: UTF-8 text, plus the exact bytes in hex when they are not UTF-8. */
function named(p: Buffer): { path: string; pathHex?: string } {
  const hex = hexIfNotUtf8(p);
  return { path: p.toString('utf8'), ...(hex ? { pathHex: hex } : {}) };
}

function xattrChanges(a: TreeEntry, b: TreeEntry): string[] {
  const m = new Map(a.xattrs.map((x) => [x.name, Buffer.from(x.value)]));
  const out: string[] = [];
  for (const x of b.xattrs) {
    const v = m.get(x.name);
    if (!v || !v.equals(Buffer.from(x.value))) out.push(x.name);
    m.delete(x.name);
  }
  out.push(...m.keys());
  return out.sort();
}

function holesKey(e: TreeEntry): string {
  return (e.holes ?? []).map((h) => `${h.offset}+${h.length}`).join(',');
}

/**
 * A hardlink group's name (an image path) relative to the compared directory `root`, so that a subtree (REV:sub,
 * whose groups are named from the image's root) and a directory read from the host (named from itself) compare
 * equal when the same files are linked; a name outside `root` stays whole.
 */
function groupName(h: Buffer | undefined, root: Buffer): Buffer {
  if (!h) return Buffer.alloc(0);
  if (root.length && h.length > root.length && h[root.length] === 0x2f && h.subarray(0, root.length).equals(root)) return h.subarray(root.length + 1);
  return h;
}

/** Fields that differ between two entries of the same type; `roots`: the image paths of the compared directories. */
function changedFields(a: TreeEntry, b: TreeEntry, ignoreMtime: boolean, roots: [Buffer, Buffer]): { fields: DiffField[]; xattrs: string[] } {
  const fields: DiffField[] = [];
  if (a.type !== 'dir' && (a.oid ?? '') !== (b.oid ?? '')) fields.push('content');
  if (a.mode !== b.mode) fields.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) fields.push('owner');
  const xattrs = xattrChanges(a, b);
  if (xattrs.length) fields.push('xattrs');
  if (!ignoreMtime && a.mtimeNs !== b.mtimeNs) fields.push('mtime');
  if (!(a.linkTarget ?? Buffer.alloc(0)).equals(b.linkTarget ?? Buffer.alloc(0))) fields.push('target');
  if ((a.rdev?.major ?? 0) !== (b.rdev?.major ?? 0) || (a.rdev?.minor ?? 0) !== (b.rdev?.minor ?? 0)) fields.push('rdev');
  if (a.type === 'file' && a.oid === b.oid && holesKey(a) !== holesKey(b)) fields.push('holes');
  if (!groupName(a.hardlink, roots[0]).equals(groupName(b.hardlink, roots[1]))) fields.push('hardlink');
  return { fields, xattrs };
}

/** True when `p` is at or below one of `limits` (or when there are none), or is a parent of one (so the walk goes on). */
function inScope(p: Buffer, limits: Buffer[]): 'in' | 'above' | 'out' {
  if (limits.length === 0) return 'in';
  for (const l of limits) {
    if (l.length === 0) return 'in';
    if (p.length >= l.length && p.subarray(0, l.length).equals(l) && (p.length === l.length || p[l.length] === 0x2f)) return 'in';
    if (l.length > p.length && (p.length === 0 || (l.subarray(0, p.length).equals(p) && l[p.length] === 0x2f))) return 'above';
  }
  return 'out';
}

/**
 * The two sides `viva diff` compares for its arguments: `A B`; `A..B` (= `A B`); `A...B` (B against the merge base);
 * or one revision against its first parent. Throws UsageError for a root commit given alone (no parent to compare with).
 */
export function resolveDiffSides(repo: Repository, a: string, b?: string): { a: string; b: string } {
  if (b !== undefined) return { a, b };
  const range = resolveDiffRange(repo, a);
  if (range) return range;
  const colon = a.indexOf(':');
  const rev = colon >= 0 ? a.slice(0, colon) : a;
  if (resolveRevision(repo, rev).commit.parents.length === 0) {
    throw new UsageError(`'${rev}' is a root commit: it has no parent to compare with (give two revisions: viva diff A B)`);
  }
  return { a: `${rev}~1${colon >= 0 ? a.slice(colon) : ''}`, b: a };
}

/**
 * git's ranges for diff: `A..B` is `A B`, `A...B` compares B with the merge base of A and B (what B changed since
 * they parted); an empty side is HEAD. Returns undefined for a spec that is not a range (a revision, or REV:path —
 * a `:` ends the revision, so `..` in a path is a path). Throws UsageError when A and B share no history.
 */
export function resolveDiffRange(repo: Repository, spec: string): { a: string; b: string } | undefined {
  // The left side is a revision (no ':'); the right may name a path inside its image (a..b:etc).
  const m = /^([^:]*?)(\.\.\.?)([^.].*|)$/.exec(spec);
  if (!m) return undefined;
  const a = m[1] || 'HEAD';
  const b = m[3] || 'HEAD';
  if (m[2] === '..') return { a, b };
  const base = mergeBase(repo, resolveRevision(repo, a).oid, resolveRevision(repo, b).oid);
  if (!base) throw new UsageError(`'${a}' and '${b}' have no common ancestor: '${spec}' has no merge base to compare with (use '${a}..${b}')`);
  return { a: base, b };
}

/**
 * Compares two images (`REV` or `REV:path` each). Locking: none. Throws RevisionNotFoundError, PathNotFoundError.
 *
 * @example
 * const d = diff(repo, { a: 'debian/12/base', b: 'debian/12/base2' });
 * for (const e of d.entries) console.log(e.status, e.path);
 */
export function diff(repo: Repository, options: DiffOptions): DiffResult {
  const host = (h: HostSide) => ({ commitOid: null, path: Buffer.alloc(0), entry: h.entry });
  const rb = options.hosts?.b ? host(options.hosts.b) : resolveSpec(repo, options.b);
  // The empty side: B's root with no tree below it (a directory with the same metadata, so only its contents differ).
  const ra = options.hosts?.a ? host(options.hosts.a) : options.a === null
    ? { ...rb, commitOid: '', entry: rb.entry.type === 'dir' ? { ...rb.entry, oid: undefined } : undefined }
    : resolveSpec(repo, options.a);
  const limits = (options.paths ?? []).map((p) => normalizeImagePath(p));
  const objects: ObjectReader = options.hosts?.a?.objects ?? options.hosts?.b?.objects ?? repo.objects;
  const ignoreMtime = options.ignoreMtime ?? false;
  const roots: [Buffer, Buffer] = [ra.path, rb.path];
  const out: DiffEntry[] = [];

  // One walker callback: report what differs at `p`; `false` keeps the walk out of a subtree outside the limits.
  // The walker merges both sides' entries by name, descends into every side that is a directory (so the children of
  // a directory that became something else, or the reverse, come as deleted or added), and skips a subtree with the
  // same id on both sides without reading it.
  const visit = (p: Buffer, a: TreeEntry | undefined, b: TreeEntry | undefined): boolean => {
    const scope = inScope(p, limits);
    if (scope === 'out') return false;
    if (scope !== 'in') return true;
    if (!a) out.push({ status: 'A', ...named(p), new: side(b!) });
    else if (!b) out.push({ status: 'D', ...named(p), old: side(a) });
    else if (a.type !== b.type) out.push({ status: 'T', ...named(p), old: side(a), new: side(b) });
    else {
      const { fields, xattrs } = changedFields(a, b, ignoreMtime, roots);
      if (fields.length) out.push({ status: 'M', ...named(p), changes: fields, old: side(a), new: side(b), ...(xattrs.length ? { xattrs } : {}) });
    }
    return true;
  };
  // Paths are relative to the compared directories; two files (REV:etc/hostname REV~1:etc/hostname) are named by
  // their own path, not as the root '/'.
  const rootPath = (ra.entry?.type ?? 'dir') === 'dir' && rb.entry.type === 'dir' ? Buffer.alloc(0) : rb.path.length ? rb.path : ra.path;
  if (visit(rootPath, ra.entry, rb.entry)) {
    const dirOid = (e: TreeEntry | undefined) => (e?.type === 'dir' ? e.oid : undefined);
    walkTrees(objects, [dirOid(ra.entry), dirOid(rb.entry)], { path: rootPath, skipEqualEntries: true, enter: (p, [a, b]) => visit(p, a, b) });
  }
  const entries = options.renames === false ? out : detectRenames(out);
  return { a: { rev: options.a ?? '', commit: ra.commitOid }, b: { rev: options.b, commit: rb.commitOid }, entries: entries.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0)) };
}

/** Pairs a deleted and an added regular file with the same blob id (and size > 0) into a rename, first come first paired. */
function detectRenames(entries: DiffEntry[]): DiffEntry[] {
  const deleted = new Map<string, DiffEntry[]>();
  for (const e of entries) {
    if (e.status === 'D' && e.old?.type === 'file' && e.old.oid && e.old.size > 0) {
      const l = deleted.get(e.old.oid) ?? [];
      l.push(e);
      deleted.set(e.old.oid, l);
    }
  }
  if (deleted.size === 0) return entries;
  const paired = new Set<DiffEntry>();
  const out: DiffEntry[] = [];
  for (const e of entries) {
    if (e.status !== 'A' || e.new?.type !== 'file' || !e.new.oid) continue;
    const d = deleted.get(e.new.oid)?.shift();
    if (!d) continue;
    paired.add(d).add(e);
    const r: DiffEntry = {
      status: 'R', path: e.path, ...(e.pathHex ? { pathHex: e.pathHex } : {}), from: d.path, ...(d.pathHex ? { fromHex: d.pathHex } : {}),
      old: d.old!, new: e.new,
    };
    const ta = { ...d.old!, linkTarget: undefined };
    const tb = { ...e.new, linkTarget: undefined };
    const changes: DiffField[] = [];
    if (ta.mode !== tb.mode) changes.push('mode');
    if (ta.uid !== tb.uid || ta.gid !== tb.gid) changes.push('owner');
    if (ta.mtimeNs !== tb.mtimeNs) changes.push('mtime');
    if (changes.length) r.changes = changes;
    out.push(r);
  }
  return [...entries.filter((e) => !paired.has(e)), ...out];
}

// ---------------------------------------------------------------------------------------------------------------
// Patches

/**
 * The options of {@link patchFor} and {@link addLogPatches}: the size limit, lines of context and where content is read.
 */
export interface PatchOptions {
  /** Files larger than this (either side) get a one-line note instead of a patch. */
  maxBytes?: number;
  /** Lines of context around each change (git's -U; default 3). */
  context?: number;
  /** Where content is read (default the repository; a host side's overlay for `diff REV DIR`). */
  objects?: ObjectReader;
}

/** git's test: a NUL byte in the first 8000 bytes makes a file binary. */
export function isBinary(b: Buffer): boolean {
  return b.subarray(0, 8000).includes(0);
}

/** A unified patch for one M/A/D/R entry of regular files (or a line saying why not). */
export async function patchFor(repo: Repository, e: DiffEntry, options: PatchOptions = {}): Promise<string | undefined> {
  const maxBytes = options.maxBytes ?? 1 << 20;
  const old = e.old?.type === 'file' ? e.old : undefined;
  const neu = e.new?.type === 'file' ? e.new : undefined;
  if (!old && !neu) return undefined;
  if (e.status === 'M' && !e.changes?.includes('content')) return undefined;
  if (e.status === 'R' && old?.oid === neu?.oid) return undefined;
  // Quoted as a whole, prefix included, as git prints "a/new\nline".
  const aName = e.from !== undefined ? quoteResultPath(`a/${e.from}`, e.fromHex && `612f${e.fromHex}`) : quoteResultPath(`a/${e.path}`, e.pathHex && `612f${e.pathHex}`);
  const bName = quoteResultPath(`b/${e.path}`, e.pathHex && `622f${e.pathHex}`);
  if ((old?.size ?? 0) > maxBytes || (neu?.size ?? 0) > maxBytes) {
    return `diff ${aName} ${bName}: larger than ${maxBytes} bytes (${old?.size ?? 0} -> ${neu?.size ?? 0}); no patch (--max-patch-size)\n`;
  }
  const objects = options.objects ?? repo.objects;
  // A partial clone fetches the repository's missing blobs; a host side's own blobs are in its overlay.
  const hostOnly = (o: string) => objects !== repo.objects && !repo.objects.hasObject('blob', o) && objects.hasObject('blob', o);
  await ensureContent(repo, [old?.oid ?? '', neu?.oid ?? ''].filter((o) => !hostOnly(o)));
  const a = old?.oid ? await readBlobBytes(objects, old.oid, old.size, e.from ?? e.path) : Buffer.alloc(0);
  const b = neu?.oid ? await readBlobBytes(objects, neu.oid, neu.size, e.path) : Buffer.alloc(0);
  if (isBinary(a) || isBinary(b)) return `Binary files ${old ? aName : '/dev/null'} and ${neu ? bName : '/dev/null'} differ\n`;
  // jsdiff quotes names itself, from text (every non-ASCII byte octal, and bytes that are not UTF-8 already lost):
  // give it plain placeholders and put the names quoted from their bytes into the two header lines.
  // Loaded for patches only (19 modules that diff's other uses and log do not need).
  const { createTwoFilesPatch } = await import('diff');
  const patch = createTwoFilesPatch('A', 'B', a.toString('utf8'), b.toString('utf8'), '', '', { context: options.context ?? 3 });
  return patch.replace(/^--- A(?=\t|$)/m, `--- ${old ? aName : '/dev/null'}`).replace(/^\+\+\+ B(?=\t|$)/m, `+++ ${neu ? bName : '/dev/null'}`);
}
