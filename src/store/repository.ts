/**
 * The repository handle: finds, creates and opens `DIR/.viva/data.mdb`, checks the format version, and tracks
 * writer sessions so that gc never runs while a commit is writing objects.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crypto } from '../lazy.js';
import {
  NotARepositoryError, RepositoryCreateError, RepositoryDamagedError, RepositoryExistsError, RepositoryFormatError,
  RepositoryLockedError, UsageError, systemText,
} from '../errors.js';
import { DATA_FILE, LmdbStore, lmdbDamageReason } from './lmdb-store.js';
import { CONTENT_INDEX_VERSION } from './content-index.js';
import { HEAD, HEADS, DEFAULT_BRANCH } from '../model/ref.js';
import { LmdbRefStore } from './refs.js';
import { LmdbMetaStore } from './meta.js';
import { LmdbContentIndex, LmdbObjectIndex, LmdbPackageIndex, LmdbPackStore } from './lmdb-indexes.js';
import { PACK_TARGET_DATA, PACK_TARGET_META } from './lmdb-store.js';
import type { ContentIndex, MetaStore, ObjectIndex, PackStore, PackageIndex, RefStore, RepoConfig } from './interfaces.js';
import type { ObjectStore } from './object-store.js';
import { type CompactStats, compactEnvironmentFile, removeCompactLeftover } from './compact.js';
import { LmdbStatCache, STAT_CACHE_FILE, type StatCache } from './stat-cache.js';
import type { Backend } from './remote/backend.js';
import type { Bucket } from './remote/bucket.js';
import type { BucketGc } from './remote/remote-gc.js';

/** The name of the directory that holds a repository's data inside its root (`.viva`). */
export const REPO_DIR = '.viva';
/** Bumped when a change makes repositories unreadable for older versions. */
export const REPO_FORMAT = 1;

/**
 * How {@link Repository.open} opens a repository: `read` maps the database read-only; `write` allows ops that write.
 */
export type OpenMode = 'read' | 'write';

interface SessionRecord {
  pid: number;
  host: string;
  started: number;
  kind: string;
}

function isAlive(s: SessionRecord): boolean {
  if (s.host !== os.hostname()) return true; // cannot tell: assume it is alive
  try {
    process.kill(s.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * viva's own marker in `.viva`, written by init (and by any write-mode open of an older repository without it). A
 * `.viva` holding the marker or LMDB's lock file but no data file is a repository that lost its database: it is
 * reported as damaged, never silently re-initialised.
 */
export const FORMAT_FILE = 'format';
const FORMAT_TEXT = `viva repository format ${REPO_FORMAT}\n`;
const LOCK_FILE = DATA_FILE + '-lock';

/** What a directory holds: an LMDB data file, the traces of one that is gone (marker, lock file), or nothing of viva's. */
function repositoryState(dataDir: string): 'present' | 'lost' | 'none' {
  const has = (name: string) => { try { fs.lstatSync(path.join(dataDir, name)); return true; } catch { return false; } };
  try {
    if (!fs.statSync(dataDir).isDirectory()) return 'none';
  } catch {
    return 'none';
  }
  if (has(DATA_FILE)) return 'present';
  return has(FORMAT_FILE) || has(LOCK_FILE) ? 'lost' : 'none';
}

/** Whether `dir` is a viva data directory: named `.viva` and holding a data file, the format marker or LMDB's lock file. */
export function isRepositoryDataDir(dir: string): boolean {
  return path.basename(dir) === REPO_DIR && repositoryState(dir) !== 'none';
}

/** The data directory of the repository rooted at or above `start` (possibly one that lost its data file), or undefined. */
export function findRepository(start: string): string | undefined {
  let dir = path.resolve(start);
  for (;;) {
    if (repositoryState(path.join(dir, REPO_DIR)) !== 'none') return path.join(dir, REPO_DIR);
    if (path.basename(dir) === REPO_DIR && repositoryState(dir) !== 'none') return dir;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/**
 * `mkdir -p dir`, one level at a time. fs.mkdirSync's recursive mode loops forever where mkdir fails with ENOENT
 * below an existing directory (/proc/nope): here every failure throws RepositoryCreateError at once.
 */
function makeDirectory(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    let st: fs.Stats;
    try {
      st = fs.statSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || path.dirname(d) === d) throw new RepositoryCreateError(d, systemText(e));
      missing.push(d);
      continue;
    }
    if (!st.isDirectory()) throw new RepositoryCreateError(missing.at(-1) ?? dir, `'${d}' is not a directory`);
    break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        let dirNow = false;
        try { dirNow = fs.statSync(d).isDirectory(); } catch { /* a dangling symlink */ }
        if (dirNow) continue;
        throw new RepositoryCreateError(d, 'a dangling symlink or another file is in the way');
      }
      throw new RepositoryCreateError(d, systemText(e));
    }
  }
}

/** Writes the format marker (crash-safe: temp file, then rename). Best effort on an older repository opened for writing. */
function writeFormatFile(dataDir: string): void {
  const tmp = path.join(dataDir, `${FORMAT_FILE}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, FORMAT_TEXT);
  fs.renameSync(tmp, path.join(dataDir, FORMAT_FILE));
}

/**
 * A handle on one repository: open it once per process ({@link Repository.open} or {@link Repository.init}), pass it
 * to every op, and close it at the end (LMDB maps the database once per process).
 *
 * Locking: `write` mode is needed by ops that write; writers share the repository, except gc, which waits for none
 * and fails with RepositoryLockedError while another writer is active (and the reverse).
 *
 * @example
 * const repo = Repository.open('/srv/images', 'write');
 * try {
 *   await commit(repo, { source: '/srv/rootfs', message: 'base' });
 * } finally {
 *   await repo.close();
 * }
 */
export class Repository {
  private sessionId?: string;
  /** Set when the repository lives in a bucket: this handle's store is then the host cache (see remote/bucket.ts). */
  private bucket?: Bucket;
  /**
   * Where a bucket repository reports its own transfers (`uploading packs`: packs and bytes so far) while an op runs;
   * the CLI shows them on its progress line.
   */
  storageProgress?: (e: { phase: string; files: number; bytes: number }) => void;
  /** What the ops found doubtful but not wrong (an ambiguous ref name, ...): the CLI prints each as `warning: …`. */
  readonly warnings: string[] = [];

  private constructor(
    /** The directory that holds `.viva`. */
    readonly root: string,
    /** The `.viva` directory. */
    readonly dataDir: string,
    private lmdb: LmdbStore,
    readonly mode: OpenMode,
  ) {}

  /**
   * The LMDB environment of a repository (replaced by compact()): for repair tools and the tests that damage a
   * repository on purpose. viva's ops reach the store only through the interfaces (objects, refs, index, ...).
   *
   * @internal
   */
  static lmdbOf(repo: Repository): LmdbStore {
    return repo.lmdb;
  }

  /** The views below, made once per LmdbStore (compact() replaces it). */
  private views?: {
    of: LmdbStore; refs: RefStore; meta: MetaStore; index: ObjectIndex; contentIndex: ContentIndex;
    packageIndex: PackageIndex; packs: PackStore;
  };
  /** The stat cache, opened when first used (its own file: it outlives compact()'s new LmdbStore). */
  private cache?: LmdbStatCache;

  private view(): NonNullable<Repository['views']> {
    const s = this.lmdb;
    if (this.views?.of !== s) {
      this.views = {
        of: s, refs: new LmdbRefStore(s), meta: new LmdbMetaStore(s), index: new LmdbObjectIndex(s),
        contentIndex: new LmdbContentIndex(s), packageIndex: new LmdbPackageIndex(s), packs: new LmdbPackStore(s),
      };
    }
    return this.views;
  }

  /** The objects: reading (synchronous, verified) and writing (queued, durable at `flush`). */
  get objects(): ObjectStore {
    return this.lmdb;
  }

  /** Refs and reflogs (reads synchronous, writes compare-and-swap). */
  get refs(): RefStore {
    if (this.bucket) return this.bucket.refs;
    return this.view().refs;
  }

  /** This host's settings (remotes, upstreams, checkout records, ...), and the shared ones (`meta.shared`). */
  get meta(): MetaStore {
    return this.view().meta;
  }

  /** Object → pack location, and listings of the stored objects. */
  get index(): ObjectIndex {
    return this.view().index;
  }

  /** The content indexes (`ix-parent`, `ix-root`, `ix-deriv`). */
  get contentIndex(): ContentIndex {
    return this.view().contentIndex;
  }

  /** The package index (`ix-pkg`). */
  get packageIndex(): PackageIndex {
    return this.view().packageIndex;
  }

  /** The packs the objects are stored in. */
  get packs(): PackStore {
    if (this.bucket) return this.bucket.packs;
    return this.view().packs;
  }

  /** This host's stat cache (commit's: source file identity → blob id), in `cache.mdb` beside `data.mdb`. */
  get statCache(): StatCache {
    this.cache ??= new LmdbStatCache(path.join(path.dirname(this.lmdb.path), STAT_CACHE_FILE), this.lmdb.path, this.mode !== 'write', () => this.lmdb.dropLegacyStatCache());
    return this.cache;
  }

  /** Where the repository is: its root directory (for a local repository). */
  get location(): string {
    if (this.bucket) return this.bucket.backend.url;
    return this.root;
  }

  /** The file that holds this host's database (`.viva/data.mdb`): for messages about it. */
  get dataFile(): string {
    return this.lmdb.path;
  }

  /**
   * The store's report of a damaged database in `e` (LMDB: a page of the wrong type, a page not found) as
   * RepositoryDamagedError naming the file, else undefined.
   */
  damageOf(e: unknown): RepositoryDamagedError | undefined {
    const damage = lmdbDamageReason(e);
    return damage ? new RepositoryDamagedError(this.lmdb.path, damage) : undefined;
  }

  /**
   * Removes what an interrupted maintenance left behind (a killed compaction's copy). Call while holding the write
   * lock (gc, inside withExclusive: no compaction runs then).
   *
   * @internal
   */
  removeLeftovers(): void {
    removeCompactLeftover(this.lmdb.path);
  }

  /** The settings fixed when the repository was created. */
  get config(): RepoConfig {
    if (this.bucket) return this.bucket.config;
    const meta = this.lmdb.meta;
    return {
      format: 1,
      id: meta.get('id') as string,
      created: meta.get('created') as number,
      defaultBranch: (meta.get('default-branch') as string | undefined) ?? HEADS + DEFAULT_BRANCH,
      storage: 'lmdb',
      packTarget: { data: PACK_TARGET_DATA, meta: PACK_TARGET_META },
      gc: { graceSeconds: 0 },
    };
  }

  /**
   * Creates a repository in `dir` (created if missing) with an unborn default branch.
   * Throws RepositoryExistsError if one is there already, RepositoryDamagedError if a `.viva` there lost its data
   * file (a fresh database would hide the loss), RepositoryCreateError if the directory cannot be created.
   */
  static init(dir: string, options: { defaultBranch?: string } = {}): Repository {
    const root = path.resolve(dir);
    const dataDir = path.join(root, REPO_DIR);
    const state = repositoryState(dataDir);
    if (state === 'present') throw new RepositoryExistsError(root);
    if (state === 'lost') throw new RepositoryDamagedError(path.join(dataDir, DATA_FILE), 'the file is missing');
    if (fs.existsSync(root) && !fs.statSync(root).isDirectory()) throw new UsageError(`'${dir}' exists and is not a directory`);
    makeDirectory(dataDir);
    const store = new LmdbStore(path.join(dataDir, DATA_FILE));
    store.writeTransaction(() => {
      store.meta.putSync('format', REPO_FORMAT);
      store.meta.putSync('id', crypto().randomUUID());
      store.meta.putSync('created', Math.floor(Date.now() / 1000));
      store.meta.putSync('content-index', CONTENT_INDEX_VERSION);
      store.meta.putSync('default-branch', HEADS + (options.defaultBranch ?? DEFAULT_BRANCH));
      store.refs.putSync(HEAD, { symref: HEADS + (options.defaultBranch ?? DEFAULT_BRANCH) });
    });
    // After the database: a crash in between leaves a repository without the marker, which opens normally.
    writeFormatFile(dataDir);
    return new Repository(root, dataDir, store, 'write');
  }

  /**
   * Opens the repository at `dir` (a directory holding `.viva`, or `.viva` itself) or, without `dir`, the one found
   * from VIVA_REPO or the current directory upwards. Read mode opens LMDB read-only. The data file is checked before
   * LMDB maps it (checkLmdbFile).
   * Throws NotARepositoryError, RepositoryFormatError, RepositoryDamagedError (data file missing, truncated, garbage).
   */
  static open(dir: string | undefined, mode: OpenMode = 'read'): Repository {
    const given = dir ?? process.env.VIVA_REPO;
    let dataDir: string | undefined;
    if (given) {
      const abs = path.resolve(given);
      if (repositoryState(path.join(abs, REPO_DIR)) !== 'none') dataDir = path.join(abs, REPO_DIR);
      else if (repositoryState(abs) === 'present' || (path.basename(abs) === REPO_DIR && repositoryState(abs) === 'lost')) dataDir = abs;
      if (!dataDir) throw new NotARepositoryError(given);
    } else {
      dataDir = findRepository(process.cwd());
      if (!dataDir) throw new NotARepositoryError(process.cwd());
    }
    const file = path.join(dataDir, DATA_FILE);
    if (!fs.existsSync(file)) throw new RepositoryDamagedError(file, 'the file is missing');
    let store: LmdbStore | undefined;
    let format: number | undefined;
    try {
      store = new LmdbStore(file, { readOnly: mode === 'read' });
      format = store.meta.get('format') as number | undefined;
    } catch (e) {
      // LMDB's own report of a damaged page met while opening (the catalogue of databases, the meta record).
      const damage = lmdbDamageReason(e);
      if (!damage) throw e;
      if (store) void store.close().catch(() => undefined);
      throw new RepositoryDamagedError(file, damage);
    }
    if (format === undefined || format > REPO_FORMAT) {
      void store.close();
      throw new RepositoryFormatError(dataDir, format ?? -1, REPO_FORMAT);
    }
    if (mode === 'write' && !fs.existsSync(path.join(dataDir, FORMAT_FILE))) {
      try { writeFormatFile(dataDir); } catch { /* a read-only or foreign .viva: the marker is a safeguard, not a need */ }
    }
    const root = path.basename(dataDir) === REPO_DIR ? path.dirname(dataDir) : dataDir;
    return new Repository(root, dataDir, store, mode);
  }

  /** The repository's id: a UUID made when it was created (init, clone): each repository has its own. */
  get id(): string {
    if (this.bucket) return this.bucket.config.id;
    return this.lmdb.meta.get('id') as string;
  }

  /** The branch HEAD points at (full ref name). Throws UsageError when HEAD is detached (`viva switch --detach`). */
  headBranch(): string {
    const v = this.refs.read(HEAD);
    if (v?.oid) throw new UsageError(`HEAD is detached at ${v.oid.slice(0, 12)}: name a branch (-b BRANCH), or switch to one first (viva switch BRANCH)`);
    return v?.symref ?? HEADS + DEFAULT_BRANCH;
  }

  /**
   * Registers a writer session (commit, fetch, ...). Locking: fails with RepositoryLockedError while gc holds the
   * exclusive lock; gc in turn refuses to delete while any live session exists. The ops that write do this.
   *
   * @internal
   */
  async beginSession(kind: string): Promise<void> {
    if (this.sessionId) return;
    const id = crypto().randomUUID();
    const me: SessionRecord = { pid: process.pid, host: os.hostname(), started: Date.now(), kind };
    this.lmdb.writeTransaction(() => {
      const gc = this.lmdb.meta.get('gc-lock') as SessionRecord | undefined;
      if (gc && isAlive(gc)) throw new RepositoryLockedError(this.root, `gc (pid ${gc.pid} on ${gc.host})`);
      if (gc) this.lmdb.meta.removeSync('gc-lock');
      this.lmdb.sessions.putSync(id, me);
    });
    this.sessionId = id;
    try {
      await this.bucket?.beginSession(kind);
    } catch (e) {
      await this.endSession();
      throw e;
    }
  }

  /**
   * Ends the writer session beginSession registered (close does it too).
   *
   * @internal
   */
  async endSession(): Promise<void> {
    if (!this.sessionId) return;
    const id = this.sessionId;
    this.sessionId = undefined;
    try {
      await this.bucket?.endSession();
    } finally {
      this.lmdb.writeTransaction(() => { this.lmdb.sessions.removeSync(id); });
    }
  }

  /**
   * Runs `fn` inside a write transaction only if no other live writer session exists, holding the gc lock.
   * Stale sessions (dead processes, e.g. a commit killed with -9) are removed.
   *
   * @internal
   */
  withExclusive<T>(fn: () => T): T {
    return this.lmdb.writeTransaction(() => {
      for (const { key, value } of this.lmdb.sessions.getRange({})) {
        if (key === this.sessionId) continue;
        const s = value as SessionRecord;
        if (isAlive(s)) throw new RepositoryLockedError(this.root, `${s.kind} (pid ${s.pid} on ${s.host})`);
        this.lmdb.sessions.removeSync(key as string);
      }
      return fn();
    });
  }

  /**
   * Shrinks `data.mdb` to the pages in use (see store/compact.ts) and reopens the handle on the new file.
   * Locking: exclusive, and more — it refuses (RepositoryLockedError) while a live writer session exists or any other
   * process has the repository open. Throws CompactionError when the copy fails (the repository is unchanged).
   */
  async compact(): Promise<CompactStats> {
    if (this.mode !== 'write') throw new UsageError('compaction needs the repository opened for writing');
    const file = path.join(this.dataDir, DATA_FILE);
    const stats = this.withExclusive(() => compactEnvironmentFile(this.root, file));
    await this.lmdb.close();
    this.lmdb = new LmdbStore(file);
    return stats;
  }

  /** Ends this handle's writer session, if any, and closes the database. Call it once, when done with the repository. */
  async close(): Promise<void> {
    try {
      if (this.sessionId && this.mode === 'write') await this.endSession();
    } finally {
      try {
        await this.bucket?.close();
      } finally {
        try {
          await this.cache?.close();
        } finally {
          await this.lmdb.close();
        }
      }
    }
  }

  /**
   * Reads and checks the storage behind the objects where it is not this host's (fsck): for a bucket repository every
   * pack against its name and every index segment, the packs' objects brought into the cache for fsck's checks; one
   * problem per bad pack or segment, named by its key. Nothing for a local repository (fsck reads its packs itself).
   */
  async verifyStorage(onProgress?: (done: number, total: number) => void): Promise<Array<{ kind: 'pack' | 'index'; oid: string; problem: string }>> {
    return this.bucket ? this.bucket.verifyStorage(onProgress) : [];
  }

  /**
   * A bucket repository: rebuilds this host's index of the bucket from its segments (or, with `fromPacks`, from the
   * packs' headers, writing a new segment first). Undefined for a local repository, whose index is its packs'.
   */
  async rebuildStorageIndex(options: { fromPacks?: boolean; onProgress?: (done: number, total: number) => void } = {}): Promise<{ segments: number; packs: number } | undefined> {
    return this.bucket?.rebuildIndex(options);
  }

  /** True when the repository lives in a bucket (`s3://…`): refs, packs and index there, this host's cache here. */
  get inBucket(): boolean {
    return this.bucket !== undefined;
  }

  /**
   * gc's operations on the bucket of a bucket repository (lease, marks, sweep, orphans, segments: remote-gc.ts), or
   * undefined for a local repository.
   *
   * @internal
   */
  bucketGc(): BucketGc | undefined {
    return this.bucket?.gc();
  }

  /**
   * Re-reads what other hosts changed: for a bucket repository, its refs and index segments (the ones new to this
   * host are ingested, their metadata fetched); nothing for a local one. Returns the refs that changed.
   */
  async refresh(): Promise<{ changed: string[] }> {
    return this.bucket ? this.bucket.refresh() : { changed: [] };
  }

  /**
   * Opens a repository by location (default: $VIVA_REPO, else found from the current directory upwards): a directory
 * (as `open`; one bound to a bucket opens that bucket), or a bucket URL (`s3://BUCKET/PREFIX`, `memory://NAME`).
   * A bucket repository is read through a cache on this host: `options.cacheDir` (a directory bound to the bucket),
   * else `$VIVA_CACHE_DIR/<id>`, `$XDG_CACHE_HOME/viva/<id>` or `~/.cache/viva/<id>`; a missing cache is made, one
   * of another repository (the id differs) is started afresh. Throws NotARepositoryError when the bucket prefix has no
   * repository, RemoteError (exit 17) when the bucket cannot be reached or refuses the credentials.
   */
  static async connect(location: string | undefined, mode: OpenMode = 'read', options: BucketOpenOptions = {}): Promise<Repository> {
    const given = location ?? process.env.VIVA_REPO;
    if (given === undefined || !isBucketUrl(given)) {
      // A directory: a local repository, or one bound to a bucket by `init --storage URL DIR` (its .viva is the cache).
      const repo = Repository.open(location, mode);
      const url = boundBucket(repo.dataDir);
      if (!url) return repo;
      await repo.close();
      return Repository.connect(url, mode, { ...options, cacheDir: repo.root });
    }
    // Loaded only for bucket repositories: a local repository's commands do not pay for the bucket code.
    const { backendFor, defaultCacheDir } = await import('./remote/open.js');
    const { readBucketConfig } = await import('./remote/bucket-config.js');
    const backend = await backendFor(given, options);
    const config = await readBucketConfig(backend);
    return Repository.openBucketCache(backend, config, mode, options.cacheDir ?? defaultCacheDir(config.id));
  }

  /**
   * Creates a repository at a location: a directory (as `init`), or a bucket URL, whose prefix must hold no repository
   * (RepositoryExistsError); the bucket itself must exist (viva never creates buckets).
   */
  static async create(location: string, options: BucketOpenOptions & { defaultBranch?: string } = {}): Promise<Repository> {
    if (!isBucketUrl(location)) return Repository.init(location, options);
    const { backendFor, defaultCacheDir } = await import('./remote/open.js');
    const { createBucketConfig } = await import('./remote/bucket-config.js');
    const backend = await backendFor(location, options);
    const config = await createBucketConfig(backend, { defaultBranch: options.defaultBranch?.replace(/^refs\/heads\//, '') });
    return Repository.openBucketCache(backend, config, 'write', options.cacheDir ?? defaultCacheDir(config.id));
  }

  private static async openBucketCache(backend: Backend, config: RepoConfig, mode: OpenMode, root: string): Promise<Repository> {
    const dataDir = path.join(path.resolve(root), REPO_DIR);
    makeDirectory(dataDir);
    const file = path.join(dataDir, DATA_FILE);
    let store = new LmdbStore(file, { remote: {} });
    if (store.meta.get('remote-id') !== config.id) {
      // A cache of another repository (the bucket was emptied and made again), or a new one: start afresh.
      if (store.meta.get('remote-id') !== undefined) {
        await store.close();
        for (const f of [file, `${file}-lock`]) fs.rmSync(f, { force: true });
        store = new LmdbStore(file, { remote: {} });
      }
      store.writeTransaction(() => {
        store.meta.putSync('format', REPO_FORMAT);
        store.meta.putSync('id', config.id);
        store.meta.putSync('created', config.created);
        store.meta.putSync('content-index', CONTENT_INDEX_VERSION);
        store.meta.putSync('default-branch', config.defaultBranch);
        store.meta.putSync('remote-id', config.id);
        store.meta.putSync('remote-url', backend.url);
      });
      writeFormatFile(dataDir);
      fs.writeFileSync(path.join(dataDir, STORAGE_FILE), `${JSON.stringify({ url: backend.url })}\n`);
    }
    const repo = new Repository(path.dirname(dataDir), dataDir, store, mode);
    try {
      const { Bucket } = await import('./remote/bucket.js');
      repo.bucket = await Bucket.open(backend, config, store, (e) => repo.storageProgress?.(e));
    } catch (e) {
      await store.close();
      throw e;
    }
    return repo;
  }
}

/** True when `location` names a bucket repository (`s3://…`, `memory://…`) rather than a directory. */
export function isBucketUrl(location: string): boolean {
  return /^(s3|memory):\/\//.test(location);
}

/** Where a bucket repository's cache is and how its bucket is reached (`--endpoint`, `--region` flags). */
export interface BucketOpenOptions {
  cacheDir?: string;
  endpoint?: string;
  region?: string;
}

/** The file in a bucket repository's cache (`.viva/`) that names the bucket: `{"url": "s3://…"}`. */
export const STORAGE_FILE = 'storage.json';

/** The bucket URL a directory's `.viva` is bound to (a cache made by `init --storage URL DIR`), or undefined. */
export function boundBucket(dataDir: string): string | undefined {
  try {
    const j = JSON.parse(fs.readFileSync(path.join(dataDir, STORAGE_FILE), 'utf8')) as { url?: unknown };
    return typeof j.url === 'string' ? j.url : undefined;
  } catch {
    return undefined;
  }
}
