/**
 * Disk objects: a whole disk image (raw or qcow2 source) as data. Encoding (docs/format.md §disk): header `disk\0` +
 * version, virtual size, sector size, partition table, regions in offset order, view tree.
 *
 * Every byte of the virtual disk belongs to exactly one region or reads as zero:
 * - a `raw` region (boot code, partition-table sectors, gaps, swap, vfat, unknown partitions) is its non-zero bytes,
 *   packed into one `data` blob, and a region map saying where each packed extent lies in the region;
 * - an `fs` region (a recognised file system) is its parameters, its root tree (the same kind of tree a directory
 *   commit makes, so files dedup across both) and, for a bit-exact rebuild, the same packed `data` + map for every
 *   byte that is not file content (superblocks, bitmaps, inode tables, directories, journal, slack), while the map's
 *   file runs say which byte ranges of the region hold which file's bytes. Rebuild = packed extents + file runs.
 * Packing only non-zero extents keeps the cost of a sparse disk proportional to its data, not its virtual size.
 * - an `lvm` region (an LVM2 physical volume) is packed like a raw region except for the byte ranges of the logical
 *   volumes whose file systems are read: each such volume is an fs content of its own, over the LV's byte space, with
 *   the segments saying where those bytes lie in the region.
 * The view tree is what `ls`, `cat` and `checkout --path` see: the file system's root for a bare file system, or one
 * directory per file system (`p1`, `p2`, ...) for a partitioned disk, plus one directory per LVM volume group holding
 * one directory per logical volume read (`vg0/root`).
 */
import { Decoder, DecodeError, Encoder, decodeHeader, encodeHeader } from './codec.js';
import { type Oid, OID_BYTES, bytesToOid, hashBytes, oidToBytes } from './oid.js';
import { type RootMeta, decodeRootMeta, encodeRootMeta } from './commit.js';

/**
 * Version 2 adds the optional overlay (a derived disk); version 3 adds LVM regions (REGION_LVM) and an overlay flag.
 * A disk is encoded with the lowest version that can say it: without LVM regions or overlay still as version 1, so
 * the ids of disks committed before stay the same.
 */
export const DISK_VERSION = 3;
export const REGIONMAP_VERSION = 1;

/** Frozen codes. */
const TABLE_CODES = { none: 0, mbr: 1, gpt: 2 } as const;
const REGION_RAW = 1;
const REGION_FS = 2;
const REGION_LVM = 3;

export interface DiskTable {
  kind: 'mbr' | 'gpt';
  /** MBR: '0x%08x' signature; GPT: the disk GUID. */
  id: string;
  /** GPT: first and last usable byte (exclusive), for a rebuild with `--layout-from`. */
  firstUsable?: number;
  lastUsable?: number;
}

export interface DiskPartition {
  /** 1-based, as `pN` names it. */
  index: number;
  /** MBR '0x83', GPT type GUID. */
  type: string;
  guid?: string;
  name?: string;
  /** GPT attribute bits as '0x' + 16 hex digits. */
  attributes?: string;
  bootable?: boolean;
}

export interface FsContent {
  kind: 'fs';
  /** 'ext2' | 'ext3' | 'ext4'. */
  fsType: string;
  /** Parameters (uuid, label, features, blockSize, ...) as sorted key → JSON value text. */
  params: Array<[string, string]>;
  tree: Oid;
  rootMeta: RootMeta;
  /** Blob: the packed non-zero bytes of the region that are not file content. */
  data: Oid;
  /** Blob: the encoded RegionMap (packed extents and file runs). */
  map: Oid;
}

export interface RawContent {
  kind: 'raw';
  /** Blob: the packed non-zero bytes of the region. */
  data: Oid;
  /** Blob: the encoded RegionMap (packed extents only). */
  map: Oid;
}

/** A logical volume of an LVM region whose file system is read. */
export interface LvmVolumeContent {
  /** The LV's name: its directory under the volume group's in the view (`vg0/root`). */
  name: string;
  /**
   * Where the LV's bytes lie, in LV order: `length` bytes at region offset `at` each (disjoint, non-empty; not
   * necessarily increasing, an LV extended after another holds extents past it). The file system's `map` and `data`
   * address the LV's own byte space (these segments one after another).
   */
  segments: Extent[];
  content: FsContent;
}

/**
 * An LVM2 physical volume (a partition or the whole disk) whose logical volumes are read: the bytes outside every read
 * LV's segments (label, metadata area, free extents, LVs not read) are packed in `data` + `map` as for a raw region;
 * each read LV is a file system whose bytes lie at its segments.
 */
export interface LvmContent {
  kind: 'lvm';
  /** The volume group's name: the view directory its volumes appear under. */
  vg: string;
  /** Parameters (vgUuid, pvUuid, extentSize, peStart, the volume list, ...) as sorted key → JSON value text. */
  params: Array<[string, string]>;
  data: Oid;
  map: Oid;
  volumes: LvmVolumeContent[];
}

export interface DiskRegion {
  offset: number;
  size: number;
  partition?: DiskPartition;
  content: FsContent | RawContent | LvmContent;
}

export interface Disk {
  size: number;
  sectorSize: number;
  table?: DiskTable;
  regions: DiskRegion[];
  /** What paths address: a tree (see the module comment). */
  view: Oid;
  /**
   * A derived disk: its bytes are those of the disk `base` with the byte ranges of the `patch` blob (a DiskPatch)
   * written over them. Its regions describe its own file systems (their trees), but their `data` and `map` are the
   * base's: the bytes come from the base and the patch, never from the regions of an overlay disk.
   */
  overlay?: { base: Oid; patch: Oid };
}

/** Every object a disk refers to (view and region trees, region blobs, an overlay's base disk and patch blob). */
export function diskReferences(d: Disk): Array<{ kind: 'tree' | 'blob' | 'disk'; oid: Oid }> {
  const out: Array<{ kind: 'tree' | 'blob' | 'disk'; oid: Oid }> = [{ kind: 'tree', oid: d.view }];
  for (const r of d.regions) {
    if (r.content.kind === 'fs') out.push({ kind: 'tree', oid: r.content.tree });
    out.push({ kind: 'blob', oid: r.content.data }, { kind: 'blob', oid: r.content.map });
    if (r.content.kind === 'lvm') {
      for (const v of r.content.volumes) {
        out.push({ kind: 'tree', oid: v.content.tree }, { kind: 'blob', oid: v.content.data }, { kind: 'blob', oid: v.content.map });
      }
    }
  }
  if (d.overlay) out.push({ kind: 'disk', oid: d.overlay.base }, { kind: 'blob', oid: d.overlay.patch });
  return out;
}

function str(e: Encoder, s: string | undefined): void {
  e.str(s ?? '');
}

function encodeFs(e: Encoder, c: FsContent): void {
  e.str(c.fsType);
  encodeParams(e, c.params);
  encodeRootMeta(e.raw(oidToBytes(c.tree)), c.rootMeta);
  e.raw(oidToBytes(c.data)).raw(oidToBytes(c.map));
}

function encodeParams(e: Encoder, params: Array<[string, string]>): void {
  const sorted = [...params].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  e.uint(sorted.length);
  for (const [k, v] of sorted) e.str(k).str(v);
}

function decodeParams(d: Decoder, limit: number): Array<[string, string]> {
  const np = d.uint();
  if (np > limit) throw new DecodeError('parameter count exceeds object size', d.pos);
  const params: Array<[string, string]> = [];
  for (let j = 0; j < np; j++) params.push([d.str(), d.str()]);
  return params;
}

function decodeFs(d: Decoder, limit: number): FsContent {
  const fsType = d.str();
  const params = decodeParams(d, limit);
  const tree = bytesToOid(d.raw(OID_BYTES));
  const rootMeta = decodeRootMeta(d);
  const data = bytesToOid(d.raw(OID_BYTES));
  const map = bytesToOid(d.raw(OID_BYTES));
  return { kind: 'fs', fsType, params, tree, rootMeta, data, map };
}

/**
 * Checks an LVM region's volume segments: non-empty, inside the region, no two (of any volumes) overlapping. Returns
 * the problem, or undefined.
 */
export function lvmSegmentProblem(size: number, volumes: readonly LvmVolumeContent[]): string | undefined {
  const all = volumes.flatMap((v) => v.segments.map((x) => ({ ...x, name: v.name }))).sort((a, b) => a.at - b.at);
  let end = 0;
  for (const x of all) {
    if (x.length <= 0 || x.at + x.length > size) return `segment of '${x.name}' at ${x.at} is empty or lies outside the region`;
    if (x.at < end) return `segment of '${x.name}' at ${x.at} overlaps another`;
    end = x.at + x.length;
  }
  return undefined;
}

export function encodeDisk(d: Disk): Buffer {
  const lvm = d.regions.some((r) => r.content.kind === 'lvm');
  const e = encodeHeader(new Encoder(), 'disk', lvm ? 3 : d.overlay ? 2 : 1);
  e.uint(d.size).uint(d.sectorSize);
  e.u8(TABLE_CODES[d.table?.kind ?? 'none']);
  if (d.table) {
    e.str(d.table.id).uint(d.table.firstUsable ?? 0).uint(d.table.lastUsable ?? 0);
  }
  e.uint(d.regions.length);
  let end = 0;
  for (const r of d.regions) {
    if (r.offset < end || r.offset + r.size > d.size) throw new RangeError(`disk region at ${r.offset} overlaps or lies outside the disk`);
    end = r.offset + r.size;
    e.uint(r.offset).uint(r.size);
    const p = r.partition;
    if (p) {
      e.u8(1).uint(p.index);
      str(e, p.type); str(e, p.guid); str(e, p.name); str(e, p.attributes);
      e.u8(p.bootable ? 1 : 0);
    } else {
      e.u8(0);
    }
    const c = r.content;
    if (c.kind === 'raw') {
      e.u8(REGION_RAW).raw(oidToBytes(c.data)).raw(oidToBytes(c.map));
    } else if (c.kind === 'fs') {
      e.u8(REGION_FS);
      encodeFs(e, c);
    } else {
      const problem = lvmSegmentProblem(r.size, c.volumes);
      if (problem) throw new RangeError(`disk region at ${r.offset}: ${problem}`);
      e.u8(REGION_LVM).str(c.vg);
      encodeParams(e, c.params);
      e.raw(oidToBytes(c.data)).raw(oidToBytes(c.map));
      e.uint(c.volumes.length);
      for (const v of c.volumes) {
        e.str(v.name).uint(v.segments.length);
        for (const x of v.segments) e.uint(x.at).uint(x.length);
        encodeFs(e, v.content);
      }
    }
  }
  e.raw(oidToBytes(d.view));
  if (lvm) e.u8(d.overlay ? 1 : 0);
  if (d.overlay) e.raw(oidToBytes(d.overlay.base)).raw(oidToBytes(d.overlay.patch));
  return e.finish();
}

export function decodeDisk(buf: Uint8Array): Disk {
  const d = new Decoder(buf);
  const version = decodeHeader(d, 'disk', DISK_VERSION);
  const size = d.uint();
  const sectorSize = d.uint();
  const tc = d.u8();
  let table: DiskTable | undefined;
  if (tc === TABLE_CODES.mbr || tc === TABLE_CODES.gpt) {
    const id = d.str();
    const firstUsable = d.uint();
    const lastUsable = d.uint();
    table = { kind: tc === 1 ? 'mbr' : 'gpt', id, ...(firstUsable ? { firstUsable } : {}), ...(lastUsable ? { lastUsable } : {}) };
  } else if (tc !== TABLE_CODES.none) {
    throw new DecodeError(`unknown partition table kind ${tc}`, d.pos - 1);
  }
  const n = d.uint();
  if (n > buf.length) throw new DecodeError('region count exceeds object size', d.pos);
  const regions: DiskRegion[] = [];
  let end = 0;
  for (let i = 0; i < n; i++) {
    const at = d.pos;
    const offset = d.uint();
    const rsize = d.uint();
    if (offset < end || offset + rsize > size) throw new DecodeError('region overlaps the previous one or lies outside the disk', at);
    end = offset + rsize;
    const region: DiskRegion = { offset, size: rsize, content: { kind: 'raw', data: '', map: '' } };
    const hp = d.u8();
    if (hp === 1) {
      const index = d.uint();
      const type = d.str();
      const guid = d.str();
      const name = d.str();
      const attributes = d.str();
      const bootable = d.u8() === 1;
      region.partition = {
        index, type, ...(guid ? { guid } : {}), ...(name ? { name } : {}), ...(attributes ? { attributes } : {}),
        ...(bootable ? { bootable } : {}),
      };
    } else if (hp !== 0) {
      throw new DecodeError('bad partition flag', d.pos - 1);
    }
    const kind = d.u8();
    if (kind === REGION_RAW) {
      const data = bytesToOid(d.raw(OID_BYTES));
      region.content = { kind: 'raw', data, map: bytesToOid(d.raw(OID_BYTES)) };
    } else if (kind === REGION_FS) {
      region.content = decodeFs(d, buf.length);
    } else if (kind === REGION_LVM && version >= 3) {
      const vg = d.str();
      const params = decodeParams(d, buf.length);
      const data = bytesToOid(d.raw(OID_BYTES));
      const map = bytesToOid(d.raw(OID_BYTES));
      const nv = d.uint();
      if (nv > buf.length) throw new DecodeError('volume count exceeds object size', d.pos);
      const volumes: LvmVolumeContent[] = [];
      for (let j = 0; j < nv; j++) {
        const name = d.str();
        const ns = d.uint();
        if (ns > buf.length) throw new DecodeError('segment count exceeds object size', d.pos);
        const segments: Extent[] = [];
        for (let k = 0; k < ns; k++) segments.push({ at: d.uint(), length: d.uint() });
        volumes.push({ name, segments, content: decodeFs(d, buf.length) });
      }
      const problem = lvmSegmentProblem(rsize, volumes);
      if (problem) throw new DecodeError(problem, d.pos);
      region.content = { kind: 'lvm', vg, params, data, map, volumes };
    } else {
      throw new DecodeError(`unknown region kind ${kind}`, d.pos - 1);
    }
    regions.push(region);
  }
  const view = bytesToOid(d.raw(OID_BYTES));
  const hasOverlay = version === 2 || (version >= 3 && d.u8() === 1);
  const overlay = hasOverlay ? { base: bytesToOid(d.raw(OID_BYTES)), patch: bytesToOid(d.raw(OID_BYTES)) } : undefined;
  d.expectEnd();
  return { size, sectorSize, ...(table ? { table } : {}), regions, view, ...(overlay ? { overlay } : {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// Disk patches

export const DISKPATCH_VERSION = 1;

/** Bytes written over a base disk: `data` at disk offset `offset`. */
export interface PatchRange {
  offset: number;
  data: Buffer;
}

/**
 * Encoding (the content of an overlay's patch blob): header `dpatch\0` + version, range count, then per range (sorted,
 * disjoint, non-empty) the gap from the previous range's end, the length, and the bytes.
 */
export function encodeDiskPatch(ranges: readonly PatchRange[]): Buffer {
  const e = encodeHeader(new Encoder(), 'dpatch', DISKPATCH_VERSION);
  e.uint(ranges.length);
  let end = 0;
  for (const r of ranges) {
    if (r.offset < end || r.data.length === 0) throw new RangeError(`disk patch range at ${r.offset} overlaps the previous one or is empty`);
    e.uint(r.offset - end).bytes(r.data);
    end = r.offset + r.data.length;
  }
  return e.finish();
}

export function decodeDiskPatch(buf: Uint8Array): PatchRange[] {
  const d = new Decoder(buf);
  decodeHeader(d, 'dpatch', DISKPATCH_VERSION);
  const n = d.uint();
  if (n > buf.length) throw new DecodeError('range count exceeds patch size', d.pos);
  const out: PatchRange[] = [];
  let end = 0;
  for (let i = 0; i < n; i++) {
    const offset = end + d.uint();
    const data = Buffer.from(d.bytes());
    if (data.length === 0) throw new DecodeError('empty patch range', d.pos);
    out.push({ offset, data });
    end = offset + data.length;
  }
  d.expectEnd();
  return out;
}

export function hashDisk(encoded: Uint8Array): Oid {
  return hashBytes(encoded);
}

/** A param value decoded from its JSON text. */
export function diskParam(c: FsContent, key: string): unknown {
  const p = c.params.find(([k]) => k === key);
  return p ? JSON.parse(p[1]) : undefined;
}

/** Every file system of a disk: its fs regions' contents and the logical volumes of its LVM regions, in disk order. */
export function diskFileSystems(d: Disk): Array<{ region: DiskRegion; content: FsContent; volume?: { vg: string; name: string } }> {
  const out: Array<{ region: DiskRegion; content: FsContent; volume?: { vg: string; name: string } }> = [];
  for (const r of d.regions) {
    if (r.content.kind === 'fs') out.push({ region: r, content: r.content });
    else if (r.content.kind === 'lvm') for (const v of r.content.volumes) out.push({ region: r, content: v.content, volume: { vg: r.content.vg, name: v.name } });
  }
  return out;
}

/** The partition name paths use: `p1`, `p2`, ... */
export function partitionDirName(index: number): string {
  return `p${index}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Region maps

/** `length` bytes at region offset `at`. */
export interface Extent {
  at: number;
  length: number;
}

/**
 * One run of file bytes inside an fs region: `length` bytes at region offset `at` are bytes [fileOffset, +length) of
 * the `file`-th regular file of the region's tree in walk order (depth first, entries in tree order, hardlink
 * members counted each time).
 */
export interface MapRun extends Extent {
  file: number;
  fileOffset: number;
}

/** Where a region's bytes come from: `packed` extents are the data blob's bytes in order; `runs` are file bytes. */
export interface RegionMap {
  packed: Extent[];
  runs: MapRun[];
}

/**
 * Encoding: header `rmap\0` + version; packed extent count, then per extent (sorted, disjoint) the gap from the
 * previous extent's end and the length; run count, then per run (sorted by `at`, disjoint) the gap from the previous
 * run's end, length, file index delta (zigzag) and file offset. Deltas keep typical entries at 3–6 bytes.
 */
export function encodeRegionMap(m: RegionMap): Buffer {
  const e = encodeHeader(new Encoder(), 'rmap', REGIONMAP_VERSION);
  e.uint(m.packed.length);
  let end = 0;
  for (const x of m.packed) {
    if (x.at < end || x.length <= 0) throw new RangeError(`packed extent at ${x.at} overlaps the previous one or is empty`);
    e.uint(x.at - end).uint(x.length);
    end = x.at + x.length;
  }
  e.uint(m.runs.length);
  end = 0;
  let file = 0;
  for (const r of m.runs) {
    if (r.at < end || r.length <= 0) throw new RangeError(`file map run at ${r.at} overlaps the previous one or is empty`);
    e.uint(r.at - end).uint(r.length).sbig(BigInt(r.file - file)).uint(r.fileOffset);
    end = r.at + r.length;
    file = r.file;
  }
  return e.finish();
}

export function decodeRegionMap(buf: Uint8Array): RegionMap {
  const d = new Decoder(buf);
  decodeHeader(d, 'rmap', REGIONMAP_VERSION);
  const np = d.uint();
  if (np > buf.length) throw new DecodeError('extent count exceeds object size', d.pos);
  const packed: Extent[] = [];
  let end = 0;
  for (let i = 0; i < np; i++) {
    const at = end + d.uint();
    const length = d.uint();
    if (length === 0) throw new DecodeError('empty packed extent', d.pos);
    packed.push({ at, length });
    end = at + length;
  }
  const n = d.uint();
  if (n > buf.length) throw new DecodeError('run count exceeds object size', d.pos);
  const runs: MapRun[] = [];
  end = 0;
  let file = 0;
  for (let i = 0; i < n; i++) {
    const at = end + d.uint();
    const length = d.uint();
    if (length === 0) throw new DecodeError('empty file map run', d.pos);
    file += Number(d.sbig());
    if (file < 0) throw new DecodeError('negative file index', d.pos);
    const fileOffset = d.uint();
    runs.push({ at, length, file, fileOffset });
    end = at + length;
  }
  d.expectEnd();
  return { packed, runs };
}
