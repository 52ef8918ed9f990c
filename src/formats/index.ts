/** Format registry: opens an image for reading by looking at what it is (a directory, or a file's content). */
import fs from 'node:fs';
import { SourceReadError, UnsupportedInputError, UsageError, systemText } from '../errors.js';
import { type DirectoryTreeCache, openDirectory } from './directory.js';
import { type ExcludeTest, excludeEntries } from './exclude.js';
import { openTar, createTarWriter, tarCompressionForName, STDOUT_DEST } from './tar.js';
import { createDirectoryWriter } from './directory.js';
import { diskFormatForName } from './disk-writer.js';
import type { ImageReader, ImageWriter } from './types.js';

export type { ImageReader, ImageWriter, ImageEntry, FileContent, DataPiece, Xattr, EntryType, SourceDescription, WriterWarning } from './types.js';

/** Why `source` could not be stat'ed, in the system's words (`too many levels of symbolic links`), not Node's raw message. */
function statReason(e: unknown): string {
  // libuv says 'too many symbolic links encountered'; say it as ls, cat and stat do.
  if ((e as NodeJS.ErrnoException).code === 'ELOOP') return 'too many levels of symbolic links';
  return systemText(e);
}

/** The source name that means a tar archive on standard input (`viva commit -`). */
export const STDIN_SOURCE = '-';

/**
 * Opens `source` as a directory or a (compressed) tar; the tar reader checks content, not the name. `-` is a tar on
 * standard input (UsageError when that is a terminal).
 */
export function openImage(source: string, options: { exclude?: string[]; skip?: ExcludeTest; onUnreadable?: (path: Buffer, reason: string) => void; treeCache?: DirectoryTreeCache } = {}): ImageReader {
  const { skip, onUnreadable, treeCache } = options;
  if (source === STDIN_SOURCE) {
    if (process.stdin.isTTY) throw new UsageError("refusing to read a tar archive from a terminal: pipe one in ('tar -c … | viva commit - …') or name a file");
    const tar = openTar(STDIN_SOURCE, { stream: process.stdin });
    return skip ? excludeEntries(tar, skip) : tar;
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch (e) {
    throw new SourceReadError(source, statReason(e), { cause: e });
  }
  if (st.isDirectory()) return openDirectory(source, { ...(options.exclude ? { exclude: options.exclude } : {}), ...(skip ? { skip } : {}), ...(onUnreadable ? { onUnreadable } : {}), ...(treeCache ? { treeCache } : {}) });
  if (st.isFile() || st.isBlockDevice()) return skip ? excludeEntries(openTar(source), skip) : openTar(source);
  throw new UnsupportedInputError(source, 'not a directory, tar archive or image file');
}

/** What a checkout writes: a directory, a tar stream, or a raw, qcow2 or VMDK (streamOptimized) disk image. */
export type OutputFormat = 'dir' | 'tar' | 'raw' | 'qcow2' | 'vmdk';

/** A bare file-system image name (no partition table): .ext2, .ext3, .ext4 → that file system. */
export function bareFsForName(dest: string): 'ext2' | 'ext3' | 'ext4' | undefined {
  const m = /\.(ext[234])$/i.exec(dest);
  return m ? (m[1]!.toLowerCase() as 'ext4') : undefined;
}

/**
 * Image and archive names checkout cannot write. Refused (unless `--format` says what to write) rather than made into
 * a directory of that name, which is never what such a name asks for.
 */
const UNSUPPORTED_DEST = [
  '.vhd', '.vhdx', '.vdi', '.qed', '.iso', '.img.gz', '.img.xz', '.img.zst', '.raw.gz', '.raw.xz', '.qcow',
  '.tar.lz', '.tar.lzma', '.tar.lz4', '.tlz', '.tar.z', '.zip', '.7z', '.rar', '.cpio', '.squashfs', '.sqfs', '.erofs',
  '.xfs', '.btrfs', '.vfat', '.fat', '.dmg', '.wim', '.ova', '.ovf', '.gz', '.xz', '.zst', '.bz2', '.lz4',
  // GNU tar's --auto-compress names for compressions viva does not write (lzip, lzma, lzop, compress: .Z, .taZ),
  // and compressed files that are not said to be tars.
  '.tar.lzo', '.tzo', '.lzo', '.lz', '.lzma', '.z', '.taz',
];

/** The names checkout writes, for messages. */
export const SUPPORTED_DEST = '.tar, .tar.gz, .tgz, .tar.zst, .tar.xz, .tar.bz2, .raw, .img, .qcow2, .vmdk, .ext4, .ext3, .ext2, - (tar to stdout), a directory';

/** The unsupported image or archive suffix `dest` ends with (as written there), if any. */
export function unsupportedDestSuffix(dest: string): string | undefined {
  const n = dest.toLowerCase();
  let best: string | undefined;
  for (const x of UNSUPPORTED_DEST) if (n.endsWith(x) && n.length > x.length && (!best || x.length > best.length)) best = x;
  return best && dest.slice(dest.length - best.length);
}

/**
 * The output format a checkout destination implies: `-` and tar names (.tar, .tar.gz, .tar.zst, .tar.xz, .tar.bz2 and
 * the short names GNU tar's --auto-compress knows: tarCompressionForName) → tar, .qcow2 → qcow2, .vmdk → vmdk, .raw, .img and bare file systems (.ext4, .ext3, .ext2) → raw, an unsupported image name →
 * undefined, anything else → dir.
 */
export function outputFormatForName(dest: string): OutputFormat | undefined {
  if (dest === STDOUT_DEST) return 'tar';
  if (tarCompressionForName(dest)) return 'tar';
  const disk = diskFormatForName(dest) ?? (bareFsForName(dest) ? 'raw' : undefined);
  if (disk) return disk;
  return unsupportedDestSuffix(dest) ? undefined : 'dir';
}

export { STDOUT_DEST };

/**
 * A writer of an image into a directory or a tar file (`-` is stdout; compression from the name: `.tar.gz`, `.tar.zst`, …).
 * `strict`: fail instead of warning when something cannot be recreated (owners, devices as non-root).
 */
export function createImageWriter(dest: string, format: 'dir' | 'tar', options: { strict?: boolean } = {}): ImageWriter {
  if (format === 'tar') return createTarWriter(dest, { compression: tarCompressionForName(dest) ?? 'none' });
  return createDirectoryWriter(dest, options);
}
