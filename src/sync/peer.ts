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
import { workerScript } from '../store/worker-script.js';
import type { Worker } from 'node:worker_threads';

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

/** A batch for the verifying thread (sync/verify-worker.ts). */
export interface VerifyBatch {
  type: 'verify';
  batch: number;
  /** The stored values of the batch, one after another (moved to this thread, not copied). */
  buf: ArrayBuffer;
  /** [kind, oid, offset, length] of each object in `buf`. */
  items: Array<[ObjectKind, Oid, number, number]>;
}

/** An object of a batch the thread did not pass: `reason` (it is bad), or `defer` (the receiving thread checks it against its store). */
export interface VerifyProblem {
  index: number;
  reason?: string;
  defer?: true;
}

/** Receives larger than this verify on a worker thread; below it, starting the thread costs more than it saves. */
const VERIFY_THREAD_AFTER = 16 << 20;
/** Bytes of stored objects per batch sent to the verifying thread, and batches in flight at once. */
const VERIFY_BATCH_BYTES = 4 << 20;
const VERIFY_IN_FLIGHT = 4;
/** Bytes written between flushes (each flush one LMDB transaction). */
const RECEIVE_FLUSH_BYTES = 64 << 20;

/**
 * The verifying thread of a receive (sync/verify-worker.ts). A thread that died answers nothing more: its batches,
 * and every later one, come back as "check it yourself".
 */
class ReceiveVerifier {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (p: VerifyProblem[]) => void; count: number }>();
  private dead = false;

  constructor() {
    this.worker = workerScript(new URL('./verify-worker', import.meta.url), {});
    this.worker.on('message', (m: { type: 'done'; batch: number; problems: VerifyProblem[] }) => {
      const p = this.pending.get(m.batch);
      this.pending.delete(m.batch);
      p?.resolve(m.problems);
    });
    const died = () => {
      this.dead = true;
      for (const p of this.pending.values()) p.resolve(allDeferred(p.count));
      this.pending.clear();
    };
    this.worker.on('error', died);
    this.worker.on('exit', died);
  }

  /** Sends a batch (its stored values copied once, into one buffer moved to the thread); resolves with its problems. */
  verify(batch: number, objects: StoredObject[]): Promise<VerifyProblem[]> {
    if (this.dead) return Promise.resolve(allDeferred(objects.length));
    const buf = Buffer.allocUnsafeSlow(objects.reduce((n, o) => n + o.stored.length, 0));
    const items: VerifyBatch['items'] = [];
    let at = 0;
    for (const o of objects) {
      buf.set(o.stored, at);
      items.push([o.kind, o.oid, at, o.stored.length]);
      at += o.stored.length;
    }
    const done = new Promise<VerifyProblem[]>((resolve) => this.pending.set(batch, { resolve, count: objects.length }));
    const message: VerifyBatch = { type: 'verify', batch, buf: buf.buffer as ArrayBuffer, items };
    this.worker.postMessage(message, [message.buf]);
    return done;
  }

  /** The batches up to `batch` are durable: the thread may drop their chunks. */
  stored(batch: number): void {
    if (!this.dead) this.worker.postMessage({ type: 'stored', batch });
  }

  async close(): Promise<void> {
    this.dead = true;
    await this.worker.terminate();
  }
}

function allDeferred(count: number): VerifyProblem[] {
  return Array.from({ length: count }, (_, index) => ({ index, defer: true as const }));
}

export interface ReceiveOptions {
  /** Makes the error for a bad object (default: RepositoryCorruptError). */
  bad?: BadObject;
  /** Bytes received before verification moves to a worker thread (default 16 MiB; 0: from the first object). */
  verifyThreadAfter?: number;
  /** Bytes per batch sent to that thread (default 4 MiB). */
  verifyBatchBytes?: number;
}

/**
 * Verifies and stores incoming objects in batches (each batch one transaction, children before parents, so a
 * present object always has its whole closure: an interrupted transfer keeps what it stored, and a retry sends the
 * rest). Nothing is referenced until refs move. Throws `bad`'s error on the first bad object (default:
 * RepositoryCorruptError; a fetch passes remoteSentBadObject, so the remote's bad data is a RemoteError).
 *
 * A large receive is verified on a worker thread (ReceiveVerifier), a few batches ahead of the writes on this one,
 * so that decompressing and hashing (most of a receive's work) and parsing and storing run on both cores. Objects are
 * stored in the order they came, each only after it was verified; one the thread could not check (a blob whose
 * chunks came before this transfer or before the thread started) is checked here.
 */
export async function receiveObjects(repo: Repository, objects: AsyncIterable<StoredObject>, options: ReceiveOptions = {}): Promise<{ objects: number; bytes: number }> {
  const threadAfter = options.verifyThreadAfter ?? VERIFY_THREAD_AFTER;
  const batchLimit = options.verifyBatchBytes ?? VERIFY_BATCH_BYTES;
  const store = repo.objects;
  const before = { ...store.written };
  // Chunks stored since the last flush: raw when verified here, stored (decoded again if needed) when verified there.
  const recentRaw = new Map<Oid, Buffer>();
  const recentStored = new Map<Oid, Buffer>();
  let unflushedBytes = 0;
  const readChunk = (oid: Oid) => {
    const raw = recentRaw.get(oid);
    if (raw) return raw;
    const stored = recentStored.get(oid);
    return stored ? decodeStored(stored) : store.tryReadObject('chunk', oid) ?? undefined;
  };
  let verifier: ReceiveVerifier | undefined;
  let received = 0;
  let batchNo = 0;
  let batch: StoredObject[] = [];
  let batchBytes = 0;
  const inFlight: Array<{ no: number; objects: StoredObject[]; done: Promise<VerifyProblem[]> }> = [];
  // Objects sent to the thread and not stored yet: a second copy in the stream is skipped like a stored one.
  const queued = new Set<string>();
  const idOf = (o: ObjectId) => `${o.kind}:${o.oid}`;

  const put = (o: StoredObject, raw: Buffer | undefined) => {
    store.writeStoredObject(o.kind, o.oid, o.stored);
    if (o.kind === 'chunk') {
      if (raw) recentRaw.set(o.oid, raw);
      else recentStored.set(o.oid, o.stored);
    }
    unflushedBytes += o.stored.length;
  };
  const maybeFlush = async (upTo: number) => {
    if (unflushedBytes <= RECEIVE_FLUSH_BYTES) return;
    await store.flush();
    recentRaw.clear();
    recentStored.clear();
    unflushedBytes = 0;
    verifier?.stored(upTo);
  };
  const send = () => {
    if (!batch.length) return;
    const no = batchNo++;
    inFlight.push({ no, objects: batch, done: verifier!.verify(no, batch) });
    batch = [];
    batchBytes = 0;
  };
  const settle = async () => {
    const b = inFlight.shift()!;
    const problems = new Map((await b.done).map((p) => [p.index, p]));
    for (let i = 0; i < b.objects.length; i++) {
      const o = b.objects[i]!;
      const p = problems.get(i);
      if (p?.reason !== undefined) throw (options.bad ?? receivedDamage)({ kind: o.kind, oid: o.oid }, p.reason);
      put(o, p?.defer ? verifyObject(o, readChunk, options.bad) : undefined);
      queued.delete(idOf(o));
    }
    await maybeFlush(b.no);
  };

  await repo.beginSession('receive');
  try {
    for await (const o of objects) {
      if (store.hasObject(o.kind, o.oid) || queued.has(idOf(o))) continue;
      received += o.stored.length;
      if (!verifier && received <= threadAfter) {
        put(o, verifyObject(o, readChunk, options.bad));
        await maybeFlush(-1);
        continue;
      }
      verifier ??= new ReceiveVerifier();
      queued.add(idOf(o));
      batch.push(o);
      batchBytes += o.stored.length;
      if (batchBytes >= batchLimit) {
        send();
        while (inFlight.length >= VERIFY_IN_FLIGHT) await settle();
      }
    }
    send();
    while (inFlight.length) await settle();
    await store.flush();
  } catch (e) {
    store.discard();
    throw e;
  } finally {
    await verifier?.close();
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
