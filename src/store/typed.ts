/** Typed object reads: decode commits, trees and blob records from the store, turning decode failures into corruption errors. */
import { RepositoryCorruptError } from '../errors.js';
import { type BlobRecord, decodeBlob } from '../model/blob.js';
import { type Commit, decodeCommit } from '../model/commit.js';
import { type Disk, type RegionMap, decodeDisk, decodeRegionMap } from '../model/disk.js';
import type { Oid } from '../model/oid.js';
import { type Tree, decodeTree } from '../model/tree.js';
import type { ObjectReader } from './object-store.js';

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

export function readTree(objects: ObjectReader, oid: Oid): Tree {
  const buf = objects.readObject('tree', oid);
  return decode('tree', oid, () => decodeTree(buf));
}

export function readDisk(objects: ObjectReader, oid: Oid): Disk {
  const buf = objects.readObject('disk', oid);
  return decode('disk', oid, () => decodeDisk(buf));
}

/** The tree a commit's paths address: its root tree, or a disk's view tree. */
export function commitTree(objects: ObjectReader, c: Commit): Oid {
  return c.rootKind === 'disk' ? readDisk(objects, c.root).view : c.root;
}

/** A region map blob (small: read whole). */
export function readRegionMap(objects: ObjectReader, oid: Oid): RegionMap {
  const parts: Buffer[] = [];
  for (const p of readBlobPieces(objects, oid)) parts.push(p.data ?? Buffer.alloc(p.zeros ?? 0));
  return decode('region map', oid, () => decodeRegionMap(Buffer.concat(parts)));
}

export function readBlobRecord(objects: ObjectReader, oid: Oid): BlobRecord {
  const buf = objects.readObject('blob', oid);
  return decode('blob', oid, () => decodeBlob(buf));
}

/** Streams a blob's content in pieces (chunks are read one at a time: constant memory). Holes come as zero runs. */
export function* readBlobPieces(objects: ObjectReader, oid: Oid): Iterable<{ offset: number; data?: Buffer; zeros?: number }> {
  const rec = readBlobRecord(objects, oid);
  if (rec.form === 'inline') {
    yield { offset: 0, data: rec.data };
    return;
  }
  let off = 0;
  for (const s of rec.segments) {
    if (s.kind === 'zero') yield { offset: off, zeros: s.length };
    else {
      const data = objects.readObject('chunk', s.oid);
      if (data.length !== s.length) throw new RepositoryCorruptError(`chunk ${s.oid}`, `length ${data.length}, blob ${oid} expects ${s.length}`);
      yield { offset: off, data };
    }
    off += s.length;
  }
}
