/**
 * What to send: walk from the wanted commits, asking the receiver level by level which objects it already has, and
 * stop at every object it has — a commit it has means its history is there, a tree it has means the whole subtree
 * is (receivers store children before parents, so a present object always has its closure). Nothing lists every
 * object. The result is ordered children first, so the receiver can verify blobs against chunks already sent and
 * keep the closure invariant.
 */
import { decodeBlob } from '../model/blob.js';
import { decodeDerivation, derivationReferences } from '../model/derivation.js';
import { decodeCommit } from '../model/commit.js';
import { decodeDisk, diskReferences } from '../model/disk.js';
import type { Oid } from '../model/oid.js';
import { decodeTree } from '../model/tree.js';
import { decodeStored } from '../store/object-store.js';
import { hashBytes } from '../model/oid.js';
import { RepositoryCorruptError } from '../errors.js';
import type { BadObject, ObjectId, StoredObject } from './peer.js';

export type { BadObject };

/** The default: the source is this repository, so a bad object is local damage. */
const localDamage: BadObject = (id, reason) => new RepositoryCorruptError(`${id.kind} ${id.oid}`, reason, `${id.kind} '${id.oid}' ${reason} (repository damaged: run 'viva fsck')`, { kind: id.kind, oid: id.oid });

/**
 * The children of one stored object read for the walk. The id is checked before the bytes are decoded (a commit,
 * tree or disk id is the hash of its encoding), and any decode failure becomes `bad`'s error naming the object.
 */
function checkedChildrenOf(o: StoredObject, bad: BadObject): ObjectId[] {
  const id = { kind: o.kind, oid: o.oid };
  let raw: Buffer;
  try {
    raw = decodeStored(o.stored);
  } catch (e) {
    throw bad(id, `cannot be decoded: ${(e as Error).message}`);
  }
  if ((o.kind === 'commit' || o.kind === 'tree' || o.kind === 'disk') && hashBytes(raw) !== o.oid) throw bad(id, 'does not match its id');
  try {
    return childrenOf(id, raw);
  } catch (e) {
    throw bad(id, `cannot be decoded: ${(e as Error).message}`);
  }
}

/** Objects whose children a walk needs to read (chunks are leaves). */
function childrenOf(id: ObjectId, raw: Buffer): ObjectId[] {
  switch (id.kind) {
    case 'commit': {
      const c = decodeCommit(raw);
      // A derived commit's recipe content and package records travel with it (a replay needs them; gc keeps them).
      const dv = c.derivation ? derivationReferences(decodeDerivation(c.derivation)) : [];
      return [{ kind: c.rootKind, oid: c.root }, ...dv, ...c.parents.map((p) => ({ kind: 'commit' as const, oid: p }))];
    }
    case 'tree': {
      const out: ObjectId[] = [];
      for (const e of decodeTree(raw).entries) {
        if (e.type === 'dir' && e.oid) out.push({ kind: 'tree', oid: e.oid });
        else if (e.type === 'file' && e.oid) out.push({ kind: 'blob', oid: e.oid });
      }
      return out;
    }
    case 'disk': {
      return diskReferences(decodeDisk(raw));
    }
    case 'blob': {
      const rec = decodeBlob(raw);
      return rec.form === 'inline' ? [] : rec.segments.flatMap((s) => (s.kind === 'chunk' ? [{ kind: 'chunk' as const, oid: s.oid }] : []));
    }
    default:
      return [];
  }
}

export interface PlanSource {
  /** Stored values of objects the source has (for reading the walk's commits, trees, disks and blob records). */
  read(ids: ObjectId[]): AsyncIterable<StoredObject>;
}

export interface Plan {
  /** Objects to send, children before parents. */
  objects: ObjectId[];
  /** Has-queries sent to the receiver (round trips) and ids asked about. */
  queries: number;
  asked: number;
}

const key = (i: ObjectId) => `${i.kind}:${i.oid}`;

/**
 * Plans the transfer of `tips` (commit ids, or any object ids) from `source` to a receiver answering `has`.
 * `filter: 'manifests'` leaves file content out (blobs and chunks): a partial clone's commits, trees and disks.
 * `bad` makes the error for an object of the source that is damaged (default: RepositoryCorruptError, for a source
 * that is this repository; a fetch passes a RemoteError naming the remote).
 */
export async function planTransfer(source: PlanSource, has: (ids: ObjectId[]) => Promise<boolean[]>, tips: Array<Oid | ObjectId>, options: { filter?: 'manifests'; bad?: BadObject } = {}): Promise<Plan> {
  const bad = options.bad ?? localDamage;
  const children = new Map<string, ObjectId[]>();
  const missing = new Map<string, ObjectId>();
  const asked = new Set<string>();
  let queries = 0;
  const manifestsOnly = options.filter === 'manifests';
  const start = tips.map((t) => (typeof t === 'string' ? { kind: 'commit' as const, oid: t } : t));
  let level: ObjectId[] = [...new Map(start.map((t) => [key(t), t])).values()];
  while (level.length) {
    const fresh = level.filter((i) => !asked.has(key(i)));
    for (const i of fresh) asked.add(key(i));
    if (!fresh.length) break;
    queries++;
    // A local receiver answers without I/O: give the event loop (signal handlers) a turn per level.
    await new Promise(setImmediate);
    const present = await has(fresh);
    const lacking = fresh.filter((_, n) => !present[n]);
    for (const i of lacking) missing.set(key(i), i);
    // Read the ones with children (everything but chunks) to learn the next level.
    const toRead = lacking.filter((i) => i.kind !== 'chunk');
    const next: ObjectId[] = [];
    if (toRead.length) {
      for await (const o of source.read(toRead)) {
        let kids = checkedChildrenOf(o, bad);
        if (manifestsOnly) kids = kids.filter((k) => k.kind !== 'blob' && k.kind !== 'chunk');
        children.set(key(o), kids);
        next.push(...kids);
      }
    }
    level = next;
  }
  // Children first: an iterative post-order over the missing objects.
  const order: ObjectId[] = [];
  const done = new Set<string>();
  for (const root of missing.values()) {
    const stack: Array<{ id: ObjectId; i: number }> = [{ id: root, i: 0 }];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const k = key(top.id);
      if (done.has(k)) { stack.pop(); continue; }
      const kids = children.get(k) ?? [];
      if (top.i < kids.length) {
        const c = kids[top.i++]!;
        if (missing.has(key(c)) && !done.has(key(c))) stack.push({ id: c, i: 0 });
        continue;
      }
      done.add(k);
      order.push(top.id);
      stack.pop();
    }
  }
  return { objects: order, queries, asked: asked.size };
}
