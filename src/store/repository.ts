/**
 * The repository handle: finds, creates and opens `DIR/.viva/data.mdb`, checks the format version, and tracks
 * writer sessions so that gc never runs while a commit is writing objects.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import {
  NotARepositoryError, RepositoryExistsError, RepositoryFormatError, RepositoryLockedError, UsageError,
} from '../errors.js';
import { DATA_FILE, LmdbStore } from './lmdb-store.js';
import { CONTENT_INDEX_VERSION } from './content-index.js';
import { HEAD, HEADS, DEFAULT_BRANCH } from '../model/ref.js';
import { readRef, setSymbolicRef } from './refs.js';

export const REPO_DIR = '.viva';
/** Bumped when a change makes repositories unreadable for older versions. */
export const REPO_FORMAT = 1;

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

/** The data directory of the repository rooted at or above `start`, or undefined. */
export function findRepository(start: string): string | undefined {
  let dir = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(dir, REPO_DIR, DATA_FILE))) return path.join(dir, REPO_DIR);
    if (path.basename(dir) === REPO_DIR && fs.existsSync(path.join(dir, DATA_FILE))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

export class Repository {
  private sessionId?: string;
  /** What the ops found doubtful but not wrong (an ambiguous ref name, ...): the CLI prints each as `warning: …`. */
  readonly warnings: string[] = [];

  private constructor(
    /** The directory that holds `.viva`. */
    readonly root: string,
    /** The `.viva` directory. */
    readonly dataDir: string,
    readonly store: LmdbStore,
    readonly mode: OpenMode,
  ) {}

  /**
   * Creates a repository in `dir` (created if missing) with an unborn default branch.
   * Throws RepositoryExistsError if one is there already.
   */
  static init(dir: string, options: { defaultBranch?: string } = {}): Repository {
    const root = path.resolve(dir);
    const dataDir = path.join(root, REPO_DIR);
    if (fs.existsSync(path.join(dataDir, DATA_FILE))) throw new RepositoryExistsError(root);
    if (fs.existsSync(root) && !fs.statSync(root).isDirectory()) throw new UsageError(`'${dir}' exists and is not a directory`);
    fs.mkdirSync(dataDir, { recursive: true });
    const store = new LmdbStore(path.join(dataDir, DATA_FILE));
    store.env.transactionSync(() => {
      store.meta.putSync('format', REPO_FORMAT);
      store.meta.putSync('id', crypto.randomUUID());
      store.meta.putSync('created', Math.floor(Date.now() / 1000));
      store.meta.putSync('content-index', CONTENT_INDEX_VERSION);
    });
    setSymbolicRef(store, HEAD, HEADS + (options.defaultBranch ?? DEFAULT_BRANCH));
    return new Repository(root, dataDir, store, 'write');
  }

  /**
   * Opens the repository at `dir` (a directory holding `.viva`, or `.viva` itself) or, without `dir`, the one found
   * from VIVA_REPO or the current directory upwards. Read mode opens LMDB read-only.
   * Throws NotARepositoryError, RepositoryFormatError.
   */
  static open(dir: string | undefined, mode: OpenMode = 'read'): Repository {
    const given = dir ?? process.env.VIVA_REPO;
    let dataDir: string | undefined;
    if (given) {
      const abs = path.resolve(given);
      if (fs.existsSync(path.join(abs, REPO_DIR, DATA_FILE))) dataDir = path.join(abs, REPO_DIR);
      else if (fs.existsSync(path.join(abs, DATA_FILE))) dataDir = abs;
      if (!dataDir) throw new NotARepositoryError(given);
    } else {
      dataDir = findRepository(process.cwd());
      if (!dataDir) throw new NotARepositoryError(process.cwd());
    }
    const store = new LmdbStore(path.join(dataDir, DATA_FILE), { readOnly: mode === 'read' });
    const format = store.meta.get('format') as number | undefined;
    if (format === undefined || format > REPO_FORMAT) {
      void store.close();
      throw new RepositoryFormatError(dataDir, format ?? -1, REPO_FORMAT);
    }
    const root = path.basename(dataDir) === REPO_DIR ? path.dirname(dataDir) : dataDir;
    return new Repository(root, dataDir, store, mode);
  }

  get id(): string {
    return this.store.meta.get('id') as string;
  }

  /** The branch HEAD points at (full ref name). */
  headBranch(): string {
    const v = readRef(this.store, HEAD);
    return v?.symref ?? HEADS + DEFAULT_BRANCH;
  }

  /**
   * Registers a writer session (commit, fetch, ...). Locking: fails with RepositoryLockedError while gc holds the
   * exclusive lock; gc in turn refuses to delete while any live session exists.
   */
  beginSession(kind: string): void {
    if (this.sessionId) return;
    const id = crypto.randomUUID();
    const me: SessionRecord = { pid: process.pid, host: os.hostname(), started: Date.now(), kind };
    this.store.env.transactionSync(() => {
      const gc = this.store.meta.get('gc-lock') as SessionRecord | undefined;
      if (gc && isAlive(gc)) throw new RepositoryLockedError(this.root, `gc (pid ${gc.pid} on ${gc.host})`);
      if (gc) this.store.meta.removeSync('gc-lock');
      this.store.sessions.putSync(id, me);
    });
    this.sessionId = id;
  }

  endSession(): void {
    if (!this.sessionId) return;
    const id = this.sessionId;
    this.sessionId = undefined;
    this.store.env.transactionSync(() => { this.store.sessions.removeSync(id); });
  }

  /**
   * Runs `fn` inside a write transaction only if no other live writer session exists, holding the gc lock.
   * Stale sessions (dead processes, e.g. a commit killed with -9) are removed.
   */
  withExclusive<T>(fn: () => T): T {
    return this.store.env.transactionSync(() => {
      for (const { key, value } of this.store.sessions.getRange({})) {
        if (key === this.sessionId) continue;
        const s = value as SessionRecord;
        if (isAlive(s)) throw new RepositoryLockedError(this.root, `${s.kind} (pid ${s.pid} on ${s.host})`);
        this.store.sessions.removeSync(key as string);
      }
      return fn();
    });
  }

  async close(): Promise<void> {
    try {
      if (this.sessionId && this.mode === 'write') this.endSession();
    } finally {
      await this.store.close();
    }
  }
}
