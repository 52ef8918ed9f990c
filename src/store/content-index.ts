/**
 * The content index: where every blob and tree occurs, derived from the tree, disk and commit objects themselves and
 * written in the same LMDB transaction as their object index entries — so it exists exactly when they do and is
 * never stale. A subtree shared by many images is indexed once (its own entries), and a path is found by walking
 * parent links up to the roots, the way ostree and git resolve paths through trees, never by scanning images.
 *
 * Sub-databases (LMDB dupSort, all keys and values binary):
 * - `ix-parent`: key = child kind byte + oid (blob 2, tree 3); value = parent kind byte + oid + entry name bytes
 *   (tree 3: the child is that tree's entry `name`; disk 5: the child is the disk's view tree, empty name).
 * - `ix-root`: key = root kind byte + oid (tree 3 or disk 5); value = commit oid (32 bytes).
 * - `ix-deriv` (derived commits only): key = 0x01 + base commit oid → derived commit oid (what was derived from a
 *   commit: `log --derived-from`, `derivations`, `rebuild --derived-from`); key = 0x02 + memo key (model/derivation
 *   `memoKey(base root, recipe id)`) → derived commit oid (build avoidance: a step already made); key = 0x03 + a
 *   .deb's sha256 → its package record tree (ops/deb-record.ts; a cache, not rebuilt by `index rebuild`).
 */
import { decodeCommit } from '../model/commit.js';
import { decodeDerivation, derivationRecipeId, memoKey } from '../model/derivation.js';
import { decodeDisk } from '../model/disk.js';
import { type Oid, oidToBytes } from '../model/oid.js';
import { decodeTree } from '../model/tree.js';
import { OBJECT_KINDS, type ObjectKind, objectKey } from './object-store.js';

/** Names longer than this are not stored in ix-parent values (LMDB dupSort values are bounded); readers look them up in the parent tree. */
export const MAX_INDEXED_NAME = 1000;
/** Bumped when what the index holds changes; repositories with an older (or no) version need `viva index rebuild`. */
export const CONTENT_INDEX_VERSION = 1;

export type IndexDb = 'ix-parent' | 'ix-root' | 'ix-deriv';

/** `ix-deriv` key prefixes. */
export const DERIV_BASE = 0x01;
export const DERIV_MEMO = 0x02;
/** `ix-deriv` prefix of the package-record cache: .deb sha256 → record tree (ops/deb-record.ts). */
export const DERIV_DEB = 0x03;
export type DerivedEntry = [IndexDb, Buffer, Buffer];

function parentValue(kind: ObjectKind, oid: Oid, name: Buffer): Buffer {
  const n = name.length > MAX_INDEXED_NAME ? Buffer.alloc(0) : name;
  const b = Buffer.allocUnsafe(33 + n.length);
  b[0] = OBJECT_KINDS[kind];
  oidToBytes(oid).copy(b, 1);
  n.copy(b, 33);
  return b;
}

/** The index entries an object implies (none for chunks and blobs). `data` is the object's raw (decoded) bytes. */
export function derivedEntries(kind: ObjectKind, oid: Oid, data: Uint8Array): DerivedEntry[] {
  switch (kind) {
    case 'tree': {
      const out: DerivedEntry[] = [];
      for (const e of decodeTree(data).entries) {
        if (e.type === 'file' && e.oid) out.push(['ix-parent', objectKey('blob', e.oid), parentValue('tree', oid, e.name)]);
        else if (e.type === 'dir' && e.oid) out.push(['ix-parent', objectKey('tree', e.oid), parentValue('tree', oid, e.name)]);
      }
      return out;
    }
    case 'disk':
      return [['ix-parent', objectKey('tree', decodeDisk(data).view), parentValue('disk', oid, Buffer.alloc(0))]];
    case 'commit': {
      const c = decodeCommit(data);
      const out: DerivedEntry[] = [['ix-root', objectKey(c.rootKind, c.root), oidToBytes(oid)]];
      if (c.derivation) {
        const dv = decodeDerivation(c.derivation);
        const rid = derivationRecipeId(dv);
        for (const b of dv.bases) {
          out.push(['ix-deriv', derivKey(DERIV_BASE, b.commit), oidToBytes(oid)]);
          out.push(['ix-deriv', derivKey(DERIV_MEMO, memoKey(b.root, rid)), oidToBytes(oid)]);
        }
      }
      return out;
    }
    default:
      return [];
  }
}

export interface ParentLink {
  kind: 'tree' | 'disk';
  oid: Oid;
  /** Undefined when the name was too long to index (look it up in the parent tree). */
  name?: Buffer;
}

export function decodeParent(v: Buffer): ParentLink {
  const kind = v[0] === OBJECT_KINDS.disk ? 'disk' : 'tree';
  const name = v.subarray(33);
  return { kind, oid: v.toString('hex', 1, 33), ...(name.length || kind === 'disk' ? { name: Buffer.from(name) } : {}) };
}

/** An `ix-deriv` key: prefix byte + oid, written from hex in place. */
export function derivKey(prefix: number, oid: Oid): Buffer {
  const b = Buffer.alloc(33);
  b[0] = prefix;
  b.write(oid, 1, 32, 'hex');
  return b;
}

export { objectKey as indexKey };
