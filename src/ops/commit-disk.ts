/**
 * Committing a disk image (raw or qcow2): each ext2/3/4 file system becomes a tree (through the same entry loop a
 * directory commit runs, so files dedup across both), and everything else a bit-exact rebuild needs is kept as
 * blobs: per file system a file map (which disk bytes are which file's bytes) and the "rest" (the region with those
 * bytes zeroed: superblocks, bitmaps, inode tables, directories, journal, slack), and raw regions for boot code,
 * table sectors, gaps and partitions without a readable file system. An LVM2 physical volume is one region whose
 * linear logical volumes are read the same way, each over its own byte space (its segments one after another).
 */
import { detectFileSystem, identifyContent, nonZero, openDiskSource, planDisk, subSource, type DiskSource, type Extent, type PlannedRegion } from '../formats/disk.js';
import { readLvmPv, volumeSource, type LvmPhysicalVolume, type PvExtent } from '../formats/lvm.js';
import { openExt4, type Ext4Info } from '../formats/ext4.js';
import { openFat } from '../formats/fat.js';
import { openXfs } from '../formats/xfs.js';
import { AbortedError, CorruptInputError, SourceReadError, UnsupportedInputError } from '../errors.js';
import type { DataPiece, FileContent, ImageEntry } from '../formats/types.js';
import type { RootMeta, SourceInfo } from '../model/commit.js';
import {
  encodeDisk, encodeRegionMap, hashDisk, partitionDirName, type Disk, type DiskRegion, type Extent as MapExtent, type LvmContent,
  type LvmVolumeContent, type MapRun,
} from '../model/disk.js';
import { encodeBlob, type Segment } from '../model/blob.js';
import { Chunker } from '../chunking/chunker.js';
import crypto from 'node:crypto';
import type { Oid } from '../model/oid.js';
import { compareNames, encodeTree, hashTree, normalizeTree, type Hole, type TreeEntry } from '../model/tree.js';
import { type MNode, MutableTree, type StoredContent } from '../tree/mutable-tree.js';
import type { ObjectReader } from '../store/object-store.js';
import { readRegionMap } from '../store/typed.js';
import { treeFileList } from './disk-reader.js';
import { type IngestContext, ingestEntries } from './ingest.js';
import { storeBytes } from '../store/store-content.js';

/** Reads of rest/raw bytes are at most this long; unmapped ranges closer than MERGE_GAP are read in one go. */
const READ_WINDOW = 1 << 20;
const MERGE_GAP = 64 * 1024;

export interface DiskIngest {
  /**
   * One line per partition stored as raw bytes although its type says it holds a Linux file system, or although it
   * holds an ext file system the reader refuses (damaged or unsupported); one line for a disk without a partition
   * table or ext file system, stored as raw bytes, naming what it holds by signature.
   */
  warnings: string[];
  disk: Oid;
  view: Oid;
  rootMeta: RootMeta;
  source: SourceInfo;
  dirs: number;
  files: number;
  bytes: number;
}

const IMPLIED_ROOT: RootMeta = { mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] };

/**
 * A previous commit of (nearly) the same disk whose file blobs may be taken without reading the files: the base of
 * a writable NBD session, with a test for the disk bytes the session changed.
 */
export interface DiskReuse {
  objects: ObjectReader;
  disk: Disk;
  /** Whether the disk bytes [offset, offset + length) may differ from the base disk's. */
  changed(offset: number, length: number): boolean;
}

export interface IngestDiskOptions {
  /**
   * Refuse (CorruptInputError) instead of warning when a partition that should hold a file system, or a whole disk
   * without a table, can only be stored raw.
   */
  strict?: boolean;
  /** A qcow2 image's internal snapshot (id or name) to read instead of its active layer. */
  snapshot?: string;
  /**
   * Take the blob id of a file from this disk when the file has the same path and size as there, its bytes lie in
   * exactly the same disk runs, and none of them changed: its content cannot differ, and it is not read.
   */
  reuse?: DiskReuse;
}

/**
 * Reads the disk at `file` into objects (through `ctx.writer`) and returns its disk object's id, with a warning per
 * partition that had to be stored as raw bytes: a Linux-typed one without an ext superblock, or one whose ext file
 * system the reader refuses (with `strict`: CorruptInputError, before anything is stored for the first kind, when
 * the reader gives up for the second; either way no ref moves).
 */
export async function ingestDisk(ctx: IngestContext, file: string | DiskSource, options: IngestDiskOptions = {}): Promise<DiskIngest> {
  const opened = typeof file === 'string' ? await openDiskSource(file, options.snapshot !== undefined ? { snapshot: options.snapshot } : {}) : file;
  // Every reader of the disk (the table, the ext reader, raw regions) gets its reads checked for length.
  const src: DiskSource = { ...opened, read: (at, n) => readChecked(opened, at, n) };
  try {
    const plan = await planDisk(src);
    const warnings: string[] = [];
    for (const r of plan.regions) {
      if (r.content) {
        const why = `${r.content} without a partition table, which viva does not read`;
        if (options.strict) throw new CorruptInputError(src.name, 'whole disk', `${why} (--strict)`);
        warnings.push(`${src.name}: ${why}: stored as raw bytes, files inside are not indexed`);
      }
    }
    for (const r of plan.regions) {
      if (!r.rawReason) continue;
      const { why, strict, unindexed } = r.rawReason;
      const where = partitionDirName(r.partition!.index);
      if (options.strict && strict) throw new CorruptInputError(src.name, where, `${why} (--strict)`);
      warnings.push(`${src.name}: ${where}: ${why}: stored as raw bytes${unindexed ? ', files inside are not indexed' : ''}`);
    }
    const extents: Extent[] = [];
    for await (const e of src.extents()) extents.push(e);
    const regions: DiskRegion[] = [];
    const views: TreeEntry[] = [];
    let bare: { tree: Oid; rootMeta: RootMeta } | undefined;
    let dirs = 0;
    let files = 0;
    let bytes = 0;
    // View names of the partitions, and the volume groups read (a VG on several PVs is one directory).
    const taken = new Set(plan.regions.flatMap((r) => (r.partition ? [partitionDirName(r.partition.index)] : [])));
    const vgs = new Map<string, VolumeGroupView>();
    for (const r of plan.regions) {
      const partition = r.partition
        ? {
          index: r.partition.index, type: r.partition.type,
          ...(r.partition.guid ? { guid: r.partition.guid } : {}), ...(r.partition.name ? { name: r.partition.name } : {}),
          ...(r.partition.attributes ? { attributes: r.partition.attributes } : {}), ...(r.partition.bootable ? { bootable: true } : {}),
        }
        : undefined;
      const lvm = r.lvm ? await ingestLvm(ctx, src, r, extents, warnings, options, taken, vgs) : undefined;
      if (lvm) {
        dirs += lvm.dirs;
        files += lvm.files;
        bytes += lvm.bytes;
        regions.push({ offset: r.offset, size: r.size, ...(partition ? { partition } : {}), content: lvm.content });
        continue;
      }
      const fsr = r.fs ? await ingestExtOrRaw(ctx, src, r, extents, warnings, options, reusable(options.reuse, r)) : undefined;
      if (fsr) {
        dirs += fsr.dirs;
        files += fsr.files;
        bytes += fsr.bytes;
        regions.push({ offset: r.offset, size: r.size, ...(partition ? { partition } : {}), content: fsr.content });
        if (partition) {
          const m = fsr.content.rootMeta;
          views.push({
            name: Buffer.from(partitionDirName(partition.index)), type: 'dir', mode: m.mode, uid: m.uid, gid: m.gid,
            mtimeNs: m.mtimeNs, size: 0, xattrs: m.xattrs, oid: fsr.content.tree,
          });
        } else {
          bare = { tree: fsr.content.tree, rootMeta: fsr.content.rootMeta };
        }
      } else {
        const packed = await storeRegion(ctx, src, r, extents, []);
        const map = await storeRegionBytes(ctx, encodeRegionMap({ packed: packed.extents, runs: [] }));
        regions.push({ offset: r.offset, size: r.size, ...(partition ? { partition } : {}), content: { kind: 'raw', data: packed.oid, map } });
      }
    }
    for (const [vg, g] of vgs) {
      // LVs whose PVs are not on this disk (a volume group spread over several disks): said once, their bytes are elsewhere.
      for (const [lv, e] of g.elsewhere) {
        if (!g.handled.has(lv)) warnings.push(`${src.name}: ${e.where}: ${vg}/${lv}: logical volume on physical volume ${e.pvs.map((x) => `'${x}'`).join(', ')}, which is not on this disk: not read`);
      }
      const enc = encodeTree(normalizeTree(g.entries));
      const tree = hashTree(enc);
      if (!ctx.writer.hasObject('tree', tree)) ctx.writer.writeObject('tree', tree, enc);
      views.push({ name: Buffer.from(vg), type: 'dir', mode: IMPLIED_ROOT.mode, uid: 0, gid: 0, mtimeNs: 0n, size: 0, xattrs: [], oid: tree });
    }
    let view: Oid;
    let rootMeta: RootMeta;
    if (bare && regions.length === 1) {
      view = bare.tree;
      rootMeta = bare.rootMeta;
    } else {
      const enc = encodeTree(normalizeTree(views));
      view = hashTree(enc);
      if (!ctx.writer.hasObject('tree', view)) ctx.writer.writeObject('tree', view, enc);
      rootMeta = IMPLIED_ROOT;
    }
    const t = plan.table;
    const disk: Disk = {
      size: src.size,
      sectorSize: t?.sectorSize ?? 512,
      ...(t ? {
        table: {
          kind: t.kind, id: (t.kind === 'gpt' ? t.diskGuid : t.diskSignature) ?? '',
          ...(t.firstUsable !== undefined ? { firstUsable: t.firstUsable } : {}),
          ...(t.lastUsable !== undefined ? { lastUsable: t.lastUsable } : {}),
        },
      } : {}),
      regions,
      view,
    };
    const enc = encodeDisk(disk);
    const oid = hashDisk(enc);
    if (!ctx.writer.hasObject('disk', oid)) ctx.writer.writeObject('disk', oid, enc);
    const source: SourceInfo = { format: src.format, size: src.fileSize, name: src.name, ...(src.backing.length ? { backing: src.backing } : {}) };
    return { warnings, disk: oid, view, rootMeta, source, dirs, files, bytes };
  } finally {
    await src.close();
  }
}

/** File-system parameters as the disk object keeps them (JSON values, sorted keys). */
export function extParams(info: Ext4Info | object): Array<[string, string]> {
  return Object.entries(info)
    .filter(([k, v]) => v !== undefined && k !== 'type')
    .map(([k, v]): [string, string] => [k, JSON.stringify(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/**
 * Ingests the ext, FAT or XFS file system of region `r`; for a partition of a partitioned disk, a file system the reader refuses
 * (CorruptInputError / UnsupportedInputError, at open or anywhere in the walk) makes it undefined instead, with a
 * warning pushed (the caller stores the partition as raw bytes, so the disk still checks out bit-exact), or with
 * `strict` a CorruptInputError naming the partition. Objects already written for the abandoned walk stay
 * unreferenced until gc. A bare file system (no table) has nothing to fall back to: its errors propagate.
 */
async function ingestExtOrRaw(ctx: IngestContext, src: DiskSource, r: PlannedRegion, extents: Extent[], warnings: string[], options: IngestDiskOptions, reuse?: RegionReuse): Promise<Awaited<ReturnType<typeof ingestExt>> | undefined> {
  if (!r.partition) return ingestExt(ctx, src, r, extents, undefined, reuse);
  const counts = { files: ctx.files, bytes: ctx.bytes };
  try {
    return await ingestExt(ctx, src, r, extents, undefined, reuse);
  } catch (e) {
    if (!(e instanceof CorruptInputError || e instanceof UnsupportedInputError)) throw e;
    ctx.files = counts.files;
    ctx.bytes = counts.bytes;
    const where = partitionDirName(r.partition.index);
    const detail = typeof e.data.where === 'string' ? `${e.data.where}: ${String(e.data.reason)}` : String(e.data.reason);
    const why = `${r.fs === 'fat' ? 'FAT' : r.fs === 'xfs' ? 'XFS' : 'ext'} file system unreadable (${detail}; the partition starts at byte ${r.offset})`;
    if (options.strict) throw new CorruptInputError(src.name, where, `${why} (--strict)`);
    warnings.push(`${src.name}: ${where}: ${why}: stored as raw bytes`);
    return undefined;
  }
}

/** A volume group's directory in the view: its LVs read so far (from each of its PVs on the disk). */
interface VolumeGroupView {
  uuid: string;
  entries: TreeEntry[];
  /** LVs already warned about (an LV spanning several PVs is met on each). */
  warned: Set<string>;
  /** LVs met on a PV that holds (part of) them, and LVs met only as lying on other PVs (with where they were met). */
  handled: Set<string>;
  elsewhere: Map<string, { pvs: string[]; where: string }>;
}

/** The names LVM allows for volume groups and logical volumes, which are also safe as view directory names. */
const LVM_NAME = /^[A-Za-z0-9+_.-]{1,127}$/;

/**
 * Reads the LVM2 physical volume of region `r`: each visible linear logical volume lying on it whose file system
 * viva reads becomes a file system of its own (under `VG/LV` in the view); the rest of the PV (label, metadata,
 * free extents, other LVs) is packed as raw bytes. Undefined (the caller stores the region raw) with a warning
 * pushed when the PV cannot be read (bad label, metadata area or text, segments outside the PV or overlapping) or
 * its VG name clashes with another view directory; with `strict`, a CorruptInputError instead. Per LV, a warning
 * for each one kept raw: thin, snapshot, raid and other segment types, several stripes, segments on another PV, a
 * file system the reader refuses or content viva does not read (swap excepted).
 */
async function ingestLvm(ctx: IngestContext, src: DiskSource, r: PlannedRegion, extents: Extent[], warnings: string[], options: IngestDiskOptions, taken: Set<string>, vgs: Map<string, VolumeGroupView>): Promise<{ content: LvmContent; dirs: number; files: number; bytes: number } | undefined> {
  const where = r.partition ? partitionDirName(r.partition.index) : 'whole disk';
  const keepRaw = (why: string): undefined => {
    if (options.strict) throw new CorruptInputError(src.name, where, `${why} (--strict)`);
    warnings.push(`${src.name}: ${where}: ${why}: stored as raw bytes, files inside are not indexed`);
    return undefined;
  };
  let pv: LvmPhysicalVolume;
  try {
    pv = await readLvmPv(src, src.name, r.offset, r.size);
  } catch (e) {
    if (!(e instanceof CorruptInputError)) throw e;
    return keepRaw(`LVM2 physical volume unreadable (${String(e.data.where)}: ${String(e.data.reason)})`);
  }
  if (!LVM_NAME.test(pv.vg) || pv.vg === '.' || pv.vg === '..') return keepRaw(`LVM2 volume group name '${pv.vg}' is not a usable directory name`);
  if (taken.has(pv.vg)) return keepRaw(`LVM2 volume group '${pv.vg}' has the name of another directory of the disk's view`);
  let group = vgs.get(pv.vg);
  if (group && group.uuid !== pv.vgUuid) return keepRaw(`LVM2 volume group '${pv.vg}' has the name of another volume group of the disk`);
  if (!group) {
    group = { uuid: pv.vgUuid, entries: [], warned: new Set(), handled: new Set(), elsewhere: new Map() };
    vgs.set(pv.vg, group);
  }
  const warned = group.warned;
  const volumes: LvmVolumeContent[] = [];
  const lvEntries: TreeEntry[] = [];
  let dirs = 0;
  let files = 0;
  let bytes = 0;
  for (const lv of pv.volumes) {
    if (!lv.visible) continue; // parts of a thin pool, raid or snapshot: the visible LV using them says what it is
    if (lv.elsewhere) {
      // Read (or warned about) with the PV it lies on, if that PV is on this disk.
      if (!group.elsewhere.has(lv.name)) group.elsewhere.set(lv.name, { pvs: lv.elsewhere, where });
      continue;
    }
    group.handled.add(lv.name);
    const at = `${where}: ${pv.vg}/${lv.name}`;
    const lvRaw = (why: string): void => {
      // An LV on several PVs of this disk is met once per PV: one warning.
      if (warned.has(lv.name)) return;
      warned.add(lv.name);
      if (options.strict) throw new CorruptInputError(src.name, at, `${why} (--strict)`);
      warnings.push(`${src.name}: ${at}: ${why}: stored as raw bytes, files inside are not indexed`);
    };
    if (!lv.extents) { lvRaw(`logical volume with ${lv.unsupported ?? 'a layout viva does not read'}`); continue; }
    if (!LVM_NAME.test(lv.name) || lv.name === '.' || lv.name === '..') { lvRaw('logical volume name is not a usable directory name'); continue; }
    const lvSrc = volumeSource(src, r.offset, lv.extents);
    const fs = await detectFileSystem(lvSrc);
    if (!fs) {
      const what = await identifyContent(lvSrc);
      if (what !== 'swap space') lvRaw(`${what ?? 'unknown content'} in the logical volume, which viva does not read`);
      continue;
    }
    const lvDisk: DiskSource = { ...src, size: lvSrc.size, read: (o, n) => lvSrc.read(o, n) };
    const lvRegion: PlannedRegion = { offset: 0, size: lvSrc.size, fs };
    const counts = { files: ctx.files, bytes: ctx.bytes };
    let fsr: Awaited<ReturnType<typeof ingestExt>>;
    try {
      fsr = await ingestExt(ctx, lvDisk, lvRegion, volumeExtents(extents, r.offset, lv.extents), `${src.name} (${pv.vg}/${lv.name})`);
    } catch (e) {
      if (!(e instanceof CorruptInputError || e instanceof UnsupportedInputError)) throw e;
      ctx.files = counts.files;
      ctx.bytes = counts.bytes;
      const detail = typeof e.data.where === 'string' ? `${e.data.where}: ${String(e.data.reason)}` : String(e.data.reason);
      lvRaw(`${fs === 'fat' ? 'FAT' : fs === 'xfs' ? 'XFS' : fs} file system unreadable (${detail})`);
      continue;
    }
    dirs += fsr.dirs;
    files += fsr.files;
    bytes += fsr.bytes;
    volumes.push({ name: lv.name, segments: lv.extents.map((x) => ({ at: x.at, length: x.length })), content: fsr.content });
    const m = fsr.content.rootMeta;
    lvEntries.push({ name: Buffer.from(lv.name), type: 'dir', mode: m.mode, uid: m.uid, gid: m.gid, mtimeNs: m.mtimeNs, size: 0, xattrs: m.xattrs, oid: fsr.content.tree });
  }
  // The PV's own bytes: everything outside the read volumes' segments.
  const mapped: MapRun[] = volumes.flatMap((v) => v.segments.map((x) => ({ at: x.at, length: x.length, file: 0, fileOffset: 0 }))).sort((a, b) => a.at - b.at);
  const packed = await storeRegion(ctx, src, r, extents, mapped);
  const map = await storeRegionBytes(ctx, encodeRegionMap({ packed: packed.extents, runs: [] }));
  group.entries.push(...lvEntries);
  const params = extParams({
    vgUuid: pv.vgUuid, pvUuid: pv.pvUuid, pvName: pv.pvName, seqno: pv.seqno, extentSize: pv.extentSize, peStart: pv.peStart,
    peCount: pv.peCount, pvCount: pv.pvCount, metadata: pv.metadata,
    logicalVolumes: pv.volumes.map((v) => ({ name: v.name, size: v.size, types: v.types, visible: v.visible, read: volumes.some((x) => x.name === v.name) })),
  });
  return {
    content: { kind: 'lvm', vg: pv.vg, params, data: packed.oid, map, volumes },
    dirs, files, bytes,
  };
}

/** The allocated ranges of the source (disk offsets) as byte ranges of a logical volume whose `lv` ranges are PV offsets from `base`. */
function volumeExtents(extents: Extent[], base: number, lv: readonly PvExtent[]): Extent[] {
  const out: Extent[] = [];
  let lvAt = 0;
  for (const x of lv) {
    const s0 = base + x.at;
    const e0 = s0 + x.length;
    for (const e of extents) {
      const a = Math.max(s0, e.offset);
      const b = Math.min(e0, e.offset + e.length);
      if (a < b) out.push({ offset: lvAt + (a - s0), length: b - a });
    }
    lvAt += x.length;
  }
  return out;
}

/** A file of the base region: its blob, size, holes and disk runs (normalized: see {@link normalRuns}). */
interface BaseFile {
  oid: Oid;
  size: number;
  holes: Hole[];
  runs: FileRun[];
}

/** Where a file's bytes lie: `length` bytes at file offset `offset` are at region offset `source`. */
interface FileRun {
  offset: number;
  length: number;
  source: number;
}

/** The base region a new region may take file blobs from (same offset, size and file-system kind), files loaded lazily. */
interface RegionReuse {
  files(): Map<string, BaseFile>;
  changed(offset: number, length: number): boolean;
}

function reusable(reuse: DiskReuse | undefined, r: PlannedRegion): RegionReuse | undefined {
  if (!reuse) return undefined;
  const base = reuse.disk.regions.find((x) => x.offset === r.offset && x.size === r.size && x.content.kind === 'fs');
  if (!base || base.content.kind !== 'fs') return undefined;
  const content = base.content;
  let files: Map<string, BaseFile> | undefined;
  return {
    files() {
      if (files) return files;
      // File index = position among the tree's regular files in walk order, as the file map counts them.
      const list: Array<[string, BaseFile]> = treeFileList(reuse.objects, content.tree)
        .map(({ path, entry: e }) => [path, { oid: e.oid ?? '', size: e.size, holes: e.holes ?? [], runs: [] }]);
      for (const m of readRegionMap(reuse.objects, content.map).runs) list[m.file]?.[1].runs.push({ offset: m.fileOffset, length: m.length, source: m.at });
      files = new Map(list);
      for (const f of files.values()) f.runs = normalRuns(f.runs);
      return files;
    },
    changed: (offset, length) => reuse.changed(r.offset + offset, length),
  };
}

/** Runs sorted by file offset, those continuing one another on both sides merged: one form for one layout. */
function normalRuns(runs: FileRun[]): FileRun[] {
  const sorted = [...runs].sort((a, b) => a.offset - b.offset);
  const out: FileRun[] = [];
  for (const x of sorted) {
    const last = out[out.length - 1];
    if (last && last.offset + last.length === x.offset && last.source + last.length === x.source) last.length += x.length;
    else out.push({ ...x });
  }
  return out;
}

function sameRuns(a: FileRun[], b: FileRun[]): boolean {
  return a.length === b.length && a.every((x, i) => x.offset === b[i]!.offset && x.length === b[i]!.length && x.source === b[i]!.source);
}

async function ingestExt(ctx: IngestContext, src: DiskSource, r: PlannedRegion, extents: Extent[], sourceName?: string, reuse?: RegionReuse): Promise<{ content: Extract<DiskRegion['content'], { kind: 'fs' }>; dirs: number; files: number; bytes: number }> {
  const name = sourceName ?? (r.partition ? `${src.name} (partition ${r.partition.index})` : src.name);
  const open = r.fs === 'fat' ? openFat : r.fs === 'xfs' ? openXfs : openExt4;
  const { info, reader } = await open(subSource(src, r.offset, r.size), name, ctx.signal ? { signal: ctx.signal } : {});
  const builder = new MutableTree(undefined, { sourceName: name });
  // Flat [at, length, fileId, fileOffset] runs, as the reader's pieces say where their bytes lie.
  const runs: number[] = [];
  const ids = new Map<MNode, number>();
  let nextId = 0;
  let pendingId = -1;
  await ingestEntries(ctx, reader, builder, name, {
    ...(reuse ? {
      async known(entry: ImageEntry, content: FileContent): Promise<StoredContent | undefined> {
        if (!content.layout) return undefined;
        const b = reuse.files().get(entry.path.toString('latin1'));
        if (!b || b.size !== content.size) return undefined;
        const layout = normalRuns(await content.layout(ctx.signal));
        if (!sameRuns(layout, b.runs) || layout.some((x) => reuse.changed(x.source, x.length))) return undefined;
        // Recorded in the new file map as the read would have recorded it.
        const id = nextId++;
        pendingId = id;
        for (const x of layout) runs.push(x.source, x.length, id, x.offset);
        return { oid: b.oid, size: b.size, holes: b.holes };
      },
    } : {}),
    wrap(_entry: ImageEntry, content: FileContent): FileContent {
      const id = nextId++;
      pendingId = id;
      return {
        size: content.size,
        async *read(signal?: AbortSignal): AsyncIterable<DataPiece> {
          for await (const p of content.read(signal)) {
            if (p.source !== undefined && p.data.length > 0) {
              const n = runs.length;
              // Pieces of one extent arrive in order: extend the previous run when both sides continue it.
              if (n && runs[n - 2] === id && runs[n - 4]! + runs[n - 3]! === p.source && runs[n - 1]! + runs[n - 3]! === p.offset) {
                runs[n - 3] += p.data.length;
              } else {
                runs.push(p.source, p.data.length, id, p.offset);
              }
            }
            yield p;
          }
        },
      };
    },
    added(entry: ImageEntry): void {
      if (pendingId < 0) return;
      const node = builder.lookup(entry.path);
      if (node) ids.set(node, pendingId);
      pendingId = -1;
    },
  });
  const written = builder.write(ctx.writer);
  // File index = position among the tree's regular files in walk order (what a rebuild walking the tree sees).
  const indexOf = new Map<number, number>();
  let index = 0;
  const walk = (node: MNode) => {
    const kids = [...node.children!.entries()].map(([k, c]) => [Buffer.from(k, 'latin1'), c] as const).sort((a, b) => compareNames(a[0], b[0]));
    for (const [, c] of kids) {
      if (c.type === 'file') {
        const id = ids.get(c);
        if (id !== undefined) indexOf.set(id, index);
        index++;
      } else if (c.type === 'dir') {
        walk(c);
      }
    }
  };
  walk(builder.root);
  const all: MapRun[] = [];
  for (let i = 0; i < runs.length; i += 4) {
    const file = indexOf.get(runs[i + 2]!);
    if (file === undefined) continue; // a file a later entry replaced: its bytes stay in the packed data
    all.push({ at: runs[i]!, length: runs[i + 1]!, file, fileOffset: runs[i + 3]! });
  }
  runs.length = 0;
  all.sort((a, b) => a.at - b.at);
  // Blocks two inodes both claim (damaged images, shared blocks): the first claim wins, the bytes are the same.
  const clean: MapRun[] = [];
  let end = 0;
  for (const m of all) {
    if (m.at + m.length <= end) continue;
    if (m.at < end) {
      const cut = end - m.at;
      clean.push({ at: end, length: m.length - cut, file: m.file, fileOffset: m.fileOffset + cut });
    } else {
      clean.push(m);
    }
    end = m.at + m.length;
  }
  const packed = await storeRegion(ctx, src, r, extents, clean);
  const map = await storeRegionBytes(ctx, encodeRegionMap({ packed: packed.extents, runs: clean }));
  const root = builder.rootMeta();
  return {
    content: {
      kind: 'fs', fsType: info.type, params: extParams(info), tree: written.oid,
      rootMeta: { mode: root.mode, uid: root.uid, gid: root.gid, mtimeNs: root.mtimeNs, xattrs: root.xattrs },
      data: packed.oid, map,
    },
    dirs: written.dirs, files: written.files, bytes: written.bytes,
  };
}

async function storeRegionBytes(ctx: IngestContext, buf: Buffer): Promise<Oid> {
  return (await storeBytes(ctx.writer, buf, ctx.signal)).oid;
}

/**
 * Stores the non-zero bytes of region `r` outside the `mapped` runs (region offsets, sorted, disjoint) as one packed
 * blob: only allocated ranges of the source are read, all-zero blocks are left out, and the extents say where the
 * packed bytes belong. Chunked and deduplicated like file content.
 */
async function storeRegion(ctx: IngestContext, src: DiskSource, r: PlannedRegion, extents: Extent[], mapped: MapRun[]): Promise<{ oid: Oid; extents: MapExtent[] }> {
  const packed: MapExtent[] = [];
  const hash = crypto.createHash('sha256');
  const chunker = new Chunker();
  const segments: Segment[] = [];
  let size = 0;
  const write = (chunks: Uint8Array[]) => {
    for (const c of chunks) {
      const oid = crypto.hash('sha256', c, 'hex');
      if (!ctx.writer.hasObject('chunk', oid)) ctx.writer.writeObject('chunk', oid, c);
      segments.push({ kind: 'chunk', oid, length: c.length });
    }
  };
  for await (const p of regionPieces(src, r, extents, mapped, ctx.signal)) {
    const last = packed[packed.length - 1];
    if (last && last.at + last.length === p.offset) last.length += p.data.length;
    else packed.push({ at: p.offset, length: p.data.length });
    hash.update(p.data);
    size += p.data.length;
    write(chunker.push(p.data));
    await ctx.writer.drain();
  }
  write(chunker.end());
  const oid = hash.digest('hex');
  if (!ctx.writer.hasObject('blob', oid)) ctx.writer.writeObject('blob', oid, encodeBlob({ form: 'chunked', size, segments }));
  return { oid, extents: packed };
}

/** Region-relative [start, end) ranges that are allocated in the source and not mapped, in order. */
function* unmappedRanges(r: PlannedRegion, extents: Extent[], mapped: MapRun[]): Generator<[number, number]> {
  let mi = 0;
  for (const e of extents) {
    let s = Math.max(e.offset, r.offset) - r.offset;
    const t = Math.min(e.offset + e.length, r.offset + r.size) - r.offset;
    if (s >= t) continue;
    while (mi < mapped.length && mapped[mi]!.at + mapped[mi]!.length <= s) mi++;
    let j = mi;
    while (s < t) {
      const m = mapped[j];
      if (!m || m.at >= t) { yield [s, t]; break; }
      if (m.at > s) yield [s, m.at];
      s = Math.max(s, m.at + m.length);
      j++;
    }
  }
}

/**
 * `n` bytes at disk offset `at`, checked: a source that hands back fewer bytes than asked (a file truncated while
 * it is read, a faulty reader) is a SourceReadError naming the file and the offset, never a shorter region.
 */
async function readChecked(src: DiskSource, at: number, n: number): Promise<Buffer> {
  const b = await src.read(at, n);
  if (b.length !== n) throw new SourceReadError(src.name, `short read at offset ${at}: ${b.length} of ${n} bytes`);
  return b;
}

/**
 * The non-zero bytes of region `r` outside the `mapped` runs, as region-relative pieces, in order. Every read is
 * checked (SourceReadError on a short read) and `signal` is checked before each: an abort is an AbortedError, so a
 * region is never stored cut short.
 */
export async function* regionPieces(src: DiskSource, r: PlannedRegion, extents: Extent[], mapped: MapRun[], signal?: AbortSignal): AsyncGenerator<DataPiece> {
  // Group nearby unmapped ranges into windows read at once; mapped bytes inside a window are zeroed in a copy.
  let win: Array<[number, number]> = [];
  // A composed source reads file blobs for mapped bytes inside a window: read only what is needed there.
  const gap = src.composed ? 0 : MERGE_GAP;
  const flush = async function* (): AsyncGenerator<DataPiece> {
    if (!win.length) return;
    const start = win[0]![0];
    const end = win[win.length - 1]![1];
    if (signal?.aborted) throw new AbortedError();
    const raw = await readChecked(src, r.offset + start, end - start);
    let buf: Buffer = raw;
    if (win.length > 1) {
      buf = Buffer.alloc(end - start);
      for (const [a, b] of win) raw.copy(buf, a - start, a - start, b - start);
    }
    win = [];
    yield* nonZero(buf, start);
  };
  for (const range of unmappedRanges(r, extents, mapped)) {
    if (signal?.aborted) throw new AbortedError();
    let [a, b] = range;
    while (a < b) {
      if (win.length && (a - win[win.length - 1]![1] > gap || a - win[0]![0] >= READ_WINDOW)) yield* flush();
      const winStart = win.length ? win[0]![0] : a;
      const e = Math.min(b, winStart + READ_WINDOW);
      win.push([a, e]);
      a = e;
      if (a < b) yield* flush();
    }
  }
  yield* flush();
}
