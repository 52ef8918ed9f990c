/**
 * Read profiles: the parts of a disk its clients read first (a boot reads the boot loader, the kernel, the initramfs
 * and a few file-system blocks, in about the same order every time). The NBD server records the first blocks read
 * from each disk, in order, and keeps them beside the repository (`.viva/nbd-profiles/DISK`, one small JSON file per
 * disk, written atomically); the next server of that disk has them decoded on its worker threads while the client
 * is still starting, so the boot's reads find their chunks ready instead of waiting for each in turn.
 *
 * A profile is only a hint: it names disk blocks, not content, so a stale or damaged one costs at most some useless
 * decoding (bounded by {@link PROFILE_MAX_BLOCKS}), never a wrong byte (every read is still composed from the disk's
 * run table and verified chunks).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Oid } from '../model/oid.js';

/** The granularity of a profile: reads are noted by the 64 KiB blocks they touch. */
export const PROFILE_BLOCK = 64 << 10;
/** At most this many blocks (32 MiB) are noted and prefetched: a boot's first reads, not a whole disk's. */
export const PROFILE_MAX_BLOCKS = 512;
/** A session that read fewer blocks (a `qemu-img info`, a probe) leaves the previous profile as it is. */
export const PROFILE_MIN_BLOCKS = 16;
/** The directory of profiles in the repository's data directory. */
export const PROFILES_DIR = 'nbd-profiles';

/** The blocks one server's clients read first from one disk, in first-read order (at most {@link PROFILE_MAX_BLOCKS}). */
export class ReadProfileRecorder {
  private readonly seen = new Set<number>();
  readonly blocks: number[] = [];

  /** Notes a read of [offset, offset + length). */
  note(offset: number, length: number): void {
    if (this.blocks.length >= PROFILE_MAX_BLOCKS || length <= 0) return;
    const last = Math.floor((offset + length - 1) / PROFILE_BLOCK);
    for (let b = Math.floor(offset / PROFILE_BLOCK); b <= last && this.blocks.length < PROFILE_MAX_BLOCKS; b++) {
      if (!this.seen.has(b)) {
        this.seen.add(b);
        this.blocks.push(b);
      }
    }
  }
}

function profileFile(dataDir: string, disk: Oid): string {
  return path.join(dataDir, PROFILES_DIR, disk);
}

/** The blocks recorded for `disk` (valid indices of a disk of `size` bytes), or [] when there is no usable profile. */
export function loadReadProfile(dataDir: string, disk: Oid, size: number): number[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(profileFile(dataDir, disk), 'utf8'));
  } catch {
    return [];
  }
  const p = parsed as { version?: unknown; blockSize?: unknown; blocks?: unknown };
  if (p.version !== 1 || p.blockSize !== PROFILE_BLOCK || !Array.isArray(p.blocks)) return [];
  const max = Math.ceil(size / PROFILE_BLOCK);
  return p.blocks.filter((b): b is number => Number.isSafeInteger(b) && b >= 0 && b < max).slice(0, PROFILE_MAX_BLOCKS);
}

/**
 * Keeps what `recorder` saw as the profile of `disk`, when it saw enough to be a boot ({@link PROFILE_MIN_BLOCKS}).
 * Written to a temporary file and renamed: a reader sees the old profile or the new one. A failure to write (a
 * read-only or full file system) is ignored: a profile is a hint.
 */
export function saveReadProfile(dataDir: string, disk: Oid, recorder: ReadProfileRecorder): boolean {
  if (recorder.blocks.length < PROFILE_MIN_BLOCKS) return false;
  const file = profileFile(dataDir, disk);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify({ version: 1, blockSize: PROFILE_BLOCK, blocks: recorder.blocks }));
    fs.renameSync(tmp, file);
    return true;
  } catch {
    fs.rmSync(tmp, { force: true });
    return false;
  }
}
