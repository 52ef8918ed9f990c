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

/** Decodes and validates a tree (sorted unique valid names, known types, sane holes); throws DecodeError. */
export function decodeTree(buf: Uint8Array): Tree {
  const d = new Decoder(buf);
  decodeHeader(d, 'tree', TREE_VERSION);
  const n = d.uint();
  if (n > buf.length) throw new DecodeError('entry count exceeds object size', d.pos);
  const entries: TreeEntry[] = [];
  let prev: Buffer | undefined;
  for (let i = 0; i < n; i++) {
    const at = d.pos;
    const name = Buffer.from(d.bytes());
    const bad = invalidNameReason(name);
    if (bad) throw new DecodeError(`invalid entry: ${bad}`, at);
    if (prev && compareNames(prev, name) >= 0) throw new DecodeError('entries not sorted or duplicated', at);
    prev = name;
    const code = d.u8();
    const type = CODE_TYPES[code];
    if (!type) throw new DecodeError(`unknown entry type ${code}`, d.pos - 1);
    const mode = d.uint();
    if (mode > 0o7777) throw new DecodeError('mode out of range', d.pos);
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
          if (invalidHolesReason(ent.holes, size)) throw new DecodeError('invalid hole list', d.pos);
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
    entries.push(ent);
  }
  d.expectEnd();
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
