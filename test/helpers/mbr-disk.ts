/** Partitioned disk images built at test time without sfdisk: an MBR written by hand, ext4 file systems by mke2fs. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export const SECTOR = 512;

export interface MbrPartition {
  /** First sector and length in sectors. */
  start: number;
  sectors: number;
  /** MBR type byte (0x83 Linux, 0x82 swap, 0x0c FAT32...). */
  type: number;
  /** A tree to make an ext4 file system of (mke2fs -d); none: the partition stays as it is. */
  ext4Tree?: string;
}

export function haveMke2fs(): boolean {
  try {
    execFileSync('mke2fs', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A sparse raw disk of `sizeMiB` MiB with an MBR of up to four primary partitions, ext4 where a tree is given. */
export function makeMbrDisk(file: string, sizeMiB: number, partitions: MbrPartition[]): void {
  fs.rmSync(file, { force: true });
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, sizeMiB << 20);
    const mbr = Buffer.alloc(SECTOR);
    partitions.forEach((p, i) => {
      const o = 446 + 16 * i;
      mbr[o] = 0;
      mbr.fill(0xff, o + 1, o + 4); // CHS unused (LBA only)
      mbr[o + 4] = p.type;
      mbr.fill(0xff, o + 5, o + 8);
      mbr.writeUInt32LE(p.start, o + 8);
      mbr.writeUInt32LE(p.sectors, o + 12);
    });
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    fs.writeSync(fd, mbr, 0, SECTOR, 0);
  } finally {
    fs.closeSync(fd);
  }
  for (const p of partitions) {
    if (!p.ext4Tree) continue;
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', p.ext4Tree, '-E', `offset=${p.start * SECTOR},root_owner=0:0`, file, String((p.sectors * SECTOR) / 1024)], { stdio: 'pipe' });
  }
}

/** Overwrites bytes of `file` at `offset`. */
export function patchBytes(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}
