/** Typed object reads: decode commits, trees and blob records from the store, turning decode failures into corruption errors. */
import { ObjectNotFoundError, RepositoryCorruptError } from '../errors.js';
import { type BlobRecord, decodeBlob } from '../model/blob.js';
import { type Commit, decodeCommit } from '../model/commit.js';
import { type Disk, type PatchRange, type RegionMap, decodeDisk, decodeDiskPatch, decodeRegionMap } from '../model/disk.js';
import type { Hash } from 'node:crypto';
import { crypto } from '../lazy.js';
import { type Oid, hashBytes } from '../model/oid.js';
import { type Tree, type TreeEntry, type TreeListing, decodeTree, findEntry, scanTree } from '../model/tree.js';
import type { ObjectReader, ObjectStore } from './object-store.js';

function decode<T>(what: string, oid: Oid, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new RepositoryCorruptError(`${what} ${oid}`, (e as Error).message);
  }
}

/** Throws ObjectNotFoundError or RepositoryCorruptError. */
export function readCommit(objects: ObjectReader, oid: Oid): Commit {
  const buf = objects.readObject('commit', oid);
  return decode('commit', oid, () => decodeCommit(buf));
}

/** `path`: the image path of the directory, named in a mismatch error. */
export function readTree(objects: ObjectReader, oid: Oid, path?: string): Tree {
  const buf = path === undefined ? objects.readObject('tree', oid) : atPath(path, () => objects.readObject('tree', oid));
  return decode('tree', oid, () => decodeTree(buf));
}

/** Tree `oid` validated and listed, not decoded (see TreeListing); `path` as for readTree. */
export function readTreeListing(objects: ObjectReader, oid: Oid, path?: string): TreeListing {
  const buf = path === undefined ? objects.readObject('tree', oid) : atPath(path, () => objects.readObject('tree', oid));
  return decode('tree', oid, () => scanTree(buf));
}

/**
 * The entry at image path `path` ('a/b', no leading '/', not empty) below tree `tree`, or undefined when some part
 * of it is missing or not a directory. Reads one tree per path component.
 */
export function tryReadPath(objects: ObjectReader, tree: Oid, path: Buffer): TreeEntry | undefined {
  let dir: Oid | undefined = tree;
  let e: TreeEntry | undefined;
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i < path.length && path[i] !== 0x2f) continue;
    e = dir ? findEntry(readTree(objects, dir), path.subarray(start, i)) : undefined;
    dir = e?.type === 'dir' ? e.oid : undefined;
    start = i + 1;
  }
  return e;
}

/** Runs `fn`, naming `path` in an object mismatch or read error that does not name one yet. */
export function atPath<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw withPath(e, path);
  }
}

/** `e` with `path` added when it is an object mismatch or read error naming no path yet; else `e` itself. */
export function withPath(e: unknown, path: string): unknown {
  if (!(e instanceof RepositoryCorruptError) || e.data.path !== undefined || typeof e.data.oid !== 'string') return e;
  if (e.data.reason === 'does not match its id') return RepositoryCorruptError.mismatch(String(e.data.kind), e.data.oid, path);
  if (e.data.reason === 'cannot be read' && typeof e.data.error === 'string') {
    return RepositoryCorruptError.unreadable(String(e.data.kind), e.data.oid, e.data.error, typeof e.data.pack === 'number' ? e.data.pack : undefined, path);
  }
  return e;
}

export function readDisk(objects: ObjectReader, oid: Oid): Disk {
  const buf = objects.readObject('disk', oid);
  return decode('disk', oid, () => decodeDisk(buf));
}

/** The tree a commit's paths address: its root tree, or a disk's view tree. */
export function commitTree(objects: ObjectReader, c: Commit): Oid {
  return c.rootKind === 'disk' ? readDisk(objects, c.root).view : c.root;
}

/** A small blob's whole content (region maps, disk patches), checked against its id. */
function readSmallBlob(objects: ObjectReader, oid: Oid): Buffer {
  const parts: Buffer[] = [];
  for (const p of readBlobPieces(objects, oid)) parts.push(p.data ?? Buffer.alloc(p.zeros ?? 0));
  return Buffer.concat(parts);
}

/** A region map blob (small: read whole). */
export function readRegionMap(objects: ObjectReader, oid: Oid): RegionMap {
  const buf = readSmallBlob(objects, oid);
  return decode('region map', oid, () => decodeRegionMap(buf));
}

/** An overlay disk's patch blob: the byte ranges written over its base (small: the blocks a derive changed). */
export function readDiskPatch(objects: ObjectReader, oid: Oid): PatchRange[] {
  const buf = readSmallBlob(objects, oid);
  return decode('disk patch', oid, () => decodeDiskPatch(buf));
}

/**
 * Brings the content of `blobs` close before it is read in bulk (checkout): their records, then the chunks they
 * name. A repository in a bucket fetches them pack by pack, several packs at once; a local one has nothing to do.
 */
export async function prefetchBlobs(objects: ObjectStore, blobs: Iterable<Oid>): Promise<void> {
  const ids = [...new Set(blobs)];
  await objects.prefetch(ids.map((oid) => ({ kind: 'blob' as const, oid })));
  const chunks = new Set<Oid>();
  for (const oid of ids) {
    if (!objects.hasObject('blob', oid)) continue;
    const rec = readBlobRecord(objects, oid);
    if (rec.form === 'chunked') for (const s of rec.segments) if (s.kind === 'chunk') chunks.add(s.oid);
  }
  await objects.prefetch([...chunks].map((oid) => ({ kind: 'chunk' as const, oid })));
}

export function readBlobRecord(objects: ObjectReader, oid: Oid): BlobRecord {
  const buf = objects.readObject('blob', oid);
  return decode('blob', oid, () => decodeBlob(buf));
}

/**
 * Streams a blob's content in pieces (chunks are read one at a time: constant memory). Holes come as zero runs.
 * The content is checked against the blob's id as it streams: after the last piece (inline content: before the
 * first) a mismatch throws RepositoryCorruptError naming the damaged chunk (or the blob record) and `path`. Chunks
 * are read unchecked, since the content hash covers them: every byte is hashed once. A consumer that acts on the
 * content before the end (a file written, bytes sent to stdout) must undo or report it when the error comes.
 */
export function* readBlobPieces(objects: ObjectReader, oid: Oid, path?: string): Iterable<{ offset: number; data?: Buffer; zeros?: number }> {
  const named = <T>(fn: () => T): T => (path === undefined ? fn() : atPath(path, fn));
  const rec = named(() => readBlobRecord(objects, oid));
  if (rec.form === 'inline') {
    if (hashBytes(rec.data) !== oid) throw RepositoryCorruptError.mismatch('blob', oid, path);
    yield { offset: 0, data: rec.data };
    return;
  }
  const h = crypto().createHash('sha256');
  // The chunks handed out so far, unverified: if the consumer stops early (grep's binary check, a package reader),
  // the whole-blob hash below never runs, so the finally checks each of them against its own id instead.
  const yielded: Oid[] = [];
  let settled = false;
  try {
    let off = 0;
    for (const s of rec.segments) {
      if (s.kind === 'zero') {
        hashZeros(h, s.length);
        yield { offset: off, zeros: s.length };
      } else {
        const data = named(() => objects.tryReadUnverified('chunk', s.oid));
        if (!data) throw new ObjectNotFoundError('chunk', s.oid);
        if (data.length !== s.length) throw new RepositoryCorruptError(`chunk ${s.oid}`, `length ${data.length}, blob ${oid} expects ${s.length}`);
        h.update(data);
        yielded.push(s.oid);
        yield { offset: off, data };
      }
      off += s.length;
    }
    settled = true;
    if (h.digest('hex') !== oid) {
      // Name the culprit: the first chunk that does not hash to its id, else the record itself.
      for (const s of rec.segments) {
        if (s.kind !== 'chunk') continue;
        if (path === undefined) objects.readObject('chunk', s.oid);
        else atPath(path, () => objects.readObject('chunk', s.oid));
      }
      throw RepositoryCorruptError.mismatch('blob', oid, path);
    }
  } catch (e) {
    settled = true;
    throw e;
  } finally {
    // Reached unsettled only when the consumer returned early (break, return, or its own throw — in which case
    // the consumer's error wins and this one is dropped by the for-of).
    if (!settled) {
      for (const c of yielded) {
        if (path === undefined) objects.readObject('chunk', c);
        else atPath(path, () => objects.readObject('chunk', c));
      }
    }
  }
}

let zeroBlock: Buffer | undefined;

/** Feeds `n` zero bytes to a hash. */
function hashZeros(h: Hash, n: number): void {
  zeroBlock ??= Buffer.alloc(1 << 20);
  for (; n > 0; n -= zeroBlock.length) h.update(n >= zeroBlock.length ? zeroBlock : zeroBlock.subarray(0, n));
}

/**
 * Decodes a tree, commit or disk encoding (throwing DecodeError when malformed) and says whether it hashes to its id:
 * 'encoding does not match its id', or undefined when it does. fsck and the sync receiver check objects with it.
 */
export function encodingProblem(kind: 'tree' | 'commit' | 'disk', oid: Oid, data: Buffer): string | undefined {
  if (kind === 'tree') decodeTree(data);
  else if (kind === 'commit') decodeCommit(data);
  else decodeDisk(data);
  return hashBytes(data) === oid ? undefined : 'encoding does not match its id';
}

/**
 * The sha256 of a blob's content (what its id must be), reassembled from its record: inline bytes, zero runs and
 * chunks from `readChunk`. A chunk whose length differs from its segment is reported to `onLength` (which may
 * throw) and hashed as it is. Returns `{ missing }` for the first chunk `readChunk` does not have.
 */
export function blobContentHash(rec: BlobRecord, readChunk: (oid: Oid) => Buffer | undefined, onLength: (oid: Oid, actual: number, expected: number) => void): { digest: string } | { missing: Oid } {
  const h = crypto().createHash('sha256');
  if (rec.form === 'inline') h.update(rec.data);
  else {
    for (const s of rec.segments) {
      if (s.kind === 'zero') {
        hashZeros(h, s.length);
        continue;
      }
      const c = readChunk(s.oid);
      if (!c) return { missing: s.oid };
      if (c.length !== s.length) onLength(s.oid, c.length, s.length);
      h.update(c);
    }
  }
  return { digest: h.digest('hex') };
}

/** A whole blob's content in memory (holes as zeros), checked against its id; for small blobs (package databases, patches). */
export async function readBlobBytes(objects: ObjectReader, oid: Oid, size: number, path?: string): Promise<Buffer> {
  const out = Buffer.alloc(size);
  for (const p of readBlobPieces(objects, oid, path)) if (p.data) out.set(p.data, p.offset);
  return out;
}
