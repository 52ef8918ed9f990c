/**
 * FAT12/FAT16/FAT32 file systems (with VFAT long names) as ImageReaders: a read-only parser of the on-disk format of
 * Microsoft's "FAT: General Overview of On-Disk Format" (fatgen103), bounds-checking every structure it reads, like
 * the ext4 reader (./ext4.ts) whose BlockSource it reads through.
 *
 * Mapping onto the tree (FAT has no owners, modes or xattrs):
 * - directories 0755, files 0644 (0444 when read-only), uid/gid 0; no symlinks, devices or hardlinks;
 * - mtime: the entry's modify time. FAT stores local time with 2-second steps and no zone; viva takes it as UTC as
 *   written, which is what Linux's vfat does by default (tz=UTC unless `tz=`/`time_offset=` is given). Create and
 *   access times are not read: the tree keeps mtime only. The root directory has no entry: its mtime is 0;
 * - the attribute bits read-only (0x01), hidden (0x02), system (0x04) and archive (0x20) are kept as the xattr
 *   `user.fat.attributes` (one byte, the attribute byte masked to those bits, absent when none is set). Linux's vfat
 *   exposes them through FAT_IOCTL_GET_ATTRIBUTES, not as xattrs; a `user.` xattr is what tar and directory exports
 *   can carry without privileges, and one byte keeps the exact bits for a rebuild.
 *
 * Names: a VFAT long name (UTF-16) when present, its checksum verified against the 8.3 name that follows it;
 * otherwise the 8.3 name decoded as code page 437 with the NT lower-case bits (byte 12: 0x08 base, 0x10 extension)
 * applied, as Linux's vfat shows it with its defaults (codepage=437, utf8).
 */
import { EMPTY, showPath, throwIfAborted, walkEntries, type WalkStep } from './depth-first.js';
import type { DataPiece, FileContent, ImageEntry, ImageReader, SourceDescription, Xattr } from './types.js';
import type { BlockSource } from './ext4.js';
import { CorruptInputError } from '../errors.js';

/** What {@link openFat} reports about a FAT file system (its boot sector and geometry). */
export interface FatInfo {
  type: 'fat12' | 'fat16' | 'fat32';
  /** The volume label (root-directory label entry, else the boot sector's; '' for 'NO NAME'). */
  label: string;
  /** The volume serial number as Windows and blkid print it: 'ABCD-1234'. */
  volumeId: string;
  oemName: string;
  bytesPerSector: number;
  sectorsPerCluster: number;
  clusterSize: number;
  reservedSectors: number;
  fatCount: number;
  sectorsPerFat: number;
  /** Root directory entries of FAT12/16 (0 for FAT32). */
  rootEntries: number;
  totalSectors: number;
  /** Data clusters (numbered 2 .. clusterCount + 1). */
  clusterCount: number;
  mediaDescriptor: number;
  hiddenSectors: number;
  /** Byte offset of cluster 2 in the source. */
  dataOffset: number;
  /** FAT32 only: the root directory's first cluster, the FSInfo sector, and its free-cluster count when valid. */
  rootCluster?: number;
  fsInfoSector?: number;
  freeClusters?: number;
}

/** The xattr holding an entry's FAT attribute bits (read-only 0x01, hidden 0x02, system 0x04, archive 0x20). */
export const FAT_ATTRIBUTES_XATTR = 'user.fat.attributes';

const ATTR_RO = 0x01;
const ATTR_VOLUME = 0x08;
const ATTR_DIR = 0x10;
const ATTR_LFN = 0x0f;
const ATTR_KEPT = 0x27;
const PIECE = 1 << 20;
/** fatgen103: a directory holds at most 65536 entries. */
const MAX_DIR_BYTES = 65536 * 32;

const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

function cp437(bytes: Buffer): string {
  let s = '';
  for (const b of bytes) s += b < 0x80 ? String.fromCharCode(b) : CP437_HIGH[b - 0x80];
  return s;
}

/** The checksum of an 8.3 name that its long-name entries carry (fatgen103 ChkSum()). */
export function lfnChecksum(shortName: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((((sum & 1) << 7) | (sum >> 1)) + shortName[i]) & 0xff;
  return sum;
}

/** A FAT date and time as seconds since the epoch, read as UTC; month and day 0 count as 1 (as Linux does). */
export function fatTimeToSeconds(date: number, time: number): number {
  if (date === 0) return 0;
  const year = 1980 + (date >> 9);
  const month = Math.max(1, (date >> 5) & 0xf);
  const day = Math.max(1, date & 0x1f);
  return Date.UTC(year, month - 1, day, time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2) / 1000;
}

interface Run { cluster: number; count: number }

interface Child {
  name: Buffer;
  attr: number;
  cluster: number;
  size: number;
  mtimeNs: bigint;
  /** Byte offset of the 32-byte short entry, for messages. */
  at: number;
}

class FatVolume {
  readonly info: FatInfo;
  private fat: Buffer = EMPTY;
  /** Clusters already claimed by a chain: a second claim is a loop or a cross-link. */
  private used: Uint8Array;
  private readonly rootDirOffset: number;

  constructor(readonly source: BlockSource, readonly name: string, boot: Buffer) {
    const bad = (reason: string): CorruptInputError => this.corrupt('boot sector', reason);
    const bps = boot.readUInt16LE(11);
    const spc = boot[13];
    const reserved = boot.readUInt16LE(14);
    const fats = boot[16];
    const rootEntries = boot.readUInt16LE(17);
    const total16 = boot.readUInt16LE(19);
    const fatSz16 = boot.readUInt16LE(22);
    const total = total16 || boot.readUInt32LE(32);
    const fatSz = fatSz16 || boot.readUInt32LE(36);
    if (![512, 1024, 2048, 4096].includes(bps)) throw bad(`bytes per sector ${bps} is not 512, 1024, 2048 or 4096`);
    if (spc === 0 || (spc & (spc - 1)) !== 0) throw bad(`sectors per cluster ${spc} is not a power of two`);
    if (reserved === 0) throw bad('no reserved sectors');
    if (fats === 0) throw bad('FAT count is 0');
    if (total === 0) throw bad('total sectors is 0');
    if (fatSz === 0) throw bad('sectors per FAT is 0');
    if (total * bps > source.size) throw bad(`${total} sectors of ${bps} bytes exceed the ${source.size}-byte image (truncated?)`);
    const rootSectors = Math.ceil((rootEntries * 32) / bps);
    const firstData = reserved + fats * fatSz + rootSectors;
    if (firstData >= total) throw bad(`the FATs and root directory (${firstData} sectors) fill the ${total}-sector volume`);
    const clusterCount = Math.floor((total - firstData) / spc);
    const type = clusterCount < 4085 ? 'fat12' : clusterCount < 65525 ? 'fat16' : 'fat32';
    if (type === 'fat32' && (fatSz16 !== 0 || rootEntries !== 0)) throw bad(`${clusterCount} clusters make FAT32, but the boot sector is FAT12/16's`);
    if (type !== 'fat32' && fatSz16 === 0) throw bad(`${clusterCount} clusters make ${type.toUpperCase()}, but the boot sector is FAT32's`);
    const entryBits = type === 'fat12' ? 12 : type === 'fat16' ? 16 : 32;
    if (Math.ceil(((clusterCount + 2) * entryBits) / 8) > fatSz * bps) throw bad(`a FAT of ${fatSz} sectors cannot map ${clusterCount} clusters`);
    const ext = type === 'fat32' ? 64 : 36;
    const extSig = boot[ext + 2];
    const hasExt = extSig === 0x29 || extSig === 0x28;
    const serial = hasExt ? boot.readUInt32LE(ext + 3) : 0;
    const bpbLabel = extSig === 0x29 ? boot.subarray(ext + 7, ext + 18).toString('latin1').replace(/ +$/, '') : '';
    this.info = {
      type, label: bpbLabel === 'NO NAME' ? '' : bpbLabel,
      volumeId: `${(serial >>> 16).toString(16).toUpperCase().padStart(4, '0')}-${(serial & 0xffff).toString(16).toUpperCase().padStart(4, '0')}`,
      oemName: boot.subarray(3, 11).toString('latin1').replace(/[ \0]+$/, ''),
      bytesPerSector: bps, sectorsPerCluster: spc, clusterSize: bps * spc, reservedSectors: reserved, fatCount: fats,
      sectorsPerFat: fatSz, rootEntries, totalSectors: total, clusterCount, mediaDescriptor: boot[21],
      hiddenSectors: boot.readUInt32LE(28), dataOffset: firstData * bps,
    };
    if (type === 'fat32') {
      const root = boot.readUInt32LE(44);
      if (root < 2 || root >= clusterCount + 2) throw bad(`root cluster ${root} lies outside clusters 2..${clusterCount + 1}`);
      this.info.rootCluster = root;
      const fsInfo = boot.readUInt16LE(48);
      if (fsInfo !== 0 && fsInfo !== 0xffff && fsInfo < reserved) this.info.fsInfoSector = fsInfo;
    }
    this.rootDirOffset = (reserved + fats * fatSz) * bps;
    this.used = new Uint8Array(clusterCount + 2);
  }

  resetClaims(): void {
    this.used.fill(0);
  }

  corrupt(where: string, reason: string): CorruptInputError {
    return new CorruptInputError(this.name, where, reason);
  }

  async load(): Promise<void> {
    const { info } = this;
    let active = 0;
    if (info.type === 'fat32') {
      const boot = await this.source.read(0, 512);
      const flags = boot.readUInt16LE(40);
      // Bit 7: mirroring off, bits 0-3 the one active FAT.
      if (flags & 0x80) active = flags & 0xf;
      if (active >= info.fatCount) throw this.corrupt('boot sector', `active FAT ${active} of ${info.fatCount}`);
      if (info.fsInfoSector !== undefined) {
        const s = await this.source.read(info.fsInfoSector * info.bytesPerSector, 512);
        const free = s.readUInt32LE(488);
        if (s.readUInt32LE(0) === 0x41615252 && s.readUInt32LE(484) === 0x61417272 && free <= info.clusterCount) info.freeClusters = free;
      }
    }
    const bits = info.type === 'fat12' ? 12 : info.type === 'fat16' ? 16 : 32;
    const len = Math.ceil(((info.clusterCount + 2) * bits) / 8);
    this.fat = Buffer.from(await this.source.read((info.reservedSectors + active * info.sectorsPerFat) * info.bytesPerSector, len));
  }

  /** The FAT entry of cluster c, FAT32's top 4 bits dropped; end-of-chain marks come back as -1, bad clusters as -2. */
  next(c: number): number {
    let v: number;
    switch (this.info.type) {
      case 'fat12': {
        const w = this.fat.readUInt16LE(c + (c >> 1));
        v = c & 1 ? w >> 4 : w & 0xfff;
        return v >= 0xff8 ? -1 : v === 0xff7 ? -2 : v;
      }
      case 'fat16':
        v = this.fat.readUInt16LE(c * 2);
        return v >= 0xfff8 ? -1 : v === 0xfff7 ? -2 : v;
      default:
        v = this.fat.readUInt32LE(c * 4) & 0x0fffffff;
        return v >= 0x0ffffff8 ? -1 : v === 0x0ffffff7 ? -2 : v;
    }
  }

  /**
   * The chain from `start` as runs of contiguous clusters. `expected`: the cluster count a file's size needs (a chain
   * that is shorter or longer is corrupt); undefined for directories (bounded by MAX_DIR_BYTES).
   */
  chain(start: number, what: string, expected?: number): Run[] {
    const { clusterCount, clusterSize } = this.info;
    const limit = expected ?? Math.ceil(MAX_DIR_BYTES / clusterSize);
    const runs: Run[] = [];
    const mine = new Set<number>();
    let c = start;
    let n = 0;
    for (;;) {
      if (c < 2 || c >= clusterCount + 2) throw this.corrupt(`FAT entry ${n ? 'in the chain' : 'start'} of ${what}`, `cluster ${c} lies outside clusters 2..${clusterCount + 1}`);
      if (this.used[c]) {
        throw this.corrupt(`cluster ${c}`, mine.has(c) ? `the cluster chain of ${what} loops` : `cluster ${c} of ${what} belongs to another file too (cross-linked)`);
      }
      this.used[c] = 1;
      mine.add(c);
      n++;
      if (n > limit) throw this.corrupt(`cluster ${c}`, expected === undefined ? `directory ${what} is larger than ${MAX_DIR_BYTES} bytes` : `the cluster chain of ${what} is longer than its size needs (${expected} clusters)`);
      const last = runs[runs.length - 1];
      if (last && last.cluster + last.count === c) last.count++;
      else runs.push({ cluster: c, count: 1 });
      const nx = this.next(c);
      if (nx === -1) break;
      if (nx === -2) throw this.corrupt(`FAT entry ${c}`, `the chain of ${what} runs into a bad cluster`);
      if (nx === 0) throw this.corrupt(`FAT entry ${c}`, `the chain of ${what} runs into a free cluster`);
      c = nx;
    }
    if (expected !== undefined && n < expected) throw this.corrupt(`FAT entry ${c}`, `the cluster chain of ${what} has ${n} clusters, its size needs ${expected}`);
    return runs;
  }

  clusterOffset(c: number): number {
    return this.info.dataOffset + (c - 2) * this.info.clusterSize;
  }

  async *pieces(runs: Run[], size: number, signal?: AbortSignal): AsyncGenerator<DataPiece> {
    let offset = 0;
    for (const r of runs) {
      let at = this.clusterOffset(r.cluster);
      let left = Math.min(r.count * this.info.clusterSize, size - offset);
      while (left > 0) {
        throwIfAborted(signal);
        const n = Math.min(left, PIECE);
        const data = await this.source.read(at, n);
        yield { offset, data, source: at };
        offset += n;
        at += n;
        left -= n;
      }
    }
  }

  async readDir(runs: Run[] | undefined): Promise<{ buf: Buffer; base: (i: number) => number }> {
    if (!runs) {
      const len = this.info.rootEntries * 32;
      return { buf: Buffer.from(await this.source.read(this.rootDirOffset, len)), base: (i) => this.rootDirOffset + i };
    }
    const cs = this.info.clusterSize;
    const parts: Buffer[] = [];
    for (const r of runs) parts.push(Buffer.from(await this.source.read(this.clusterOffset(r.cluster), r.count * cs)));
    const starts = runs.map((r) => r.count);
    return {
      buf: Buffer.concat(parts),
      base: (i) => {
        let k = Math.floor(i / cs);
        for (let j = 0; j < runs.length; j++) {
          if (k < starts[j]) return this.clusterOffset(runs[j].cluster + k) + (i % cs);
          k -= starts[j];
        }
        return -1;
      },
    };
  }

  /** Children of a directory, '.', '..', deleted entries and volume labels left out, sorted by name bytes. */
  async listDir(runs: Run[] | undefined, path: Buffer): Promise<{ children: Child[]; label?: string }> {
    const { buf, base } = await this.readDir(runs);
    const children: Child[] = [];
    let label: string | undefined;
    let lfn: { parts: string[]; sum: number; expect: number; at: number } | undefined;
    const where = (i: number): string => `directory '${showPath(path)}' entry at offset ${base(i)}`;
    for (let i = 0; i + 32 <= buf.length; i += 32) {
      const e = buf.subarray(i, i + 32);
      if (e[0] === 0) break;
      if (e[0] === 0xe5) {
        lfn = undefined;
        continue;
      }
      const attr = e[11];
      if ((attr & 0x3f) === ATTR_LFN) {
        const ord = e[0];
        const seq = ord & 0x1f;
        if (ord & 0x40) {
          if (seq === 0 || seq > 20) throw this.corrupt(where(i), `long-name entry has sequence number ${seq}`);
          lfn = { parts: [], sum: e[13], expect: seq, at: i };
        } else if (!lfn || seq !== lfn.expect || e[13] !== lfn.sum) {
          throw this.corrupt(where(i), 'long-name entry out of sequence');
        }
        let part = '';
        for (const o of [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]) part += String.fromCharCode(e.readUInt16LE(o));
        lfn.parts.unshift(part);
        lfn.expect--;
        continue;
      }
      const long = lfn;
      lfn = undefined;
      if (attr & ATTR_VOLUME) {
        if (!runs && label === undefined) label = cp437(e.subarray(0, 11)).replace(/ +$/, '');
        continue;
      }
      const short = Buffer.from(e.subarray(0, 11));
      if (short[0] === 0x05) short[0] = 0xe5;
      if (short.toString('latin1') === '.          ' || short.toString('latin1') === '..         ') continue;
      let name: string;
      if (long) {
        if (long.expect !== 0) throw this.corrupt(where(long.at), `long name is missing ${long.expect} entries`);
        const sum = lfnChecksum(e);
        if (sum !== long.sum) throw this.corrupt(where(i), `long-name checksum ${long.sum} does not match the short name's ${sum}`);
        name = long.parts.join('');
        const end = name.indexOf('\0');
        if (end >= 0) name = name.slice(0, end);
      } else {
        let b = cp437(short.subarray(0, 8)).replace(/ +$/, '');
        let x = cp437(short.subarray(8, 11)).replace(/ +$/, '');
        if (e[12] & 0x08) b = b.toLowerCase();
        if (e[12] & 0x10) x = x.toLowerCase();
        name = x ? `${b}.${x}` : b;
      }
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
        throw this.corrupt(where(i), `invalid name '${name}'`);
      }
      const hi = this.info.type === 'fat32' ? e.readUInt16LE(20) : 0;
      children.push({
        name: Buffer.from(name, 'utf8'), attr, cluster: hi * 65536 + e.readUInt16LE(26), size: e.readUInt32LE(28),
        mtimeNs: BigInt(fatTimeToSeconds(e.readUInt16LE(24), e.readUInt16LE(22))) * 1_000_000_000n, at: base(i),
      });
    }
    if (lfn) throw this.corrupt(where(lfn.at), 'long name without a short entry');
    children.sort((a, b) => Buffer.compare(a.name, b.name));
    for (let k = 1; k < children.length; k++) {
      if (children[k].name.equals(children[k - 1].name)) throw this.corrupt(`directory '${showPath(path)}'`, `two entries named '${children[k].name.toString('utf8')}'`);
    }
    return { children, label };
  }
}

/**
 * Opens the FAT12/16/32 file system in `source` read-only. `name` is the file named in errors.
 *
 * `reader.entries()` yields the root ('') first, then depth-first with each directory before its children, names
 * sorted by bytes (see the module comment for names, modes, times and the `user.fat.attributes` xattr). Every
 * cluster chain is checked as its entry is yielded: out-of-range clusters, loops, clusters shared by two files, and
 * chains shorter or longer than the file's size are CorruptInputErrors. A file's `content.read()` yields pieces of
 * at most 1 MiB, each with `source`, its byte offset in `source` (the map a bit-exact disk rebuild needs).
 *
 * Throws CorruptInputError naming the file and the structure ('boot sector', 'cluster 9', "directory 'a' entry at
 * offset 16416") for anything malformed, a truncated image included; `entries()` also throws AbortedError.
 *
 * @example
 * const src = await fileBlockSource('esp.img');
 * const { info, reader } = await openFat(src, 'esp.img');
 * for await (const e of reader.entries()) console.log(e.path.toString(), e.type);
 * await src.close();
 */
export async function openFat(source: BlockSource, name: string, options: { signal?: AbortSignal } = {}): Promise<{ info: FatInfo; reader: ImageReader }> {
  if (source.size < 512) throw new CorruptInputError(name, 'boot sector', `image of ${source.size} bytes is too small for a FAT boot sector`);
  const vol = new FatVolume(source, name, Buffer.from(await source.read(0, 512)));
  await vol.load();
  const outer = options.signal;
  const rootRuns = vol.info.type === 'fat32' ? vol.chain(vol.info.rootCluster!, "the root directory '/'") : undefined;
  const root = await vol.listDir(rootRuns, EMPTY);
  if (root.label !== undefined) vol.info.label = root.label === 'NO NAME' ? '' : root.label;
  const description: SourceDescription = { format: vol.info.type, name, size: source.size };

  /** The entry of `child` at `path`, its chain claimed; a directory's children are listed when the walk asks. */
  function stepOf(path: Buffer, child: Child, sig?: AbortSignal): WalkStep<Child> {
    const what = `'${showPath(path)}'`;
    const kept = child.attr & ATTR_KEPT;
    const xattrs: Xattr[] = kept ? [{ name: FAT_ATTRIBUTES_XATTR, value: Uint8Array.of(kept) }] : [];
    if (child.attr & ATTR_DIR) {
      if (child.cluster === 0) throw vol.corrupt(`entry at offset ${child.at}`, `directory ${what} has no cluster`);
      const runs = vol.chain(child.cluster, what);
      return {
        entry: { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: child.mtimeNs, xattrs },
        children: async () => (await vol.listDir(runs, path)).children,
      };
    }
    const size = child.size;
    const needed = Math.ceil(size / vol.info.clusterSize);
    let runs: Run[] = [];
    if (child.cluster !== 0 || needed !== 0) {
      if (needed === 0) throw vol.corrupt(`entry at offset ${child.at}`, `empty file ${what} has cluster ${child.cluster}`);
      runs = vol.chain(child.cluster, what, needed);
    }
    const content: FileContent = {
      size,
      read(s?: AbortSignal): AsyncIterable<DataPiece> {
        throwIfAborted(sig, s);
        return vol.pieces(runs, size, sig && s ? AbortSignal.any([sig, s]) : sig ?? s);
      },
    };
    return { entry: { path, type: 'file', mode: child.attr & ATTR_RO ? 0o444 : 0o644, uid: 0, gid: 0, mtimeNs: child.mtimeNs, xattrs, content } };
  }

  const reader: ImageReader = {
    description,
    async *entries(signal?: AbortSignal): AsyncGenerator<ImageEntry> {
      yield* walkEntries<Child>(outer, signal, (sig) => {
        // Chains are claimed as they are walked; each walk starts over.
        vol.resetClaims();
        if (rootRuns) vol.chain(vol.info.rootCluster!, "the root directory '/'");
        return {
          root: async () => ({
            entry: { path: EMPTY, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] },
            children: async () => root.children,
          }),
          entry: async (path, child) => stepOf(path, child, sig),
        };
      });
    },
  };
  return { info: vol.info, reader };
}
