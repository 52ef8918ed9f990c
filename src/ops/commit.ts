/** The commit op: image → chunks and blobs → trees → commit object → compare-and-swap of the branch. */
import { UsageError } from '../errors.js';
import { quotePath } from '../model/quote.js';
import { STDIN_SOURCE, openImage } from '../formats/index.js';
import { excludeTest } from '../formats/exclude.js';
import { sniffDisk } from '../formats/disk.js';
import type { ImageReader } from '../formats/types.js';
import { type Commit, type RootKind, type RootMeta, type SourceInfo, type SourceJson, sourceJson } from '../model/commit.js';
import type { Oid } from '../model/oid.js';
import { branchRef } from '../model/ref.js';
import type { Repository } from '../store/repository.js';
import { MutableTree } from '../tree/mutable-tree.js';
import type { ObjectWriter } from '../store/object-store.js';
import { type IngestContext, type ProgressEvent, ingestEntries, treeTotals } from './ingest.js';
import { ingestDisk } from './commit-disk.js';
import { openSessionSource } from './nbd-source.js';
import fs from 'node:fs';

/** `viva commit nbd:SESSION`: the source text naming a writable NBD session (a file of that name wins). */
export const NBD_SOURCE_PREFIX = 'nbd:';
import { afterRecorded, commitIdentity, firstLine, writeCommits } from './write-commit.js';

export { defaultAuthor } from './write-commit.js';
import { shadowWarnings } from './resolve.js';

export { RACY_WINDOW_NS, type ProgressEvent } from './ingest.js';

/** The options of {@link commit}: where the image comes from, which branch it goes on, the message and labels. */
export interface CommitOptions {
  /** Path of a directory or tar file (ignored when `reader` is given). */
  source?: string;
  reader?: ImageReader;
  /** Branch name (`debian/12/base`) or full ref; default: the branch HEAD points at. */
  branch?: string;
  message: string;
  labels?: Array<[string, string]>;
  /** "Name <email>"; default VIVA_AUTHOR or the user@host. */
  author?: string;
  /** Seconds since the epoch, 0 .. MAX_COMMIT_TIME; default VIVA_DATE or now. Throws InvalidTimeError otherwise. */
  time?: number;
  /** Use the stat cache for directory sources (default true). */
  statCache?: boolean;
  /**
   * Disks: a Linux file-system partition that can only be stored as raw bytes is an error, not a warning.
   * Directories: a file that may not be read (or a directory not listed) is an error (SourceReadError) instead of a
   * warning and an omission recorded in the commit (`source.omitted`).
   */
  strict?: boolean;
  /**
   * A qcow2 disk: commit this internal snapshot (id or name, as `qemu-img snapshot -l` lists them) instead of the
   * active layer. UsageError for another source, or a snapshot the image does not have (the message lists them).
   */
  snapshot?: string;
  /** Directories and tars: gitignore-style patterns of image paths left out (formats/exclude.ts). */
  exclude?: string[];
  /** Files of such patterns, one per line (as a .gitignore). */
  excludeFrom?: string[];
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /**
   * A merge commit (`merge --continue`): these parents instead of the branch's head, the branch required to be at
   * `expectedOld`, and the merge's derivation record.
   */
  merge?: { parents: Oid[]; expectedOld: Oid | null; derivation: Buffer };
}

/** What {@link commit} recorded: the new commit and its root, what was read and what was stored. */
export interface CommitResult {
  /** The new commit's id, named as log and show name it. */
  id: Oid;
  /** The same id (the field's first name, kept for scripts that read it). */
  commit: Oid;
  /** 'tree' for directories and tars, 'disk' for raw and qcow2 disks. */
  rootKind: RootKind;
  /** The commit's root: the tree, or the disk object. */
  root: Oid;
  /** The tree paths address (for a disk: its view tree). */
  tree: Oid;
  branch: string;
  parent: Oid | null;
  files: number;
  dirs: number;
  /** Logical bytes of all files. */
  bytes: number;
  /** Bytes of new stored objects (after dedup and compression). */
  storedBytes: number;
  /** Files whose content came from the stat cache (or the tree cache) without being read. */
  cachedFiles: number;
  /** Directories whose trees came from the tree cache, unread: they and everything below them looked as when committed. */
  cachedDirs: number;
  /** Where the image came from; `omitted`: source paths left out as unreadable (quoted as viva quotes paths). */
  source: SourceJson;
  /** What was stored differently than the source suggests (disks: a partition kept as raw bytes, and why). */
  warnings: string[];
}

/** Splits a `key=value` label (`viva commit --label`). Throws: UsageError when there is no `=` or the key is empty. */
export function parseLabel(s: string): [string, string] {
  const i = s.indexOf('=');
  if (i <= 0) throw new UsageError(`label '${s}' is not of the form key=value`);
  return [s.slice(0, i), s.slice(i + 1)];
}

/**
 * Records the image at `source` as a new commit on `branch` (created if missing; otherwise the new commit's parent
 * is its head), and points HEAD at that branch.
 *
 * Locking: registers a writer session for its whole run (gc refuses to sweep meanwhile); the ref moves in one
 * compare-and-swap transaction after every object is durable, so a crash leaves the branch old or new, never torn.
 * Throws: UsageError for an empty message, a bad author, label or time; CorruptInputError/UnsafeInputError/SourceReadError/SourceChangedError for bad sources (the repository
 * is unchanged: objects written so far are unreferenced and gc removes them), RefConflictError if the branch moved.
 *
 * @example
 * const r = await commit(repo, { source: 'rootfs/', branch: 'debian/12/base', message: 'base image' });
 */
export async function commit(repo: Repository, options: CommitOptions): Promise<CommitResult> {
  // As git: a message of only whitespace says nothing about the image.
  if (options.message.trim() === '') throw new UsageError('aborting commit due to empty commit message');
  const { author, time, tzOffset } = commitIdentity(options);
  const store = repo.objects;
  const ref = options.branch ? branchRef(options.branch) : repo.headBranch();
  const parent = repo.refs.resolve(ref)?.oid ?? null;
  // A new branch whose name a tag or a commit id already answers to: said once the branch exists.
  const shadow = parent ? [] : shadowWarnings(repo, ref);
  // nbd:SESSION (when no such file exists): a writable NBD session's disk, base commit + overlay.
  const session = !options.reader && options.source?.startsWith(NBD_SOURCE_PREFIX) && !fs.existsSync(options.source)
    ? openSessionSource(repo, options.source.slice(NBD_SOURCE_PREFIX.length)) : undefined;
  // A raw or qcow2 disk is read file system by file system; anything else is a directory or a tar.
  const diskKind = session ? 'raw' : !options.reader && options.source && options.source !== STDIN_SOURCE ? await sniffDisk(options.source) : undefined;
  // The repository's own data never becomes part of an image (as git ignores .git).
  const skip = excludeTest(options.exclude ?? [], options.excludeFrom ?? []);
  if (options.snapshot !== undefined && diskKind !== 'qcow2') {
    throw new UsageError(`--snapshot reads a qcow2 image's internal snapshot: '${options.source ?? 'the source'}' is ${diskKind ? `a ${diskKind} disk image` : 'not a disk image'}`);
  }
  if (skip && (diskKind || options.reader)) throw new UsageError(`--exclude applies to directories and tars: '${options.source ?? 'the source'}' is ${diskKind ? 'a disk image (its file systems are stored whole, to check out bit-exact)' : 'not read by path'}`);
  // A file or directory that may not be read is left out with a warning, as restic does (--strict: an error).
  const omitted: Buffer[] = [];
  const unreadable: string[] = [];
  const onUnreadable = options.strict ? undefined : (p: Buffer, reason: string) => {
    omitted.push(Buffer.from(p));
    unreadable.push(`cannot read '${quotePath(p)}': ${reason}; left out of the image`);
  };
  const startNs = BigInt(Date.now()) * 1_000_000n;
  const useCache = options.statCache ?? true;
  // The tree cache (directories): a directory that looks as when a commit built its tree is taken whole, unread.
  const treeCache = useCache ? {
    racyAfterNs: startNs,
    lookup: (key: string, signature: Buffer) => {
      const r = repo.statCache.readTree(key, signature);
      return r && store.hasObject('tree', r.oid) ? r : undefined;
    },
  } : undefined;
  const reader = options.reader ?? (diskKind ? undefined : openImage(options.source ?? '.', { exclude: [repo.dataDir], ...(skip ? { skip } : {}), ...(onUnreadable ? { onUnreadable } : {}), ...(treeCache ? { treeCache } : {}) }));
  const sourceName = reader?.description.name ?? options.source ?? '';
  const labels = options.labels ?? [];
  const seen = new Set<string>();
  for (const [k] of labels) {
    if (seen.has(k)) throw new UsageError(`label '${k}' given twice`);
    seen.add(k);
  }

  await repo.beginSession('commit');
  const background = store.backgroundWriter();
  const writer: ObjectWriter = background ?? store;
  const before = { ...store.written };
  const ctx: IngestContext = {
    store, statCache: repo.statCache, writer, useCache, startNs, cacheUpdates: [],
    ...(options.signal ? { signal: options.signal } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    files: 0, bytes: 0, cachedFiles: 0,
    // An uncompressed tar's content is nearly all of its size: a percentage (headers and padding keep it a little short).
    ...(reader?.description.format === 'tar' && reader.description.size ? { totalBytes: reader.description.size } : {}),
  };
  let storedBytes = 0;
  /** The new commit's id once its ref moved. */
  let recorded: Oid | undefined;
  try {
    let rootKind: RootKind;
    let rootOid: Oid;
    let tree: Oid;
    let rootMeta: RootMeta;
    let source: SourceInfo;
    let counts: { files: number; dirs: number; bytes: number };
    let warnings: string[] = [];
    let treeRecords: Parameters<typeof repo.statCache.writeTrees>[0] = [];
    if (reader) {
      const builder = new MutableTree(undefined, { sourceName });
      await ingestEntries(ctx, reader, builder, sourceName);
      const written = builder.write(writer);
      const root = builder.rootMeta();
      rootKind = 'tree';
      rootOid = tree = written.oid;
      rootMeta = { mode: root.mode, uid: root.uid, gid: root.gid, mtimeNs: root.mtimeNs, xattrs: root.xattrs };
      source = omitted.length ? { ...reader.description, omitted } : reader.description;
      warnings = unreadable;
      if (ctx.storedTrees || ctx.treeRecords) {
        const t = treeTotals(ctx, builder);
        counts = t.totals;
        treeRecords = t.records;
      } else {
        counts = written;
      }
    } else {
      const d = session
        ? await ingestDisk(ctx, session.source, { reuse: session.reuse, ...(options.strict ? { strict: true } : {}) })
        : await ingestDisk(ctx, options.source!, { ...(options.strict ? { strict: true } : {}), ...(options.snapshot !== undefined ? { snapshot: options.snapshot } : {}) });
      // Where the disk came from: the session over its base commit (the parent when the branch is new).
      if (session) d.source.name = `nbd:${session.info.name} over '${session.info.rev}' (commit ${session.info.commit})`;
      warnings = d.warnings;
      rootKind = 'disk';
      rootOid = d.disk;
      tree = d.view;
      rootMeta = d.rootMeta;
      source = d.source;
      counts = d;
    }
    const c: Commit = {
      rootKind,
      root: rootOid,
      parents: options.merge ? options.merge.parents : parent ? [parent] : session ? [session.info.commit] : [],
      author,
      time,
      tzOffset,
      message: options.message,
      labels,
      source,
      rootMeta,
      ...(options.merge ? { derivation: options.merge.derivation } : {}),
    };
    const expectedOld = options.merge ? options.merge.expectedOld : parent;
    const reflog = options.merge ? `merge: ${firstLine(options.message)}` : `commit${c.parents.length ? '' : ' (initial)'}: ${firstLine(options.message)}`;
    const [oid] = await writeCommits(repo, [{ commit: c, ref, expectedOld, reflog }], { writer, head: ref, who: author });
    recorded = oid!;
    storedBytes = background ? background.written.bytes : store.written.bytes - before.bytes;
    if (!parent) repo.warnings.push(...shadow);
    // The commit is recorded: what follows is housekeeping, and a failed write (a disk that filled up just now) is
    // a warning, not a failed commit (exit 16 would say the branch did not move).
    await afterRecorded(repo, recorded, 'updating the stat cache (the next commit reads every file again)', () => {
      if (ctx.cacheUpdates.length) repo.statCache.write(ctx.cacheUpdates);
      repo.statCache.writeTrees(treeRecords);
    });
    const id = recorded;
    return {
      id, commit: id, rootKind, root: rootOid, tree, branch: ref, parent: options.merge ? parent : c.parents[0] ?? null, files: counts.files, dirs: counts.dirs, bytes: counts.bytes,
      storedBytes, cachedFiles: ctx.cachedFiles, cachedDirs: ctx.cachedDirs ?? 0, source: sourceJson(source), warnings,
    };
  } catch (e) {
    // Queued objects are dropped; objects of earlier batches stay unreferenced until gc.
    store.discard();
    throw e;
  } finally {
    await background?.close();
    if (recorded) await afterRecorded(repo, recorded, 'ending its writer session (gc clears it)', () => repo.endSession());
    else {
      try { await repo.endSession(); } catch { /* the commit's own error is the one to report; gc clears a stale session */ }
    }
  }
}
