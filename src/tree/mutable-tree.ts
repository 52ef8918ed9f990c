/**
 * The mutable tree (ostree's mtree, `ostree-mutable-tree.c`): an image manifest in memory that commit fills from
 * reader entries and that derive, install and merge edit. It opens lazily on a stored tree — a directory's entries
 * are read only when an edit reaches it — and writes back only the directories on edited paths; every other
 * subtree keeps its id. Holds metadata and content ids, never file bytes.
 */
import { InvalidEditError, PathNotFoundError, UnsafeInputError } from '../errors.js';
import { encodeTree, hashTree, invalidNameReason, normalizeTree, type Hole, type TreeEntry, type Xattr } from '../model/tree.js';
import type { Oid } from '../model/oid.js';
import type { RootMeta } from '../model/commit.js';
import type { EntryType, ImageEntry } from '../formats/types.js';
import type { ObjectReader, ObjectWriter } from '../store/object-store.js';
import { readTree } from '../store/typed.js';
import { quotePath } from '../model/quote.js';
import { childPath } from './walk.js';

/** Metadata given to directories an image implies but never lists (tar members without parent entries). */
export const IMPLIED_DIR_MODE = 0o755;

/** A hardlink group: every member node points at the same object. `name`: its canonical name when read from a tree. */
export interface LinkGroup {
  name?: Buffer;
  /** A member was added, removed, moved or changed since the tree was read: the canonical name is computed again. */
  touched: boolean;
}

export interface MNode {
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  xattrs: Xattr[];
  size: number;
  /** file: blob id; dir: the stored tree id (stale when `dirty`). */
  oid?: Oid;
  holes?: Hole[];
  linkTarget?: Buffer;
  rdev?: { major: number; minor: number };
  /** Shared by every member of a hardlink group. */
  group?: LinkGroup;
  /** dir: the entries once read (or built); undefined while a stored directory has not been read. */
  children?: Map<string, MNode>;
  /** dir: its entries changed since read, so its tree must be written again. */
  dirty?: boolean;
}

export interface NodeMeta {
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  xattrs: Xattr[];
}

/** A file's stored content, as storeContent returns it. */
export interface StoredContent {
  oid: Oid;
  size: number;
  holes: Hole[];
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

export function showPath(p: Buffer): string {
  return p.length ? p.toString('utf8') : '/';
}

function dirNode(meta: NodeMeta): MNode {
  return { type: 'dir', ...meta, xattrs: [...meta.xattrs], size: 0, children: new Map(), dirty: true };
}

/** A node for a stored entry; its hardlink group from `groups` (by canonical name), or none without `groups`. */
function nodeOf(e: TreeEntry, groups?: Map<string, LinkGroup>): MNode {
  const n: MNode = { type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs, xattrs: e.xattrs, size: e.size };
  if (e.oid) n.oid = e.oid;
  if (e.holes) n.holes = e.holes;
  if (e.linkTarget) n.linkTarget = e.linkTarget;
  if (e.rdev) n.rdev = e.rdev;
  if (e.hardlink && groups) {
    const k = key(e.hardlink);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { name: e.hardlink, touched: false }));
    n.group = g;
  }
  return n;
}

/** How an edit that meets an error reports it: commit names its source (UnsafeInputError), editors the path. */
type Refuse = (path: Buffer, reason: string) => never;

export interface MutableTreeOptions {
  /** The stored tree to open (lazily); none: an empty tree. */
  tree?: Oid;
  /** The root directory's own metadata (a commit's `rootMeta`); default 0755 root:root, mtime 0. */
  rootMeta?: RootMeta;
  /** Metadata of directories created because a path needs them (default 0755 root:root, mtime 0). */
  impliedDir?: NodeMeta;
  /** Commit: bad paths in an image are UnsafeInputError naming this source; default: InvalidEditError. */
  sourceName?: string;
  /** How PathNotFoundError names the image (a revision); default 'the image'. */
  imageName?: string;
}

export interface WriteTreeResult {
  oid: Oid;
  /** Directories, files and file bytes in the trees written now (all of them for a tree built from nothing). */
  dirs: number;
  files: number;
  bytes: number;
}

/**
 * A lazily loaded, editable image tree.
 *
 * @example
 * const t = MutableTree.open(repo.objects, { tree: base });
 * t.chmod(Buffer.from('etc/shadow'), 0o640);
 * const { oid } = t.write(repo.objects);
 */
export class MutableTree {
  readonly root: MNode;
  private readonly groups = new Map<string, LinkGroup>();
  private readonly impliedDir: NodeMeta;
  private readonly refuse: Refuse;
  private readonly imageName: string;
  /** The root's metadata came from an entry of the image (not implied). */
  rootGiven = false;
  /** Every stored directory has been read (needed once a stored hardlink group changes). */
  private complete = false;
  /** A stored hardlink group changed: write() must see every directory, including those setEntry placed since. */
  private storedTouched = false;

  constructor(private readonly objects: ObjectReader | undefined, options: MutableTreeOptions = {}) {
    this.impliedDir = options.impliedDir ?? { mode: IMPLIED_DIR_MODE, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] };
    const meta = options.rootMeta ?? { mode: IMPLIED_DIR_MODE, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] };
    this.root = { type: 'dir', mode: meta.mode, uid: meta.uid, gid: meta.gid, mtimeNs: meta.mtimeNs, xattrs: meta.xattrs, size: 0 };
    if (options.tree) {
      this.root.oid = options.tree;
      this.root.dirty = false;
    } else {
      this.root.children = new Map();
      this.root.dirty = true;
      this.complete = true;
    }
    this.imageName = options.imageName ?? 'the image';
    const source = options.sourceName;
    this.refuse = source !== undefined
      ? (p, reason) => { throw new UnsafeInputError(source, `'${showPath(p)}'`, reason); }
      : (p, reason) => { throw new InvalidEditError(quotePath(p), reason); };
  }

  /** Opens a stored tree for editing. */
  static open(objects: ObjectReader, options: MutableTreeOptions): MutableTree {
    return new MutableTree(objects, options);
  }

  /** The entries of directory `node`, read from the store the first time. */
  private childrenOf(node: MNode, p: Buffer): Map<string, MNode> {
    if (node.children) return node.children;
    if (!node.oid || !this.objects) throw new Error('directory without entries or stored tree');
    const m = new Map<string, MNode>();
    for (const e of readTree(this.objects, node.oid, showPath(p)).entries) m.set(key(e.name), nodeOf(e, this.groups));
    node.children = m;
    // Reading a directory does not change it: a mark made before the read (parentOf marks, then reads) stands.
    node.dirty ??= false;
    return m;
  }

  /**
   * The directory that holds the last component of `p` (checked: no '', '.', '..', '/' or NUL), read on the way.
   * `create`: make missing directories (implied metadata). `mark`: the path is being edited, so every directory on
   * it must be written again. Refuses a path through a symlink or a non-directory.
   */
  private parentOf(p: Buffer, parts: Buffer[], create: boolean, mark: boolean): MNode | undefined {
    let node = this.root;
    if (mark) node.dirty = true;
    /** The path of `node` (for naming a damaged directory). */
    let here: Buffer = Buffer.alloc(0);
    for (let i = 0; i < parts.length - 1; i++) {
      const name = parts[i]!;
      const bad = invalidNameReason(name);
      if (bad) this.refuse(p, bad);
      const children = this.childrenOf(node, here);
      let child = children.get(key(name));
      if (!child) {
        if (!create) return undefined;
        child = dirNode(this.impliedDir);
        children.set(key(name), child);
        node.dirty = true;
      } else if (child.type !== 'dir') {
        const at = parts.slice(0, i + 1).map((b) => b.toString('utf8')).join('/');
        this.refuse(p, child.type === 'symlink' ? `'${at}' is a symlink (edits never follow symlinks)` : `'${at}' is a ${child.type}, not a directory`);
      }
      node = child;
      here = childPath(here, name);
      if (mark) {
        this.childrenOf(node, here);
        node.dirty = true;
      }
    }
    return node;
  }

  private lastName(p: Buffer, parts: Buffer[]): Buffer {
    const name = parts[parts.length - 1];
    if (!name) this.refuse(p, 'the image root cannot be replaced or removed');
    const bad = invalidNameReason(name);
    if (bad) this.refuse(p, bad);
    return name;
  }

  /** The node at `p` ('' is the root), or undefined. Reads directories on the way; refuses paths through symlinks. */
  lookup(p: Buffer): MNode | undefined {
    const parts = splitPath(p);
    if (parts.length === 0) return this.root;
    const parent = this.parentOf(p, parts, false, false);
    if (!parent) return undefined;
    const name = this.lastName(p, parts);
    return this.childrenOf(parent, parentPath(p)).get(key(name));
  }

  /**
   * The names in the directory at `p` (read from the store the first time), in no particular order; undefined when
   * nothing or a non-directory is there. Refuses paths through symlinks, as lookup() does.
   */
  listDir(p: Buffer): Buffer[] | undefined {
    const node = this.lookup(p);
    if (node?.type !== 'dir') return undefined;
    return [...this.childrenOf(node, p).keys()].map((k) => Buffer.from(k, 'latin1'));
  }

  /** The node at `p`, marked for writing with every directory above it; PathNotFoundError when missing. */
  private edit(p: Buffer): MNode {
    const parts = splitPath(p);
    if (parts.length === 0) {
      this.root.dirty = true;
      return this.root;
    }
    const parent = this.parentOf(p, parts, false, true);
    const node = parent ? this.childrenOf(parent, parentPath(p)).get(key(this.lastName(p, parts))) : undefined;
    if (!node) throw new PathNotFoundError(quotePath(p), this.imageName);
    return node;
  }

  /** Puts `node` at `p` (replacing a non-directory there, or a directory when `replaceDir`), creating parents. */
  private place(p: Buffer, node: MNode, replaceDir = false): void {
    const parts = splitPath(p);
    const name = this.lastName(p, parts);
    const parent = this.parentOf(p, parts, true, true)!;
    const children = this.childrenOf(parent, parentPath(p));
    const old = children.get(key(name));
    if (old?.type === 'dir' && !replaceDir) this.refuse(p, 'is a directory');
    if (old) this.forget(old, p);
    children.set(key(name), node);
    parent.dirty = true;
  }

  /** A node leaves the tree (removed or replaced): the hardlink groups it or its subtree belonged to change. */
  private forget(node: MNode, p: Buffer): void {
    if (node.group) this.touch(node.group);
    if (node.type === 'dir') {
      // Members of a stored group may sit anywhere below: look (reads the subtree; rare, and only on removal).
      const children = this.childrenOf(node, p);
      for (const [k, c] of children) this.forget(c, childPath(p, Buffer.from(k, 'latin1')));
    }
  }

  private touch(g: LinkGroup): void {
    g.touched = true;
    // A stored group's other members can be anywhere: every directory is read so write() sees them all.
    if (g.name) {
      this.storedTouched = true;
      this.loadAll();
    }
  }

  /** Reads every stored directory (once a stored hardlink group changes, all its members must be found). */
  private loadAll(): void {
    if (this.complete) return;
    const visit = (node: MNode, p: Buffer) => {
      for (const [k, c] of this.childrenOf(node, p)) if (c.type === 'dir') visit(c, childPath(p, Buffer.from(k, 'latin1')));
    };
    visit(this.root, Buffer.alloc(0));
    this.complete = true;
  }

  /** Every node of hardlink group `g` (reads the whole tree the first time). */
  private members(g: LinkGroup): MNode[] {
    this.loadAll();
    const out: MNode[] = [];
    const visit = (node: MNode) => {
      for (const c of node.children!.values()) {
        if (c.group === g) out.push(c);
        else if (c.type === 'dir') visit(c);
      }
    };
    visit(this.root);
    return out;
  }

  /** Applies `fn` to the node at `p` and, for a hardlinked file, to every member (they are one inode). */
  private editInode(p: Buffer, fn: (n: MNode) => void): void {
    const node = this.edit(p);
    if (!node.group) {
      fn(node);
      return;
    }
    this.touch(node.group);
    for (const m of this.members(node.group)) fn(m);
    this.dirtyPathsTo(node.group);
  }

  /** Marks every directory above a member of `g` for writing. */
  private dirtyPathsTo(g: LinkGroup): void {
    const visit = (node: MNode): boolean => {
      let hit = false;
      for (const c of node.children?.values() ?? []) {
        if (c.group === g || (c.type === 'dir' && visit(c))) hit = true;
      }
      if (hit) node.dirty = true;
      return hit;
    };
    visit(this.root);
  }

  // ---- entries from an image reader (commit, derive --add) ----

  /**
   * Adds or replaces (a later entry with the same path wins, as in tar) one reader entry; `content` for files.
   * A hardlink entry's target is an image path, looked up as given.
   */
  add(entry: ImageEntry, content?: StoredContent): void {
    const parts = splitPath(entry.path);
    const meta = { mode: entry.mode & 0o7777, uid: entry.uid, gid: entry.gid, mtimeNs: entry.mtimeNs, xattrs: entry.xattrs };
    if (parts.length === 0) {
      if (entry.type !== 'dir') this.refuse(entry.path, 'the image root is not a directory');
      Object.assign(this.root, meta);
      this.rootGiven = true;
      this.root.dirty = true;
      return;
    }
    const name = this.lastName(entry.path, parts);
    const parent = this.parentOf(entry.path, parts, true, true)!;
    const children = this.childrenOf(parent, parentPath(entry.path));
    const existing = children.get(key(name));
    let node: MNode;
    switch (entry.type) {
      case 'dir':
        if (existing?.type === 'dir') {
          Object.assign(existing, meta);
          parent.dirty = true;
          return;
        }
        node = dirNode(meta);
        break;
      case 'hardlink': {
        const target = entry.linkTarget ? this.lookupQuiet(entry.linkTarget) : undefined;
        if (!target || target.type === 'dir') this.refuse(entry.path, `hardlink target '${entry.linkTarget?.toString('utf8')}' is not an earlier file of the image`);
        if (target === existing) return;
        if (!target.group) target.group = { touched: true };
        else this.touch(target.group);
        node = { ...target, children: undefined };
        delete node.children;
        delete node.dirty;
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
    if (existing) this.forget(existing, entry.path);
    children.set(key(name), node);
    parent.dirty = true;
  }

  /**
   * Adds a directory entry whose stored tree stands for everything below it (commit's tree cache): its entries are
   * read only if an edit needs them. The root takes `oid` as its tree.
   */
  addStored(entry: ImageEntry, oid: Oid): void {
    if (entry.type !== 'dir') this.refuse(entry.path, 'a stored tree for an entry that is not a directory');
    this.add(entry);
    const node = entry.path.length ? this.lookup(entry.path)! : this.root;
    delete node.children;
    node.oid = oid;
    node.dirty = false;
    // An unread directory arrived: a later touch of a stored group must read it too to find every member.
    this.complete = false;
  }

  /** lookup() that answers undefined instead of refusing a path through a symlink (a hardlink target that is not one). */
  private lookupQuiet(p: Buffer): MNode | undefined {
    try {
      return this.lookup(p);
    } catch (e) {
      if (e instanceof InvalidEditError || e instanceof UnsafeInputError) return undefined;
      throw e;
    }
  }

  // ---- edits ----

  /**
   * Writes a file at `p`. An existing file is changed in place, as `echo > file` does: it keeps its mode, owner and
   * xattrs (unless `meta` is given) and gets mtime `mtimeNs` when given; a hardlinked file changes for every member.
   * A missing file gets `newMeta`. Refuses a directory or symlink at `p` (remove it first).
   */
  writeFile(p: Buffer, content: StoredContent, options: { newMeta: NodeMeta; meta?: NodeMeta; mtimeNs?: bigint }): void {
    const existing = this.lookup(p);
    if (existing && existing.type !== 'file') this.refuse(p, existing.type === 'symlink' ? 'is a symlink (edits never follow symlinks; remove it first)' : `is a ${existing.type === 'dir' ? 'directory' : existing.type}`);
    const set = (n: MNode) => {
      n.oid = content.oid;
      n.size = content.size;
      if (content.holes.length) n.holes = content.holes;
      else delete n.holes;
      if (options.meta) Object.assign(n, { ...options.meta, xattrs: [...options.meta.xattrs] });
      if (options.mtimeNs !== undefined) n.mtimeNs = options.mtimeNs;
    };
    if (existing) {
      this.editInode(p, set);
      return;
    }
    const node: MNode = { type: 'file', ...options.newMeta, xattrs: [...options.newMeta.xattrs], size: 0 };
    set(node);
    this.place(p, node);
  }

  /** Places one stored entry (any type but a directory, with all its metadata) at `p`, replacing a non-directory. */
  putEntry(p: Buffer, entry: TreeEntry): void {
    if (entry.type === 'dir') this.refuse(p, 'a directory entry needs its tree (graft)');
    this.place(p, nodeOf(entry));
  }

  /**
   * Sets `p` to the stored entry `entry` exactly as it is, or removes what is there (`entry` undefined; nothing there
   * is fine): a directory by its tree id, read only if a later edit reaches into it; a hardlinked file with its stored
   * `hardlink` name, joining the group of that name here. What it replaces is dropped unread (a whole subtree costs
   * nothing), so — unlike every other edit — no hardlink group is renamed for members it drops or adds: the caller
   * places whole, consistent groups (merge takes each group from one side, whose tree named it canonically).
   */
  setEntry(p: Buffer, entry: TreeEntry | undefined): void {
    const parts = splitPath(p);
    const name = this.lastName(p, parts);
    const parent = this.parentOf(p, parts, entry !== undefined, true);
    if (!parent) return;
    const children = this.childrenOf(parent, parentPath(p));
    if (entry) {
      children.set(key(name), nodeOf(entry, this.groups));
      // An unread directory arrived: a later touch of a stored group must read it too to find every member.
      if (entry.type === 'dir') this.complete = false;
    } else if (!children.delete(key(name))) {
      return;
    }
    parent.dirty = true;
  }

  /** Sets an entry's own metadata (the root's for ''); a hardlinked file's for every member, as chmod does. */
  setMeta(p: Buffer, meta: NodeMeta): void {
    this.editInode(p, (n) => { Object.assign(n, { ...meta, xattrs: [...meta.xattrs] }); });
  }

  /**
   * Merges stored tree `tree` in at `p`, as `cp -a DIR/. P/` does: `p` and every directory the tree names get its
   * metadata (`p`: `meta`, or when none is given it keeps its own, or is made with the implied-directory metadata),
   * its other entries replace what is there; a directory never replaces a file or the reverse (refused). Hardlink
   * groups inside the tree stay groups, named again by their new paths.
   */
  graft(p: Buffer, tree: Oid, meta?: NodeMeta): void {
    if (!this.objects) throw new Error('graft needs a store');
    const existing = this.lookup(p);
    if (existing && existing.type !== 'dir') this.refuse(p, `exists as a ${existing.type}, cannot be replaced by a directory`);
    if (existing) {
      const node = this.edit(p);
      if (meta) Object.assign(node, { ...meta, xattrs: [...meta.xattrs] });
    } else {
      this.place(p, dirNode(meta ?? this.impliedDir));
    }
    const groups = new Map<string, LinkGroup>();
    const visit = (oid: Oid, at: Buffer) => {
      for (const e of readTree(this.objects!, oid, showPath(at)).entries) {
        const cp = childPath(at, e.name);
        const there = this.lookup(cp);
        if (e.type === 'dir') {
          if (there && there.type !== 'dir') this.refuse(cp, `exists as a ${there.type}, cannot be replaced by a directory`);
          const m = { mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs, xattrs: e.xattrs };
          if (there) Object.assign(this.edit(cp), m);
          else this.place(cp, dirNode(m));
          visit(e.oid!, cp);
          continue;
        }
        if (there?.type === 'dir') this.refuse(cp, `is a directory, cannot be replaced by a ${e.type}`);
        const node = nodeOf(e);
        if (e.hardlink) {
          const k = key(e.hardlink);
          let g = groups.get(k);
          if (!g) groups.set(k, (g = { touched: true }));
          node.group = g;
        }
        this.place(cp, node);
      }
    };
    visit(tree, p);
  }

  /** Removes the entry at `p` (a directory with everything below it). PathNotFoundError when missing. */
  remove(p: Buffer): void {
    const parts = splitPath(p);
    const name = this.lastName(p, parts);
    const parent = this.parentOf(p, parts, false, true);
    const children = parent ? this.childrenOf(parent, parentPath(p)) : undefined;
    const node = children?.get(key(name));
    if (!node) throw new PathNotFoundError(quotePath(p), this.imageName);
    this.forget(node, p);
    children!.delete(key(name));
    parent!.dirty = true;
  }

  /** Makes a directory (and missing parents, as `mkdir -p`); an existing directory is left as it is. */
  mkdir(p: Buffer, meta: NodeMeta): void {
    const existing = this.lookup(p);
    if (existing?.type === 'dir') return;
    if (existing) this.refuse(p, `exists as a ${existing.type}`);
    this.place(p, dirNode(meta));
  }

  /** Makes (or replaces, as `ln -sf`) a symlink; refuses to replace a directory. */
  symlink(p: Buffer, target: Buffer, meta: NodeMeta): void {
    if (target.length === 0) this.refuse(p, 'empty symlink target');
    this.place(p, { type: 'symlink', ...meta, xattrs: [...meta.xattrs], size: target.length, linkTarget: target });
  }

  /** Moves `from` to `to` (replacing a non-directory there, as `mv -T`). */
  rename(from: Buffer, to: Buffer): void {
    const fromParts = splitPath(from);
    const toParts = splitPath(to);
    if (toParts.length > fromParts.length && toParts.slice(0, fromParts.length).every((x, i) => x.equals(fromParts[i]!))) {
      this.refuse(to, `cannot move '${showPath(from)}' into itself`);
    }
    const name = this.lastName(from, fromParts);
    const parent = this.parentOf(from, fromParts, false, true);
    const children = parent ? this.childrenOf(parent, parentPath(from)) : undefined;
    const node = children?.get(key(name));
    if (!node) throw new PathNotFoundError(quotePath(from), this.imageName);
    if (from.equals(to)) return;
    const target = this.lookup(to);
    // As `mv -T`: a directory never replaces a file, nor a file a directory.
    if (target && (target.type === 'dir') !== (node.type === 'dir')) this.refuse(to, target.type === 'dir' ? `is a directory, '${showPath(from)}' is not` : `is not a directory, '${showPath(from)}' is`);
    if (target?.type === 'dir') this.refuse(to, 'exists (a directory is not replaced by a move)');
    // Members move: the groups' canonical names (smallest member path) may change.
    this.forget(node, from);
    children!.delete(key(name));
    parent!.dirty = true;
    this.place(to, node);
  }

  chmod(p: Buffer, mode: number): void {
    const node = this.lookup(p);
    if (node?.type === 'symlink') this.refuse(p, 'is a symlink (its mode is not used)');
    this.editInode(p, (n) => { n.mode = mode & 0o7777; });
  }

  chown(p: Buffer, uid: number, gid: number): void {
    this.editInode(p, (n) => { n.uid = uid; n.gid = gid; });
  }

  setMtime(p: Buffer, mtimeNs: bigint): void {
    this.editInode(p, (n) => { n.mtimeNs = mtimeNs; });
  }

  setXattr(p: Buffer, name: string, value: Uint8Array): void {
    this.editInode(p, (n) => { n.xattrs = [...n.xattrs.filter((x) => x.name !== name), { name, value }]; });
  }

  /** Removes an xattr; PathNotFoundError-like InvalidEditError when the entry has none of that name. */
  removeXattr(p: Buffer, name: string): void {
    const node = this.lookup(p);
    if (node && !node.xattrs.some((x) => x.name === name)) this.refuse(p, `has no xattr '${name}'`);
    this.editInode(p, (n) => { n.xattrs = n.xattrs.filter((x) => x.name !== name); });
  }

  // ---- writing ----

  /**
   * Writes the trees of every changed directory bottom-up and returns the root tree id; unchanged subtrees keep
   * their ids unread. Hardlink groups that changed get their canonical name again: the smallest member path in byte
   * order (so the same image gives the same ids whatever the walk or edit order); a group left with one member is
   * no group.
   */
  write(objects: ObjectWriter): WriteTreeResult {
    this.renameGroups();
    const stats = { dirs: 0, files: 0, bytes: 0 };
    const writeDir = (node: MNode): Oid => {
      if (!node.dirty && node.oid) return node.oid;
      stats.dirs++;
      const entries: TreeEntry[] = [];
      for (const [k, c] of node.children ?? this.childrenOf(node, Buffer.alloc(0))) {
        const e: TreeEntry = { name: Buffer.from(k, 'latin1'), type: c.type, mode: c.mode, uid: c.uid, gid: c.gid, mtimeNs: c.mtimeNs, size: c.size, xattrs: c.xattrs };
        if (c.type === 'dir') e.oid = writeDir(c);
        else if (c.type === 'file') { e.oid = c.oid; if (c.holes) e.holes = c.holes; stats.files++; stats.bytes += c.size; }
        if (c.linkTarget) e.linkTarget = c.linkTarget;
        if (c.rdev) e.rdev = c.rdev;
        if (c.group?.name) e.hardlink = c.group.name;
        entries.push(e);
      }
      const enc = encodeTree(normalizeTree(entries));
      const oid = hashTree(enc);
      if (!objects.hasObject('tree', oid)) objects.writeObject('tree', oid, enc);
      node.oid = oid;
      node.dirty = false;
      return oid;
    };
    const oid = writeDir(this.root);
    return { oid, ...stats };
  }

  /** Gives every touched group its canonical name, marking the directories of members whose name changed. */
  private renameGroups(): void {
    if (this.storedTouched) this.loadAll();
    const touched = new Map<LinkGroup, Buffer[]>();
    const members = new Map<LinkGroup, Array<{ node: MNode; parent: MNode }>>();
    // Touched groups only ever have members in directories that were read (a stored group's touch read them all).
    const collect = (node: MNode, p: Buffer) => {
      if (!node.children) return;
      for (const [k, child] of node.children) {
        const cp = childPath(p, Buffer.from(k, 'latin1'));
        if (child.group?.touched) {
          const list = touched.get(child.group) ?? [];
          list.push(cp);
          touched.set(child.group, list);
          const m = members.get(child.group) ?? [];
          m.push({ node: child, parent: node });
          members.set(child.group, m);
        }
        if (child.type === 'dir') collect(child, cp);
      }
    };
    collect(this.root, Buffer.alloc(0));
    if (touched.size === 0) return;
    for (const [g, paths] of touched) {
      const name = paths.length > 1 ? paths.sort(Buffer.compare)[0]! : undefined;
      const changed = !(name && g.name && name.equals(g.name)) && (name !== undefined || g.name !== undefined);
      if (name) g.name = name;
      else delete g.name;
      g.touched = false;
      if (changed) for (const m of members.get(g)!) m.parent.dirty = true;
    }
    // Directories whose entries changed must be written, and so must every directory above them.
    const up = (node: MNode): boolean => {
      let hit = node.dirty === true;
      for (const c of node.children?.values() ?? []) if (c.type === 'dir' && up(c)) hit = true;
      if (hit) node.dirty = true;
      return hit;
    };
    up(this.root);
  }

  /** The root directory's own metadata, for the commit's `rootMeta`. */
  rootMeta(): RootMeta {
    return { mode: this.root.mode, uid: this.root.uid, gid: this.root.gid, mtimeNs: this.root.mtimeNs, xattrs: this.root.xattrs };
  }
}

function parentPath(p: Buffer): Buffer {
  const i = p.lastIndexOf(0x2f);
  return i < 0 ? Buffer.alloc(0) : p.subarray(0, i);
}
