/**
 * Tree objects: one directory's entries with full POSIX metadata. The tree *is* the image manifest.
 * Encoding (docs/format.md §tree): header `tree\0` + version, entry count, entries sorted by name bytes.
 */
import { Decoder, DecodeError, Encoder, decodeHeader, encodeHeader, decodeXattrs, encodeXattrs, sortXattrs } from './codec.js';
import { type Oid, OID_BYTES, bytesToOid, hashBytes, oidToBytes } from './oid.js';
/** Entry types; the numeric codes in `ENTRY_TYPE_CODES` are frozen (they are part of the tree encoding). */
export type EntryType = 'file' | 'dir' | 'symlink' | 'chr' | 'blk' | 'fifo' | 'socket';

export interface Xattr {
  /** Full name incl. namespace: `user.x`, `trusted.x`, `security.capability`, `system.posix_acl_access`. */
  name: string;
  value: Uint8Array;
}

export const TREE_VERSION = 1;

/** Frozen: these numbers are part of the tree encoding. */
export const ENTRY_TYPE_CODES: Readonly<Record<EntryType, number>> = {
  file: 1, dir: 2, symlink: 3, chr: 4, blk: 5, fifo: 6, socket: 7,
};
const CODE_TYPES = Object.fromEntries(Object.entries(ENTRY_TYPE_CODES).map(([k, v]) => [v, k])) as Record<number, EntryType>;

/** A hole in a sparse file: bytes [offset, offset+length) were never written and read as zeros. */
export interface Hole {
  offset: number;
  length: number;
}

/**
 * One entry of a stored directory: name (exact bytes), type, mode, owner, times, extended attributes and the id of its content.
 */
export interface TreeEntry {
  name: Buffer;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  /** file: content size; symlink: target length; others 0. */
  size: number;
  /** Sorted by name. */
  xattrs: Xattr[];
  /** file: blob id (sha256 of the content); dir: tree id. */
  oid?: Oid;
  /** file: holes of a sparse file, increasing and non-overlapping. */
  holes?: Hole[];
  linkTarget?: Buffer;
  rdev?: { major: number; minor: number };
  /**
   * Hardlink group (non-directories): the image-relative path of the group's first member in byte order.
   * Every member of a group carries the same value; checkout links them together.
   */
  hardlink?: Buffer;
}

/** A stored directory: its entries, sorted by name bytes. */
export interface Tree {
  entries: TreeEntry[];
}

export function compareNames(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Why a name cannot be a tree entry name, or undefined when it can. */
export function invalidNameReason(name: Uint8Array): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name.length === 1 && name[0] === 0x2e) return "name '.'";
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return "name '..'";
  if (name.includes(0x2f)) return "name contains '/'";
  if (name.includes(0)) return 'name contains NUL';
  return undefined;
}

/** Why a hole list is not canonical (increasing, non-empty, non-adjacent, within `size`), or undefined. */
export function invalidHolesReason(holes: readonly Hole[], size: number): string | undefined {
  let end = -1;
  for (const h of holes) {
    // Adjacent holes (offset === end) would be a second encoding of one merged hole.
    if (h.offset <= end || h.length <= 0 || h.offset + h.length > size) return 'invalid hole list';
    end = h.offset + h.length;
  }
  return undefined;
}


/** Sorts entries by name bytes and xattrs by name: the canonical order. */
export function normalizeTree(entries: TreeEntry[]): Tree {
  const sorted = [...entries].sort((a, b) => compareNames(a.name, b.name));
  return { entries: sorted.map((e) => ({ ...e, xattrs: sortXattrs(e.xattrs) })) };
}

export function encodeTree(tree: Tree): Buffer {
  const e = encodeHeader(new Encoder(), 'tree', TREE_VERSION);
  e.uint(tree.entries.length);
  let prev: Buffer | undefined;
  for (const ent of tree.entries) {
    const bad = invalidNameReason(ent.name);
    if (bad) throw new Error(`cannot encode tree entry: ${bad}`);
    if (prev && compareNames(prev, ent.name) >= 0) throw new Error('cannot encode tree: entries not sorted or duplicated');
    prev = ent.name;
    e.bytes(ent.name).u8(ENTRY_TYPE_CODES[ent.type]).uint(ent.mode & 0o7777).uint(ent.uid).uint(ent.gid).sbig(ent.mtimeNs).uint(ent.size);
    encodeXattrs(e, ent.xattrs);
    switch (ent.type) {
      case 'file': {
        if (!ent.oid) throw new Error('cannot encode tree: file entry without blob id');
        e.raw(oidToBytes(ent.oid));
        const holes = ent.holes ?? [];
        const badHoles = invalidHolesReason(holes, ent.size);
        if (badHoles) throw new Error(`cannot encode tree entry: ${badHoles}`);
        e.uint(holes.length);
        for (const h of holes) e.uint(h.offset).uint(h.length);
        break;
      }
      case 'dir':
        if (!ent.oid) throw new Error('cannot encode tree: dir entry without tree id');
        e.raw(oidToBytes(ent.oid));
        break;
      case 'symlink':
        e.bytes(ent.linkTarget ?? Buffer.alloc(0));
        break;
      case 'chr':
      case 'blk':
        e.uint(ent.rdev?.major ?? 0).uint(ent.rdev?.minor ?? 0);
        break;
      default:
        break;
    }
    if (ent.type !== 'dir') e.bytes(ent.hardlink ?? Buffer.alloc(0));
  }
  return e.finish();
}

/**
 * A tree read but not decoded: where each entry's bytes and name are in the encoding, every entry already validated
 * as {@link decodeTree} validates it. Walks that compare trees (diff) find equal entries by their bytes — the
 * encoding is canonical, so equal bytes are equal entries — and decode only the entries that differ
 * ({@link listingEntry}): in a large directory where a few files changed, most entries are never built.
 */
export interface TreeListing {
  readonly buf: Buffer;
  /** Entry count. */
  readonly length: number;
  /** Entry i is `buf[starts[i], starts[i + 1])`. */
  readonly starts: Uint32Array;
  /** Entry i's name is `buf[nameStarts[i], nameEnds[i])`. */
  readonly nameStarts: Uint32Array;
  readonly nameEnds: Uint32Array;
}

/** Validates a tree (sorted unique valid names, known types, sane holes, canonical varints) and lists its entries; throws DecodeError. */
export function scanTree(data: Uint8Array): TreeListing {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const d = new Decoder(buf);
  decodeHeader(d, 'tree', TREE_VERSION);
  const n = d.uint();
  if (n > buf.length) throw new DecodeError('entry count exceeds object size', d.pos);
  const starts = new Uint32Array(n + 1);
  const nameStarts = new Uint32Array(n);
  const nameEnds = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const at = d.pos;
    starts[i] = at;
    const len = d.skipBytes();
    nameEnds[i] = d.pos;
    nameStarts[i] = d.pos - len;
    const bad = invalidNameAt(buf, d.pos - len, d.pos);
    if (bad) throw new DecodeError(`invalid entry: ${bad}`, at);
    if (i > 0 && buf.compare(buf, nameStarts[i - 1], nameEnds[i - 1], nameStarts[i], nameEnds[i]) <= 0) {
      throw new DecodeError('entries not sorted or duplicated', at);
    }
    const code = d.u8();
    const type = CODE_TYPES[code];
    if (!type) throw new DecodeError(`unknown entry type ${code}`, d.pos - 1);
    const mode = d.uint();
    if (mode > 0o7777) throw new DecodeError('mode out of range', d.pos);
    d.uint(); // uid
    d.uint(); // gid
    d.skipSbig(); // mtime
    const size = d.uint();
    skipXattrs(d);
    switch (type) {
      case 'file': {
        d.skip(OID_BYTES);
        const nh = d.uint();
        if (nh > 0) {
          const holes: Hole[] = [];
          for (let j = 0; j < nh; j++) holes.push({ offset: d.uint(), length: d.uint() });
          if (invalidHolesReason(holes, size)) throw new DecodeError('invalid hole list', d.pos);
        }
        break;
      }
      case 'dir':
        d.skip(OID_BYTES);
        break;
      case 'symlink':
        d.skipBytes();
        break;
      case 'chr':
      case 'blk':
        d.uint();
        d.uint();
        break;
      default:
        break;
    }
    if (type !== 'dir') d.skipBytes(); // hardlink
  }
  d.expectEnd();
  starts[n] = buf.length;
  return { buf, length: n, starts, nameStarts, nameEnds };
}

/** invalidNameReason of `buf[start, end)`, without a view of it for the common case of a valid name. */
function invalidNameAt(buf: Buffer, start: number, end: number): string | undefined {
  const len = end - start;
  if (len === 0 || len <= 2) return invalidNameReason(buf.subarray(start, end));
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === 0x2f || c === 0) return invalidNameReason(buf.subarray(start, end));
  }
  return undefined;
}

/** Validates xattrs as decodeXattrs does, building nothing when there are none. */
function skipXattrs(d: Decoder): void {
  const at = d.pos;
  if (d.uint() === 0) return;
  d.pos = at;
  decodeXattrs(d);
}

/** Whether entry `i` of `a` and entry `j` of `b` are the same entry: the same bytes (the encoding is canonical). */
export function sameListedEntry(a: TreeListing, i: number, b: TreeListing, j: number): boolean {
  const la = a.starts[i + 1]! - a.starts[i]!;
  return la === b.starts[j + 1]! - b.starts[j]! && a.buf.compare(b.buf, b.starts[j], b.starts[j + 1], a.starts[i], a.starts[i + 1]) === 0;
}

/** Compares entry `i`'s name in `a` with entry `j`'s in `b` (name byte order). */
export function compareListedNames(a: TreeListing, i: number, b: TreeListing, j: number): number {
  // A byte loop: names are short, and Buffer#compare checks five arguments on every call.
  const ab = a.buf;
  const bb = b.buf;
  let p = a.nameStarts[i]!;
  let q = b.nameStarts[j]!;
  const pe = a.nameEnds[i]!;
  const qe = b.nameEnds[j]!;
  for (; p < pe && q < qe; p++, q++) {
    const d = ab[p]! - bb[q]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return p < pe ? 1 : q < qe ? -1 : 0;
}

/** Entry `i` of a listing, decoded (its name and byte fields are copies: the entry does not hold the object's buffer). */
export function listingEntry(l: TreeListing, i: number): TreeEntry {
  const d = new Decoder(l.buf);
  d.pos = l.starts[i]!;
  const name = Buffer.from(d.bytes());
  const type = CODE_TYPES[d.u8()]!;
  const mode = d.uint();
  const uid = d.uint();
  const gid = d.uint();
  const mtimeNs = d.sbig();
  const size = d.uint();
  const xattrs: Xattr[] = decodeXattrs(d);
  const ent: TreeEntry = { name, type, mode, uid, gid, mtimeNs, size, xattrs };
  switch (type) {
    case 'file': {
      ent.oid = bytesToOid(d.raw(OID_BYTES));
      const nh = d.uint();
      if (nh > 0) {
        ent.holes = [];
        for (let j = 0; j < nh; j++) ent.holes.push({ offset: d.uint(), length: d.uint() });
      }
      break;
    }
    case 'dir':
      ent.oid = bytesToOid(d.raw(OID_BYTES));
      break;
    case 'symlink':
      ent.linkTarget = Buffer.from(d.bytes());
      break;
    case 'chr':
    case 'blk':
      ent.rdev = { major: d.uint(), minor: d.uint() };
      break;
    default:
      break;
  }
  if (type !== 'dir') {
    const h = d.bytes();
    if (h.length) ent.hardlink = Buffer.from(h);
  }
  return ent;
}

/** Decodes and validates a tree (sorted unique valid names, known types, sane holes); throws DecodeError. */
export function decodeTree(buf: Uint8Array): Tree {
  const l = scanTree(buf);
  const entries = new Array<TreeEntry>(l.length);
  for (let i = 0; i < l.length; i++) entries[i] = listingEntry(l, i);
  return { entries };
}

export function hashTree(encoded: Uint8Array): Oid {
  return hashBytes(encoded);
}

/** Binary search by name in a decoded tree. */
export function findEntry(tree: Tree, name: Uint8Array): TreeEntry | undefined {
  let lo = 0;
  let hi = tree.entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = compareNames(tree.entries[mid]!.name, name);
    if (c === 0) return tree.entries[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
