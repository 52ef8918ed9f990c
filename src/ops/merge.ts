/**
 * The merge op: two images combined against their merge base (merge-base.ts), path by path (tree/merge.ts) with
 * the image-aware file mergers (packages/merge-files.ts), written as a commit with both as parents and a merge
 * derivation record. On a conflict nothing moves; `checkout` materializes the merged tree with conflict markers for
 * a hand resolution, which `mergeContinue` then commits.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DestinationNotEmptyError, SandboxError, ScriptFailedError, UsageError } from '../errors.js';
import type { Commit, RootKind, RootMeta } from '../model/commit.js';
import type { Disk } from '../model/disk.js';
import { type MergeDerivation, type MergeRecipe, encodeDerivation } from '../model/derivation.js';
import type { Oid } from '../model/oid.js';
import { hexIfNotUtf8, quotePath } from '../model/quote.js';
import { branchRef } from '../model/ref.js';
import { encodeTree, hashTree } from '../model/tree.js';
import { IMAGE_MERGERS } from '../packages/merge-files.js';
import type { Repository } from '../store/repository.js';
import { readBlobBytes, readCommit, readDisk, tryReadPath } from '../store/typed.js';
import { type FileMerger, type MergeConflict, type MergeSide, type Resolution, mergeTrees } from '../tree/merge.js';
import { MutableTree } from '../tree/mutable-tree.js';
import { Sandbox, applyChanges } from '../packages/sandbox.js';
import { cachedCheckout, sandboxRoot, writeLayer } from './sandbox-layer.js';
import { checkoutTree } from './checkout.js';
import { commit as commitOp } from './commit.js';
import { TOOL } from './derive.js';
import { patchDisk } from './derive-disk.js';
import { history } from './log.js';
import { mergeBases } from './merge-base.js';
import { normalizeImagePath, resolveRevision } from './resolve.js';
import { storeBytes, storeContent } from '../store/store-content.js';
import { ingestHostTree } from './ingest.js';
import { commitIdentity, firstLine, writeCommits } from './write-commit.js';

/** The options of {@link merge}: ours (`a`), theirs (`b`), the destination branch and conflict handling. */
export interface MergeOptions {
  /** Ours: the image merged into (its branch is the default destination). */
  a: string;
  /** Theirs. */
  b: string;
  /** Destination branch: A's own branch (the default when A names one) or a new branch. */
  branch?: string;
  message?: string;
  author?: string;
  time?: number;
  /** Conflicts resolved up front: take a side, or a host file's content. */
  resolve?: Array<{ path: string; how: 'ours' | 'theirs' | 'base' } | { path: string; host: string }>;
  /** On conflicts, materialize the merged tree (markers in text files, `PATH~theirs` beside others) here. */
  checkout?: string;
  /** Merge images whose histories never meet, against an empty image. */
  allowUnrelated?: boolean;
  /** Make a merge commit even when a fast-forward would do. */
  noFf?: boolean;
}

/** The options of {@link mergeContinue}. */
export interface MergeContinueOptions {
  /** The directory the conflicted merge was checked out to (`checkout` of {@link merge}). */
  dir: string;
  /** The merge commit's message (default: `merge THEIRS into OURS`). */
  message?: string;
  /** `Name <email>` (default: VIVA_AUTHOR, else user@host). */
  author?: string;
  /** Commit time, seconds since the epoch (default: VIVA_DATE, else now). */
  time?: number;
}

/** One conflicted path of a merge and the kind of conflict (both changed, deleted on one side, type changed, …). */
export interface MergeConflictInfo {
  path: string;
  pathHex?: string;
  kind: MergeConflict['kind'];
  detail?: string;
}

/**
 * What {@link merge} or {@link mergeContinue} did: merged, fast-forwarded, already up to date, or stopped on conflicts.
 */
export interface MergeOpResult {
  status: 'merged' | 'fast-forward' | 'up-to-date' | 'conflicts';
  branch: string;
  /** The branch's new head (merged, fast-forward, up-to-date onto a new branch). */
  id?: Oid;
  ours: { rev: string; commit: Oid };
  theirs: { rev: string; commit: Oid };
  /** The merge base compared with (null: none, with allowUnrelated), and how it was found. */
  base?: Oid | null;
  via?: 'history' | 'derivation';
  conflicts: MergeConflictInfo[];
  /** Paths the merge looked at and files merged by content (line merge or a file merger). */
  visited?: number;
  merged?: number;
  /** Where the conflicted result was checked out. */
  checkout?: string;
}

/** What `checkout` leaves in the repository for `mergeContinue` (meta `merge-state:DIR`). */
interface MergeState {
  a: Oid;
  b: Oid;
  base: Oid | null;
  ref: string;
  expectedOld: Oid | null;
  ours: string;
  theirs: string;
  rootKind: RootKind;
  conflicts: string[];
  recipe: { path: string; how: MergeRecipe['resolutions'][number]['how']; blob?: Oid; size?: number }[];
}

/** A disk's layout: size, partition table and each region's place and kind (what must match for a merge). */
function layoutOf(d: Disk): string {
  return JSON.stringify([d.size, d.sectorSize, d.table ?? null, d.regions.map((r) => [r.offset, r.size, r.partition?.index ?? 0, r.content.kind, r.content.kind === 'fs' ? r.content.fsType : '',
    // An LVM region: its volume group and where each logical volume read lies.
    r.content.kind === 'lvm' ? [r.content.vg, r.content.volumes.map((v) => [v.name, v.content.fsType, v.segments])] : []])]);
}

const EMPTY_META: RootMeta = { mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] };

function conflictInfo(c: MergeConflict): MergeConflictInfo {
  const hex = hexIfNotUtf8(c.path);
  return { path: c.path.toString('utf8'), ...(hex ? { pathHex: hex } : {}), kind: c.kind, ...(c.detail ? { detail: c.detail } : {}) };
}

/** The tree a commit's image is merged as: a tree commit's tree, a disk commit's view (one directory per file system). */
function sideOf(repo: Repository, c: Commit): MergeSide {
  if (c.rootKind === 'tree') return { tree: c.root, rootMeta: c.rootMeta ?? EMPTY_META };
  return { tree: readDisk(repo.objects, c.root).view, rootMeta: c.rootMeta ?? EMPTY_META };
}

function stateKey(dir: string): string {
  return `merge-state:${path.resolve(dir)}`;
}

/**
 * Merges image B into image A against their merge base and commits the result on `branch` (parents A and B), or
 * fast-forwards, or reports that A already holds B. Identical subtrees are not read; text files both sides changed
 * merge line by line; dpkg's database and the account files merge per record (packages/merge-files.ts). Disk images
 * merge when both have the same partition layout: each file system's tree is merged and patched into A's disk.
 *
 * On conflicts nothing moves and the result says which paths conflict and why; with `checkout` the merged tree is
 * written there (conflict markers in text files, `PATH~theirs` and `PATH~base` beside other conflicted files) and
 * `mergeContinue(DIR)` commits it once resolved.
 *
 * Locking: the branch moves by compare-and-swap (RefConflictError, exit 12, when it moved meanwhile).
 * Throws: RevisionNotFoundError; UsageError (no common base without allowUnrelated, a destination branch that is
 * neither new nor A's, a resolution for a path without a conflict, images of different kinds or disk layouts);
 * DestinationNotEmptyError for a non-empty checkout directory; SourceReadError for an unreadable resolution file.
 *
 * @example
 * const r = await merge(repo, { a: 'web/01', b: 'sec/hardened' }); // r.status === 'merged' | 'conflicts' | …
 */
export async function merge(repo: Repository, options: MergeOptions): Promise<MergeOpResult> {
  const id = commitIdentity(options);
  const ra = resolveRevision(repo, options.a);
  const rb = resolveRevision(repo, options.b);
  const branch = options.branch ?? (ra.ref?.startsWith('refs/heads/') ? ra.ref : undefined);
  if (!branch) throw new UsageError(`'${options.a}' is not a branch: say where the merge goes with -b BRANCH`);
  const ref = branchRef(branch);
  const head = repo.refs.resolve(ref)?.oid ?? null;
  if (head !== null && head !== ra.oid) throw new UsageError(`branch '${branch}' is at ${head.slice(0, 12)}, not at '${options.a}' (${ra.oid.slice(0, 12)}): merge into A's own branch or a new one`);
  const result: MergeOpResult = { status: 'up-to-date', branch: ref, ours: { rev: options.a, commit: ra.oid }, theirs: { rev: options.b, commit: rb.oid }, conflicts: [] };

  // Nothing to merge, or a fast-forward: the branch points at an existing commit.
  const moveTo = async (to: Oid, why: string) => {
    if (head !== to) await repo.refs.update([{ ref, newOid: to, expectedOld: head, message: `merge ${options.b}: ${why}` }], id.author, { time: id.time });
    result.id = to;
  };
  if (history(repo, ra.oid).has(rb.oid)) {
    await moveTo(ra.oid, 'already up to date');
    return result;
  }
  if (!options.noFf && history(repo, rb.oid).has(ra.oid)) {
    await moveTo(rb.oid, 'fast-forward');
    result.status = 'fast-forward';
    return result;
  }

  const found = mergeBases(repo, ra.oid, rb.oid);
  const baseOid = found.bases[0] ?? null;
  if (!baseOid && !options.allowUnrelated) throw new UsageError(`refusing to merge unrelated images: '${options.a}' and '${options.b}' have no common ancestor, in history or through derivations (--allow-unrelated merges them against an empty image)`);
  result.base = baseOid;
  result.via = found.via;
  const kinds = new Set([ra.commit.rootKind, rb.commit.rootKind]);
  const baseCommit = baseOid ? readCommit(repo.objects, baseOid) : undefined;
  if (baseCommit) kinds.add(baseCommit.rootKind);
  if (kinds.size > 1) throw new UsageError(`cannot merge a directory image with a disk image: '${options.a}' is ${ra.commit.rootKind === 'disk' ? 'a disk' : 'a tree'}, '${options.b}' ${rb.commit.rootKind === 'disk' ? 'a disk' : 'a tree'}${baseCommit ? `, their base ${baseCommit.rootKind === 'disk' ? 'a disk' : 'a tree'}` : ''}`);
  if (ra.commit.rootKind === 'disk') {
    const layouts = [ra.commit, rb.commit, ...(baseCommit ? [baseCommit] : [])].map((c) => layoutOf(readDisk(repo.objects, c.root)));
    if (!layouts.every((l) => l === layouts[0])) throw new UsageError(`cannot merge disks with different partition layouts ('${options.a}', '${options.b}'${baseCommit ? ' and their base' : ''})`);
  }

  await repo.beginSession('merge');
  try {
    const resolutions = new Map<string, Resolution>();
    const recipe: MergeRecipe = { base: baseOid, resolutions: [] };
    for (const r of options.resolve ?? []) {
      const p = normalizeImagePath(r.path);
      if ('host' in r) {
        let data: Buffer;
        try {
          data = fs.readFileSync(r.host);
        } catch (e) {
          throw new UsageError(`--resolve ${r.path}=@${r.host}: ${(e as Error).message}`);
        }
        const stored = await storeBytes(repo.objects, data);
        resolutions.set(p.toString('latin1'), { data });
        recipe.resolutions.push({ path: p, how: 'content', blob: stored.oid, size: data.length });
      } else {
        resolutions.set(p.toString('latin1'), r.how);
        recipe.resolutions.push({ path: p, how: r.how });
      }
    }
    const labels = { ours: options.a, base: baseOid ? `merge base ${baseOid.slice(0, 12)}` : 'empty', theirs: options.b };
    const merged = await mergeImages(repo, { oid: ra.oid, commit: ra.commit }, { oid: rb.oid, commit: rb.commit }, baseOid, resolutions, id.time, labels);
    result.visited = merged.visited;
    result.merged = merged.merged;
    result.conflicts = merged.conflicts.map(conflictInfo);
    if (merged.conflicts.length) {
      result.status = 'conflicts';
      if (options.checkout !== undefined) {
        if (fs.existsSync(options.checkout) && fs.readdirSync(options.checkout).length) throw new DestinationNotEmptyError(options.checkout);
        await repo.objects.flush();
        await checkoutTree(repo, options.a, merged.tree, merged.rootMeta, options.checkout);
        const state: MergeState = {
          a: ra.oid, b: rb.oid, base: baseOid, ref, expectedOld: head, ours: options.a, theirs: options.b, rootKind: ra.commit.rootKind,
          conflicts: result.conflicts.map((c) => c.path),
          recipe: recipe.resolutions.map((x) => ({ path: x.path.toString('latin1'), how: x.how, ...(x.blob ? { blob: x.blob, size: x.size } : {}) })),
        };
        repo.meta.put(stateKey(options.checkout!), JSON.stringify(state));
        result.checkout = options.checkout;
      } else {
        repo.objects.discard();
      }
      return result;
    }
    const root = await finishImage(repo, { oid: ra.oid, commit: ra.commit, name: options.a }, merged, id.time);
    const message = options.message ?? `merge ${options.b} into ${options.a}`;
    const oid = await commitMerge(repo, root, { a: ra.oid, b: rb.oid, aCommit: ra.commit, bCommit: rb.commit, recipe, ref, expectedOld: head, message, id });
    result.status = 'merged';
    result.id = oid;
    return result;
  } catch (e) {
    repo.objects.discard();
    throw e;
  } finally {
    try { await repo.endSession(); } catch { /* gc clears a stale session */ }
  }
}

type Merged = Awaited<ReturnType<typeof mergeTrees>> & { regenerate: Set<string>; base: Oid | null };

/**
 * The three-way merge of two images' trees (a disk's view tree) against the merge base `baseOid` (null: an empty
 * image), with the image file mergers; caches a program makes (ld.so.cache) are collected in `regenerate` when both
 * sides changed them, to be made again by finishImage.
 */
async function mergeImages(repo: Repository, ours: { oid: Oid; commit: Commit }, theirs: { oid: Oid; commit: Commit }, baseOid: Oid | null,
  resolutions: Map<string, Resolution>, time: number, labels: { ours: string; base: string; theirs: string }): Promise<Merged> {
  let base: MergeSide;
  if (baseOid) base = sideOf(repo, readCommit(repo.objects, baseOid));
  else {
    const enc = encodeTree({ entries: [] });
    const empty = hashTree(enc);
    if (!repo.objects.hasObject('tree', empty)) repo.objects.writeObject('tree', empty, enc);
    base = { tree: empty, rootMeta: EMPTY_META };
  }
  const regenerate = new Set<string>();
  const regenerated: FileMerger = {
    name: 'regenerated cache',
    matches: (p) => REGENERATED.has(p.toString('latin1')),
    merge: (i) => { regenerate.add(i.path.toString('latin1')); return { data: i.ours }; },
  };
  const merged = await mergeTrees(repo.objects, repo.objects, base, sideOf(repo, ours.commit), sideOf(repo, theirs.commit), {
    mergers: [regenerated, ...IMAGE_MERGERS], resolutions, mtimeNs: BigInt(time) * 1_000_000_000n, labels,
  });
  return { ...merged, regenerate, base: baseOid };
}

/**
 * The merged image as a commit root: the caches made again (a tree image: ldconfig in the sandbox; a disk: ours'
 * kept, with a warning), a disk's file systems patched into ours' disk.
 */
async function finishImage(repo: Repository, ours: { oid: Oid; commit: Commit; name: string }, merged: Merged, time: number): Promise<{ rootKind: RootKind; root: Oid; rootMeta: RootMeta }> {
  let view = { tree: merged.tree, rootMeta: merged.rootMeta };
  if (merged.regenerate.size && ours.commit.rootKind === 'tree') {
    try {
      view = await runLdconfig(repo, merged.base ? { oid: merged.base, commit: readCommit(repo.objects, merged.base) } : ours, view, ours.name);
    } catch (e) {
      // Without the sandbox (not root, no overlayfs) the merge still goes through: the cache is ours', and says so.
      if (!(e instanceof SandboxError)) throw e;
      repo.warnings.push(`${[...merged.regenerate].join(', ')}: taken from '${ours.name}': ldconfig could not run (${e.message}); run ldconfig at first boot`);
    }
  } else if (merged.regenerate.size) {
    repo.warnings.push(`${[...merged.regenerate].join(', ')}: taken from '${ours.name}' (a disk image's caches are not made again by merge: run ldconfig at first boot)`);
  }
  if (ours.commit.rootKind === 'disk') return { rootKind: 'disk', root: await patchDisk(repo, repo.objects, ours, view.tree, view.rootMeta, time), rootMeta: view.rootMeta };
  return { rootKind: 'tree', root: view.tree, rootMeta: view.rootMeta };
}

/**
 * Replays a merge derivation (`rebuild`): `ours` (the rebuilt layer below) merged with `theirs` (the other input, or
 * what it was rebuilt into) against `mergeBase` (the recorded base, or what the rebuild moved it to), with the
 * recorded resolutions. Returns the result and
 * the derivation of the replay. Throws UsageError naming the conflicts when the merge no longer goes through.
 */
export async function replayMerge(repo: Repository, ours: { oid: Oid; commit: Commit; name?: string }, theirs: Oid, recipe: MergeRecipe, time: number, mergeBase: Oid | null): Promise<{ rootKind: RootKind; root: Oid; rootMeta: RootMeta; dv: MergeDerivation; theirs: Oid }> {
  const tc = readCommit(repo.objects, theirs);
  // Not searched: a rebuilt layer keeps the old merge in its history, which would make the old input look merged.
  const baseOid = mergeBase;
  const resolutions = new Map<string, Resolution>();
  for (const r of recipe.resolutions) {
    resolutions.set(r.path.toString('latin1'), r.how === 'content' ? { data: await readBlobBytes(repo.objects, r.blob!, r.size ?? 0, r.path.toString('utf8')) } : r.how);
  }
  const name = ours.name ?? ours.oid.slice(0, 12);
  const merged = await mergeImages(repo, ours, { oid: theirs, commit: tc }, baseOid, resolutions, time, { ours: name, base: 'merge base', theirs: theirs.slice(0, 12) });
  if (merged.conflicts.length) {
    throw new UsageError(`replaying the merge of ${theirs.slice(0, 12)}: ${merged.conflicts.length} conflict${merged.conflicts.length === 1 ? '' : 's'} (${merged.conflicts.slice(0, 3).map((c) => `${c.kind} ${quotePath(c.path)}`).join(', ')}${merged.conflicts.length > 3 ? ', …' : ''})`);
  }
  const root = await finishImage(repo, { ...ours, name }, merged, time);
  const dv: MergeDerivation = {
    kind: 'merge', tool: TOOL, recipe: { base: baseOid, resolutions: recipe.resolutions },
    bases: [{ commit: ours.oid, rootKind: ours.commit.rootKind, root: ours.commit.root }, { commit: theirs, rootKind: tc.rootKind, root: tc.root }],
  };
  return { ...root, dv, theirs };
}

/** What ldconfig reads: etc/ld.so.conf and its includes, and shared objects by glibc's name test (lib* or ld-*, with .so). */
function ldconfigReads(p: Buffer): boolean {
  const s = p.toString('latin1');
  if (s.startsWith('etc/ld.so.conf')) return true;
  const base = s.slice(s.lastIndexOf('/') + 1);
  return (base.startsWith('lib') || base.startsWith('ld-')) && base.includes('.so');
}

/** Files a program makes from others: both sides changed → made again on the merged image instead of merged. */
const REGENERATED = new Set(['etc/ld.so.cache', 'var/cache/ldconfig/aux-cache']);

/**
 * Runs the image's own `ldconfig` on the merged tree in the install sandbox (over the cached checkout of `bottom`,
 * with the merged tree as a layer), so that its library cache describes the merged libraries. An image without
 * ldconfig keeps ours' cache.
 */
async function runLdconfig(repo: Repository, bottom: { oid: Oid; commit: Commit }, merged: { tree: Oid; rootMeta: RootMeta }, name: string): Promise<{ tree: Oid; rootMeta: RootMeta }> {
  const tree = MutableTree.open(repo.objects, { tree: merged.tree, rootMeta: merged.rootMeta, imageName: name });
  // (On merged-/usr images /sbin is a symlink: the path is looked up through the trees, never followed.)
  if (!['usr/sbin/ldconfig', 'sbin/ldconfig'].some((p) => tryReadPath(repo.objects, merged.tree, Buffer.from(p))?.type === 'file')) return merged;
  const bottomMeta = bottom.commit.rootMeta ?? EMPTY_META;
  const { dir } = await cachedCheckout(repo, bottom.oid, bottom.commit.root, bottomMeta);
  Sandbox.removeStale(sandboxRoot(repo));
  const sb = Sandbox.create(dir, sandboxRoot(repo));
  try {
    const layer = sb.layerDir();
    // ldconfig reads its configuration and the files named lib*.so* / ld-*.so* (glibc's search_dir): only those.
    await writeLayer(repo.objects, bottom.commit.root, merged.tree, merged.rootMeta, layer, ldconfigReads);
    sb.addLayer(layer);
    const r = await sb.run(['/bin/sh', '-c', 'exec ldconfig']);
    if (r.code !== 0) throw new ScriptFailedError(name, 'ldconfig after the merge', r.code, r.output);
    const made = ['proc', 'sys', 'dev'].filter((d) => !tree.lookup(Buffer.from(d)));
    await applyChanges(sb.upper, tree, async (e) => storeContent(repo.objects, e.content!), { made });
  } finally {
    sb.remove();
  }
  return { tree: tree.write(repo.objects).oid, rootMeta: tree.rootMeta() };
}

/** Writes the merge commit (parents A and B, a merge derivation naming both) and moves the branch by compare-and-swap. */
async function commitMerge(repo: Repository, root: { rootKind: RootKind; root: Oid; rootMeta: RootMeta },
  m: { a: Oid; b: Oid; aCommit: Commit; bCommit: Commit; recipe: MergeRecipe; ref: string; expectedOld: Oid | null; message: string; id: ReturnType<typeof commitIdentity> }): Promise<Oid> {
  const dv: MergeDerivation = {
    kind: 'merge', tool: TOOL, recipe: m.recipe,
    bases: [{ commit: m.a, rootKind: m.aCommit.rootKind, root: m.aCommit.root }, { commit: m.b, rootKind: m.bCommit.rootKind, root: m.bCommit.root }],
  };
  const c: Commit = {
    rootKind: root.rootKind, root: root.root, parents: [m.a, m.b], author: m.id.author, time: m.id.time, tzOffset: m.id.tzOffset,
    message: m.message, labels: [], source: { format: 'merge' }, rootMeta: root.rootMeta, derivation: encodeDerivation(dv),
  };
  const [oid] = await writeCommits(repo, [{ commit: c, ref: m.ref, expectedOld: m.expectedOld, reflog: `merge: ${firstLine(m.message)}` }], { who: m.id.author });
  return oid!;
}

/** Lines that open a conflict block in a text file `checkout` wrote. */
const MARKER = /^<<<<<<< /m;

/**
 * Finishes a merge that stopped on conflicts and was checked out to `dir` (merge with `checkout`): every conflicted
 * path must be resolved by hand (no conflict markers left, no `PATH~theirs` / `PATH~base` left beside it); then `dir`
 * is committed as the merge (parents A and B) on the merge's branch, which must still be where it was.
 *
 * Throws: UsageError when `dir` has no merge in progress or a conflict is left (naming the path); RefConflictError
 * when the branch moved meanwhile.
 */
export async function mergeContinue(repo: Repository, options: MergeContinueOptions): Promise<MergeOpResult> {
  const raw = repo.meta.get(stateKey(options.dir)) as string | undefined;
  if (!raw) throw new UsageError(`no merge in progress in '${options.dir}' (merge A B --checkout DIR starts one)`);
  const state = JSON.parse(raw) as MergeState;
  for (const p of state.conflicts) {
    const at = path.join(options.dir, p);
    for (const side of ['~theirs', '~base']) {
      if (fs.existsSync(at + side)) throw new UsageError(`'${quotePath(Buffer.from(p))}' is not resolved yet: '${p}${side}' is still there (remove it when the file is as it should be)`);
    }
    let st: fs.Stats | undefined;
    try { st = fs.lstatSync(at); } catch { st = undefined; }
    if (st?.isFile() && st.size < 64 << 20 && MARKER.test(fs.readFileSync(at, 'latin1'))) {
      throw new UsageError(`'${quotePath(Buffer.from(p))}' still holds conflict markers (<<<<<<<): resolve it, then run merge --continue again`);
    }
  }
  const recipe: MergeRecipe = { base: state.base, resolutions: state.recipe.map((x) => ({ path: Buffer.from(x.path, 'latin1'), how: x.how, ...(x.blob ? { blob: x.blob, size: x.size ?? 0 } : {}) })) };
  const dv: MergeDerivation = {
    kind: 'merge', tool: TOOL, recipe,
    bases: [state.a, state.b].map((o) => { const c = readCommit(repo.objects, o); return { commit: o, rootKind: c.rootKind, root: c.root }; }),
  };
  const message = options.message ?? `merge ${state.theirs} into ${state.ours}`;
  let id: Oid;
  if (state.rootKind === 'disk') {
    id = await continueDisk(repo, state, options.dir, { message, recipe, ...(options.author ? { author: options.author } : {}), ...(options.time !== undefined ? { time: options.time } : {}) });
  } else {
    const r = await commitOp(repo, {
      source: options.dir, branch: state.ref, message, ...(options.author ? { author: options.author } : {}), ...(options.time !== undefined ? { time: options.time } : {}),
      merge: { parents: [state.a, state.b], expectedOld: state.expectedOld, derivation: encodeDerivation(dv) },
    });
    id = r.id;
  }
  repo.meta.remove(stateKey(options.dir));
  return { status: 'merged', branch: state.ref, id, ours: { rev: state.ours, commit: state.a }, theirs: { rev: state.theirs, commit: state.b }, base: state.base, conflicts: [] };
}

/**
 * `merge --continue` of disk images: the resolved directory (one directory per file system, as the merge checked it
 * out) read as a tree, patched into A's disk as a direct merge would, and committed with parents A and B.
 */
async function continueDisk(repo: Repository, state: MergeState, dir: string, o: { message: string; recipe: MergeRecipe; author?: string; time?: number }): Promise<Oid> {
  const id = commitIdentity(o);
  const aCommit = readCommit(repo.objects, state.a);
  const bCommit = readCommit(repo.objects, state.b);
  await repo.beginSession('merge');
  try {
    const { tree, oid: view } = await ingestHostTree(repo, dir, repo.objects);
    const rootMeta = tree.rootMeta();
    const root = await patchDisk(repo, repo.objects, { oid: state.a, commit: aCommit, name: state.ours }, view, rootMeta, id.time);
    return await commitMerge(repo, { rootKind: 'disk', root, rootMeta }, {
      a: state.a, b: state.b, aCommit, bCommit, recipe: o.recipe, ref: state.ref, expectedOld: state.expectedOld, message: o.message, id,
    });
  } catch (e) {
    repo.objects.discard();
    throw e;
  } finally {
    try { await repo.endSession(); } catch { /* gc clears a stale session */ }
  }
}
