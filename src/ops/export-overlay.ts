/**
 * Checkout of a derived disk as a qcow2 overlay over a checkout of its base: only the clusters the derivation changed
 * are written, the rest is read from the backing file — how a fleet of clones is deployed (one shared base file, a
 * few KB per clone). The backing file must hold exactly the base disk's bytes: it is compared with the base once
 * (a full read) and the answer is remembered by the file's identity (device, inode, size, times), as the stat cache
 * remembers file contents.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CheckoutError, SourceReadError, UsageError, systemReason } from '../errors.js';
import { createDiskWriter } from '../formats/disk-writer.js';
import { openDiskSource, type DiskSource } from '../formats/disk.js';
import type { Disk, PatchRange } from '../model/disk.js';
import type { Oid } from '../model/oid.js';
import type { Repository } from '../store/repository.js';
import { readDisk, readDiskPatch } from '../store/typed.js';
import { diskPieces } from './export-disk.js';

/** qcow2 cluster size of the overlays viva writes (as its qcow2 writer). */
const CLUSTER = 1 << 16;
/** Bytes compared at a time while checking a backing file. */
const COMPARE_WINDOW = 1 << 20;

export interface OverlayResult {
  /** The disk the backing file holds (the clone's base, or a base further down its chain). */
  backingDisk: Oid;
  /** Whether the backing file had to be read to check it (false: known from an earlier check). */
  checked: boolean;
  clusters: number;
  bytes: number;
}

function signatureOf(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** True when `src` holds exactly the bytes of `disk`: every piece equal, zeros everywhere else. */
async function sameContent(repo: Repository, disk: Disk, src: DiskSource): Promise<boolean> {
  if (src.size !== disk.size) return false;
  let at = 0;
  const zerosUpTo = async (end: number): Promise<boolean> => {
    while (at < end) {
      const n = Math.min(COMPARE_WINDOW, end - at);
      const b = await src.read(at, n);
      if (b.some((x) => x !== 0)) return false;
      at += n;
    }
    return true;
  };
  for (const p of diskPieces(repo.objects, disk)) {
    if (!(await zerosUpTo(p.offset))) return false;
    for (let o = 0; o < p.data.length; o += COMPARE_WINDOW) {
      const n = Math.min(COMPARE_WINDOW, p.data.length - o);
      if (!(await src.read(p.offset + o, n)).equals(p.data.subarray(o, o + n))) return false;
    }
    at = p.offset + p.data.length;
  }
  return zerosUpTo(disk.size);
}

/**
 * Writes the derived disk commit `disk` (an overlay disk) as a qcow2 image at `dest` whose backing file is `backing`.
 * Throws UsageError when the commit is not a derived disk or the backing file holds no disk of its chain,
 * SourceReadError when the backing file cannot be read, CheckoutError when `dest` cannot be written.
 *
 * Locking: writes the verification cache (a short write transaction) after a full check.
 */
export async function exportOverlay(repo: Repository, rev: string, disk: Disk, dest: string, backing: string): Promise<OverlayResult> {
  if (!disk.overlay) throw new UsageError(`'${rev}' is not a derived disk: an overlay needs a disk made by derive (check it out without --backing)`);
  // The chain from the clone down to its root base: [clone, base, base's base, …].
  const chain: Array<{ oid?: Oid; disk: Disk }> = [{ disk }];
  for (let d = disk; d.overlay;) {
    const oid = d.overlay.base;
    d = readDisk(repo.objects, oid);
    chain.push({ oid, disk: d });
  }
  let st: fs.BigIntStats;
  let real: string;
  try {
    real = fs.realpathSync(backing);
    st = fs.statSync(real, { bigint: true });
  } catch (e) {
    throw new SourceReadError(backing, systemReason(e), { cause: e });
  }
  // Writing the overlay over its own backing file would make the base back itself (and lose it).
  try {
    const d = fs.statSync(dest, { bigint: true });
    if (d.dev === st.dev && d.ino === st.ino) throw new UsageError(`destination '${dest}' is the backing file itself: the overlay must be another file`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
  if (path.resolve(dest) === real) throw new UsageError(`destination '${dest}' is the backing file itself: the overlay must be another file`);
  const key = `backing:${real}`;
  const signature = signatureOf(st);
  let level = chain.findIndex((c, i) => i > 0 && repo.statCache.read(key, signature)?.oid === c.oid);
  const checked = level < 0;
  const src = await openDiskSource(backing);
  try {
    // viva's qcow2 reader (and the overlays it writes) follow raw and qcow2 backing files only.
    const backingFormat = src.format;
    if (backingFormat !== 'raw' && backingFormat !== 'qcow2') {
      throw new UsageError(`backing file '${backing}' is a ${backingFormat} image: an overlay needs a raw or qcow2 backing file (convert it with viva checkout BASE base.qcow2)`);
    }
    if (level < 0) {
      // The root base first: a fleet shares it.
      for (let i = chain.length - 1; i > 0 && level < 0; i--) if (await sameContent(repo, chain[i]!.disk, src)) level = i;
      if (level < 0) throw new UsageError(`backing file '${backing}' does not hold the base disk of '${rev}' (check the base out with viva checkout BASE ${path.basename(backing)})`);
      try {
        repo.statCache.write([{ key, signature, oid: chain[level]!.oid!, size: 0, holes: [] }]);
      } catch {
        // A read-only repository checks again next time.
      }
    }
    // Every patch above the backing disk, applied base first.
    const levels: PatchRange[][] = [];
    for (let i = level - 1; i >= 0; i--) levels.push(readDiskPatch(repo.objects, chain[i]!.disk.overlay!.patch));
    const clusters = new Set<number>();
    for (const l of levels) {
      for (const r of l) for (let c = Math.floor(r.offset / CLUSTER); c * CLUSTER < r.offset + r.data.length; c++) clusters.add(c);
    }
    const rel = path.relative(path.dirname(path.resolve(dest)), real);
    let writer;
    try {
      writer = await createDiskWriter(dest, 'qcow2', disk.size, { backing: { file: rel, format: backingFormat } });
    } catch (e) {
      throw new CheckoutError(dest, systemReason(e), { cause: e });
    }
    let bytes = 0;
    try {
      for (const c of [...clusters].sort((a, b) => a - b)) {
        const at = c * CLUSTER;
        const n = Math.min(CLUSTER, disk.size - at);
        const buf = Buffer.from(await src.read(at, n));
        for (const l of levels) {
          for (const r of l) {
            const a = Math.max(r.offset, at);
            const b = Math.min(r.offset + r.data.length, at + n);
            if (a < b) r.data.copy(buf, a - at, a - r.offset, b - r.offset);
          }
        }
        await writer.write(at, buf);
        bytes += n;
      }
      await writer.finish();
    } catch (e) {
      await writer.abort();
      if (e instanceof RangeError) throw new CheckoutError(dest, e.message, { cause: e });
      throw e;
    }
    return { backingDisk: chain[level]!.oid!, checked, clusters: clusters.size, bytes };
  } finally {
    await src.close();
  }
}
