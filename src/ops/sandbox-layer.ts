/**
 * What the install sandbox runs on: a checkout of a tree kept per tree id (the read-only bottom layer, shared by
 * every install on that tree), and overlayfs layers that turn it into any other tree — the difference between two
 * trees written as a directory of the changed entries and whiteouts. A clone of a base and the base plus unpacked
 * packages are each a small layer over the base's one checkout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SandboxError } from '../errors.js';
import { pidAlive } from '../packages/sandbox.js';
import { createDirectoryWriter } from '../formats/directory.js';
import type { RootMeta } from '../model/commit.js';
import type { Oid } from '../model/oid.js';
import type { ObjectReader } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { showPath } from '../tree/mutable-tree.js';
import { walkTrees } from '../tree/walk.js';
import { sameMeta } from '../model/codec.js';
import { checkoutTree, filePieces, toImageEntry } from './checkout.js';

/** Cached checkouts kept (the least recently used beyond this are removed). */
export const ROOTFS_CACHE_KEEP = 3;

/** Where sandboxes and cached checkouts live: inside the repository's data directory, never in the image. */
export function sandboxRoot(repo: Repository): string {
  return path.join(repo.dataDir, 'tmp', 'sandbox');
}

/**
 * Where cached checkouts live: `$VIVA_ROOTFS_CACHE` (a faster disk or a tmpfs; a checkout of a tree is the same for
 * every repository, so several may share it), else the repository's `.viva/cache/rootfs`.
 */
function rootfsCacheDir(repo: Repository): string {
  return process.env.VIVA_ROOTFS_CACHE || path.join(repo.dataDir, 'cache', 'rootfs');
}

/**
 * The directory holding a checkout of `tree` (with `rootMeta` on its root), made now if the cache does not have it
 * (checked out to a temporary name, then renamed: a crash leaves no half checkout under the final name; the next
 * call removes the leftovers). Its contents must not be changed: it is the sandbox's read-only bottom layer.
 * Throws what checkout throws.
 */
export async function cachedCheckout(repo: Repository, rev: string, tree: Oid, rootMeta: RootMeta): Promise<{ dir: string; made: boolean }> {
  const cache = rootfsCacheDir(repo);
  const dir = path.join(cache, tree);
  if (fs.existsSync(dir)) {
    const now = new Date();
    try { fs.utimesSync(dir, fs.statSync(dir).atime, now); } catch { /* used: best effort for the LRU order */ }
    return { dir, made: false };
  }
  fs.mkdirSync(cache, { recursive: true, mode: 0o700 });
  for (const name of fs.readdirSync(cache)) {
    const m = /^tmp-(\d+)-/.exec(name);
    if (m && !pidAlive(Number(m[1]))) fs.rmSync(path.join(cache, name), { recursive: true, force: true });
  }
  const tmp = path.join(cache, `tmp-${process.pid}-${tree.slice(0, 16)}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    await checkoutTree(repo, rev, tree, rootMeta, tmp, undefined, true);
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (fs.existsSync(dir)) return { dir, made: false };
    throw e;
  }
  pruneCache(cache, dir);
  return { dir, made: true };
}

/** A checkout used this recently may be another process's sandbox layer right now: never pruned. */
const IN_USE_MS = 60 * 60 * 1000;

/** Removes the least recently used checkouts beyond ROOTFS_CACHE_KEEP (never `keep`, nor one used in the last hour). */
function pruneCache(cache: string, keep: string): void {
  const entries = fs.readdirSync(cache).filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => {
    const p = path.join(cache, n);
    return { p, t: fs.statSync(p).mtimeMs };
  }).sort((a, b) => b.t - a.t);
  for (const e of entries.slice(ROOTFS_CACHE_KEEP)) if (e.p !== keep && Date.now() - e.t > IN_USE_MS) fs.rmSync(e.p, { recursive: true, force: true });
}

/**
 * Removes the cached checkouts (gc): all of the repository's own; of a shared `$VIVA_ROOTFS_CACHE`, those not used in
 * the last hour (another repository's install may be running on one). Returns how many.
 */
export function clearRootfsCache(repo: Repository): number {
  const cache = rootfsCacheDir(repo);
  const shared = Boolean(process.env.VIVA_ROOTFS_CACHE);
  let n = 0;
  for (const name of fs.existsSync(cache) ? fs.readdirSync(cache) : []) {
    const p = path.join(cache, name);
    if (shared && Date.now() - (fs.statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? 0) < IN_USE_MS) continue;
    fs.rmSync(p, { recursive: true, force: true });
    n++;
  }
  return n;
}

/**
 * Writes into the empty directory `dir` an overlayfs layer that turns a mount of `before` into `after`: entries
 * that are new or changed (a changed directory with its new metadata, so the merged view shows it), and a whiteout
 * (character device 0:0) for each entry `after` lacks. The layer's root gets `afterRoot`'s metadata. Hardlinked
 * files are written as separate files (what a program sees through the layer is their content and metadata; the
 * links stay in the tree). With `keep`, only the changed non-directories it accepts are written (with the directories
 * above them; whiteouts always): a program that reads a few kinds of file gets a small layer. Returns the number of
 * entries written. Throws SandboxError (cannot write the layer).
 */
export async function writeLayer(objects: ObjectReader, before: Oid, after: Oid, afterRoot: RootMeta, dir: string, keep?: (path: Buffer) => boolean): Promise<number> {
  let plan: Array<{ path: Buffer; entry?: Parameters<typeof toImageEntry>[1] }> = [];
  walkTrees(objects, [before, after], {
    enter(p, [a, b]) {
      if (!b) {
        plan.push({ path: p });
        return false;
      }
      if (a && b.type !== 'dir' && a.type === b.type && a.oid === b.oid && a.size === b.size && sameMeta(a, b)
        && (a.linkTarget ?? Buffer.alloc(0)).equals(b.linkTarget ?? Buffer.alloc(0)) && a.rdev?.major === b.rdev?.major && a.rdev?.minor === b.rdev?.minor) return false;
      plan.push({ path: p, entry: b });
      return true;
    },
  });
  if (keep) {
    const above = new Set<string>();
    const kept = plan.filter((x) => !x.entry || (x.entry.type !== 'dir' && keep(x.path)));
    for (const { path: p } of kept) {
      for (let i = p.indexOf(0x2f); i >= 0; i = p.indexOf(0x2f, i + 1)) above.add(p.subarray(0, i).toString('latin1'));
    }
    plan = plan.filter((x) => (x.entry?.type === 'dir' ? above.has(x.path.toString('latin1')) : !x.entry || keep(x.path)));
  }
  const tmp = `${dir}.w`;
  const writer = createDirectoryWriter(tmp);
  try {
    for (const { path: p, entry } of plan) {
      if (!entry) {
        await writer.add({ path: p, type: 'chr', rdev: { major: 0, minor: 0 }, mode: 0o000, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] });
        continue;
      }
      const ie = toImageEntry(p, entry);
      if (entry.type === 'file' && entry.oid) ie.content = { size: entry.size, read: () => filePieces(objects, entry, showPath(p)) };
      await writer.add(ie);
    }
    await writer.finish();
    fs.rmdirSync(dir);
    fs.renameSync(tmp, dir);
    fs.chownSync(dir, afterRoot.uid, afterRoot.gid);
    fs.chmodSync(dir, afterRoot.mode & 0o7777);
    const t = Number(afterRoot.mtimeNs / 1000n) / 1e6;
    fs.utimesSync(dir, t, t);
  } catch (e) {
    await writer.abort().catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new SandboxError('writing a layer', (e as Error).message, '');
  }
  return plan.length;
}
