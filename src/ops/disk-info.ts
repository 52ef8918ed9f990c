/** A disk commit's layout in plain JSON terms (for `show --json` and the table `ls` prints above a disk's root). */
import { type Disk, diskParam, partitionDirName } from '../model/disk.js';

/** One region of a disk image: a partition or gap, read as a file system or kept as raw bytes. */
export interface DiskRegionInfo {
  offset: number;
  size: number;
  /** 'fs' (a file system viva reads: its files are under `path`) or 'raw' (bytes kept as they are). */
  kind: 'fs' | 'raw';
  /** Where its files appear in paths: 'p1', ... ('' for a bare file system); absent for raw regions. */
  path?: string;
  partition?: { index: number; type: string; guid?: string; name?: string; attributes?: string; bootable?: boolean };
  /** FAT: uuid is the volume id (as blkid prints it, 'ABCD-1234'), blockSize the cluster size. */
  fs?: { type: string; uuid?: string; label?: string; blockSize?: number; inodeSize?: number; features?: string[]; params: Record<string, unknown>; tree: string };
  data: string;
  map: string;
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
        const features = diskParam(c, 'features') as { compat: string[]; incompat: string[]; roCompat: string[] } | undefined;
        out.fs = {
          type: c.fsType, uuid: (diskParam(c, 'uuid') ?? diskParam(c, 'volumeId')) as string, label: diskParam(c, 'label') as string,
          blockSize: (diskParam(c, 'blockSize') ?? diskParam(c, 'clusterSize')) as number, inodeSize: diskParam(c, 'inodeSize') as number,
          ...(features ? { features: [...features.compat, ...features.incompat, ...features.roCompat] } : {}),
          params: Object.fromEntries(c.params.map(([k, v]) => [k, JSON.parse(v)])), tree: c.tree,
        };
      }
      return out;
    }),
  };
}
