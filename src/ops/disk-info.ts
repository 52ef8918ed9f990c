/** A disk commit's layout in plain JSON terms (for `show --json` and the table `ls` prints above a disk's root). */
import { type Disk, type FsContent, diskParam, partitionDirName } from '../model/disk.js';

/** One region of a disk image: a partition or gap, read as a file system or kept as raw bytes. */
export interface DiskRegionInfo {
  offset: number;
  size: number;
  /**
   * 'fs' (a file system viva reads: its files are under `path`), 'lvm' (an LVM2 physical volume: its logical volumes
   * in `lvm`) or 'raw' (bytes kept as they are).
   */
  kind: 'fs' | 'raw' | 'lvm';
  /** Where its files appear in paths: 'p1', ... ('' for a bare file system); absent for raw regions. */
  path?: string;
  partition?: { index: number; type: string; guid?: string; name?: string; attributes?: string; bootable?: boolean };
  /** FAT: uuid is the volume id (as blkid prints it, 'ABCD-1234'), blockSize the cluster size. */
  fs?: DiskFsInfo;
  /** An LVM2 physical volume: its volume group and every logical volume of the metadata. */
  lvm?: {
    vg: string;
    vgUuid: string;
    pvUuid: string;
    /** Bytes. */
    extentSize: number;
    /** Byte offset of the first physical extent in the region. */
    peStart: number;
    peCount: number;
    pvCount: number;
    volumes: DiskVolumeInfo[];
  };
  data: string;
  map: string;
}

/** A file system's type and parameters. FAT: uuid is the volume id (as blkid prints it, 'ABCD-1234'), blockSize the cluster size. */
export interface DiskFsInfo {
  type: string;
  uuid?: string;
  label?: string;
  blockSize?: number;
  inodeSize?: number;
  features?: string[];
  params: Record<string, unknown>;
  tree: string;
}

/** A logical volume of an LVM region. */
export interface DiskVolumeInfo {
  name: string;
  /** Bytes. */
  size: number;
  /** Segment types in order ('striped' is linear when one stripe; 'thin', 'snapshot', 'raid1', ...). */
  types: string[];
  visible: boolean;
  /** Read as a file system: its files are under `path` ('vg0/root'); otherwise its bytes are kept raw. */
  read: boolean;
  path?: string;
  /** Where its bytes lie, in LV order: disk offsets and lengths (read volumes only). */
  segments?: Array<{ offset: number; size: number }>;
  fs?: DiskFsInfo;
}

function fsInfo(c: FsContent): DiskFsInfo {
  const features = diskParam(c, 'features') as { compat: string[]; incompat: string[]; roCompat: string[] } | undefined;
  return {
    type: c.fsType, uuid: (diskParam(c, 'uuid') ?? diskParam(c, 'volumeId')) as string, label: diskParam(c, 'label') as string,
    blockSize: (diskParam(c, 'blockSize') ?? diskParam(c, 'clusterSize')) as number, inodeSize: diskParam(c, 'inodeSize') as number,
    ...(features ? { features: [...features.compat, ...features.incompat, ...features.roCompat] } : {}),
    params: Object.fromEntries(c.params.map(([k, v]) => [k, JSON.parse(v)])), tree: c.tree,
  };
}

/** A disk commit's disk object in plain data: size, partition table and regions (`viva show` of a disk). */
export interface DiskInfo {
  id: string;
  size: number;
  sectorSize: number;
  table?: { kind: 'mbr' | 'gpt'; id: string };
  view: string;
  regions: DiskRegionInfo[];
}

/** Plain data for a stored disk object (`oid`: its id): what `viva show` prints of a disk commit. */
export function describeDisk(oid: string, d: Disk): DiskInfo {
  const bare = !d.table;
  return {
    id: oid, size: d.size, sectorSize: d.sectorSize, ...(d.table ? { table: { kind: d.table.kind, id: d.table.id } } : {}), view: d.view,
    regions: d.regions.map((r): DiskRegionInfo => {
      const c = r.content;
      const out: DiskRegionInfo = { offset: r.offset, size: r.size, kind: c.kind, data: c.data, map: c.map };
      if (r.partition) out.partition = { ...r.partition };
      if (c.kind === 'fs') {
        out.path = bare ? '' : r.partition ? partitionDirName(r.partition.index) : '';
        out.fs = fsInfo(c);
      } else if (c.kind === 'lvm') {
        const p = (k: string) => { const v = c.params.find(([x]) => x === k); return v ? JSON.parse(v[1]) as unknown : undefined; };
        const listed = (p('logicalVolumes') ?? []) as Array<{ name: string; size: number; types: string[]; visible: boolean }>;
        out.lvm = {
          vg: c.vg, vgUuid: String(p('vgUuid') ?? ''), pvUuid: String(p('pvUuid') ?? ''), extentSize: Number(p('extentSize') ?? 0),
          peStart: Number(p('peStart') ?? 0), peCount: Number(p('peCount') ?? 0), pvCount: Number(p('pvCount') ?? 1),
          volumes: listed.map((lv): DiskVolumeInfo => {
            const v = c.volumes.find((x) => x.name === lv.name);
            return {
              name: lv.name, size: lv.size, types: lv.types, visible: lv.visible, read: !!v,
              ...(v ? { path: `${c.vg}/${v.name}`, segments: v.segments.map((x) => ({ offset: r.offset + x.at, size: x.length })), fs: fsInfo(v.content) } : {}),
            };
          }),
        };
      }
      return out;
    }),
  };
}
