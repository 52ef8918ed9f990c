/**
 * The other side of a transfer, whatever carries it: a repository on a local path (this file), or one behind HTTP.
 * Objects travel as stored (codec byte + zstd or raw payload); the receiver verifies every object against its id
 * before it is stored, stores children before parents, and moves refs only after everything they need is durable.
 */
import { RemoteError, RepositoryCorruptError, RepositoryDamagedError, UsageError, VivaError } from '../errors.js';
import { decodeBlob } from '../model/blob.js';
import { hashBytes, type Oid, isOid } from '../model/oid.js';
import { assertRefName } from '../model/ref.js';
import { type ObjectKind, decodeStored } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { blobContentHash, encodingProblem } from '../store/typed.js';

export interface ObjectId {
  kind: ObjectKind;
  oid: Oid;
}

export interface StoredObject extends ObjectId {
  /** The stored value: codec byte + payload (as the store keeps it). */
  stored: Buffer;
}

export interface RefUpdateRequest {
  ref: string;
  /** null deletes the ref. */
  newOid: Oid | null;
  /** Compare-and-swap: the value the sender saw (null: must not exist); undefined with force. */
  expectedOld?: Oid | null;
}

export interface Peer {
  /** Every ref (full names) and HEAD's target branch, if symbolic. */
  listRefs(): Promise<{ refs: Array<{ ref: string; oid: Oid }>; head?: string }>;
  /** Which of these objects the peer has. */
  has(ids: ObjectId[]): Promise<boolean[]>;
  /** The stored values of these objects, in the order asked (the peer must have them). */
  read(ids: ObjectId[]): AsyncIterable<StoredObject>;
  /** Verifies and stores objects (children before parents); durable when the promise resolves. */
  write(objects: AsyncIterable<StoredObject>): Promise<{ objects: number; bytes: number }>;
  /** Moves refs in one compare-and-swap transaction, after checking every new value is a complete commit there. */
  updateRefs(updates: RefUpdateRequest[], who: string): Promise<void>;
  close(): Promise<void>;
}

/** The error for an object that is not what its id says (bytes that do not match it, or do not decode). */
export type BadObject = (id: ObjectId, reason: string) => Error;

/** The default: the sender is this repository (push to a local path, or a server receiving), so it is local damage. */
const receivedDamage: BadObject = (id, reason) => new RepositoryCorruptError(`${id.kind} ${id.oid}`, reason);

/** The error for a bad object sent by the remote at `url`: the remote's problem (exit 17), not this repository's. */
export function remoteSentBadObject(url: string, what = 'the remote sent bad data'): BadObject {
  return (id, reason) => new RemoteError(url, `${id.kind} '${id.oid}' ${reason} (${what})`);
}

/**
 * Decodes and checks one received object against its id; returns the raw bytes. A mismatch is `bad`'s error
 * (default: RepositoryCorruptError); an error of this repository's store while reading chunks (its own damage)
 * propagates as it is.
 */
export function verifyObject(o: StoredObject, readChunk: (oid: Oid) => Buffer | undefined, bad: BadObject = receivedDamage): Buffer {
  const id = { kind: o.kind, oid: o.oid };
  if (!isOid(o.oid)) throw bad(id, 'has a malformed object id');
  let raw: Buffer;
  try {
    raw = decodeStored(o.stored);
  } catch (e) {
    throw bad(id, `cannot be decoded: ${(e as Error).message}`);
  }
  try {
    switch (o.kind) {
      case 'chunk':
        if (hashBytes(raw) !== o.oid) throw new Error('content does not match its id');
        break;
      case 'tree':
      case 'commit':
      case 'disk': {
        const problem = encodingProblem(o.kind, o.oid, raw);
        if (problem) throw new Error(problem);
        break;
      }
      case 'blob': {
        // A blob's id is the sha256 of its content: reassemble it from its chunks (sent before it) and hash.
        const r = blobContentHash(decodeBlob(raw), readChunk, (c, actual, expected) => { throw new Error(`chunk ${c} has length ${actual}, the blob says ${expected}`); });
        if ('missing' in r) throw new Error(`chunk ${r.missing} is neither sent before it nor present`);
        if (r.digest !== o.oid) throw new Error('content does not match its id');
        break;
      }
      default:
        throw new Error('unknown object kind');
    }
  } catch (e) {
    if (e instanceof VivaError) throw e;
    throw bad(id, (e as Error).message);
  }
  return raw;
}

/**
 * A repository in this process, opened for writing when it receives. With `remote` (its path, as the user named it)
 * it is the other side of a fetch: damage met while reading it is the remote's (RemoteError, exit 17), not this
 * repository's.
 */
/** Objects LocalPeer.read prefetches at once (a bucket repository fetches their packs in parallel). */
const READ_AHEAD = 4096;

export class LocalPeer implements Peer {
  constructor(readonly repo: Repository, readonly remote?: string) {}

  async listRefs(): Promise<{ refs: Array<{ ref: string; oid: Oid }>; head?: string }> {
    const head = this.repo.refs.read('HEAD')?.symref;
    return { refs: this.repo.refs.list('refs/'), ...(head ? { head } : {}) };
  }

  async has(ids: ObjectId[]): Promise<boolean[]> {
    return ids.map((i) => this.repo.objects.hasObject(i.kind, i.oid));
  }

  async *read(ids: ObjectId[]): AsyncIterable<StoredObject> {
    for (let at = 0; at < ids.length; at += READ_AHEAD) {
      // A repository in a bucket brings each batch into its cache first, pack by pack, instead of one read at a time.
      await this.repo.objects.prefetch(ids.slice(at, at + READ_AHEAD));
      yield* this.readNow(ids.slice(at, at + READ_AHEAD));
    }
  }

  private *readNow(ids: ObjectId[]): Iterable<StoredObject> {
    for (const i of ids) {
      let stored: Buffer | undefined;
      try {
        stored = this.repo.objects.readStored(i.kind, i.oid);
      } catch (e) {
        if (this.remote !== undefined && (e instanceof RepositoryCorruptError || e instanceof RepositoryDamagedError)) {
          throw new RemoteError(this.remote, `${i.kind} '${i.oid}' cannot be read: ${e.message} (the remote repository is damaged)`);
        }
        throw e;
      }
      if (!stored) {
        if (this.remote !== undefined) throw new RemoteError(this.remote, `${i.kind} '${i.oid}' is missing (the remote repository is damaged)`);
        throw new RepositoryCorruptError(`${i.kind} ${i.oid}`, 'missing on the sending side');
      }
      // (readStored's value is already a copy this side owns.)
      yield { ...i, stored };
    }
  }

  async write(objects: AsyncIterable<StoredObject>): Promise<{ objects: number; bytes: number }> {
    return receiveObjects(this.repo, objects);
  }

  async updateRefs(updates: RefUpdateRequest[], who: string): Promise<void> {
    await applyRefUpdates(this.repo, updates, who);
  }

  async close(): Promise<void> {
    await this.repo.close();
  }
}

/**
 * Verifies and stores incoming objects in batches (each batch one transaction, children before parents, so a
 * present object always has its whole closure: an interrupted transfer keeps what it stored, and a retry sends the
 * rest). Nothing is referenced until refs move. Throws `bad`'s error on the first bad object (default:
 * RepositoryCorruptError; a fetch passes remoteSentBadObject, so the remote's bad data is a RemoteError).
 */
export async function receiveObjects(repo: Repository, objects: AsyncIterable<StoredObject>, options: { bad?: BadObject } = {}): Promise<{ objects: number; bytes: number }> {
  const store = repo.objects;
  const before = { ...store.written };
  // Chunks of this batch not yet flushed, for verifying the blobs that follow them.
  const recent = new Map<Oid, Buffer>();
  let recentBytes = 0;
  const readChunk = (oid: Oid) => recent.get(oid) ?? store.tryReadObject('chunk', oid) ?? undefined;
  await repo.beginSession('receive');
  try {
    for await (const o of objects) {
      if (store.hasObject(o.kind, o.oid)) continue;
      const raw = verifyObject(o, readChunk, options.bad);
      if (o.kind === 'chunk') { recent.set(o.oid, raw); recentBytes += raw.length; }
      store.writeStoredObject(o.kind, o.oid, o.stored);
      if (recentBytes > 64 << 20) { await store.flush(); recent.clear(); recentBytes = 0; }
    }
    await store.flush();
  } catch (e) {
    store.discard();
    throw e;
  } finally {
    await repo.endSession();
  }
  return { objects: store.written.objects - before.objects, bytes: store.written.bytes - before.bytes };
}

/** Checks the ref updates (names, complete commits) and applies them in one compare-and-swap transaction. */
export async function applyRefUpdates(repo: Repository, updates: RefUpdateRequest[], who: string): Promise<void> {
  for (const u of updates) {
    if (!u.ref.startsWith('refs/')) throw new UsageError(`ref '${u.ref}' is not a full ref name under refs/`);
    assertRefName(u.ref);
    if (u.newOid !== null && (!isOid(u.newOid) || !repo.objects.hasObject('commit', u.newOid))) {
      throw new UsageError(`${u.ref}: commit ${u.newOid} is not in the receiving repository (objects must come before refs)`);
    }
  }
  await repo.refs.update(updates.map((u) => ({ ref: u.ref, newOid: u.newOid, ...(u.expectedOld !== undefined ? { expectedOld: u.expectedOld } : {}), message: u.newOid === null ? 'deleted by push' : 'push' })), who);
}
