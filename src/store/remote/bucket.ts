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
import { forEachLimit } from './concurrency.js';
import { PREFETCH_CONCURRENCY, RemoteFetcher } from './fetch.js';
import { decodePackHeader, isMetaKind } from '../lmdb-store.js';
import { LmdbLocalHead } from './lmdb-local-head.js';
import { refreshIndex } from './open.js';
import { BucketGc } from './remote-gc.js';
import { RemotePackStore, packKey } from './remote-packs.js';
import { RemoteRefStore } from './remote-refs.js';
import { SegmentStore, type Segment } from './segment.js';
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

  private constructor(readonly backend: Backend, readonly config: RepoConfig, readonly cache: LmdbStore, private readonly remoteRefs: RemoteRefStore,
    private readonly progress?: (e: { phase: string; files: number; bytes: number }) => void) {
    this.packs = new RemotePackStore(backend);
    this.segments = new SegmentStore(backend);
    this.published = nextLocalPack(cache);
    this.refs = new PublishingRefs(remoteRefs, this);
    cache.remoteMode ??= {};
    const fetcher = new RemoteFetcher(cache, cache.remoteIndex, backend.url);
    cache.remoteMode.fetch = (keys) => fetcher.fetchSync(keys, this.syncReader());
    cache.remoteMode.prefetch = async (keys) => {
      try {
        await fetcher.prefetch(keys, backend);
      } catch (e) {
        // A pack gone from the bucket: another host's gc repacked it since this host's index was read. Refresh (the
        // new segments name the new copies) and try once more; a second miss is damage.
        if (!(e instanceof RepositoryCorruptError) || e.data.missing !== true) throw e;
        await this.refresh();
        await fetcher.prefetch(keys, backend);
      }
    };
  }

  /** Opens the parts over `cache` and brings refs and index up to the bucket. */
  static async open(backend: Backend, config: RepoConfig, cache: LmdbStore, progress?: (e: { phase: string; files: number; bytes: number }) => void): Promise<Bucket> {
    const head = new LmdbLocalHead(cache);
    if (!head.read()) head.write({ symref: config.defaultBranch });
    const refs = await RemoteRefStore.open(backend, head);
    const b = new Bucket(backend, config, cache, refs, progress);
    await refreshIndex(backend, b.segments, cache.remoteIndex, cache);
    return b;
  }

  /** True while a writer session is open on this handle. */
  get inSession(): boolean {
    return this.session !== undefined;
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
   * Ends the writer session: what it made durable is published first (a receive ends its session before the sender
   * moves refs), then the session object is deleted.
   */
  async endSession(): Promise<void> {
    const s = this.session;
    if (!s) return;
    try {
      // What the session made durable (flushed); objects only queued are dropped with the handle, as locally.
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
    let packs = 0;
    let bytes = 0;
    const r = await uploadNewObjects(this.cache, this.published, {
      index: this.cache.remoteIndex, packs: this.packs, segments: this.segments, target: this.config.packTarget,
      onUploaded: (p) => this.progress?.({ phase: 'uploading packs', files: ++packs, bytes: (bytes += p.size) }),
    });
    this.published = r.until;
    this.session?.assertAlive();
    return r;
  }

  /**
   * Reads every live pack and index segment of the bucket (fsck): each pack is checked against its name, its header
   * against the index's copies in it, and its objects enter the cache (where fsck then checks each one by its id);
   * each segment against its name and layout. Returns one problem per bad pack or segment, named by its key.
   */
  async verifyStorage(onProgress?: (done: number, total: number) => void): Promise<Array<{ kind: 'pack' | 'index'; oid: string; problem: string }>> {
    const problems: Array<{ kind: 'pack' | 'index'; oid: string; problem: string }> = [];
    for await (const seg of this.segments.listSegments()) {
      try {
        await this.segments.getSegment(seg.sha);
      } catch (e) {
        problems.push({ kind: 'index', oid: `index/${seg.sha}.vix`, problem: (e as Error).message });
      }
    }
    const packs = [...this.cache.remoteIndex.livePacks()];
    let done = 0;
    await forEachLimit(packs, PREFETCH_CONCURRENCY, async (p) => {
      const key = packKey(p.id);
      try {
        const body = await this.packs.get(p.id);
        if (!body) throw new Error('missing from the bucket');
        const header = decodePackHeader(key, body);
        if (p.size && body.length !== p.size) throw new Error(`has ${body.length} bytes, the index says ${p.size}`);
        this.cache.putCached(header.map((e) => [e.key, body.subarray(e.offset, e.offset + e.length)]));
      } catch (e) {
        const actual = e instanceof RepositoryCorruptError ? e.data.actual : undefined;
        problems.push({ kind: 'pack', oid: key, problem: typeof actual === 'string' ? `does not match its name (its bytes hash to ${actual})` : (e as Error).message.replace(/^pack 'packs\/[0-9a-f]+' /, '') });
      }
      onProgress?.(++done, packs.length);
    });
    return problems;
  }

  /**
   * Rebuilds this host's index of the bucket: forgets it, then ingests every segment again (and fetches the metadata
   * packs). With `fromPacks` (the segments are lost or damaged), first reads the header of every pack in the bucket
   * (two range requests each) and PUTs one segment that names every object in them, as restic's `repair index` does.
   */
  async rebuildIndex(options: { fromPacks?: boolean; onProgress?: (done: number, total: number) => void } = {}): Promise<{ segments: number; packs: number }> {
    let packs = 0;
    if (options.fromPacks) {
      const listed: Array<{ id: string; size: number }> = [];
      for await (const p of this.packs.list()) listed.push(p);
      const seg: Segment = { packs: [], entries: [], retired: [], tombstones: [] };
      let done = 0;
      await forEachLimit(listed, PREFETCH_CONCURRENCY, async (p) => {
        const header = await this.packs.readHeader(p.id, p.size);
        const meta = header.some((e) => isMetaKind(e.key[0]!));
        seg.packs.push({ id: p.id, size: p.size, class: meta ? 'meta' : 'data' });
        for (const e of header) seg.entries.push({ key: e.key, pack: p.id, offset: e.offset, length: e.length });
        options.onProgress?.(++done, listed.length);
      });
      if (seg.packs.length) await this.segments.putSegment(seg);
      packs = seg.packs.length;
    }
    this.cache.remoteIndex.clear();
    const r = await refreshIndex(this.backend, this.segments, this.cache.remoteIndex, this.cache);
    return { segments: r.segments, packs };
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
    if (!updates.some((u) => u.newOid !== null)) return this.inner.update(updates, who, opts);
    // A ref-only update (branch, tag, a fetch's remote-tracking refs) runs in a short session of its own: registered
    // before the refresh that shows gc's latest marks, so that gc either marked the commit already (refused below)
    // or waits for this session before it sweeps.
    const own = !this.bucket.inSession;
    if (own) await this.bucket.beginSession('ref update');
    try {
      await this.bucket.cache.flush();
      await this.bucket.publish();
      // Objects first, then the ref: a ref may name only a commit the bucket holds live (not one gc marked).
      for (const u of updates) {
        if (u.newOid !== null && u.ref !== 'HEAD' && !this.bucket.cache.remoteIndex.hasLive(objectKey('commit', u.newOid))) {
          throw new RepositoryCorruptError(`commit ${u.newOid}`, 'not in the bucket',
            `refusing to point '${u.ref}' at commit '${u.newOid}': ${this.bucket.backend.url} has no live copy of it (gc may have removed it: write it again)`);
        }
      }
      return await this.inner.update(updates, who, opts);
    } finally {
      if (own) await this.bucket.endSession();
    }
  }

  async moveHead(target: RefValue, who: string, message: string, time?: number): Promise<void> {
    return this.inner.moveHead(target, who, message, time);
  }

  async rename(from: string, to: string, who: string, force?: boolean): Promise<void> {
    return this.inner.rename(from, to, who, force);
  }
}
