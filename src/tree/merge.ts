/**
 * The three-way merge of two image trees against their base (isomorphic-git's `mergeTree`, one walk of
 * base/ours/theirs): per path, what one side changed is taken, the same change made on both is taken once, and what
 * both changed differently is merged field by field — content line by line (or by a FileMerger chosen by path),
 * mode, owner, xattrs and mtime independently — or reported as a conflict. Identical subtrees are skipped unread, and
 * a subtree only one side changed is taken by its id without descending. The result is written through a mutable
 * tree opened on ours, so only the directories on merged paths are written again.
 */
import { AbortedError, UsageError } from '../errors.js';
import { sameMeta } from '../model/codec.js';
import type { RootMeta } from '../model/commit.js';
import type { Oid } from '../model/oid.js';
import { quotePath } from '../model/quote.js';
import type { TreeEntry } from '../model/tree.js';
import { storeBytes } from '../store/store-content.js';
import type { ObjectReader, ObjectWriter } from '../store/object-store.js';
import { readBlobBytes } from '../store/typed.js';
import { MutableTree, type NodeMeta, splitPath } from './mutable-tree.js';
import { isLinked, mergeMeta, metaOf, sameContent, sameEntry } from './merge-fields.js';
import { type LinkedPath, type WholeSubtree, decideLinkGroups, scanWholeSubtrees } from './merge-links.js';
import { MAX_TEXT_MERGE_BYTES, type MergeLabels, isText, mergeText } from './merge-text.js';
import { walkTrees } from './walk.js';

export { MAX_TEXT_MERGE_BYTES, type MergeLabels } from './merge-text.js';

/** What a conflict is about; frozen names (the CLI and --json show them). */
export type MergeConflictKind =
  | 'content'        // both changed a file's content and the text merge overlaps, or the file is binary
  | 'add/add'        // both added the same path with different content or type
  | 'modify/delete'  // ours modified, theirs deleted
  | 'delete/modify'  // ours deleted, theirs modified
  | 'type'           // file/dir/symlink/device type changed differently on the two sides
  | 'mode' | 'owner' | 'xattr'   // both changed that metadata field to different values
  | 'semantic';      // a FileMerger refused (detail says why)

/** A conflict left at `path` (image path bytes; '' is the root directory's own metadata). */
export interface MergeConflict {
  path: Buffer;
  kind: MergeConflictKind;
  detail?: string;
}

/** A merge of one file's content that understands its format (dpkg status, /etc/passwd, …); chosen by path. */
export interface FileMerger {
  name: string;
  matches(path: Buffer): boolean;
  /** base is undefined for add/add. Returns the merged bytes, or a conflict description. */
  merge(input: { path: Buffer; base?: Buffer; ours: Buffer; theirs: Buffer }): { data: Buffer } | { conflict: string };
}

/**
 * How to resolve the conflicts at one path: take that side's entry ('base' where base has none: remove it), or write
 * this content as a file.
 */
export type Resolution = 'ours' | 'theirs' | 'base' | { data: Buffer };

/** One side of a merge: a root tree and the root directory's own metadata (a commit's `root` and `rootMeta`). */
export interface MergeSide {
  tree: Oid;
  rootMeta: RootMeta;
}

/** How mergeTrees merges: format-aware mergers, resolutions, the mtime of produced files, marker labels. */
export interface MergeTreesOptions {
  /** Format-aware merges, tried in order before the line merge; the first that matches a path merges it. */
  mergers?: FileMerger[];
  /**
   * Per path (image path bytes as latin1 key): how to resolve a conflict there. A resolution for a path without a
   * conflict is an error (UsageError naming it).
   */
  resolutions?: Map<string, Resolution>;
  /** mtime of files whose content the merge produced (text merges, FileMerger results, resolutions with data). */
  mtimeNs: bigint;
  /** The names after the conflict markers (default ours, base, theirs). */
  labels?: MergeLabels;
  signal?: AbortSignal;
}

/** The merged tree and root metadata, the conflicts left, and what the merge did. */
export interface MergeTreesResult {
  /**
   * The merged tree, written through `writer`. With conflicts left, the tree for a checkout: text conflicts hold
   * git-style markers (<<<<<<< ours / ||||||| base / ======= / >>>>>>> theirs, labels configurable), binary/other
   * conflicts keep ours at the path and put theirs beside it as PATH~theirs (and PATH~base when there is one).
   */
  tree: Oid;
  rootMeta: RootMeta;
  /** The conflicts no resolution settled, by path (byte order). */
  conflicts: MergeConflict[];
  /** Paths the walk looked at (identical subtrees are skipped unread). */
  visited: number;
  /** Files whose content was merged line by line or by a FileMerger, cleanly. */
  merged: number;
}

type Sides = { b?: TreeEntry; o?: TreeEntry; t?: TreeEntry };

/** The conflicts at one path, the three entries there and what the unresolved conflict tree puts there. */
interface PathConflicts extends Sides {
  path: Buffer;
  list: MergeConflict[];
  /** The merged own metadata (ours' value in conflicting fields), when both sides have an entry of one type. */
  meta?: NodeMeta;
  /** Put theirs (and base) beside ours as PATH~theirs, PATH~base. */
  beside?: boolean;
  /** What stands at the path while unresolved, when not ours' entry as the plan left it (a file with markers). */
  entry?: TreeEntry;
  /** A hardlink group's conflict: the paths of the group's cluster share this number and are resolved together. */
  group?: number;
}

/** Both sides changed a file's content: merged after the walk (reading content is async). */
interface ContentJob {
  path: Buffer;
  kind: 'content' | 'add/add';
  sides: Sides;
  /** Base's entry when it is a file (else the merge has no base). */
  base?: TreeEntry;
  meta: NodeMeta;
}

/** What the walk decided, before anything is written. */
class MergePlan {
  visited = 0;
  merged = 0;
  /** Entries to put in the merged tree (opened on ours), in walk order; undefined removes. */
  readonly sets: Array<{ path: Buffer; entry: TreeEntry | undefined }> = [];
  /** Directories both sides kept whose own metadata merged to something other than ours'. */
  readonly dirMeta: Array<{ path: Buffer; meta: NodeMeta }> = [];
  readonly contents: ContentJob[] = [];
  readonly linked: LinkedPath[] = [];
  readonly whole: WholeSubtree[] = [];
  readonly conflicts = new Map<string, PathConflicts>();

  conflict(path: Buffer, sides: Sides, kind: MergeConflictKind, detail: string, how: Pick<PathConflicts, 'meta' | 'beside' | 'entry' | 'group'> = {}): void {
    const k = path.toString('latin1');
    let pc = this.conflicts.get(k);
    if (!pc) this.conflicts.set(k, (pc = { path, ...sides, list: [] }));
    pc.list.push({ path, kind, detail });
    pc.meta ??= how.meta;
    pc.beside ||= how.beside;
    pc.entry ??= how.entry;
    pc.group ??= how.group;
  }
}

const show = (p: Buffer) => (p.length ? quotePath(p) : '/');

/**
 * One path of the walk: decides it, or returns true to descend (both sides kept a directory both changed).
 * A hardlinked entry is left to the group decision (see merge-links.ts).
 */
function visitPath(plan: MergePlan, path: Buffer, b?: TreeEntry, o?: TreeEntry, t?: TreeEntry): boolean {
  plan.visited++;
  if (sameEntry(o, t) && sameEntry(b, o)) return false;
  if (isLinked(b) || isLinked(o) || isLinked(t)) {
    plan.linked.push({ path, b, o, t, current: 'ours' });
    return false;
  }
  if (sameEntry(o, t)) return takeWhole(plan, path, b, o, 'both');
  if (sameEntry(b, o)) {
    plan.sets.push({ path, entry: t });
    return takeWhole(plan, path, b, t, 'theirs');
  }
  if (sameEntry(b, t)) return takeWhole(plan, path, b, o, 'ours');
  return mergeBoth(plan, path, { b, o, t });
}

/** Records a directory taken whole (for the hardlink scan); never descends. */
function takeWhole(plan: MergePlan, path: Buffer, base: TreeEntry | undefined, e: TreeEntry | undefined, side: WholeSubtree['side']): false {
  if (e?.type === 'dir') plan.whole.push({ path, side, base, dir: e });
  return false;
}

/** Both sides changed the entry at `path`, differently. */
function mergeBoth(plan: MergePlan, path: Buffer, sides: Sides): boolean {
  const { b, o, t } = sides;
  if (!o || !t) {
    const what = (o ?? t)!.type === 'dir' ? 'changed something in the directory' : 'changed it';
    const detail = o ? `ours ${what}, theirs deleted it` : `ours deleted it, theirs ${what}`;
    plan.conflict(path, sides, o ? 'modify/delete' : 'delete/modify', detail, { beside: true });
    return false;
  }
  if (o.type !== t.type) {
    plan.conflict(path, sides, b ? 'type' : 'add/add', `ours ${o.type}, theirs ${t.type}${b ? `, base ${b.type}` : ''}`, { beside: true });
    return false;
  }
  const base = b?.type === o.type ? b : undefined;
  const meta = mergeOwnMeta(plan, path, sides, base);
  if (o.type === 'dir') {
    if (!sameMeta(meta, o)) plan.dirMeta.push({ path, meta });
    return true;
  }
  mergeLeaf(plan, path, sides, base, meta);
  return false;
}

/** Merges the own metadata of ours' and theirs' entries at `path` (of one type) against `base`; conflicts go to the plan. */
function mergeOwnMeta(plan: MergePlan, path: Buffer, sides: Sides, base: TreeEntry | undefined): NodeMeta {
  const { meta, conflicts } = mergeMeta(sides.o!, sides.t!, base);
  for (const c of conflicts) plan.conflict(path, sides, c.field, c.detail, { meta });
  return meta;
}

/** Two non-directories of one type: content from the side that changed it, or merged after the walk, or a conflict. */
function mergeLeaf(plan: MergePlan, path: Buffer, sides: Sides, base: TreeEntry | undefined, meta: NodeMeta): void {
  const o = sides.o!;
  const t = sides.t!;
  const from = sameContent(o, t) || (base && sameContent(base, t)) ? o : base && sameContent(base, o) ? t : undefined;
  if (from) {
    const e = { ...from, ...meta };
    if (!sameEntry(e, o)) plan.sets.push({ path, entry: e });
    return;
  }
  const kind = sides.b ? 'content' : 'add/add';
  if (o.type === 'file') {
    plan.contents.push({ path, kind, sides, base, meta });
    return;
  }
  const what = o.type === 'symlink' ? 'symlink targets differ' : 'device numbers differ';
  plan.conflict(path, sides, kind, what, { meta, beside: true });
}

/** What the content merges need besides the plan. */
interface MergeContext {
  objects: ObjectReader;
  writer: ObjectWriter;
  options: MergeTreesOptions;
  plan: MergePlan;
}

/** A file entry for content the merge produced: `meta`, the merge's mtime, the stored content. */
async function producedFile(ctx: MergeContext, path: Buffer, meta: NodeMeta, data: Buffer): Promise<TreeEntry> {
  const stored = await storeBytes(ctx.writer, data, ctx.options.signal);
  const parts = splitPath(path);
  return {
    name: parts[parts.length - 1] ?? Buffer.alloc(0), type: 'file', ...meta, mtimeNs: ctx.options.mtimeNs,
    size: stored.size, oid: stored.oid, ...(stored.holes.length ? { holes: stored.holes } : {}),
  };
}

async function contentOf(ctx: MergeContext, path: Buffer, e: TreeEntry): Promise<Buffer> {
  return readBlobBytes(ctx.objects, e.oid!, e.size, show(path));
}

/** Merges one file both sides changed: a FileMerger when one matches, else line by line when all sides are text. */
async function mergeContent(ctx: MergeContext, job: ContentJob): Promise<void> {
  const { plan, options } = ctx;
  const { sides } = job;
  const refuse = (kind: MergeConflictKind, detail: string) => plan.conflict(job.path, sides, kind, detail, { meta: job.meta, beside: true });
  if ([job.base, sides.o, sides.t].some((e) => e && e.size > MAX_TEXT_MERGE_BYTES)) return refuse(job.kind, `larger than ${MAX_TEXT_MERGE_BYTES} bytes: not merged`);
  const base = job.base ? await contentOf(ctx, job.path, job.base) : undefined;
  const ours = await contentOf(ctx, job.path, sides.o!);
  const theirs = await contentOf(ctx, job.path, sides.t!);
  const merger = options.mergers?.find((m) => m.matches(job.path));
  let data: Buffer;
  if (merger) {
    const r = merger.merge({ path: job.path, ...(base ? { base } : {}), ours, theirs });
    if ('conflict' in r) return refuse('semantic', `${merger.name}: ${r.conflict}`);
    data = r.data;
  } else {
    if (![base, ours, theirs].every((x) => x === undefined || isText(x))) return refuse(job.kind, 'binary file');
    const r = mergeText(base ?? Buffer.alloc(0), ours, theirs, options.labels);
    if (r.conflicts) {
      const entry = await producedFile(ctx, job.path, job.meta, r.data);
      plan.conflict(job.path, sides, job.kind, `${r.conflicts} overlapping change${r.conflicts > 1 ? 's' : ''}`, { meta: job.meta, entry });
      return;
    }
    data = r.data;
  }
  plan.merged++;
  plan.sets.push({ path: job.path, entry: await producedFile(ctx, job.path, job.meta, data) });
}

/** The entry without its hardlink group: a copy that stands alone (conflict trees never link across sides). */
function unlinked(e: TreeEntry | undefined): TreeEntry | undefined {
  if (!isLinked(e)) return e;
  const { hardlink: _, ...rest } = e!;
  return rest;
}

/** A hardlink group's conflict at one path, named as the same change of a lone file would be ('content' otherwise). */
function linkConflictKind({ b, o, t }: LinkedPath): MergeConflictKind {
  if (!o || !t) return !b ? 'content' : o ? 'modify/delete' : 'delete/modify';
  if (o.type !== t.type) return b ? 'type' : 'add/add';
  return b ? 'content' : 'add/add';
}

/** Adds the hardlink groups' decisions to the plan: entries to take, and conflicts shared by a group's paths. */
function planLinkGroups(ctx: MergeContext): void {
  const { plan } = ctx;
  if (plan.whole.length) scanWholeSubtrees(ctx.objects, plan.whole, plan.linked, ctx.options.signal);
  const d = decideLinkGroups(plan.linked);
  plan.sets.push(...d.sets);
  for (const { rec, group, members } of d.conflicts) {
    const detail = `hardlink group changed differently on both sides (${members.map(show).join(', ')})`;
    plan.conflict(rec.path, rec, linkConflictKind(rec), detail, { group, beside: true, entry: unlinked(rec.o) });
  }
}

/** PATH~label, or PATH~label_N when that name is taken. */
function besidePath(tree: MutableTree, path: Buffer, label: string): Buffer {
  for (let i = 0; ; i++) {
    const p = Buffer.concat([path, Buffer.from(i ? `~${label}_${i}` : `~${label}`)]);
    if (!tree.lookup(p)) return p;
  }
}

/** Leaves an unresolved conflict in the tree for a checkout: markers, or ours at the path and the others beside it. */
function placeConflict(tree: MutableTree, pc: PathConflicts): void {
  if (pc.entry || pc.group !== undefined) tree.setEntry(pc.path, pc.entry);
  else if (pc.beside && pc.meta && pc.o) tree.setEntry(pc.path, { ...pc.o, ...pc.meta });
  if (!pc.beside) return;
  if (pc.t) tree.setEntry(besidePath(tree, pc.path, 'theirs'), unlinked(pc.t));
  if (pc.b) tree.setEntry(besidePath(tree, pc.path, 'base'), unlinked(pc.b));
}

/** The metadata a resolution with content gives its file: the merged metadata of a file both kept, else a side's. */
function dataMeta(pc: PathConflicts): NodeMeta {
  if (pc.o?.type === 'file' && pc.t?.type === 'file' && pc.meta) return pc.meta;
  const from = [pc.o, pc.t, pc.b].find((e) => e?.type === 'file');
  if (!from) throw new UsageError(`cannot resolve '${show(pc.path)}' with content: no side has a file there`, { path: show(pc.path) });
  return metaOf(from);
}

/**
 * Applies a resolution at one path: a side's entry (of a directory both sides kept, only its own metadata: the merge
 * below it stands), or a file with the given content.
 */
async function resolveAt(ctx: MergeContext, tree: MutableTree, pc: PathConflicts, r: Resolution): Promise<void> {
  const dirs = pc.o?.type === 'dir' && pc.t?.type === 'dir';
  if (typeof r === 'string') {
    const e = r === 'ours' ? pc.o : r === 'theirs' ? pc.t : pc.b;
    if (dirs && e?.type === 'dir') tree.setMeta(pc.path, metaOf(e));
    else tree.setEntry(pc.path, e);
    return;
  }
  if (dirs || pc.group !== undefined) {
    const why = dirs ? 'a directory' : 'in a hardlink group (resolve it with ours, theirs or base)';
    throw new UsageError(`cannot resolve '${show(pc.path)}' with content: it is ${why}`, { path: show(pc.path) });
  }
  tree.setEntry(pc.path, await producedFile(ctx, pc.path, dataMeta(pc), r.data));
}

/**
 * The resolution for each conflict: given at its path, or for a hardlink group's conflict at any path of the group.
 * Throws UsageError for a resolution at a path without a conflict, and for different ones within one group.
 */
function resolutionsFor(plan: MergePlan, given: Map<string, Resolution>): Map<PathConflicts, Resolution> {
  const byGroup = new Map<number, Resolution>();
  for (const [k, r] of given) {
    const pc = plan.conflicts.get(k);
    if (!pc) throw new UsageError(`no conflict at '${show(Buffer.from(k, 'latin1'))}' to resolve`, { path: show(Buffer.from(k, 'latin1')) });
    if (pc.group === undefined) continue;
    const prev = byGroup.get(pc.group);
    if (prev !== undefined && !sameResolution(prev, r)) {
      throw new UsageError(`conflicting resolutions for the hardlink group of '${show(pc.path)}': its paths are one file`, { path: show(pc.path) });
    }
    byGroup.set(pc.group, r);
  }
  const out = new Map<PathConflicts, Resolution>();
  for (const pc of plan.conflicts.values()) {
    const r = pc.group !== undefined ? byGroup.get(pc.group) : given.get(pc.path.toString('latin1'));
    if (r !== undefined) out.set(pc, r);
  }
  return out;
}

function sameResolution(a: Resolution, b: Resolution): boolean {
  return typeof a === 'string' || typeof b === 'string' ? a === b : a.data.equals(b.data);
}

/** Resolves what `resolutions` names and leaves the rest in the tree; returns the conflicts left, by path. */
async function settleConflicts(ctx: MergeContext, tree: MutableTree): Promise<MergeConflict[]> {
  const chosen = resolutionsFor(ctx.plan, ctx.options.resolutions ?? new Map());
  const all = [...ctx.plan.conflicts.values()].sort((x, y) => Buffer.compare(x.path, y.path));
  const left: MergeConflict[] = [];
  for (const pc of all) {
    const r = chosen.get(pc);
    if (r !== undefined) await resolveAt(ctx, tree, pc, r);
    else {
      placeConflict(tree, pc);
      left.push(...pc.list);
    }
  }
  return left;
}

/** A side's root directory as a tree entry, so the root's own metadata merges as any directory's does. */
function rootEntry(side: MergeSide): TreeEntry {
  return { name: Buffer.alloc(0), type: 'dir', ...side.rootMeta, size: 0, oid: side.tree };
}

/** Walks base/ours/theirs (unless two of them are one tree: then there is nothing to walk) and plans every path. */
function planTrees(ctx: MergeContext, base: MergeSide, ours: MergeSide, theirs: MergeSide): Oid {
  const [b, o, t] = [base.tree, ours.tree, theirs.tree];
  if (o === t || b === t) return o;
  if (b === o) return t;
  walkTrees(ctx.objects, [b, o, t], {
    signal: ctx.options.signal,
    enter: (path, [eb, eo, et]) => visitPath(ctx.plan, path, eb, eo, et),
  });
  planLinkGroups(ctx);
  return o;
}

/**
 * Merges `ours` and `theirs` against `base` (three trees in `objects`) and writes the merged tree through `writer`.
 *
 * Per path: a change made on one side is taken (a whole subtree by its id, unread, when the other side kept base's);
 * the same change on both is taken once; identical subtrees are skipped unread. Where both changed an entry:
 * - content and metadata merge separately: mode, owner (uid and gid together) and each xattr by name take the side
 *   that changed them, and conflict when both changed them differently; mtime never conflicts (the later one wins,
 *   and a file whose content the merge produced gets `options.mtimeNs`). One side's chmod and the other's edit merge.
 * - a file's content: the first matching `options.mergers` entry, else a line merge when base, ours and theirs are
 *   text (UTF-8 without NUL, at most MAX_TEXT_MERGE_BYTES), else a 'content' conflict. A symlink's target and a
 *   device's numbers are content too (both changed differently: 'content').
 * - added on both with different content or type: 'add/add'; the same content: metadata merged with no base (any
 *   difference in a field conflicts). Deleted on one side and changed on the other: 'modify/delete' or
 *   'delete/modify' (for a directory, named at the directory). Types changed differently: 'type'.
 * - hardlink groups merge whole (see merge-links.ts): one side's group is taken with every member; a group both sides
 *   changed differently conflicts at each of its paths that differ, and is resolved as one.
 * `options.resolutions` then settle conflicts by path: 'ours' / 'theirs' / 'base' take that side's entry (for a
 * directory both sides kept, its own metadata), `{ data }` writes a file with the merged metadata (or the metadata of
 * the side that has a file). The conflicts left stay in the tree for a checkout (see MergeTreesResult.tree).
 * A clean merge gives the same tree whichever side is `ours` (when the FileMergers are symmetric too).
 *
 * Locking: none; the caller holds whatever `writer` needs. Throws UsageError for a resolution at a path without a
 * conflict, a resolution with content for a directory or a hardlink group, and different resolutions within one
 * group; AbortedError when `signal` aborts; ObjectNotFoundError / RepositoryCorruptError from reads.
 *
 * @example
 * const r = await mergeTrees(repo.objects, repo.objects, base, ours, theirs, { mtimeNs: BigInt(Date.now()) * 1_000_000n });
 * for (const c of r.conflicts) console.log(c.kind, c.path.toString());
 */
export async function mergeTrees(
  objects: ObjectReader, writer: ObjectWriter, base: MergeSide, ours: MergeSide, theirs: MergeSide, options: MergeTreesOptions,
): Promise<MergeTreesResult> {
  const ctx: MergeContext = { objects, writer, options, plan: new MergePlan() };
  const start = planTrees(ctx, base, ours, theirs);
  for (const job of ctx.plan.contents) {
    if (options.signal?.aborted) throw new AbortedError();
    await mergeContent(ctx, job);
  }
  const rootSides = { b: rootEntry(base), o: rootEntry(ours), t: rootEntry(theirs) };
  const rootMeta = mergeOwnMeta(ctx.plan, Buffer.alloc(0), rootSides, rootSides.b);
  const tree = MutableTree.open(objects, { tree: start, rootMeta });
  for (const s of ctx.plan.sets) tree.setEntry(s.path, s.entry);
  for (const d of ctx.plan.dirMeta) tree.setMeta(d.path, d.meta);
  const conflicts = await settleConflicts(ctx, tree);
  const written = tree.write(writer);
  return { tree: written.oid, rootMeta: tree.rootMeta(), conflicts, visited: ctx.plan.visited, merged: ctx.plan.merged };
}
