/**
 * The in-memory manifest ("mtree", as ostree calls it) that commit fills from reader entries in any order, then
 * writes bottom-up as tree objects. Holds metadata and content ids only, never file bytes.
 */
import { UnsafeInputError } from '../errors.js';
import { encodeTree, hashTree, invalidNameReason, normalizeTree, type TreeEntry, type Hole } from '../model/tree.js';
import type { Oid } from '../model/oid.js';
import type { EntryType, ImageEntry, Xattr } from '../formats/types.js';
import type { ObjectWriter } from '../store/object-store.js';

/** Metadata given to directories an image implies but never lists (tar members without parent entries). */
export const IMPLIED_DIR_MODE = 0o755;

export interface MNode {
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  xattrs: Xattr[];
  size: number;
  oid?: Oid;
  holes?: Hole[];
  linkTarget?: Buffer;
  rdev?: { major: number; minor: number };
  /** Shared by every member of a hardlink group. */
  group?: object;
  children?: Map<string, MNode>;
}

function key(name: Buffer): string {
  return name.toString('latin1');
}

export function splitPath(p: Buffer): Buffer[] {
  if (p.length === 0) return [];
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      parts.push(p.subarray(start, i));
      start = i + 1;
    }
  }
  return parts;
}

/** `a/b` for image paths as bytes (`b` alone when `a` is the root, ''). */
export function joinPath(a: Buffer, b: Buffer): Buffer {
  return a.length ? Buffer.concat([a, Buffer.from('/'), b]) : b;
}

export function showPath(p: Buffer): string {
  return p.length ? p.toString('utf8') : '/';
}

export class TreeBuilder {
  readonly root: MNode = { type: 'dir', mode: IMPLIED_DIR_MODE, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [], size: 0, children: new Map() };

  constructor(private readonly sourceName: string) {}

  private unsafe(p: Buffer, reason: string): never {
    throw new UnsafeInputError(this.sourceName, `'${showPath(p)}'`, reason);
  }

  /** The directory node that will hold `parts[last]`, creating implied directories on the way. */
  private parentOf(p: Buffer, parts: Buffer[]): MNode {
    let node = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const name = parts[i]!;
      const bad = invalidNameReason(name);
      if (bad) this.unsafe(p, bad);
      let child = node.children!.get(key(name));
      if (!child) {
        child = { type: 'dir', mode: IMPLIED_DIR_MODE, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [], size: 0, children: new Map() };
        node.children!.set(key(name), child);
      } else if (child.type !== 'dir') {
        this.unsafe(p, `'${parts.slice(0, i + 1).map((b) => b.toString('utf8')).join('/')}' is a ${child.type}, not a directory`);
      }
      node = child;
    }
    return node;
  }

  lookup(p: Buffer): MNode | undefined {
    let node: MNode | undefined = this.root;
    for (const part of splitPath(p)) {
      node = node?.children?.get(key(part));
      if (!node) return undefined;
    }
    return node;
  }

  /** Adds or replaces (a later entry with the same path wins, as in tar) one entry. */
  add(entry: ImageEntry, content?: { oid: Oid; size: number; holes: Hole[] }): void {
    const parts = splitPath(entry.path);
    const meta = { mode: entry.mode & 0o7777, uid: entry.uid, gid: entry.gid, mtimeNs: entry.mtimeNs, xattrs: entry.xattrs };
    if (parts.length === 0) {
      if (entry.type !== 'dir') this.unsafe(entry.path, 'the image root is not a directory');
      Object.assign(this.root, meta);
      return;
    }
    const name = parts[parts.length - 1]!;
    const bad = invalidNameReason(name);
    if (bad) this.unsafe(entry.path, bad);
    const parent = this.parentOf(entry.path, parts);
    const existing = parent.children!.get(key(name));
    let node: MNode;
    switch (entry.type) {
      case 'dir':
        if (existing?.type === 'dir') { Object.assign(existing, meta); return; }
        node = { type: 'dir', ...meta, size: 0, children: new Map() };
        break;
      case 'hardlink': {
        const target = entry.linkTarget ? this.lookup(entry.linkTarget) : undefined;
        if (!target || target.type === 'dir') this.unsafe(entry.path, `hardlink target '${entry.linkTarget?.toString('utf8')}' is not an earlier file of the image`);
        if (target === existing) return;
        target.group ??= {};
        node = { ...target, children: undefined };
        break;
      }
      case 'file':
        if (!content) throw new Error('file entry without stored content');
        node = { type: 'file', ...meta, size: content.size, oid: content.oid, ...(content.holes.length ? { holes: content.holes } : {}) };
        break;
      case 'symlink':
        node = { type: 'symlink', ...meta, size: entry.linkTarget?.length ?? 0, linkTarget: entry.linkTarget ?? Buffer.alloc(0) };
        break;
      case 'chr':
      case 'blk':
        node = { type: entry.type, ...meta, size: 0, rdev: entry.rdev ?? { major: 0, minor: 0 } };
        break;
      default:
        node = { type: entry.type, ...meta, size: 0 };
    }
    parent.children!.set(key(name), node);
  }

  /**
   * Writes every tree object bottom-up and returns the root tree id. Hardlink groups get their canonical name:
   * the smallest member path in byte order, so the same image gives the same ids whatever the walk order.
   */
  write(objects: ObjectWriter): { oid: Oid; dirs: number; files: number; bytes: number } {
    const groups = new Map<object, Buffer[]>();
    const collect = (node: MNode, p: Buffer) => {
      for (const [k, child] of node.children!) {
        const cp = joinPath(p, Buffer.from(k, 'latin1'));
        if (child.group) {
          const list = groups.get(child.group) ?? [];
          list.push(cp);
          groups.set(child.group, list);
        }
        if (child.type === 'dir') collect(child, cp);
      }
    };
    collect(this.root, Buffer.alloc(0));
    const canonical = new Map<object, Buffer>();
    for (const [g, paths] of groups) if (paths.length > 1) canonical.set(g, paths.sort(Buffer.compare)[0]!);

    const stats = { dirs: 0, files: 0, bytes: 0 };
    const writeDir = (node: MNode): Oid => {
      stats.dirs++;
      const entries: TreeEntry[] = [];
      for (const [k, c] of node.children!) {
        const e: TreeEntry = { name: Buffer.from(k, 'latin1'), type: c.type, mode: c.mode, uid: c.uid, gid: c.gid, mtimeNs: c.mtimeNs, size: c.size, xattrs: c.xattrs };
        if (c.type === 'dir') e.oid = writeDir(c);
        else if (c.type === 'file') { e.oid = c.oid; if (c.holes) e.holes = c.holes; stats.files++; stats.bytes += c.size; }
        if (c.linkTarget) e.linkTarget = c.linkTarget;
        if (c.rdev) e.rdev = c.rdev;
        const h = c.group && canonical.get(c.group);
        if (h) e.hardlink = h;
        entries.push(e);
      }
      const enc = encodeTree(normalizeTree(entries));
      const oid = hashTree(enc);
      if (!objects.hasObject('tree', oid)) objects.writeObject('tree', oid, enc);
      return oid;
    };
    const oid = writeDir(this.root);
    return { oid, ...stats };
  }

  /** The root directory's own metadata, for the root entry of the commit. */
  rootMeta(): MNode {
    return this.root;
  }
}
