/**
 * Derive on a disk image: the recipe edits the disk's view tree (`p1/etc/hostname`, or `etc/hostname` on a bare
 * file system), and each file system whose tree changed is patched in place — the base disk's bytes with only the
 * changed files, inodes, directories and bitmaps rewritten — through a copy-on-write view of the base read from the
 * repository. The result is an overlay disk object: the base disk plus a patch blob of the changed blocks, so a
 * clone costs what it changed, and a qcow2 overlay of it holds only those clusters.
 */
import { UsageError } from '../errors.js';
import { CowDevice, type Ext4Change, patchExt4 } from '../formats/ext4-patch.js';
import { sameMeta } from '../model/codec.js';
import type { Commit, RootMeta } from '../model/commit.js';
import type { Recipe } from '../model/derivation.js';
import { type Disk, type DiskRegion, type PatchRange, encodeDisk, encodeDiskPatch, hashDisk, partitionDirName } from '../model/disk.js';
import type { Oid } from '../model/oid.js';
import { quotePath } from '../model/quote.js';
import { type TreeEntry, findEntry } from '../model/tree.js';
import type { ObjectWriter } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { readBlobBytes, readDisk, readTree, tryReadPath } from '../store/typed.js';
import { MutableTree } from '../tree/mutable-tree.js';
import { DEFAULT_DIR_MODE, applyRecipe, createdMeta } from '../tree/recipe.js';
import { walkTrees } from '../tree/walk.js';
import { DiskReader } from './disk-reader.js';
import { storeBytes } from '../store/store-content.js';

/** A change of the walk, before file contents are read. */
type Pending = Exclude<Ext4Change, { op: 'write' }> | (Omit<Extract<Ext4Change, { op: 'write' }>, 'data'> & { blob: Oid; size: number });

function metaOf(e: TreeEntry): { mode: number; uid: number; gid: number; mtimeNs: bigint } {
  return { mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs };
}

function xattrsOf(e: TreeEntry): Array<{ name: string; value: Buffer }> {
  return e.xattrs.map((x) => ({ name: x.name, value: Buffer.from(x.value) }));
}

/** The file-level changes that turn file system tree `from` into `to`, in an order the patcher can apply. */
function changesBetween(repo: Repository, from: Oid, to: Oid, fromMeta: RootMeta, toMeta: RootMeta, where: string): Pending[] {
  const out: Pending[] = [];
  /** Directories whose own metadata is set last: entries added or removed below change a directory's mtime. */
  const dirs: Pending[] = [];
  const refuse = (p: Buffer, why: string): never => {
    throw new UsageError(`${where}: cannot patch '${quotePath(p)}' into the file system: ${why}`);
  };
  const add = (p: Buffer, b: TreeEntry) => {
    if (b.hardlink) refuse(p, 'hardlinked files cannot be added to a disk image by derive yet');
    switch (b.type) {
      case 'file': out.push({ op: 'write', path: p, blob: b.oid!, size: b.size, ...metaOf(b), xattrs: xattrsOf(b) }); break;
      case 'dir':
        out.push({ op: 'mkdir', path: p, ...metaOf(b) });
        if (b.xattrs.length) dirs.push({ op: 'setattr', path: p, xattrs: xattrsOf(b) });
        dirs.push({ op: 'setattr', path: p, mtimeNs: b.mtimeNs });
        break;
      case 'symlink':
        out.push({ op: 'symlink', path: p, target: b.linkTarget ?? Buffer.alloc(0), uid: b.uid, gid: b.gid, mtimeNs: b.mtimeNs });
        if (b.xattrs.length) out.push({ op: 'setattr', path: p, xattrs: xattrsOf(b) });
        break;
      default: refuse(p, `a ${b.type} cannot be added to a disk image by derive yet`);
    }
  };
  walkTrees(repo.objects, [from, to], {
    enter(p, [a, b]) {
      if (!b) {
        out.push({ op: 'remove', path: p });
        return false;
      }
      if (!a || a.type !== b.type) {
        if (a) out.push({ op: 'remove', path: p });
        add(p, b);
        return b.type === 'dir';
      }
      if ((a.hardlink || b.hardlink) && !(a.hardlink && b.hardlink && a.hardlink.equals(b.hardlink) && a.oid === b.oid)) {
        refuse(p, 'a hardlinked file changed: not supported on disk images by derive yet');
      }
      const metaChanged = !sameMeta(a, b);
      switch (b.type) {
        case 'file':
          if (a.oid !== b.oid || JSON.stringify(a.holes ?? []) !== JSON.stringify(b.holes ?? [])) out.push({ op: 'write', path: p, blob: b.oid!, size: b.size, ...metaOf(b), xattrs: xattrsOf(b) });
          else if (metaChanged) out.push({ op: 'setattr', path: p, ...metaOf(b), xattrs: xattrsOf(b) });
          return false;
        case 'symlink':
          if (!(a.linkTarget ?? Buffer.alloc(0)).equals(b.linkTarget ?? Buffer.alloc(0))) add(p, b);
          else if (metaChanged) out.push({ op: 'setattr', path: p, uid: b.uid, gid: b.gid, mtimeNs: b.mtimeNs, xattrs: xattrsOf(b) });
          return false;
        case 'dir':
          if (metaChanged) dirs.push({ op: 'setattr', path: p, ...metaOf(b), xattrs: xattrsOf(b) });
          return true;
        default:
          if (metaChanged || a.rdev?.major !== b.rdev?.major || a.rdev?.minor !== b.rdev?.minor) refuse(p, `a ${b.type} changed: not supported on disk images by derive yet`);
          return false;
      }
    },
  });
  // Every directory above a change has its mtime set back to the tree's (the patcher bumps it), deepest last is fine:
  // setting a directory's own attributes does not touch its parent.
  const touched = new Set<string>();
  for (const c of out) {
    const p = c.path;
    for (let i = p.lastIndexOf(0x2f); ; i = p.lastIndexOf(0x2f, i - 1)) {
      const parent = i < 0 ? Buffer.alloc(0) : p.subarray(0, i);
      touched.add(parent.toString('latin1'));
      if (i < 0) break;
    }
  }
  for (const k of touched) {
    const p = Buffer.from(k, 'latin1');
    const e = p.length === 0 ? undefined : tryReadPath(repo.objects, to, p);
    const m = e ? metaOf(e) : { mode: toMeta.mode, uid: toMeta.uid, gid: toMeta.gid, mtimeNs: toMeta.mtimeNs };
    dirs.push({ op: 'setattr', path: p, ...m });
  }
  if (!sameMeta(fromMeta, toMeta)) {
    dirs.push({ op: 'setattr', path: Buffer.alloc(0), mode: toMeta.mode, uid: toMeta.uid, gid: toMeta.gid, mtimeNs: toMeta.mtimeNs, xattrs: toMeta.xattrs.map((x) => ({ name: x.name, value: Buffer.from(x.value) })) });
  }
  return [...out, ...dirs];
}

/** Adjacent changed blocks as one range each. */
function ranges(blocks: Array<{ offset: number; data: Buffer }>, base: number): PatchRange[] {
  const out: PatchRange[] = [];
  let cur: { offset: number; parts: Buffer[]; end: number } | undefined;
  for (const b of blocks) {
    const at = base + b.offset;
    if (cur && cur.end === at) {
      cur.parts.push(b.data);
      cur.end += b.data.length;
      continue;
    }
    if (cur) out.push({ offset: cur.offset, data: Buffer.concat(cur.parts) });
    cur = { offset: at, parts: [b.data], end: at + b.data.length };
  }
  if (cur) out.push({ offset: cur.offset, data: Buffer.concat(cur.parts) });
  return out;
}

/**
 * Applies `recipe` to the disk commit `base`: edits its view tree, patches each changed file system through a
 * copy-on-write view of the base's bytes, and writes the overlay disk object. Throws EditFailedError when an edit does
 * not fit, UsageError for an edit outside the file systems (a new top-level name of a partitioned disk, a raw
 * partition) or a change the patcher cannot make, Ext4PatchError when a file system has no room.
 */
export async function deriveDisk(repo: Repository, writer: ObjectWriter, base: { oid: Oid; commit: Commit; name?: string }, recipe: Recipe): Promise<{ root: Oid; rootMeta: RootMeta; treesWritten: number }> {
  const disk = readDisk(repo.objects, base.commit.root);
  const tree = MutableTree.open(repo.objects, {
    tree: disk.view, ...(base.commit.rootMeta ? { rootMeta: base.commit.rootMeta } : {}), impliedDir: createdMeta(recipe, DEFAULT_DIR_MODE),
    imageName: base.name ?? base.oid.slice(0, 12),
  });
  applyRecipe(tree, recipe);
  const written = tree.write(writer);
  const root = await patchDisk(repo, writer, base, written.oid, tree.rootMeta(), recipe.time);
  return { root, rootMeta: tree.rootMeta(), treesWritten: written.dirs };
}

/**
 * The disk commit `base` with its view tree replaced by `viewOid` (one directory per file system, or the bare file
 * system's tree): each file system whose tree changed is patched in place, and the overlay disk object (base disk
 * plus a patch blob of the changed blocks) is written. `time` (seconds) is the patcher's clock. Returns its id.
 * Throws UsageError for a change outside the file systems or one the patcher cannot make, Ext4PatchError when a file
 * system has no room.
 */
export async function patchDisk(repo: Repository, writer: ObjectWriter, base: { oid: Oid; commit: Commit; name?: string }, viewOid: Oid, rootMeta: RootMeta, time: number): Promise<Oid> {
  const disk = readDisk(repo.objects, base.commit.root);
  const bare = disk.regions.length === 1 && disk.regions[0]!.content.kind === 'fs' && !disk.regions[0]!.partition;
  const written = { oid: viewOid };
  const view = readTree(repo.objects, written.oid);
  const where = base.name ?? base.oid.slice(0, 12);
  if (!bare) {
    // The view of a partitioned disk is one directory per file system: nothing else can be made there.
    const names = new Set(disk.regions.filter((r) => r.content.kind === 'fs').map((r) => partitionDirName(r.partition!.index)));
    // Volume groups: file systems in LVM logical volumes are not patched (yet): their directories must stay as they are.
    const baseView = readTree(repo.objects, disk.view);
    for (const r of disk.regions) {
      if (r.content.kind !== 'lvm') continue;
      const vg = Buffer.from(r.content.vg);
      const before = findEntry(baseView, vg);
      const after = findEntry(view, vg);
      if (!after || after.oid !== before?.oid || after.type !== 'dir') {
        throw new UsageError(`${where}: '${r.content.vg}' holds LVM logical volumes: derive and merge do not change file systems inside them (change them in a checkout and commit the disk again)`);
      }
      names.add(r.content.vg);
    }
    for (const e of view.entries) {
      const n = e.name.toString('latin1');
      if (!names.has(n) || e.type !== 'dir') throw new UsageError(`${where}: '${quotePath(e.name)}' is not a file system of the disk: paths on a partitioned disk start with ${[...names].join(', ') || 'a partition with a file system'} (in a batch spec, 'partition: p1' puts generated files there)`);
      names.delete(n);
    }
    for (const r of disk.regions) if (r.content.kind === 'lvm') names.delete(r.content.vg);
    if (names.size) throw new UsageError(`${where}: partition ${[...names][0]} cannot be removed or renamed by derive`);
  }
  const reader = new DiskReader(repo.objects, disk);
  const patches: PatchRange[] = [];
  const regions: DiskRegion[] = [];
  for (const r of disk.regions) {
    if (r.content.kind !== 'fs') {
      regions.push(r);
      continue;
    }
    const name = bare ? '' : partitionDirName(r.partition!.index);
    const entry = bare ? undefined : findEntry(view, Buffer.from(name));
    const newTree = bare ? written.oid : entry!.oid!;
    const newMeta: RootMeta = bare ? rootMeta : { mode: entry!.mode, uid: entry!.uid, gid: entry!.gid, mtimeNs: entry!.mtimeNs, xattrs: entry!.xattrs };
    regions.push({ ...r, content: { ...r.content, tree: newTree, rootMeta: newMeta } });
    if (newTree === r.content.tree && sameMeta(newMeta, r.content.rootMeta)) continue;
    if (!r.content.fsType.startsWith('ext')) throw new UsageError(`${where}: ${name || 'the file system'} is ${r.content.fsType}: derive patches ext2/3/4 only`);
    const pending = changesBetween(repo, r.content.tree, newTree, r.content.rootMeta, newMeta, `${where}${name ? `:${name}` : ''}`);
    const changes: Ext4Change[] = [];
    for (const c of pending) {
      if (c.op !== 'write' || !('blob' in c)) {
        changes.push(c as Ext4Change);
        continue;
      }
      const { blob, size, ...rest } = c;
      changes.push({ ...rest, data: await readBlobBytes(repo.objects, blob, size, c.path.toString('utf8')) });
    }
    const dev = new CowDevice(r.size, (offset, length) => reader.read(r.offset + offset, length));
    patchExt4(dev, changes, { now: BigInt(time) * 1_000_000_000n });
    for (const x of ranges(dev.changedBlocks(), r.offset)) patches.push(x);
  }
  const patch = await storeBytes(writer, encodeDiskPatch(patches));
  const derived: Disk = { ...disk, regions, view: written.oid, overlay: { base: base.commit.root, patch: patch.oid } };
  const enc = encodeDisk(derived);
  const oid = hashDisk(enc);
  if (!writer.hasObject('disk', oid)) writer.writeObject('disk', oid, enc);
  return oid;
}
