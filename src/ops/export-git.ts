/**
 * The export-git op: the history of viva images as a git repository (isomorphic-git for trees, commits and refs;
 * blobs as loose objects), with a `.viva-meta` sidecar per directory for what git cannot hold, or with one manifest
 * file per image (`--manifests-only`). Incremental: commits exported before are not written again.
 */
import fs from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import { DestinationNotEmptyError, RefConflictError, UsageError, WriteError } from '../errors.js';
import type { Commit } from '../model/commit.js';
import { MANIFEST_NAME, SIDECAR_NAME, SIDECAR_VERSION, encodeSidecar, gitName, manifestHeader, manifestLine } from '../model/git-sidecar.js';
import { type Oid, hashBytes, isOid } from '../model/oid.js';
import { HEADS, REMOTES, TAGS } from '../model/ref.js';
import type { TreeEntry } from '../model/tree.js';
import type { ObjectReader } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { commitTree, readBlobBytes, readBlobPieces, readCommit, readTree } from '../store/typed.js';
import { DEFAULT_STREAM_THRESHOLD, type GitDir, LooseObjectWriter, STATE_DIR, findGitDir, gitCommitText } from './git-objects.js';
import type { ProgressEvent } from './ingest.js';
import { resolveRevision } from './resolve.js';

/** Refs for revisions that name no branch or tag: `refs/viva/commits/<viva commit id>` keeps them reachable. */
export const DETACHED_REF_PREFIX = 'refs/viva/commits/';
const MAP_FILE = 'export-map';
const CACHE_FILE = 'export-cache';
const ZERO_PIECE = Buffer.alloc(1 << 20);

/** What to export where (see exportGit). */
export interface ExportGitOptions {
  /** Branches or revisions; every commit reachable from them is exported. */
  revs: string[];
  /** The git repository: created (bare) when missing or empty; an existing repository (bare or not) is added to. */
  dir: string;
  /** One manifest file per image instead of its files. */
  manifestsOnly?: boolean;
  signal?: AbortSignal;
  /** After each file's content is written: files and bytes so far, and its path. */
  onProgress?: (e: ProgressEvent) => void;
}

/** One git ref the export set. */
export interface ExportedRef {
  /** The git ref written (`refs/heads/NAME` for a viva branch). */
  ref: string;
  /** The viva commit it points at. */
  commit: Oid;
  /** Its git commit. */
  gitCommit: string;
}

/** What an export wrote (JSON-safe; `viva export-git --json` prints it). */
export interface ExportGitResult {
  dir: string;
  /** The git directory written (DIR itself for a bare repository). */
  gitDir: string;
  bare: boolean;
  /** The git repository was created by this export. */
  created: boolean;
  manifestsOnly: boolean;
  /** Git commits written now. */
  commits: number;
  /** Reachable commits exported by an earlier run (not written again). */
  upToDate: number;
  /** Blobs written (loose objects) and their bytes. */
  blobs: number;
  bytes: number;
  /** Git trees written. */
  trees: number;
  refs: ExportedRef[];
  /** Where HEAD points, when this export set it. */
  head?: string;
}

/** The viva commit → git commit map and the tree and blob caches of earlier exports into one git directory. */
interface ExportState {
  mode: 'full' | 'manifests';
  commits: Map<Oid, string>;
  trees: Map<Oid, string>;
  blobs: Map<Oid, string>;
}

function statePath(gitdir: string, file: string): string {
  return path.join(gitdir, STATE_DIR, file);
}

function readLines(file: string): string[] | undefined {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Loads the state; a cache written by another sidecar version is dropped (its git trees would differ). */
function loadState(gitdir: string, mode: 'full' | 'manifests', dir: string): ExportState {
  const st: ExportState = { mode, commits: new Map(), trees: new Map(), blobs: new Map() };
  const map = readLines(statePath(gitdir, MAP_FILE));
  if (map) {
    const head = /^viva-export 1 (full|manifests)$/.exec(map[0] ?? '');
    if (head && head[1] !== mode) {
      throw new UsageError(`'${dir}' holds a ${head[1] === 'full' ? 'full export' : 'manifests-only export'}: export ${mode === 'full' ? 'the files' : 'manifests'} into another directory`);
    }
    if (head) {
      for (const l of map.slice(1)) {
        const [v, g] = l.split(' ');
        if (v && g && isOid(v)) st.commits.set(v, g);
      }
    }
  }
  const cache = readLines(statePath(gitdir, CACHE_FILE));
  if (cache && cache[0] === `viva-export-cache 1 sidecar ${SIDECAR_VERSION}`) {
    for (const l of cache.slice(1)) {
      const [k, v, g] = l.split(' ');
      if (!v || !g) continue;
      if (k === 't') st.trees.set(v, g);
      else if (k === 'b') st.blobs.set(v, g);
    }
  }
  return st;
}

function saveState(gitdir: string, st: ExportState): void {
  const dir = path.join(gitdir, STATE_DIR);
  fs.mkdirSync(dir, { recursive: true });
  const write = (file: string, text: string) => {
    const tmp = path.join(dir, `${file}.tmp`);
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, path.join(dir, file));
  };
  write(MAP_FILE, `viva-export 1 ${st.mode}\n${[...st.commits].map(([v, g]) => `${v} ${g}\n`).join('')}`);
  if (st.mode === 'full') {
    write(CACHE_FILE, `viva-export-cache 1 sidecar ${SIDECAR_VERSION}\n${[...st.trees].map(([v, g]) => `t ${v} ${g}\n`).join('')}${[...st.blobs].map(([v, g]) => `b ${v} ${g}\n`).join('')}`);
  }
}

/** The git directory of `dir`, created (bare, `git init --bare`) when `dir` is missing or empty. */
async function openOrInit(dir: string, shown: string): Promise<GitDir & { created: boolean }> {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new WriteError(shown, (e as Error).message);
  }
  if (st && !st.isDirectory()) throw new DestinationNotEmptyError(shown, 'exists and is not a directory');
  if (st) {
    const found = findGitDir(dir);
    if (found) return { ...found, created: false };
    if (fs.readdirSync(dir).length) throw new DestinationNotEmptyError(shown, 'exists and is neither empty nor a git repository');
  }
  try {
    fs.mkdirSync(dir, { recursive: true });
    await git.init({ fs, dir, gitdir: dir, bare: true, defaultBranch: 'main' });
  } catch (e) {
    throw new WriteError(shown, (e as Error).message);
  }
  return { gitdir: dir, bare: true, created: true };
}

/** The git ref a revision's export gets: the same name for a branch, tag or remote-tracking ref, else a detached one. */
function gitRefFor(ref: string | undefined, oid: Oid): string {
  if (ref && (ref.startsWith(HEADS) || ref.startsWith(TAGS) || ref.startsWith(REMOTES))) return ref;
  return DETACHED_REF_PREFIX + oid;
}

/** Commits reachable from `tips` that are not exported yet, parents before children. */
async function commitsToExport(store: ObjectReader, tips: Oid[], st: ExportState, gitdir: string): Promise<{ order: Oid[]; upToDate: number }> {
  const order: Oid[] = [];
  const state = new Map<Oid, 'open' | 'done'>();
  const upToDate = new Set<Oid>();
  const exported = async (oid: Oid): Promise<boolean> => {
    const g = st.commits.get(oid);
    if (!g) return false;
    try {
      await git.readObject({ fs, gitdir, oid: g, format: 'content' });
      return true;
    } catch {
      st.commits.delete(oid); // the git commit is gone (the repository was pruned or replaced): export it again
      return false;
    }
  };
  const stack: Array<{ oid: Oid; c?: Commit }> = tips.map((oid) => ({ oid }));
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const s = state.get(top.oid);
    if (s === 'done') { stack.pop(); continue; }
    if (s === undefined) {
      if (await exported(top.oid)) {
        upToDate.add(top.oid);
        state.set(top.oid, 'done');
        stack.pop();
        continue;
      }
      state.set(top.oid, 'open');
      top.c = readCommit(store, top.oid);
      for (const p of [...top.c.parents].reverse()) if (state.get(p) !== 'done') stack.push({ oid: p });
      continue;
    }
    state.set(top.oid, 'done');
    order.push(top.oid);
    stack.pop();
  }
  return { order, upToDate: upToDate.size };
}

/** Writes one image's trees and blobs (sidecar mode) and returns the git tree of its root. */
class TreeExporter {
  trees = 0;

  constructor(private readonly store: ObjectReader, private readonly gitdir: string, private readonly objects: LooseObjectWriter,
    private readonly st: ExportState, private readonly signal?: AbortSignal, private readonly onProgress?: (e: ProgressEvent) => void) {}

  private files = 0;
  private bytes = 0;

  private async blob(e: TreeEntry, where: Buffer): Promise<string> {
    const oid = e.oid!;
    const cached = this.st.blobs.get(oid);
    if (cached) return cached;
    let sha: string;
    if (e.size <= DEFAULT_STREAM_THRESHOLD) {
      sha = this.objects.writeBlob(await readBlobBytes(this.store, oid, e.size));
    } else {
      const store = this.store;
      sha = await this.objects.writeBlobStream(e.size, (function* () {
        for (const p of readBlobPieces(store, oid)) {
          if (p.data) yield p.data;
          else for (let n = p.zeros ?? 0; n > 0; n -= ZERO_PIECE.length) yield n >= ZERO_PIECE.length ? ZERO_PIECE : ZERO_PIECE.subarray(0, n);
        }
      })());
    }
    this.st.blobs.set(oid, sha);
    this.files++;
    this.bytes += e.size;
    this.onProgress?.({ phase: 'exporting', files: this.files, bytes: this.bytes, path: where.toString('utf8') });
    return sha;
  }

  /** `root`: the image root's sidecar lines (root metadata, disk id), which make the root tree differ per commit. */
  async tree(oid: Oid, where: Buffer, root?: { commit: Commit }): Promise<string> {
    if (!root) {
      const cached = this.st.trees.get(oid);
      if (cached) return cached;
    }
    if (this.signal?.aborted) throw this.signal.reason;
    const t = readTree(this.store, oid);
    const entries: Array<{ mode: string; path: string; oid: string; type: 'blob' | 'tree' }> = [];
    for (const e of t.entries) {
      const name = gitName(e.name);
      const p = where.length ? Buffer.concat([where, Buffer.from('/'), e.name]) : e.name;
      if (e.type === 'dir') entries.push({ mode: '040000', path: name, oid: await this.tree(e.oid!, p), type: 'tree' });
      else if (e.type === 'file') entries.push({ mode: e.mode & 0o100 ? '100755' : '100644', path: name, oid: await this.blob(e, p), type: 'blob' });
      else if (e.type === 'symlink') entries.push({ mode: '120000', path: name, oid: this.objects.writeBlob(e.linkTarget ?? Buffer.alloc(0)), type: 'blob' });
      // Devices, fifos and sockets live in the sidecar only.
    }
    const c = root?.commit;
    const sidecar = encodeSidecar({ ...(c?.rootMeta ? { root: c.rootMeta } : {}), ...(c?.rootKind === 'disk' ? { disk: c.root } : {}), entries: t.entries });
    entries.push({ mode: '100644', path: SIDECAR_NAME, oid: this.objects.writeBlob(Buffer.from(sidecar)), type: 'blob' });
    const sha = await git.writeTree({ fs, gitdir: this.gitdir, tree: entries });
    this.trees++;
    if (!root) this.st.trees.set(oid, sha);
    return sha;
  }
}

/** sha256 (first 12 hex digits) over an entry's xattrs: names and values, so a changed value changes the line. */
function xattrHash(xattrs: TreeEntry['xattrs']): string {
  const parts: Buffer[] = [];
  for (const x of xattrs) parts.push(Buffer.from(`${x.name}\0${x.value.length}\0`), Buffer.from(x.value));
  return hashBytes(Buffer.concat(parts)).slice(0, 12);
}

/** The manifest text of one image (see docs/git-interop.md). */
function manifestText(store: ObjectReader, c: Commit): string {
  const tree = commitTree(store, c);
  const lines: string[] = [manifestHeader({ kind: c.rootKind, root: c.root, tree }).trimEnd()];
  if (c.rootMeta) lines.push(manifestLine(Buffer.from('.'), { ...c.rootMeta, type: 'dir', size: 0 }, xattrHash(c.rootMeta.xattrs)));
  const walk = (oid: Oid, prefix: Buffer | undefined) => {
    for (const e of readTree(store, oid).entries) {
      const p = prefix ? Buffer.concat([prefix, Buffer.from('/'), e.name]) : e.name;
      lines.push(manifestLine(p, e, xattrHash(e.xattrs)));
      if (e.type === 'dir') walk(e.oid!, p);
    }
  };
  walk(tree, undefined);
  return `${lines.join('\n')}\n`;
}

/**
 * Writes the history of the images `revs` name into the git repository `dir`: one git commit per viva commit
 * (author, date and time zone, message, parents incl. merges), the file trees with a `.viva-meta` sidecar per
 * directory (or one manifest per image with `manifestsOnly`), a git ref per revision (a branch as
 * `refs/heads/NAME`), and HEAD on the first branch when the repository is new. Commits exported into `dir` before
 * (recorded in `GITDIR/viva/export-map`) are not written again, nor are trees and blobs exported before.
 *
 * Locking: reads the repository only; the git repository must not be written by anyone else meanwhile.
 * Throws: RevisionNotFoundError for a revision that names no commit, DestinationNotEmptyError for a `dir` that is
 * neither empty nor a git repository, RefConflictError (before writing anything) when a ref to be set points at a
 * git commit that no export wrote, UsageError for a manifests-only export into a full one (or back),
 * WriteError when the git repository cannot be written.
 *
 * @example
 * const r = await exportGit(repo, { revs: ['debian/12/base'], dir: '/srv/git/base.git' });
 */
export async function exportGit(repo: Repository, options: ExportGitOptions): Promise<ExportGitResult> {
  if (options.revs.length === 0) throw new UsageError('no revision to export');
  const store = repo.objects;
  const resolved = options.revs.map((r) => resolveRevision(repo, r));
  const dir = path.resolve(options.dir);
  const mode = options.manifestsOnly ? 'manifests' : 'full';
  const { gitdir, bare, created } = await openOrInit(dir, options.dir);
  const st = loadState(gitdir, mode, options.dir);
  const objects = new LooseObjectWriter(gitdir);
  const exporter = new TreeExporter(store, gitdir, objects, st, options.signal, options.onProgress);
  let written = 0;
  let trees = 0;
  const { order, upToDate } = await commitsToExport(store, resolved.map((r) => r.oid), st, gitdir);
  // A ref of DIR that points at a commit no viva export wrote is someone else's work: never overwritten.
  const ours = new Set(st.commits.values());
  for (const r of resolved) {
    const ref = gitRefFor(r.ref, r.oid);
    const old = await git.resolveRef({ fs, gitdir, ref }).catch(() => undefined);
    if (old && !ours.has(old)) {
      throw new RefConflictError(ref, null, old, `git ref '${ref}' in '${options.dir}' points at ${old.slice(0, 12)}, which no viva export wrote: export into another directory, or delete that ref`);
    }
  }
  try {
    for (const oid of order) {
      if (options.signal?.aborted) throw options.signal.reason;
      const c = readCommit(store, oid);
      let tree: string;
      if (mode === 'full') {
        tree = await exporter.tree(commitTree(store, c), Buffer.alloc(0), { commit: c });
      } else {
        const blob = objects.writeBlob(Buffer.from(manifestText(store, c)));
        tree = await git.writeTree({ fs, gitdir, tree: [{ mode: '100644', path: MANIFEST_NAME, oid: blob, type: 'blob' }] });
        trees++;
      }
      // isomorphic-git's writeCommit knows no extra headers: the commit text is built here and written as an object.
      const text = gitCommitText(c, tree, c.parents.map((p) => st.commits.get(p)!));
      const sha = await git.writeObject({ fs, gitdir, type: 'commit', object: Buffer.from(text), format: 'content' });
      st.commits.set(oid, sha);
      written++;
    }
    const refs: ExportedRef[] = [];
    for (const r of resolved) {
      const ref = gitRefFor(r.ref, r.oid);
      const gitCommit = st.commits.get(r.oid)!;
      await git.writeRef({ fs, gitdir, ref, value: gitCommit, force: true });
      if (!refs.some((x) => x.ref === ref)) refs.push({ ref, commit: r.oid, gitCommit });
    }
    saveState(gitdir, st);
    // HEAD: on the first branch exported, when the repository is new or HEAD names a ref that does not exist.
    let head: string | undefined;
    let headOk = true;
    try { await git.resolveRef({ fs, gitdir, ref: 'HEAD' }); } catch { headOk = false; }
    if (created || !headOk) {
      const branch = refs.find((r) => r.ref.startsWith(HEADS));
      if (branch) await git.writeRef({ fs, gitdir, ref: 'HEAD', value: branch.ref, symbolic: true, force: true });
      else await git.writeRef({ fs, gitdir, ref: 'HEAD', value: refs[0]!.gitCommit, force: true });
      head = branch?.ref ?? refs[0]!.gitCommit;
    }
    return {
      dir: options.dir, gitDir: gitdir, bare, created, manifestsOnly: mode === 'manifests', commits: written, upToDate,
      blobs: objects.written, bytes: objects.bytes, trees: trees + exporter.trees, refs, ...(head ? { head } : {}),
    };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EACCES' || code === 'EROFS' || code === 'EIO') throw new WriteError(options.dir, (e as Error).message);
    throw e;
  }
}
