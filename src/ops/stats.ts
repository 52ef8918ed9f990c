/**
 * stats and du: sizes from manifests and blob records, never from file bytes. Logical size counts every file name
 * (hardlinks once per group); unique content counts each distinct blob once; stored size is what the distinct chunks
 * (and inline blob records) occupy in the store after compression.
 */
import type { Oid } from '../model/oid.js';
import type { TreeEntry } from '../model/tree.js';
import type { ObjectKind } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { commitTree, readBlobRecord, readDisk } from '../store/typed.js';
import { walkTree } from '../tree/walk.js';
import { resolveRevision, resolveSpec } from './resolve.js';
import { hexIfNotUtf8 } from '../model/quote.js';

/**
 * Counts and sizes of one image ({@link imageStats}): entries by type, logical and stored bytes, sharing with other commits.
 */
export interface ImageStats {
  commit: Oid;
  files: number;
  dirs: number;
  symlinks: number;
  other: number;
  /** Sum of file sizes (holes included), each hardlink group once. */
  logicalBytes: number;
  /** Distinct file contents. */
  blobs: number;
  /** Sum of the sizes of the distinct file contents (what dedupRatio divides by). */
  uniqueBytes: number;
  /** Distinct chunks of the whole image (files and, for a disk, its other regions). */
  chunks: number;
  /** Stored bytes of the image's distinct content (compressed chunks and inline records). */
  storedBytes: number;
  /** logicalBytes / uniqueBytes: both over the files only, so never below 1. */
  dedupRatio: number;
  /** (uniqueBytes + diskExtraBytes) / storedBytes: everything kept, before and after compression. */
  compressionRatio: number;
  /** Disk commits: bytes kept besides the files (metadata, boot code, raw partitions; zero blocks left out). */
  diskExtraBytes?: number;
  /** Disk commits: the same, stored. */
  diskExtraStoredBytes?: number;
  /**
   * Disk commits in a partial clone: region blobs (metadata, raw regions) that are absent. Their sizes are in their
   * records, which are not here (the disk object records each region's extent on the disk, not how many of its bytes
   * are kept), so diskExtraBytes counts only the present ones: a lower bound.
   */
  diskExtraAbsentBlobs?: number;
  /**
   * Partial clones: the content this repository does not hold (fetched on demand from its remote). Counts, logical
   * and unique sizes still cover the whole image (manifests know them); stored bytes, chunks and the compression
   * ratio cover only what is present.
   */
  absent?: {
    blobs: number;
    /** Unique bytes of the absent file contents (a disk's absent metadata blobs add to `blobs` only: their size is in them). */
    bytes: number;
    /** Chunks of present blob records that are absent. */
    chunks: number;
  };
}

/**
 * Counts and sizes of the whole repository ({@link repositoryStats}): objects by kind, stored bytes, commits and refs.
 */
export interface RepositoryStats {
  objects: Record<string, number>;
  storedBytes: Record<string, number>;
  totalStoredBytes: number;
  commits: number;
  refs: number;
  /** Sum of the logical sizes of the ref heads' images. */
  headsLogicalBytes: number;
  /** headsLogicalBytes / total stored bytes. */
  overallRatio: number;
}

function storedLength(repo: Repository, kind: ObjectKind, oid: Oid): number {
  return repo.index.locate(kind, oid)?.length ?? 0;
}

/**
 * Per-image statistics (`REV`, default HEAD), from manifests and blob records; in a partial clone, content that is
 * not here is counted under `absent` (never fetched: stats is about sizes, which the trees know). Locking: none.
 */
export function imageStats(repo: Repository, rev = 'HEAD'): ImageStats {
  const r = resolveRevision(repo, rev);
  const blobs = new Set<Oid>();
  const chunks = new Set<Oid>();
  const groups = new Set<string>();
  const s: ImageStats = {
    commit: r.oid, files: 0, dirs: 0, symlinks: 0, other: 0, logicalBytes: 0, blobs: 0, uniqueBytes: 0, chunks: 0, storedBytes: 0,
    dedupRatio: 0, compressionRatio: 0,
  };
  const absent = { blobs: 0, bytes: 0, chunks: 0 };
  let extraBytes = 0;
  let fileBlobs = 0;
  const blob = (oid: Oid, size: number, file = true) => {
    if (blobs.has(oid)) return;
    blobs.add(oid);
    if (file) { s.uniqueBytes += size; fileBlobs++; }
    else extraBytes += size;
    // A partial clone has the manifests, not (all) the content: sizes come from the trees, stored bytes from what is here.
    if (!repo.objects.hasObject('blob', oid)) { absent.blobs++; absent.bytes += size; return; }
    const rec = readBlobRecord(repo.objects, oid);
    if (rec.form === 'inline') { s.storedBytes += storedLength(repo, 'blob', oid); return; }
    s.storedBytes += storedLength(repo, 'blob', oid);
    for (const seg of rec.segments) {
      if (seg.kind !== 'chunk' || chunks.has(seg.oid)) continue;
      chunks.add(seg.oid);
      if (!repo.objects.hasObject('chunk', seg.oid)) { absent.chunks++; continue; }
      s.storedBytes += storedLength(repo, 'chunk', seg.oid);
    }
  };
  // Counts are per path; a subtree that occurs twice is counted twice (as du does), its blobs once.
  const view = commitTree(repo.objects, r.commit);
  walkTree(repo.objects, view, (_p, e) => {
    if (e.type === 'dir') { s.dirs++; return; }
    if (e.type === 'symlink') { s.symlinks++; return; }
    if (e.type !== 'file') { s.other++; return; }
    s.files++;
    const g = e.hardlink?.toString('latin1');
    if (!g || !groups.has(g)) { s.logicalBytes += e.size; if (g) groups.add(g); }
    if (e.oid) blob(e.oid, e.size);
  });
  const disk = r.commit.rootKind === 'disk' ? readDisk(repo.objects, r.commit.root) : undefined;
  // The image's root is a directory of it (commit counts it) unless it is a partitioned disk's synthetic view,
  // whose pN/ entries are the file systems' roots (counted by the walk).
  if (!disk || disk.regions.some((reg) => reg.content.kind === 'fs' && reg.content.tree === view)) s.dirs++;
  // A volume group's directory is synthetic too (its LV entries are the file systems' roots): commit does not count it.
  if (disk) s.dirs -= new Set(disk.regions.flatMap((reg) => (reg.content.kind === 'lvm' ? [reg.content.vg] : []))).size;
  if (disk) {
    const before = s.storedBytes;
    let unknown = 0;
    for (const reg of disk.regions) {
      const own = [reg.content.data, reg.content.map];
      if (reg.content.kind === 'lvm') for (const v of reg.content.volumes) own.push(v.content.data, v.content.map);
      for (const oid of own) {
        if (!repo.objects.hasObject('blob', oid)) { if (!blobs.has(oid)) { blobs.add(oid); absent.blobs++; unknown++; } continue; }
        blob(oid, readBlobRecord(repo.objects, oid).size, false);
      }
    }
    s.diskExtraBytes = extraBytes;
    s.diskExtraStoredBytes = s.storedBytes - before;
    if (unknown) s.diskExtraAbsentBlobs = unknown;
  }
  s.blobs = fileBlobs;
  s.chunks = chunks.size;
  s.dedupRatio = s.uniqueBytes ? s.logicalBytes / s.uniqueBytes : 1;
  const presentBytes = s.uniqueBytes + extraBytes - absent.bytes;
  s.compressionRatio = s.storedBytes && presentBytes ? presentBytes / s.storedBytes : 1;
  if (absent.blobs || absent.chunks) s.absent = absent;
  return s;
}

/**
 * Repository-wide statistics. `cache` (optional) holds {@link imageStats} by commit id across calls: a long-running
 * reader (the web view) passes the same map each time, so a head already measured is not walked again (an image's
 * figures depend only on its commit, and in a partial clone on what content is present). Locking: none.
 */
export function repositoryStats(repo: Repository, cache?: Map<Oid, ImageStats>): RepositoryStats {
  const objects: Record<string, number> = {};
  const storedBytes: Record<string, number> = {};
  let total = 0;
  for (const o of repo.index.listAll()) {
    objects[o.kind] = (objects[o.kind] ?? 0) + 1;
    const n = storedLength(repo, o.kind, o.oid);
    storedBytes[o.kind] = (storedBytes[o.kind] ?? 0) + n;
    total += n;
  }
  const refs = repo.refs.list('refs/');
  let heads = 0;
  const counted = new Set<Oid>();
  for (const r of refs) {
    if (counted.has(r.oid)) continue;
    counted.add(r.oid);
    let st = cache?.get(r.oid);
    if (!st) { st = imageStats(repo, r.oid); cache?.set(r.oid, st); }
    heads += st.logicalBytes;
  }
  return {
    objects, storedBytes, totalStoredBytes: total, commits: objects.commit ?? 0, refs: refs.length,
    headsLogicalBytes: heads, overallRatio: total ? heads / total : 1,
  };
}

/** One directory's size in {@link du}: logical bytes and files at or below it. */
export interface DuEntry {
  /** UTF-8 text (lossy); `pathHex` holds the exact bytes when they are not UTF-8. */
  path: string;
  pathHex?: string;
  /** Logical bytes of the files at or below it. */
  bytes: number;
  files: number;
}

/**
 * du: logical size of `REV[:path]` and of its subdirectories down to `depth` (0: the total only). Each distinct
 * subtree is summed once and reused. Locking: none.
 */
export function du(repo: Repository, spec: string, depth = 1): DuEntry[] {
  const r = resolveSpec(repo, spec);
  type Sum = { bytes: number; files: number };
  const memo = new Map<Oid, Sum>();
  const add = (to: Sum, x: Sum) => { to.bytes += x.bytes; to.files += x.files; };
  // A fold over the walk: a sum per directory being walked, memoized by tree id when it is left; a directory whose
  // id was summed before is added from the memo and not walked again.
  const size = (e: TreeEntry): Sum => {
    if (e.type === 'file') return { bytes: e.size, files: 1 };
    if (e.type !== 'dir' || !e.oid) return { bytes: 0, files: 0 };
    const known = memo.get(e.oid);
    if (known) return known;
    const sums: Sum[] = [{ bytes: 0, files: 0 }];
    walkTree(repo.objects, e.oid, (_p, c) => {
      const top = sums[sums.length - 1]!;
      if (c.type === 'file') { top.bytes += c.size; top.files++; return false; }
      if (c.type !== 'dir' || !c.oid) return false;
      const m = memo.get(c.oid);
      if (m) { add(top, m); return false; }
      sums.push({ bytes: 0, files: 0 });
      return true;
    }, {
      leave: (_p, c) => {
        const t = sums.pop()!;
        memo.set(c.oid!, t);
        add(sums[sums.length - 1]!, t);
      },
    });
    memo.set(e.oid, sums[0]!);
    return sums[0]!;
  };
  const out: DuEntry[] = [];
  const emit = (path: Buffer, e: TreeEntry) => {
    const hex = hexIfNotUtf8(path);
    out.push({ path: path.length ? path.toString('utf8') : '.', ...(hex ? { pathHex: hex } : {}), ...size(e) });
  };
  // Directories down to `depth`, each after its subdirectories (post-order): `d` is the depth of the directory
  // whose entries the walk is at.
  if (r.entry.type === 'dir' && r.entry.oid && depth > 0) {
    let d = 0;
    walkTree(repo.objects, r.entry.oid, (p, c) => {
      if (c.type !== 'dir') return false;
      if (c.oid && d + 1 < depth) { d++; return true; }
      emit(p, c);
      return false;
    }, { path: r.path, leave: (p, c) => { d--; emit(p, c); } });
  }
  emit(r.path, r.entry);
  return out;
}

