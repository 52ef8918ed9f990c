/**
 * Field-by-field comparison and three-way merge of tree entries for the tree merge: what counts as an entry's content
 * (per type), and how its metadata fields — mode, owner, xattrs, mtime — merge independently of it.
 */
import { sameMeta, sortXattrs } from '../model/codec.js';
import type { Hole, TreeEntry, Xattr } from '../model/tree.js';
import type { NodeMeta } from './mutable-tree.js';

/** A metadata field that can conflict (mtime never does). */
export type MetaField = 'mode' | 'owner' | 'xattr';

/** One field both sides changed to different values; `detail` says how (for MergeConflict.detail). */
export interface FieldConflict {
  field: MetaField;
  detail: string;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b) return (a?.length ?? 0) === (b?.length ?? 0);
  return Buffer.compare(a, b) === 0;
}

function sameHoles(a: readonly Hole[] | undefined, b: readonly Hole[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((h, i) => h.offset === y[i]!.offset && h.length === y[i]!.length);
}

/**
 * The same type and the same content: a file's blob id and holes (sparse files go with their content), a directory's
 * tree id, a symlink's target, a device's numbers; fifos and sockets have none.
 */
export function sameContent(a: TreeEntry, b: TreeEntry): boolean {
  if (a.type !== b.type) return false;
  switch (a.type) {
    case 'file': return a.oid === b.oid && sameHoles(a.holes, b.holes);
    case 'dir': return a.oid === b.oid;
    case 'symlink': return sameBytes(a.linkTarget, b.linkTarget);
    case 'chr':
    case 'blk': return a.rdev?.major === b.rdev?.major && a.rdev?.minor === b.rdev?.minor;
    default: return true;
  }
}

/** Equal in everything a tree records (content, metadata, hardlink group name); two absent entries are equal. */
export function sameEntry(a: TreeEntry | undefined, b: TreeEntry | undefined): boolean {
  if (!a || !b) return a === b;
  return sameContent(a, b) && sameMeta(a, b) && sameBytes(a.hardlink, b.hardlink);
}

/** A non-directory in a hardlink group. */
export function isLinked(e: TreeEntry | undefined): boolean {
  return e !== undefined && e.type !== 'dir' && e.hardlink !== undefined && e.hardlink.length > 0;
}

/** An entry's own metadata. */
export function metaOf(e: NodeMeta): NodeMeta {
  return { mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs, xattrs: e.xattrs };
}

/**
 * Three-way merge of one value: equal sides agree; else the side that changed it from `base` wins; else (both changed
 * it, or there is no base, as for add/add) undefined: a conflict.
 */
export function mergeValue<T>(o: T, t: T, same: (x: T, y: T) => boolean, base?: { value: T }): { value: T } | undefined {
  if (same(o, t)) return { value: o };
  if (base && same(base.value, o)) return { value: t };
  if (base && same(base.value, t)) return { value: o };
  return undefined;
}

const octal = (m: number) => m.toString(8).padStart(4, '0');
const showValue = (v: Uint8Array | undefined) => (v ? `'${Buffer.from(v).toString('utf8')}'` : 'removed');

/** Per xattr name: set, removed or changed on one side is taken; both doing it differently is a conflict for that name. */
function mergeXattrs(o: readonly Xattr[], t: readonly Xattr[], base: readonly Xattr[] | undefined, out: FieldConflict[]): Xattr[] {
  const get = (list: readonly Xattr[], name: string) => list.find((x) => x.name === name)?.value;
  const names = new Set([...(base ?? []), ...o, ...t].map((x) => x.name));
  const merged: Xattr[] = [];
  for (const name of names) {
    const vo = get(o, name);
    const vt = get(t, name);
    const r = mergeValue(vo, vt, sameOptionalBytes, base ? { value: get(base, name) } : undefined);
    if (!r) out.push({ field: 'xattr', detail: `xattr '${name}': ours ${showValue(vo)}, theirs ${showValue(vt)}` });
    const value = r ? r.value : vo;
    if (value) merged.push({ name, value });
  }
  return sortXattrs(merged);
}

function sameOptionalBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a === undefined || b === undefined ? a === b : Buffer.compare(a, b) === 0;
}

/**
 * Merges the own metadata of two versions of an entry against `base` (undefined: none, as for add/add — then any
 * difference in mode, owner or an xattr conflicts). Conflicting fields keep ours' value and are listed in `conflicts`.
 * mtime never conflicts: a side that kept base's takes the other's, and when both changed it the later one wins.
 */
export function mergeMeta(o: NodeMeta, t: NodeMeta, base: NodeMeta | undefined): { meta: NodeMeta; conflicts: FieldConflict[] } {
  const conflicts: FieldConflict[] = [];
  const same = <T>(x: T, y: T) => x === y;
  const mode = mergeValue(o.mode, t.mode, same, base && { value: base.mode });
  if (!mode) conflicts.push({ field: 'mode', detail: `ours ${octal(o.mode)}, theirs ${octal(t.mode)}` });
  const owner = mergeValue(`${o.uid}:${o.gid}`, `${t.uid}:${t.gid}`, same, base && { value: `${base.uid}:${base.gid}` });
  if (!owner) conflicts.push({ field: 'owner', detail: `ours ${o.uid}:${o.gid}, theirs ${t.uid}:${t.gid}` });
  const [uid, gid] = owner?.value === `${t.uid}:${t.gid}` ? [t.uid, t.gid] : [o.uid, o.gid];
  const xattrs = mergeXattrs(o.xattrs, t.xattrs, base?.xattrs, conflicts);
  const later = o.mtimeNs > t.mtimeNs ? o.mtimeNs : t.mtimeNs;
  const mtimeNs = mergeValue(o.mtimeNs, t.mtimeNs, same, base && { value: base.mtimeNs })?.value ?? later;
  return { meta: { mode: mode?.value ?? o.mode, uid, gid, mtimeNs, xattrs }, conflicts };
}
