/**
 * The checkout op: commit → tree walk → an image writer (directory or tar). Separate from commit, as in ostree.
 * Streams content chunk by chunk; sparse holes stay holes; hardlink groups are relinked.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AbortedError, CheckoutError, DestinationNotEmptyError, UnsafeDestinationError, UsageError, systemReason } from '../errors.js';
import {
  SUPPORTED_DEST, STDOUT_DEST, bareFsForName, createImageWriter, outputFormatForName, unsupportedDestSuffix, type OutputFormat,
} from '../formats/index.js';
import type { DataPiece, ImageEntry, ImageWriter, WriterWarning } from '../formats/types.js';
import type { Oid } from '../model/oid.js';
import type { RootMeta } from '../model/commit.js';
import type { Hole, TreeEntry } from '../model/tree.js';
import { isRepositoryDataDir, type Repository } from '../store/repository.js';
import { isLmdbDataFile } from '../store/lmdb-header.js';
import { commitTree, prefetchBlobs, readBlobPieces, readDisk } from '../store/typed.js';
import { walkTree } from '../tree/walk.js';
import { createDiskWriter, type DiskFormat } from '../formats/disk-writer.js';
import { exportDisk } from './export-disk.js';
import { exportOverlay } from './export-overlay.js';
import { ensureContent, imageBlobs } from '../sync/partial.js';
import { type BuildDiskOptions, buildDisk } from './build-disk.js';
import type { ObjectReader } from '../store/object-store.js';
import { type BlobPrefetcher, PREFETCH_MAX_BLOB, type BlobPiece } from '../store/prefetch.js';
import { showPath, splitPath } from '../tree/mutable-tree.js';
import type { ProgressEvent } from './commit.js';
import { dirEntry, normalizeImagePath, resolveEntry, resolveRevision, resolveSpec, rootEntry, splitRevPath } from './resolve.js';

export const ZERO_PIECE = 1024 * 1024;
/** Below this many bytes of content, a read-ahead thread costs more than it saves. */
export const PREFETCH_MIN_TOTAL = 16 * 1024 * 1024;

/** The options of {@link checkout}: the revision, the destination and its format, which paths, and how strict to be. */
export interface CheckoutOptions {
  rev: string;
  dest: string;
  /** Only these image paths (with their parent directories); default: everything. */
  paths?: string[];
  /** Default: from the destination name (see outputFormatForName): `-` and tar names → tar, disk names → raw/qcow2/vmdk, else dir. */
  format?: OutputFormat;
  /** Fail instead of warning when something cannot be recreated (owners, devices as non-root). */
  strict?: boolean;
  /** Overwrite an existing tar file (a directory destination must always be new or empty). */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** Internal: the destination is viva's own cache inside the repository's data directory (the sandbox's checkouts). */
  cache?: boolean;
  /** Internal: check out this directory entry instead of the revision's root (a disk rebuild's file system). */
  root?: TreeEntry;
  /**
   * A qcow2 destination for a derived disk commit: write an overlay whose backing file is this checkout of its base
   * (only the clusters the derivation changed; see export-overlay.ts).
   */
  backing?: string;
  /** New disk layout for a raw/qcow2/vmdk destination (see build-disk.ts). */
  build?: Omit<BuildDiskOptions, 'signal' | 'onBytes' | 'layoutFrom' | 'strict'> & { layoutFrom?: string };
  /**
   * Called for each file a directory or tar checkout writes (hard links included) with its path below the
   * destination's root and its image entry: what `recordCheckout` needs, without walking the tree again.
   */
  onFile?: (path: Buffer, entry: TreeEntry) => void;
}

/** What {@link checkout} wrote: the commit, the destination and its format, and counts of what was written. */
export interface CheckoutResult {
  commit: Oid;
  tree: Oid;
  dest: string;
  format: OutputFormat;
  files: number;
  dirs: number;
  bytes: number;
  warnings: WriterWarning[];
  /** Disk destinations: true when a new disk was built from the tree, false for a bit-exact copy of a disk commit. */
  rebuilt?: boolean;
  /** qcow2 overlays (--backing): the disk the backing file holds, whether it was read to check that, clusters written. */
  overlay?: { backing: string; backingDisk: Oid; checked: boolean; clusters: number };
}

/** A tree entry as a writer takes it at `path` (without content: the caller adds a file's). */
export function toImageEntry(path: Buffer, e: TreeEntry): ImageEntry {
  const base = { path, mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs, xattrs: e.xattrs };
  switch (e.type) {
    case 'file':
      return { ...base, type: 'file' };
    case 'symlink':
      return { ...base, type: 'symlink', linkTarget: e.linkTarget ?? Buffer.alloc(0) };
    case 'chr':
    case 'blk':
      return { ...base, type: e.type, rdev: e.rdev ?? { major: 0, minor: 0 } };
    default:
      return { ...base, type: e.type };
  }
}

/** Subtracts holes from [off, off+len): the sub-ranges that hold data. */
function dataRanges(off: number, len: number, holes: Hole[] | undefined): Array<[number, number]> {
  if (!holes || holes.length === 0) return [[off, len]];
  const out: Array<[number, number]> = [];
  let cur = off;
  const end = off + len;
  for (const h of holes) {
    if (h.offset + h.length <= cur) continue;
    if (h.offset >= end) break;
    if (h.offset > cur) out.push([cur, h.offset - cur]);
    cur = Math.max(cur, h.offset + h.length);
    if (cur >= end) break;
  }
  if (cur < end) out.push([cur, end - cur]);
  return out;
}

/** Blob pieces (data or zero runs) minus the entry's holes: what a writer must write. */
export async function* piecesMinusHoles(pieces: Iterable<BlobPiece> | AsyncIterable<BlobPiece>, entry: TreeEntry): AsyncIterable<DataPiece> {
  for await (const p of pieces) {
    const len = p.data ? p.data.length : p.zeros!;
    for (const [o, l] of dataRanges(p.offset, len, entry.holes)) {
      if (p.data) {
        yield { offset: o, data: p.data.subarray(o - p.offset, o - p.offset + l) };
      } else {
        for (let x = 0; x < l; x += ZERO_PIECE) yield { offset: o + x, data: Buffer.alloc(Math.min(ZERO_PIECE, l - x)) };
      }
    }
  }
}

/** The data pieces of a file entry, streamed from the store chunk by chunk: blob content minus the entry's holes. */
export function filePieces(objects: ObjectReader, entry: TreeEntry, path?: string): AsyncIterable<DataPiece> {
  return piecesMinusHoles(entry.oid ? readBlobPieces(objects, entry.oid, path) : [], entry);
}

/**
 * Materializes `rev` (or only `paths` of it) into `dest`: a new or empty directory, a tar file (`-`: standard output),
 * a disk image or a bare file-system image; the format comes from `options.format` or the name (outputFormatForName).
 * Locking: none (read-only; works while commits run).
 * Throws: UnsafeDestinationError (dest inside the repository), UsageError (an image name checkout cannot write),
 * RevisionNotFoundError, PathNotFoundError, DestinationNotEmptyError, CheckoutError (strict mode).
 *
 * @example
 * await checkout(repo, { rev: 'debian/12/base', dest: '/srv/rootfs' });
 */
export async function checkout(repo: Repository, options: CheckoutOptions): Promise<CheckoutResult> {
  if (options.backing !== undefined && (options.format ?? (options.dest.toLowerCase().endsWith('.qcow2') ? 'qcow2' : 'other')) !== 'qcow2') {
    throw new UsageError(`--backing writes a qcow2 overlay: name a .qcow2 destination, not '${options.dest}'`);
  }
  if (!options.root && options.rev.includes(':')) return checkoutSubtree(repo, options);
  const toStdout = options.dest === STDOUT_DEST && options.format !== 'dir';
  if (!toStdout && !options.cache) assertOutsideRepository(repo, options.dest);
  const format = options.format ?? outputFormatForName(options.dest);
  if (format === undefined) {
    throw new UsageError(`unsupported destination format '${unsupportedDestSuffix(options.dest)}' (supported: ${SUPPORTED_DEST}); --format dir makes a directory of that name`, { path: options.dest });
  }
  if (toStdout && format !== 'tar') throw new UsageError(`a ${format} disk image cannot be written to standard output ('-'); name a file`);
  if (format === 'raw' || format === 'qcow2' || format === 'vmdk') return checkoutDisk(repo, options, format);
  if (format !== 'dir' && format !== 'tar') throw new UsageError(`unknown output format '${String(format)}'`);
  const r = resolveRevision(repo, options.rev);
  const objects = repo.objects;
  // Resolve selected paths first: a bad path fails before anything is written.
  const selected = (options.paths ?? []).map((p) => {
    const path = normalizeImagePath(p);
    return resolveEntry(repo, r.oid, r.commit, path, options.rev);
  });
  if (format === 'tar' && !toStdout && !options.force && fs.existsSync(options.dest)) throw new DestinationNotEmptyError(options.dest, 'exists (use --force to overwrite it)');
  const stats = { files: 0, dirs: 0, bytes: 0 };
  // A partitioned disk's root is a synthetic view whose pN/ entries are the file systems' roots: the destination
  // root made for it is not a directory of the image, and is not counted (as commit and stats do not count it).
  const view = commitTree(objects, r.commit);
  const syntheticRoot = !options.root && r.commit.rootKind === 'disk'
    && !readDisk(objects, r.commit.root).regions.some((reg) => reg.content.kind === 'fs' && reg.content.tree === view);
  const linked = new Map<string, Buffer>();
  const emitted = new Set<string>();

  // Plan: walk the manifest first (metadata only), so content can be read ahead in write order.
  const plan: Array<{ path: Buffer; entry: TreeEntry; linkTo?: Buffer }> = [];
  const add = (path: Buffer, e: TreeEntry) => {
    const key = path.toString('latin1');
    if (emitted.has(key)) return;
    emitted.add(key);
    if (e.hardlink && e.type !== 'dir') {
      const g = e.hardlink.toString('latin1');
      const first = linked.get(g);
      if (first) { plan.push({ path, entry: e, linkTo: first }); return; }
      linked.set(g, path);
    }
    plan.push({ path, entry: e });
  };
  const walk = (path: Buffer, e: TreeEntry): void => {
    add(path, e);
    if (e.type === 'dir' && e.oid) walkTree(objects, e.oid, (p, child) => { add(p, child); }, { path });
  };
  if (options.root) {
    walk(Buffer.alloc(0), options.root);
  } else if (selected.length === 0) {
    walk(Buffer.alloc(0), rootEntry(repo.objects, r.commit));
  } else {
    add(Buffer.alloc(0), rootEntry(repo.objects, r.commit));
    for (const s of selected) {
      // Parent directories first, with their own metadata from the image.
      const parts = splitPath(s.path);
      for (let i = 1; i < parts.length; i++) {
        const pp = Buffer.from(parts.slice(0, i).map((x) => x.toString('latin1')).join('/'), 'latin1');
        add(pp, resolveEntry(repo, r.oid, r.commit, pp, options.rev).entry);
      }
      walk(s.path, s.entry);
    }
  }
  // The writer is created after the walk, so that a damaged tree leaves no destination behind.
  const writer: ImageWriter = createImageWriter(options.dest, format, { strict: options.strict });
  try {
    // A partial clone fetches the content this checkout needs first (one transfer, not one per file).
    const blobs = plan.flatMap((p) => (p.entry.type === 'file' && p.entry.oid ? [p.entry.oid] : []));
    await ensureContent(repo, blobs);
    // A repository in a bucket brings the content into this host's cache first, pack by pack.
    if (repo.inBucket) await prefetchBlobs(repo.objects, blobs);
  } catch (e) {
    await writer.abort().catch(() => undefined);
    throw e;
  }
  const totalBytes = plan.reduce((n, p) => n + (p.entry.type === 'file' ? p.entry.size : 0), 0);
  const ahead: Array<{ oid: Oid; size: number }> = [];
  const queued = new Set<Oid>();
  let aheadBytes = 0;
  for (const p of plan) {
    const e = p.entry;
    if (p.linkTo || e.type !== 'file' || !e.oid || e.size > PREFETCH_MAX_BLOB || queued.has(e.oid)) continue;
    queued.add(e.oid);
    ahead.push({ oid: e.oid, size: e.size });
    aheadBytes += e.size;
  }
  // A blob shared by several files is read ahead once, for its first file; later ones stream from the store.
  const prefetcher = aheadBytes >= PREFETCH_MIN_TOTAL ? repo.objects.blobPrefetcher(ahead) : undefined;
  const fetched = new Set<Oid>();

  const contentOf = (path: Buffer, e: TreeEntry): ImageEntry['content'] => {
    const oid = e.oid!;
    if (prefetcher && queued.has(oid) && !fetched.has(oid)) {
      fetched.add(oid);
      return { size: e.size, read: () => piecesMinusHoles(prefetchPieces(prefetcher, oid, e.size, showPath(path)), e) };
    }
    return { size: e.size, read: () => filePieces(objects, e, showPath(path)) };
  };

  try {
    for (const { path, entry: e, linkTo } of plan) {
      if (options.signal?.aborted) throw new AbortedError();
      if (linkTo) {
        await writer.add({ path, type: 'hardlink', mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs, xattrs: e.xattrs, linkTarget: linkTo });
        options.onFile?.(path, e);
        // Counted as commit counts it: every name of a file is a file, with its size.
        stats.files++;
        stats.bytes += e.size;
        continue;
      }
      const ie = toImageEntry(path, e);
      if (e.type === 'file') ie.content = contentOf(path, e);
      await writer.add(ie);
      if (e.type === 'file') options.onFile?.(path, e);
      if (e.type === 'dir' && !(syntheticRoot && path.length === 0)) stats.dirs++;
      if (e.type === 'file') { stats.files++; stats.bytes += e.size; }
      options.onProgress?.({ phase: 'checkout', files: stats.files, bytes: stats.bytes, totalBytes });
    }
    const { warnings } = await writer.finish();
    await prefetcher?.close();
    return { commit: r.oid, tree: commitTree(objects, r.commit), dest: options.dest, format, ...stats, warnings };
  } catch (e) {
    await writer.abort().catch(() => undefined);
    await prefetcher?.close();
    if (e instanceof Error && !(e as { code?: string }).code?.startsWith('ERR_') && (e as NodeJS.ErrnoException).syscall) {
      throw new CheckoutError(options.dest, systemReason(e), { cause: e });
    }
    throw e;
  }
}

async function* prefetchPieces(prefetcher: BlobPrefetcher, oid: Oid, size: number, path: string): AsyncIterable<BlobPiece> {
  yield* await prefetcher.get(oid, size, path);
}

/**
 * Checkout to a disk image. A disk commit comes back bit-identical to the image committed (raw: same bytes, sparse;
 * qcow2 and VMDK streamOptimized: same guest content). A VMDK holds whole sectors: a disk whose size is not a
 * multiple of 512 bytes is refused (UsageError).
 */
async function checkoutDisk(repo: Repository, options: CheckoutOptions, format: DiskFormat): Promise<CheckoutResult> {
  if (options.paths?.length) throw new UsageError(`--path cannot be combined with a ${format} disk image destination`);
  const r = resolveRevision(repo, options.rev);
  if (!options.force && fs.existsSync(options.dest)) throw new DestinationNotEmptyError(options.dest, 'exists (use --force to overwrite it)');
  const given = options.build;
  const asked = !!given && (given.size !== undefined || given.layoutFrom !== undefined || !!given.fs || !!given.label || !!given.partition);
  // A bare file-system name (.ext4): no partition table, that file system. A disk commit that already is one comes
  // back bit-exact; any other commit is rebuilt (a disk commit's first file system keeps its size by default).
  const bareFs = format === 'raw' ? bareFsForName(options.dest) : undefined;
  let b = given;
  let rebuild = r.commit.rootKind !== 'disk' || asked;
  if (bareFs && !given?.layoutFrom) {
    b = { partition: 'none', fs: bareFs, ...given };
    if (r.commit.rootKind === 'disk') {
      const d = readDisk(repo.objects, r.commit.root);
      const only = d.regions.length === 1 ? d.regions[0]!.content : undefined;
      const isBare = !d.table && only?.kind === 'fs' && only.fsType === bareFs;
      if (!isBare) rebuild = true;
      // ext and XFS file systems (the root a rebuild takes): a FAT boot partition beside the root is not what a
      // bare .ext4 asks for.
      const fileSystems = d.regions.filter((x) => x.content.kind === 'fs' && (x.content.fsType.startsWith('ext') || x.content.fsType === 'xfs'));
      // A bare file-system image holds one file system: taking the first of several would drop the others unsaid.
      if (fileSystems.length !== 1 && !isBare) {
        const names = fileSystems.map((x) => (x.partition ? `p${x.partition.index}` : 'the disk')).join(', ');
        throw new UsageError(fileSystems.length === 0
          ? `'${options.rev}' holds no ext or XFS file system outside logical volumes, so it cannot become a bare ${bareFs} image; name a .raw or .qcow2 destination for the whole disk`
          : `'${options.rev}' holds ${fileSystems.length} file systems (${names}), a bare ${bareFs} image holds one; check out the whole disk as .raw or .qcow2, or one partition's files with --format dir --path pN`);
      }
      const first = fileSystems[0];
      if (b.size === undefined && first) b = { ...b, size: first.size };
    }
  }
  if (rebuild) {
    // No disk layout to reproduce (a directory commit), or a new one asked for: build a fresh disk.
    const layoutFrom = b?.layoutFrom !== undefined ? { rev: b.layoutFrom, commit: resolveRevision(repo, b.layoutFrom).commit } : undefined;
    let bytes = 0;
    const built = await buildDisk(repo, options.rev, r.commit, options.dest, async (n) => {
      try {
        return await createDiskWriter(options.dest, format, n);
      } catch (e) {
        throw new CheckoutError(options.dest, systemReason(e), { cause: e });
      }
    }, (rev, tree, meta, dir, signal) => checkoutTree(repo, rev, tree, meta, dir, signal), {
      ...(b?.size !== undefined ? { size: b.size } : {}), ...(b?.fs ? { fs: b.fs } : {}), ...(b?.label ? { label: b.label } : {}),
      ...(b?.partition ? { partition: b.partition } : {}), ...(layoutFrom ? { layoutFrom } : {}), ...(options.signal ? { signal: options.signal } : {}),
      ...(options.strict ? { strict: true } : {}),
      onBytes: (n) => { bytes += n; options.onProgress?.({ phase: 'checkout', files: 0, bytes }); },
    });
    return { commit: r.oid, tree: commitTree(repo.objects, r.commit), dest: options.dest, format, files: 0, dirs: 0, bytes: built.size, warnings: built.warnings, rebuilt: true };
  }
  const disk = readDisk(repo.objects, r.commit.root);
  if (options.backing !== undefined) {
    if (format !== 'qcow2') throw new UsageError(`--backing writes a qcow2 overlay: name a .qcow2 destination (or --format qcow2), not a ${format} one`);
    if (rebuild) throw new UsageError('--backing writes the derived disk over its base as it is: it cannot be combined with a new disk layout');
    await ensureContent(repo, imageBlobs(repo, r.commit));
    const o = await exportOverlay(repo, options.rev, disk, options.dest, options.backing);
    return {
      commit: r.oid, tree: disk.view, dest: options.dest, format, files: 0, dirs: 0, bytes: o.bytes, warnings: [], rebuilt: false,
      overlay: { backing: options.backing, backingDisk: o.backingDisk, checked: o.checked, clusters: o.clusters },
    };
  }
  await ensureContent(repo, imageBlobs(repo, r.commit));
  if (format === 'vmdk' && disk.size % 512 !== 0) throw new UsageError(`'${options.rev}' is a ${disk.size}-byte disk, not whole 512-byte sectors: a VMDK cannot hold it (check it out as .raw or .qcow2)`);
  let out;
  try {
    out = await createDiskWriter(options.dest, format, disk.size);
  } catch (e) {
    throw new CheckoutError(options.dest, systemReason(e), { cause: e });
  }
  let bytes = 0;
  try {
    await exportDisk(repo.objects, disk, out, {
      ...(options.signal ? { signal: options.signal } : {}),
      onBytes: (n) => { bytes += n; options.onProgress?.({ phase: 'checkout', files: 0, bytes, totalBytes: disk.size }); },
    });
    await out.finish();
  } catch (e) {
    await out.abort().catch(() => undefined);
    if (e instanceof Error && (e as NodeJS.ErrnoException).syscall) throw new CheckoutError(options.dest, systemReason(e), { cause: e });
    throw e;
  }
  return { commit: r.oid, tree: disk.view, dest: options.dest, format, files: 0, dirs: 0, bytes: disk.size, warnings: [], rebuilt: false };
}

/**
 * The path `p` names once every symlink on the way is followed, as the kernel would when the writer opens it: also
 * for a path that does not exist yet (its deepest existing ancestor is resolved, a dangling symlink is followed to its
 * target) and for `..` after a symlink (resolved by the kernel, not lexically).
 */
function kernelPath(p: string, depth = 0): string {
  try {
    return fs.realpathSync.native(p);
  } catch {
    // not there (yet): resolve what exists
  }
  const parent = path.dirname(p);
  const base = path.basename(p);
  if (parent === p || depth > 40) return path.resolve(p);
  const dir = kernelPath(parent, depth + 1);
  if (base === '..') return path.dirname(dir);
  if (base === '.' || base === '') return dir;
  const here = path.join(dir, base);
  try {
    if (fs.lstatSync(here).isSymbolicLink()) {
      const target = fs.readlinkSync(here);
      return kernelPath(path.isAbsolute(target) ? target : `${dir}/${target}`, depth + 1);
    }
  } catch {
    // missing: the writer creates it here
  }
  return here;
}

/**
 * `checkout REV:path DEST`: the directory at `path` written as the destination's root (no leading `p1/` or `etc/`),
 * as a directory or a tar. Throws UsageError for a path that is not a directory (`viva cat` writes one file), for a
 * disk destination, or with `paths`; PathNotFoundError for a missing path.
 */
async function checkoutSubtree(repo: Repository, options: CheckoutOptions): Promise<CheckoutResult> {
  const { rev } = splitRevPath(options.rev);
  const spec = resolveSpec(repo, options.rev);
  if (spec.entry.type !== 'dir') throw new UsageError(`'${options.rev}' is a ${spec.entry.type === 'file' ? 'file' : spec.entry.type}, not a directory: 'viva cat ${options.rev} > FILE' writes one file`);
  if (options.paths?.length) throw new UsageError(`--path and '${options.rev}' both choose what to check out: give one`);
  const format = options.format ?? outputFormatForName(options.dest);
  if (format === 'raw' || format === 'qcow2' || format === 'vmdk') throw new UsageError(`'${options.rev}' is a directory of an image: check it out to a directory or a tar (a disk holds a whole image)`);
  return checkout(repo, { ...options, rev, root: { ...spec.entry, name: Buffer.alloc(0) } });
}

/**
 * Refuses a destination inside the repository's data directory (`.viva`, or the directory given with --repo), or
 * inside any other viva repository's data directory (an ancestor, or the destination itself, named `.viva` that holds
 * a data file or the format marker): a checkout there, even with --force, would overwrite or litter a repository.
 * Symlinks and `..` are resolved first, and an existing file that is a hard link of one of the repository's files
 * counts as inside; an existing file that starts with an LMDB meta page (any repository's database, also reached
 * through a hard link) is refused too.
 * Throws: UnsafeDestinationError.
 */
export function assertOutsideRepository(repo: Repository, dest: string): void {
  const data = kernelPath(repo.dataDir);
  const target = kernelPath(dest);
  const rel = path.relative(data, target);
  if (rel === '' || !(rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel))) throw new UnsafeDestinationError(dest, repo.dataDir);
  for (let d = target; ; d = path.dirname(d)) {
    if (isRepositoryDataDir(d)) throw new UnsafeDestinationError(dest, d);
    if (path.dirname(d) === d) break;
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(dest);
  } catch {
    return;
  }
  if (!st.isFile()) return;
  if (st.nlink >= 2) {
    for (const name of fs.readdirSync(data)) {
      const other = fs.statSync(path.join(data, name), { throwIfNoEntry: false });
      if (other && other.dev === st.dev && other.ino === st.ino) throw new UnsafeDestinationError(dest, repo.dataDir);
    }
  }
  // Another repository's database reached through a hard link (or a copy kept as a backup) is found by its content.
  if (isLmdbDataFile(dest)) throw new UnsafeDestinationError(dest, undefined, 'is a repository database (an LMDB data file)');
}

/** Checks out one directory entry (a tree with its root metadata) of `rev` into the new directory `dest`. */
export async function checkoutTree(repo: Repository, rev: string, tree: Oid, rootMeta: RootMeta, dest: string, signal?: AbortSignal, cache = false): Promise<CheckoutResult> {
  return checkout(repo, { rev, dest, format: 'dir', root: dirEntry(tree, rootMeta), cache, ...(signal ? { signal } : {}) });
}
