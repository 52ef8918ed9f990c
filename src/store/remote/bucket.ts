/**
 * The parts of a repository that lives in a bucket, as one `Repository` uses them: the backend, its configuration,
 * the refs (CAS-moved objects; HEAD in the host cache), content-named packs and index segments, writer sessions,
 * and the host cache (an `LmdbStore` in remote mode) that every read goes through.
 *
 * Writes keep viva's order, objects first, then the ref: a write lands in the host cache like in a local repository,
 * and before any ref moves, `publish` uploads what the bucket lacks and PUTs the index segment that names it.
 */
import type { LmdbStore } from '../lmdb-store.js';
import { objectKey } from '../object-store.js';
import { RepositoryCorruptError } from '../../errors.js';
import type { Oid } from '../../model/oid.js';
import type { RefStore, RefUpdate, RefUpdateOptions, RefValue, ReflogEntry, RepoConfig } from '../interfaces.js';
import type { Backend } from './backend.js';
import { RemoteFetcher } from './fetch.js';
import { LmdbLocalHead } from './lmdb-local-head.js';
import { refreshIndex } from './open.js';
import { BucketGc } from './remote-gc.js';
import { RemotePackStore } from './remote-packs.js';
import { RemoteRefStore } from './remote-refs.js';
import { SegmentStore } from './segment.js';
import { RemoteSession } from './sessions.js';
import { SyncReader } from './sync-reader.js';
import { nextLocalPack, uploadNewObjects, type UploadResult } from './upload.js';

/** A bucket repository's parts over one host cache. Made by `Bucket.open`; `Repository.connect` owns one. */
export class Bucket {
  readonly packs: RemotePackStore;
  readonly segments: SegmentStore;
  /** The refs as the ops see them: every update publishes the objects first. */
  readonly refs: RefStore;
  private reader?: SyncReader;
  private session?: RemoteSession;
  /** The first local pack not uploaded yet. */
  private published: number;

  private constructor(readonly backend: Backend, readonly config: RepoConfig, readonly cache: LmdbStore, private readonly remoteRefs: RemoteRefStore) {
    this.packs = new RemotePackStore(backend);
    this.segments = new SegmentStore(backend);
    this.published = nextLocalPack(cache);
    this.refs = new PublishingRefs(remoteRefs, this);
    cache.remoteMode ??= {};
    const fetcher = new RemoteFetcher(cache, cache.remoteIndex, backend.url);
    cache.remoteMode.fetch = (keys) => fetcher.fetchSync(keys, this.syncReader());
    cache.remoteMode.prefetch = (keys) => fetcher.prefetch(keys, backend);
  }

  /** Opens the parts over `cache` and brings refs and index up to the bucket. */
  static async open(backend: Backend, config: RepoConfig, cache: LmdbStore): Promise<Bucket> {
    const head = new LmdbLocalHead(cache);
    if (!head.read()) head.write({ symref: config.defaultBranch });
    const refs = await RemoteRefStore.open(backend, head);
    const b = new Bucket(backend, config, cache, refs);
    await refreshIndex(backend, b.segments, cache.remoteIndex, cache);
    return b;
  }

  /** The blocking reader of misses (an I/O thread for S3), made on the first miss. */
  syncReader(): SyncReader {
    this.reader ??= SyncReader.for(this.backend);
    return this.reader;
  }

  /** Re-reads refs and segments (other hosts' writes); returns the refs that changed. */
  async refresh(): Promise<{ changed: string[] }> {
    const r = await this.remoteRefs.refresh();
    await refreshIndex(this.backend, this.segments, this.cache.remoteIndex, this.cache);
    return r;
  }

  /**
   * Starts a writer session: the session object first, then a refresh, so that this writer sees every tombstone gc
   * wrote before it (gc's delayed deletion relies on that order, docs/s3.md).
   */
  async beginSession(kind: string): Promise<void> {
    if (this.session) return;
    this.session = await RemoteSession.begin(this.backend, kind);
    await this.refresh();
    this.cache.remoteMode!.sincePack = nextLocalPack(this.cache);
    this.published = Math.min(this.published, this.cache.remoteMode!.sincePack);
  }

  /**
   * Ends the writer session: what it wrote is published first (a receive ends its session before the sender moves
   * refs), then the session object is deleted.
   */
  async endSession(): Promise<void> {
    const s = this.session;
    if (!s) return;
    try {
      await this.cache.flush();
      await this.publish();
    } finally {
      this.session = undefined;
      if (this.cache.remoteMode) this.cache.remoteMode.sincePack = undefined;
      await s.end();
    }
  }

  /**
   * Uploads what this host wrote and the bucket lacks (see uploadNewObjects) and publishes it with one index
   * segment; then checks that the session is still alive, so that gc cannot have swept what the write relies on.
   */
  async publish(): Promise<UploadResult> {
    const r = await uploadNewObjects(this.cache, this.published, [], { index: this.cache.remoteIndex, packs: this.packs, segments: this.segments, target: this.config.packTarget });
    this.published = r.until;
    this.session?.assertAlive();
    return r;
  }

  /** gc's operations on this bucket (see remote-gc.ts), over this host's index of it. */
  gc(): BucketGc {
    return new BucketGc(this.backend, this.config, this.cache.remoteIndex, this.packs, this.segments, () => this.refresh());
  }

  /** Ends the session and stops the I/O thread. */
  async close(): Promise<void> {
    await this.endSession();
    await this.reader?.close();
    this.reader = undefined;
    await (this.backend as { close?: () => Promise<void> }).close?.();
  }
}

/** The bucket's refs behind RefStore, publishing the objects a ref move needs before moving it. */
class PublishingRefs implements RefStore {
  readonly atomicMulti = false;

  constructor(private readonly inner: RemoteRefStore, private readonly bucket: Bucket) {}

  read(ref: string): RefValue | undefined { return this.inner.read(ref); }
  resolve(ref: string): { ref: string; oid?: Oid } | undefined { return this.inner.resolve(ref); }
  list(prefix?: string): Array<{ ref: string; oid: Oid }> { return this.inner.list(prefix); }
  reflog(ref: string): ReflogEntry[] { return this.inner.reflog(ref); }
  reflogOids(): Iterable<Oid> { return this.inner.reflogOids(); }
  refresh(): Promise<{ changed: string[] }> { return this.inner.refresh(); }
  setSymbolic(ref: string, target: string): Promise<void> { return this.inner.setSymbolic(ref, target); }
  dropReflogEntries(ref: string, keep: (oid: Oid) => boolean): Promise<number> { return this.inner.dropReflogEntries(ref, keep); }

  async update(updates: RefUpdate[], who: string, opts?: RefUpdateOptions): Promise<void> {
    if (updates.some((u) => u.newOid !== null)) {
      await this.bucket.cache.flush();
      await this.bucket.publish();
      // Objects first, then the ref: a ref may name only a commit the bucket holds live (not one gc marked).
      for (const u of updates) {
        if (u.newOid !== null && u.ref !== 'HEAD' && !this.bucket.cache.remoteIndex.hasLive(objectKey('commit', u.newOid))) {
          throw new RepositoryCorruptError(`commit ${u.newOid}`, 'not in the bucket',
            `refusing to point '${u.ref}' at commit '${u.newOid}': ${this.bucket.backend.url} has no live copy of it (gc may have removed it: write it again)`);
        }
      }
    }
    return this.inner.update(updates, who, opts);
  }

  async moveHead(target: RefValue, who: string, message: string, time?: number): Promise<void> {
    return this.inner.moveHead(target, who, message, time);
  }

  async rename(from: string, to: string, who: string, force?: boolean): Promise<void> {
    return this.inner.rename(from, to, who, force);
  }
}
