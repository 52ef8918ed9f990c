/**
 * The import-git op: a git repository written by export-git back into viva trees and commits. The sidecars give
 * back every field git cannot hold, so the trees are the originals (same ids), and the `viva-commit` header gives
 * back the commits themselves. Everything is read and checked first; objects are written only when the whole
 * history parsed.
 */
import fs from 'node:fs';
import path from 'node:path';
import git from 'isomorphic-git';
import { CorruptInputError, RefExistsError, RefNotFoundError, UnsupportedInputError, UsageError, VivaError } from '../errors.js';
import type { DataPiece } from '../formats/types.js';
import { type Commit, type RootMeta, encodeCommit, hashCommit } from '../model/commit.js';
import { MANIFEST_NAME, SIDECAR_NAME, type SidecarEntry, SidecarSyntaxError, decodeSidecar, gitName, quoteField } from '../model/git-sidecar.js';
import type { Oid } from '../model/oid.js';
import { HEADS, branchRef } from '../model/ref.js';
import { type TreeEntry, encodeTree, hashTree, normalizeTree } from '../model/tree.js';
import type { Repository } from '../store/repository.js';
import { storeContent } from '../store/store-content.js';
import { VIVA_COMMIT_HEADER, decodeVivaCommitHeader, findGitDir, tryOpenLooseBlob, tryReadLooseBlob } from './git-objects.js';
import type { ProgressEvent } from './ingest.js';
import { writeCommits } from './write-commit.js';

/** The warning for a commit that was a disk image (docs/git-interop.md). */
export const DISK_IMPORT_NOTE = 'disk images are exported as their file trees; import gives a tree commit';

/** What to import from where (see importGit). */
export interface ImportGitOptions {
  /** The git repository (bare or with a work tree) an export-git wrote. */
  dir: string;
  /** A git branch, tag, ref or commit id in it. */
  ref: string;
  /** The viva branch to create or fast-forward; default the git branch's name. */
  branch?: string;
  signal?: AbortSignal;
  /** After each file's content is stored: contents and bytes so far, and the file's path. */
  onProgress?: (e: ProgressEvent) => void;
}

/** What an import made (JSON-safe; `viva import-git --json` prints it). */
export interface ImportGitResult {
  /** Full viva ref moved. */
  branch: string;
  /** The viva commit it points at now. */
  id: Oid;
  /** Its tree. */
  tree: Oid;
  /** Viva commits in the imported history. */
  commits: number;
  /** Of those, the ones that are exactly the exported commits (same id as before the export). */
  identical: number;
  /** Distinct file contents stored (files with the same content and holes count once). */
  files: number;
  warnings: string[];
}

/** One git tree read and checked, its entries with their metadata (content still in git). */
interface PlannedTree {
  entries: Array<{ meta: SidecarEntry; blob?: string; sub?: PlannedTree }>;
  root?: RootMeta;
  disk?: Oid;
  /** The viva tree id, once written. */
  oid?: Oid;
}

interface GitCommitInfo {
  sha: string;
  tree: string;
  parents: string[];
  author: { name: string; email: string; timestamp: number; timezoneOffset: number };
  message: string;
  viva?: string;
}

/** Bytes of a hole in git's copy of a file are not zero: the sidecar's hole map does not fit the content. */
class HoleNotZeroError extends Error {}

const ZEROS = Buffer.alloc(1 << 20);

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += ZEROS.length) {
    const part = b.subarray(i, Math.min(b.length, i + ZEROS.length));
    if (!part.equals(ZEROS.subarray(0, part.length))) return false;
  }
  return true;
}

/** The content's data pieces with the holes cut out; the bytes inside a hole must be zero (HoleNotZeroError). */
async function* dataOutsideHoles(pieces: AsyncIterable<Buffer> | Iterable<Buffer>, holes: ReadonlyArray<{ offset: number; length: number }>): AsyncIterable<DataPiece> {
  let pos = 0;
  let hi = 0;
  for await (const p of pieces) {
    let off = 0;
    while (off < p.length) {
      const at = pos + off;
      while (hi < holes.length && holes[hi]!.offset + holes[hi]!.length <= at) hi++;
      const h = holes[hi];
      if (h && h.offset <= at) {
        const end = Math.min(p.length, h.offset + h.length - pos);
        if (!isZero(p.subarray(off, end))) throw new HoleNotZeroError(`hole ${h.offset}+${h.length} holds bytes that are not zero`);
        off = end;
      } else {
        const end = h ? Math.min(p.length, h.offset - pos) : p.length;
        yield { offset: at, data: p.subarray(off, end) };
        off = end;
      }
    }
    pos += p.length;
  }
}

/**
 * Reads the history of `ref` in the git repository `dir` (written by export-git, not `--manifests-only`) into
 * viva: each git commit becomes the viva commit it was exported from (same id) when its tree and parents are
 * unchanged, else a new tree commit with the git commit's author, date and message; the branch (default: the git
 * branch's name) is created or fast-forwarded to the last one. A commit that was a disk image comes back as a tree
 * commit of its file trees (a warning says so). Git entries without a sidecar line (files added in git) get
 * mode 0644 (0755 when executable, 0755 for directories), owner 0:0 and the commit's time.
 *
 * Locking: writer session for the whole import; the branch moves by compare-and-swap after every object is durable.
 * Throws: UnsupportedInputError when `dir` is no git repository or the export is manifests-only, RefNotFoundError
 * for a ref `dir` does not have, CorruptInputError naming the file (`PATH/.viva-meta in commit SHA`) and line of a
 * malformed sidecar or a missing object, RefExistsError when the branch exists and is not an ancestor of the
 * import, UsageError when `ref` names no branch and no `branch` is given. Nothing is written before all sidecars
 * of the history parsed; a later failure (content that contradicts its sidecar, the branch check) moves no ref and
 * leaves at most unreferenced objects (gc removes them).
 *
 * @example
 * const r = await importGit(repo, { dir: '/srv/git/base.git', ref: 'debian/12/base' });
 */
export async function importGit(repo: Repository, options: ImportGitOptions): Promise<ImportGitResult> {
  const dir = path.resolve(options.dir);
  const found = fs.existsSync(dir) ? findGitDir(dir) : undefined;
  if (!found) throw new UnsupportedInputError(options.dir, 'not a git repository');
  const { gitdir } = found;
  let full: string;
  let tip: string;
  try {
    full = await git.expandRef({ fs, gitdir, ref: options.ref });
    tip = await git.resolveRef({ fs, gitdir, ref: full });
  } catch {
    const oid = /^[0-9a-f]{4,40}$/.test(options.ref) ? await git.expandOid({ fs, gitdir, oid: options.ref }).catch(() => undefined) : undefined;
    if (!oid) throw new RefNotFoundError(options.ref, `ref '${options.ref}' not found in '${options.dir}'`);
    full = oid;
    tip = oid;
  }
  if (full === 'HEAD') {
    const target = await git.resolveRef({ fs, gitdir, ref: 'HEAD', depth: 2 }).catch(() => undefined);
    if (target?.startsWith('refs/')) full = target;
  }
  const branchName = options.branch ?? (full.startsWith(HEADS) ? full.slice(HEADS.length) : full.startsWith('refs/tags/') ? full.slice('refs/tags/'.length) : undefined);
  if (!branchName) throw new UsageError(`'${options.ref}' is not a branch: name the viva branch with -b`);
  const ref = branchRef(branchName);

  const readCommitInfo = async (sha: string): Promise<GitCommitInfo> => {
    try {
      const { commit } = await git.readCommit({ fs, gitdir, oid: sha });
      const viva = (commit as unknown as Record<string, unknown>)[VIVA_COMMIT_HEADER];
      return { sha, tree: commit.tree, parents: commit.parent, author: commit.author, message: commit.message, ...(typeof viva === 'string' ? { viva } : {}) };
    } catch (e) {
      throw new CorruptInputError(options.dir, `commit ${sha}`, `cannot be read: ${(e as Error).message}`);
    }
  };

  // The history, parents first.
  const infos = new Map<string, GitCommitInfo>();
  const order: GitCommitInfo[] = [];
  const stack: string[] = [tip];
  const done = new Set<string>();
  while (stack.length) {
    const sha = stack[stack.length - 1]!;
    if (done.has(sha)) { stack.pop(); continue; }
    let info = infos.get(sha);
    if (!info) {
      info = await readCommitInfo(sha);
      infos.set(sha, info);
      for (const p of [...info.parents].reverse()) if (!done.has(p)) stack.push(p);
      continue;
    }
    done.add(sha);
    order.push(info);
    stack.pop();
  }

  // Phase 1: every tree and sidecar read and checked; nothing written.
  const planned = new Map<string, PlannedTree>();
  const plan = async (sha: string, where: string, commitSha: string, isRoot: boolean, defaultTime: bigint): Promise<PlannedTree> => {
    const key = `${sha}:${isRoot}`;
    const cached = planned.get(key);
    if (cached) return cached;
    if (options.signal?.aborted) throw options.signal.reason;
    const file = `${where}${SIDECAR_NAME}`;
    const fail = (at: string, reason: string) => new CorruptInputError(`${options.dir}: ${file} in commit ${commitSha.slice(0, 12)}`, at, reason);
    let gitEntries: Array<{ mode: string; path: string; oid: string; type: string }>;
    try {
      gitEntries = (await git.readTree({ fs, gitdir, oid: sha })).tree;
    } catch (e) {
      throw new CorruptInputError(options.dir, `tree ${sha} (${where || '/'})`, `cannot be read: ${(e as Error).message}`);
    }
    const byName = new Map(gitEntries.map((e) => [e.path, e]));
    const sc = byName.get(SIDECAR_NAME);
    if (isRoot && !sc) {
      if (byName.has(MANIFEST_NAME)) throw new UnsupportedInputError(options.dir, `'${options.ref}' is a manifests-only export (${MANIFEST_NAME} instead of files): it cannot be imported`);
      throw new UnsupportedInputError(options.dir, `commit ${commitSha.slice(0, 12)} is not a viva export (no ${SIDECAR_NAME} at its root)`);
    }
    let sidecar: ReturnType<typeof decodeSidecar> = { entries: [] };
    if (sc) {
      let text: string;
      try {
        text = Buffer.from((await git.readBlob({ fs, gitdir, oid: sc.oid })).blob).toString('utf8');
      } catch (e) {
        throw fail('blob', `cannot be read: ${(e as Error).message}`);
      }
      try {
        sidecar = decodeSidecar(text, isRoot);
      } catch (e) {
        if (e instanceof SidecarSyntaxError) throw fail(`line ${e.line}`, e.reason);
        throw e;
      }
    }
    const out: PlannedTree = { entries: [], ...(sidecar.root ? { root: sidecar.root } : {}), ...(sidecar.disk ? { disk: sidecar.disk } : {}) };
    const listed = new Set<string>([SIDECAR_NAME]);
    for (const [i, meta] of sidecar.entries.entries()) {
      const gname = gitName(meta.name);
      const ge = byName.get(gname);
      const line = `line ${i + 2 + (sidecar.root ? 1 : 0) + (sidecar.disk ? 1 : 0)}`;
      if (meta.type === 'file' || meta.type === 'symlink' || meta.type === 'dir') {
        listed.add(gname);
        const want = meta.type === 'dir' ? 'tree' : 'blob';
        if (!ge || ge.type !== want || (meta.type === 'symlink') !== (ge.mode === '120000')) {
          throw fail(line, `${quoteField(meta.name)} is a ${meta.type}, but the git tree has no ${meta.type === 'dir' ? 'tree' : meta.type === 'symlink' ? 'symlink' : 'file'} '${gname}'`);
        }
        if (meta.type === 'dir') out.entries.push({ meta, sub: await plan(ge.oid, `${where}${gname}/`, commitSha, false, defaultTime) });
        else out.entries.push({ meta, blob: ge.oid });
      } else {
        out.entries.push({ meta });
      }
    }
    // Entries added in git without a sidecar line: default metadata.
    const realNames = new Set(sidecar.entries.map((e) => e.name.toString('hex')));
    for (const ge of gitEntries) {
      if (listed.has(ge.path)) continue;
      if (ge.type === 'commit') throw fail(`'${ge.path}'`, 'a submodule (gitlink) cannot be imported');
      const name = Buffer.from(ge.path, 'utf8');
      if (realNames.has(name.toString('hex'))) throw fail(`'${ge.path}'`, `the sidecar lists it as a ${sidecar.entries.find((e) => e.name.equals(name))!.type}, but git has it as a ${ge.type === 'tree' ? 'tree' : 'blob'}`);
      const type = ge.type === 'tree' ? 'dir' : ge.mode === '120000' ? 'symlink' : 'file';
      const mode = type === 'dir' || ge.mode === '100755' ? 0o755 : type === 'symlink' ? 0o777 : 0o644;
      const meta: SidecarEntry = { name, type, mode, uid: 0, gid: 0, mtimeNs: defaultTime, size: 0, xattrs: [] };
      if (type === 'dir') out.entries.push({ meta, sub: await plan(ge.oid, `${where}${ge.path}/`, commitSha, false, defaultTime) });
      else out.entries.push({ meta, blob: ge.oid });
    }
    planned.set(key, out);
    return out;
  };
  const roots: PlannedTree[] = [];
  for (const info of order) roots.push(await plan(info.tree, '', info.sha, true, BigInt(info.author.timestamp) * 1_000_000_000n));
  const vivaHeaders = order.map((info) => {
    if (info.viva === undefined) return undefined;
    try {
      return decodeVivaCommitHeader(info.viva);
    } catch (e) {
      throw new CorruptInputError(options.dir, `commit ${info.sha}: ${VIVA_COMMIT_HEADER} header`, (e as Error).message);
    }
  });

  // Phase 2: content, trees, commits.
  const store = repo.objects;
  const warnings: string[] = [];
  const contents = new Map<string, { oid: Oid; size: number }>();
  let files = 0;
  let bytes = 0;
  const blobBytes = async (sha: string, what: string): Promise<Buffer> => {
    try {
      return tryReadLooseBlob(gitdir, sha) ?? Buffer.from((await git.readBlob({ fs, gitdir, oid: sha })).blob);
    } catch (e) {
      throw new CorruptInputError(options.dir, `blob ${sha} (${what})`, `cannot be read: ${(e as Error).message}`);
    }
  };
  const blobContent = async (sha: string, what: string): Promise<{ size: number; pieces: AsyncIterable<Buffer> | Iterable<Buffer> }> => {
    try {
      const loose = await tryOpenLooseBlob(gitdir, sha);
      if (loose) return loose;
      const b = Buffer.from((await git.readBlob({ fs, gitdir, oid: sha })).blob);
      return { size: b.length, pieces: [b] };
    } catch (e) {
      throw new CorruptInputError(options.dir, `blob ${sha} (${what})`, `cannot be read: ${(e as Error).message}`);
    }
  };
  const writeTree = async (t: PlannedTree, where: Buffer): Promise<Oid> => {
    if (t.oid) return t.oid;
    const entries: TreeEntry[] = [];
    for (const { meta, blob, sub } of t.entries) {
      const name = quoteField(Buffer.concat([where, meta.name]));
      const e: TreeEntry = { name: meta.name, type: meta.type, mode: meta.mode, uid: meta.uid, gid: meta.gid, mtimeNs: meta.mtimeNs, size: meta.size, xattrs: meta.xattrs };
      if (meta.rdev) e.rdev = meta.rdev;
      if (meta.hardlink) e.hardlink = meta.hardlink;
      if (sub) {
        e.oid = await writeTree(sub, Buffer.concat([where, meta.name, Buffer.from('/')]));
      } else if (meta.type === 'symlink') {
        e.linkTarget = await blobBytes(blob!, name);
        e.size = e.linkTarget.length;
      } else if (meta.type === 'file') {
        const holes = meta.holes ?? [];
        const key = `${blob}:${holes.map((h) => `${h.offset}+${h.length}`).join(',')}`;
        let stored = contents.get(key);
        if (!stored) {
          const content = await blobContent(blob!, name);
          const last = holes[holes.length - 1];
          if (last && last.offset + last.length > content.size) throw new CorruptInputError(options.dir, name, `hole ${last.offset}+${last.length} lies beyond the file's ${content.size} bytes`);
          let r: Awaited<ReturnType<typeof storeContent>>;
          try {
            r = await storeContent(store, { size: content.size, read: () => dataOutsideHoles(content.pieces, holes) }, options.signal);
          } catch (e) {
            if (e instanceof HoleNotZeroError) throw new CorruptInputError(options.dir, name, e.message);
            if (e instanceof Error && !(e instanceof VivaError)) throw new CorruptInputError(options.dir, `blob ${blob} (${name})`, `cannot be read: ${e.message}`);
            throw e;
          }
          stored = { oid: r.oid, size: r.size };
          contents.set(key, stored);
          files++;
          bytes += r.size;
          options.onProgress?.({ phase: 'importing', files, bytes, path: name });
        }
        e.oid = stored.oid;
        e.size = stored.size;
        if (holes.length) e.holes = holes;
      }
      entries.push(e);
    }
    let enc: Buffer;
    try {
      enc = encodeTree(normalizeTree(entries));
    } catch (err) {
      throw new CorruptInputError(options.dir, `${quoteField(where) || '/'}${SIDECAR_NAME}`, (err as Error).message);
    }
    const oid = hashTree(enc);
    if (!store.hasObject('tree', oid)) store.writeObject('tree', oid, enc);
    t.oid = oid;
    return oid;
  };

  await repo.beginSession('import-git');
  try {
    const vivaOf = new Map<string, Oid>();
    let identical = 0;
    let last: { oid: Oid; tree: Oid; commit: Commit } | undefined;
    for (const [i, info] of order.entries()) {
      const plannedRoot = roots[i]!;
      const tree = await writeTree(plannedRoot, Buffer.alloc(0));
      const parents = info.parents.map((p) => vivaOf.get(p)!);
      const h = vivaHeaders[i];
      if (h?.rootKind === 'disk' || plannedRoot.disk) {
        const w = `commit ${info.sha.slice(0, 12)}: ${DISK_IMPORT_NOTE}`;
        if (!warnings.includes(w)) warnings.push(w);
      }
      const rootMeta = plannedRoot.root ?? h?.rootMeta;
      let c: Commit = {
        rootKind: 'tree', root: tree, parents,
        author: h?.author ?? `${info.author.name} <${info.author.email}>`,
        time: h?.time ?? info.author.timestamp,
        tzOffset: h?.tzOffset ?? -info.author.timezoneOffset,
        message: h?.message ?? info.message.replace(/\n$/, ''),
        labels: h?.labels ?? [],
        source: h?.source ?? { format: 'git' },
        ...(rootMeta ? { rootMeta } : {}),
        ...(h?.derivation ? { derivation: h.derivation } : {}),
      };
      // The derivation record describes how the exported commit was made from its parents: it holds only when the
      // commit comes back exactly as exported.
      if (h && !encodeCommit(c).equals(encodeCommit(h))) {
        const { derivation: _d, ...rest } = c;
        c = rest;
      } else if (h) {
        identical++;
      }
      const enc = encodeCommit(c);
      const oid = hashCommit(enc);
      if (i < order.length - 1 && !store.hasObject('commit', oid)) store.writeObject('commit', oid, enc);
      vivaOf.set(info.sha, oid);
      last = { oid, tree, commit: c };
    }
    const old = repo.refs.resolve(ref)?.oid ?? null;
    if (old !== last!.oid) {
      if (old && ![...vivaOf.values()].includes(old)) {
        throw new RefExistsError(ref, `branch '${branchName}' already exists and is not part of the imported history (name another branch with -b)`);
      }
      await writeCommits(repo, [{ commit: last!.commit, ref, expectedOld: old, reflog: `import-git: ${options.dir} ${options.ref}` }]);
    } else {
      await store.flush();
    }
    return { branch: ref, id: last!.oid, tree: last!.tree, commits: order.length, identical, files, warnings };
  } catch (e) {
    store.discard();
    throw e;
  } finally {
    try { await repo.endSession(); } catch { /* the import's own error is the one to report; gc clears a stale session */ }
  }
}
