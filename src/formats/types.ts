/** The seam between image formats and the repository: readers yield entries, writers consume them (ostree's mtree seam). */

import type { EntryType, Xattr } from '../model/tree.js';

export type { EntryType, Xattr };

/** The file type bits of a mode (`st_mode & S_IFMT`), as Linux, ext4, XFS and tar's headers define them. */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** The file type bits of each entry type. */
export const MODE_TYPE_BITS: Readonly<Record<EntryType, number>> = {
  file: S_IFREG, dir: S_IFDIR, symlink: S_IFLNK, chr: S_IFCHR, blk: S_IFBLK, fifo: S_IFIFO, socket: S_IFSOCK,
};

const TYPE_OF_BITS = new Map(Object.entries(MODE_TYPE_BITS).map(([type, bits]) => [bits, type as EntryType]));

/** The entry type a mode's file type bits name; undefined for bits no type has. */
export function typeOfMode(mode: number): EntryType | undefined {
  return TYPE_OF_BITS.get(mode & S_IFMT);
}

/** The file type code a directory entry of each type carries on disk (Linux's FT_*: ext2/3/4 and XFS alike). */
export const DIRENT_TYPE_CODES: Readonly<Record<EntryType, number>> = {
  file: 1, dir: 2, chr: 3, blk: 4, fifo: 5, socket: 6, symlink: 7,
};

/**
 * A piece of file data at a byte offset. Bytes between pieces (and after the last, up to `size`) are holes.
 *
 * `data` is borrowed: it is valid only until the consumer asks for the next piece (or ends the iteration). Readers
 * may overwrite the same buffer with the next piece (the directory reader does), so a consumer that keeps bytes
 * longer (a held chunk, a queue, an unfinished stream write) must copy them first.
 */
export interface DataPiece {
  offset: number;
  data: Uint8Array;
  /**
   * Where these bytes lie, verbatim, in the reader's block source (file-system readers set it): the disk committer
   * records it in the file map that a bit-exact rebuild needs.
   */
  source?: number;
}

export interface FileContent {
  /** Logical size in bytes (holes included). */
  size: number;
  /**
   * Data in increasing offset order; uncovered ranges are holes (they read as zeros). Each piece's `data` is valid
   * only until the next `next()` call on the iterator (see DataPiece): consume or copy it before asking for more.
   */
  read(signal?: AbortSignal): AsyncIterable<DataPiece>;
  /**
   * Identity of the source file for commit's stat cache: when `key` was last seen with the same `signature`
   * (dev, inode, size, mtime, ctime), its blob id is reused without reading. Only the directory reader sets it.
   */
  cache?: { key: string; signature: string };
  /**
   * Where the bytes `read` would yield lie in the reader's block source, without reading them: runs of
   * `length` bytes at file offset `offset` found verbatim at source offset `source`, in increasing file offset,
   * each as long as `read`'s pieces that continue one another on both sides. File-system readers set it for
   * content kept in data blocks (not for content inside an inode); a committer compares it with a previous
   * commit's file map to reuse a blob without reading it.
   */
  layout?(signal?: AbortSignal): Promise<Array<{ offset: number; length: number; source: number }>>;
}

/**
 * One entry of an image, as a reader yields it or a writer receives it.
 * `path` is relative, '/'-separated bytes with no leading '/' and no '.' or '..' component; '' is the root directory.
 */
export interface ImageEntry {
  path: Buffer;
  /** 'hardlink' means: another name for the earlier entry at `linkTarget` (same inode). */
  type: EntryType | 'hardlink';
  /** The 12 permission bits (0o7777), setuid/setgid/sticky included. */
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  xattrs: Xattr[];
  /** symlink: its target bytes; hardlink: the path of the earlier entry. */
  linkTarget?: Buffer;
  /** chr/blk devices. */
  rdev?: { major: number; minor: number };
  /** file content; for writers, absent means an empty file. */
  content?: FileContent;
  /** The source's inode number, when a file-system reader knows it (writers ignore it). */
  inode?: number;
  /**
   * dir (directory reader with a tree cache): the directory looks exactly as when a commit recorded its tree, and
   * so does everything below it; its entries are not yielded, the commit takes this tree.
   */
  stored?: StoredDir;
  /** dir (directory reader with a tree cache): what a commit records for this directory's tree, for the next commit. */
  treeCache?: { key: string; signature: Buffer };
}

/** A directory's tree taken from the tree cache, with the totals of everything below it. */
export interface StoredDir {
  /** The tree's id (64 hex digits). */
  oid: string;
  files: number;
  dirs: number;
  bytes: number;
}

export interface SourceDescription {
  /** 'dir', 'tar', 'tar+gzip', 'tar+xz', 'tar+zstd', ... */
  format: string;
  /** Bytes of the source file (tar) or total logical size of the files (dir: every name of a hardlinked file counts). */
  size?: number;
  /** What the user named (path as given). */
  name?: string;
}

/**
 * A source of image entries: each format (directory, tar, raw, qcow2) reads into this one shape, which {@link commit} takes as `reader`.
 */
export interface ImageReader {
  readonly description: SourceDescription;
  /**
   * Entries in an order where every directory's own entry may come before or after its children, and every
   * hardlink comes after its target. A `content` must be consumed before the iterator advances (tar streams).
   * Throws CorruptInputError / UnsafeInputError / SourceReadError / SourceChangedError naming file and offset or path.
   */
  entries(signal?: AbortSignal): AsyncIterable<ImageEntry>;
}

export interface WriterWarning {
  /** UTF-8 text (lossy); `pathHex` holds the exact bytes when they are not UTF-8. */
  path: string;
  pathHex?: string;
  message: string;
  /** A summary of this many entries with the same failure (`path` is the first of them); absent: one entry. */
  count?: number;
}

/**
 * Receives entries parents-first (a directory's entry before its children). Directory metadata that children
 * would disturb (mtime, read-only modes) is applied in `finish()`. Hardlinks arrive after their target.
 * `add()` reads a file's content to its end; like every consumer it must write or copy each piece's data before
 * asking for the next piece (see DataPiece), since the reader may reuse the buffer.
 */
export interface ImageWriter {
  add(entry: ImageEntry): Promise<void>;
  /** Completes the image; returns what could not be reproduced (non-root: owners, devices), unless strict. */
  finish(): Promise<{ warnings: WriterWarning[] }>;
  /** Removes partial output after a failure, where that is possible. */
  abort(): Promise<void>;
}

/**
 * A file or directory changed this close to a commit's start (or later) is not trusted from a cache: a same-tick
 * rewrite could hide behind an equal mtime (git's "racy clean"). The stat cache and the tree cache share it.
 */
export const RACY_WINDOW_NS = 2_000_000_000n;
