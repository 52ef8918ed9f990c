/**
 * The derive op: a new image = a base image plus edits, made without materializing the base. The edits become a
 * recipe (content by id), the recipe is applied to the base's tree through the mutable tree (only the directories
 * on edited paths are read and written), and the commit carries the derivation record so `rebuild` can replay it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { UsageError } from '../errors.js';
import { readHostFile } from '../formats/directory.js';
import { tarCompressionForName } from '../formats/tar.js';
import { type Commit, type RootKind, type RootMeta, checkCommitTime } from '../model/commit.js';
import { type Derivation, type Edit, type Generated, type Recipe, encodeDerivation, memoKey, recipeId } from '../model/derivation.js';
import type { Oid } from '../model/oid.js';
import { branchRef } from '../model/ref.js';
import { DERIV_MEMO } from '../store/content-index.js';
import type { ObjectWriter } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { MutableTree } from '../tree/mutable-tree.js';
import { DEFAULT_DIR_MODE, DEFAULT_FILE_MODE, applyRecipe, createdMeta } from '../tree/recipe.js';
import { ingestHostTree } from './ingest.js';
import { normalizeImagePath, resolveRevision } from './resolve.js';
import { storeBytes, storeContent } from '../store/store-content.js';
import { commitIdentity, firstLine, writeCommits } from './write-commit.js';
import { deriveDisk } from './derive-disk.js';

/** The tool named in derivation records: `viva VERSION` (package.json is two levels up from src/, three from dist/src/). */
export const TOOL = `viva ${packageVersion()}`;

function packageVersion(): string {
  const require = createRequire(import.meta.url);
  for (const p of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = require(p) as { name?: string; version?: string };
      if (pkg.name === 'viva' && pkg.version) return pkg.version;
    } catch {
      // not at this depth
    }
  }
  return 'unknown';
}

/** An edit as a user gives it: paths are image paths (text, or git-quoted), host paths are read when the recipe is made. */
export type EditSpec =
  | { op: 'set'; path: string; data: Buffer; mode?: number; generated?: Generated }
  | { op: 'set-file'; path: string; host: string }
  | { op: 'add'; host: string; path: string }
  | { op: 'rm'; path: string }
  | { op: 'mkdir'; path: string; mode?: number }
  | { op: 'symlink'; path: string; target: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'chown'; path: string; uid: number; gid: number }
  | { op: 'xattr'; path: string; name: string; value: Buffer }
  | { op: 'rm-xattr'; path: string; name: string }
  | { op: 'mtime'; path: string; time: number }
  | { op: 'rename'; path: string; to: string };

/** The options of {@link derive}: the base image, the result's branch and the edits to apply. */
export interface DeriveOptions {
  /** The base image: a revision. */
  base: string;
  /** The branch the result goes on (created, or advanced: its head becomes the parent). */
  branch: string;
  message?: string;
  edits: EditSpec[];
  author?: string;
  /** Seconds since the epoch: the commit's time and the mtime of what the edits create. Default VIVA_DATE or now. */
  time?: number;
  signal?: AbortSignal;
}

/** What {@link derive} made: the new commit, its base and recipe, and how much was written. */
export interface DeriveResult {
  id: Oid;
  branch: string;
  parent: Oid | null;
  base: { rev: string; commit: Oid };
  /** The recipe's id (sha256 of its canonical encoding). */
  recipe: Oid;
  edits: number;
  tree: Oid;
  /** Directories written (the rest of the image is shared with the base). */
  treesWritten: number;
  /** True when the same recipe on the same base tree had been made before and its result was reused. */
  reused: boolean;
}

/** What a derived commit needs from its base. */
export interface DeriveBase {
  oid: Oid;
  commit: Commit;
  /** How messages name it (the revision given). */
  name?: string;
}

/**
 * Turns user edits into a recipe: host content is stored (files as blobs, directories and tars as trees) and
 * referenced by id, image paths are normalised and checked. Throws SourceReadError for an unreadable host path,
 * UsageError for a bad path, CorruptInputError / UnsafeInputError for a bad tar or a bad directory.
 */
export async function makeRecipe(repo: Repository, writer: ObjectWriter, edits: EditSpec[], time: number, signal?: AbortSignal): Promise<Recipe> {
  const out: Edit[] = [];
  const image = (p: string): Buffer => {
    // A name that is not UTF-8 reaches us with U+FFFD in place of its bytes: writing that would make another file.
    if (p.includes('\uFFFD')) throw new UsageError(`path '${p}' holds bytes that are not UTF-8: give it quoted as viva prints it (e.g. "dir/bad\\377name")`);
    return normalizeImagePath(p);
  };
  const named = (p: string, what: string): Buffer => {
    const b = image(p);
    if (b.length === 0) throw new UsageError(`${what}: the image root cannot be the path here`);
    // 'etc/x/' names a directory: a file, symlink or rename target there is a mistake, not 'etc/x'.
    if (p.endsWith('/') && what !== 'mkdir' && what !== 'rm') throw new UsageError(`${what} '${p}': a path ending in '/' names a directory`);
    return b;
  };
  for (const e of edits) {
    switch (e.op) {
      case 'set': {
        const c = await storeBytes(writer, e.data, signal);
        out.push({ op: 'write', path: named(e.path, 'set'), blob: c.oid, size: c.size, mode: e.mode ?? DEFAULT_FILE_MODE, generated: e.generated ?? '' });
        break;
      }
      case 'set-file': {
        const entry = readHostFile(e.host);
        const c = await storeContent(writer, entry.content!, signal);
        if (c.holes.length) {
          // A sparse host file: its holes are part of the content's shape, so it goes in as a whole entry.
          out.push({ op: 'add-entry', path: named(e.path, 'set-file'), entry: { name: Buffer.from('f'), type: 'file', mode: DEFAULT_FILE_MODE, uid: 0, gid: 0, mtimeNs: BigInt(time) * 1_000_000_000n, size: c.size, xattrs: [], oid: c.oid, holes: c.holes } });
        } else {
          out.push({ op: 'write', path: named(e.path, 'set-file'), blob: c.oid, size: c.size, mode: DEFAULT_FILE_MODE, generated: '' });
        }
        break;
      }
      case 'add':
        out.push(await addEdit(repo, writer, e.host, image(e.path), signal));
        break;
      case 'rm': out.push({ op: 'rm', path: named(e.path, 'rm') }); break;
      case 'mkdir': out.push({ op: 'mkdir', path: named(e.path, 'mkdir'), mode: e.mode ?? DEFAULT_DIR_MODE }); break;
      case 'symlink': {
        if (e.target.length === 0) throw new UsageError(`symlink '${e.path}': empty target`);
        out.push({ op: 'symlink', path: named(e.path, 'symlink'), target: Buffer.from(e.target) });
        break;
      }
      case 'chmod': out.push({ op: 'chmod', path: image(e.path), mode: e.mode }); break;
      case 'chown': out.push({ op: 'chown', path: image(e.path), uid: e.uid, gid: e.gid }); break;
      case 'xattr': out.push({ op: 'set-xattr', path: image(e.path), name: e.name, value: e.value }); break;
      case 'rm-xattr': out.push({ op: 'rm-xattr', path: image(e.path), name: e.name }); break;
      case 'mtime': checkCommitTime(e.time, `mtime of '${e.path}'`); out.push({ op: 'mtime', path: image(e.path), mtimeNs: BigInt(e.time) * 1_000_000_000n }); break;
      case 'rename': out.push({ op: 'rename', path: named(e.path, 'rename'), to: named(e.to, 'rename') }); break;
    }
  }
  return { time, edits: out };
}

/** `--add HOST:PATH`: a directory or a tar archive (by its name) becomes a tree merged in at PATH, a file one entry. */
async function addEdit(repo: Repository, writer: ObjectWriter, host: string, path: Buffer, signal?: AbortSignal): Promise<Edit> {
  let isDir = false;
  try {
    isDir = fs.statSync(host).isDirectory();
  } catch {
    // openImage / readHostFile say why, naming the path.
  }
  if (!isDir && !tarCompressionForName(host)) {
    if (path.length === 0) throw new UsageError(`add '${host}': a file cannot replace the image root`);
    const entry = readHostFile(host);
    const c = await storeContent(writer, entry.content!, signal);
    const name = path.subarray(path.lastIndexOf(0x2f) + 1);
    return { op: 'add-entry', path, entry: { name, type: 'file', mode: entry.mode, uid: entry.uid, gid: entry.gid, mtimeNs: entry.mtimeNs, size: c.size, xattrs: entry.xattrs, oid: c.oid, ...(c.holes.length ? { holes: c.holes } : {}) } };
  }
  const { tree, oid } = await ingestHostTree(repo, host, writer, signal ? { signal } : {});
  return { op: 'add-tree', path, tree: oid, ...(tree.rootGiven ? { meta: tree.rootMeta() } : {}) };
}

/**
 * The result an earlier derived commit recorded for recipe `rid` on `base`'s root (the memo key of any derivation
 * kind), if a commit of the same kind of image still has it.
 */
export function memoized(repo: Repository, base: Pick<DeriveBase, 'commit'>, rid: Oid): { rootKind: RootKind; root: Oid; rootMeta: RootMeta } | undefined {
  for (const oid of repo.contentIndex.derived(DERIV_MEMO, memoKey(base.commit.root, rid))) {
    if (!repo.objects.hasObject('commit', oid)) continue;
    const c = readCommit(repo.objects, oid);
    if (c.rootKind === base.commit.rootKind && c.rootMeta) return { rootKind: c.rootKind, root: c.root, rootMeta: c.rootMeta };
  }
  return undefined;
}

/**
 * Applies `recipe` to `base`'s image, reusing an earlier result of the same recipe on the same base tree (build
 * avoidance: the memo key is (base root id, recipe id), and the recipe holds every input — content ids, modes,
 * times, its format version). Returns the result's root and root metadata.
 */
export async function applyToBase(repo: Repository, writer: ObjectWriter, base: DeriveBase, recipe: Recipe): Promise<{ rootKind: RootKind; root: Oid; rootMeta: RootMeta; treesWritten: number; reused: boolean }> {
  const hit = memoized(repo, base, recipeId(recipe));
  if (hit) return { ...hit, treesWritten: 0, reused: true };
  if (base.commit.rootKind === 'disk') return { rootKind: 'disk', ...await deriveDisk(repo, writer, base, recipe), reused: false };
  const tree = MutableTree.open(repo.objects, { tree: base.commit.root, ...(base.commit.rootMeta ? { rootMeta: base.commit.rootMeta } : {}), impliedDir: createdMeta(recipe, DEFAULT_DIR_MODE), imageName: base.name ?? base.oid.slice(0, 12) });
  applyRecipe(tree, recipe);
  const written = tree.write(writer);
  return { rootKind: 'tree', root: written.oid, rootMeta: tree.rootMeta(), treesWritten: written.dirs, reused: false };
}

/** The derivation record of `recipe` applied to `base`. */
export function derivationOf(base: DeriveBase, recipe: Recipe): Derivation {
  return { kind: 'derive', bases: [{ commit: base.oid, rootKind: base.commit.rootKind, root: base.commit.root }], recipe, tool: TOOL };
}

/**
 * The commit of `recipe` applied to `base` (what applyToBase returned), with its derivation record: the one shape of
 * a derived commit, for derive, derive --batch and rebuild.
 */
export function derivedCommit(base: DeriveBase, recipe: Recipe, applied: { rootKind: RootKind; root: Oid; rootMeta: RootMeta },
  c: { parents: Oid[]; author: string; time: number; tzOffset: number; message: string; labels?: Array<[string, string]> }): Commit {
  return commitWithDerivation(derivationOf(base, recipe), applied, c);
}

/** A commit of `applied` carrying the derivation record `dv` (any kind; `source.format` is the kind). */
export function commitWithDerivation(dv: Derivation, applied: { rootKind: RootKind; root: Oid; rootMeta: RootMeta },
  c: { parents: Oid[]; author: string; time: number; tzOffset: number; message: string; labels?: Array<[string, string]> }): Commit {
  return {
    rootKind: applied.rootKind, root: applied.root, parents: c.parents, author: c.author, time: c.time, tzOffset: c.tzOffset,
    message: c.message, labels: c.labels ?? [], source: { format: dv.kind }, rootMeta: applied.rootMeta,
    derivation: encodeDerivation(dv),
  };
}

/**
 * Makes a commit on `branch` whose image is `base` plus `edits`, without checking the base out.
 *
 * Locking: the branch moves by compare-and-swap after every object is durable (RefConflictError if it moved).
 * Throws: RevisionNotFoundError for the base; UsageError for bad paths or a disk base; SourceReadError for an
 * unreadable host file; PathNotFoundError / InvalidEditError (as EditFailedError naming the edit) when an edit
 * does not fit the base — nothing is recorded then.
 *
 * @example
 * await derive(repo, { base: 'debian/12/base', branch: 'web/01', edits: [{ op: 'set', path: 'etc/hostname', data: Buffer.from('web01\n') }] });
 */
export async function derive(repo: Repository, options: DeriveOptions): Promise<DeriveResult> {
  const id = commitIdentity(options);
  if (options.message !== undefined && options.message.trim() === '') throw new UsageError('aborting derive due to empty message');
  const baseRev = resolveRevision(repo, options.base);
  const ref = branchRef(options.branch);
  const head = repo.refs.resolve(ref)?.oid ?? null;
  const store = repo.objects;
  // Objects written before the branch moves are unreferenced: the session keeps gc from sweeping them meanwhile.
  await repo.beginSession('derive');
  try {
    const recipe = await makeRecipe(repo, store, options.edits, id.time, options.signal);
    const base = { oid: baseRev.oid, commit: baseRev.commit, name: options.base };
    const applied = await applyToBase(repo, store, base, recipe);
    const message = options.message ?? `derive from ${options.base}: ${recipe.edits.length} edit${recipe.edits.length === 1 ? '' : 's'}`;
    const commit = derivedCommit(base, recipe, applied, { ...id, parents: head ? [head] : [], message });
    const [oid] = await writeCommits(repo, [{ commit, ref, expectedOld: head, reflog: `derive: ${firstLine(message)}` }], { who: id.author });
    return {
      id: oid!, branch: ref, parent: head, base: { rev: options.base, commit: baseRev.oid }, recipe: recipeId(recipe), edits: recipe.edits.length,
      tree: applied.root, treesWritten: applied.treesWritten, reused: applied.reused,
    };
  } catch (e) {
    store.discard();
    throw e;
  } finally {
    try { await repo.endSession(); } catch { /* gc clears a stale session */ }
  }
}
