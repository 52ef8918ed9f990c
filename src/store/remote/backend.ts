/** The bucket as the remote store sees it: raw keys below one prefix, conditional PUTs, paged listing. */

/** One object as a listing or a HEAD reports it. `etag` is unquoted; `mtime` is the server's LastModified in ms. */
export interface ObjectInfo { key: string; etag: string; size: number; mtime: number }

/** A byte range of an object: `length` bytes from `offset` (a range that runs past the end is cut short, as S3 does). */
export interface ByteRange { offset: number; length: number }

/**
 * The condition of a conditional PUT: `ifMatch` replaces the object only while its ETag (unquoted) is still that one
 * (a missing object never matches); `ifNoneMatch: '*'` creates the object only if the key is free.
 */
export type PutCondition = { ifMatch: string } | { ifNoneMatch: '*' };

/**
 * What a PUT did. `ok: true` carries the new object's ETag (unquoted; empty for none). `why: 'precondition'` means the
 * server refused the condition (412) and nothing was written. `why: 'unknown'` (a 409 ConditionalRequestConflict,
 * 500, 503, a timeout or a lost connection after a conditional PUT) means the PUT may or may not have taken effect:
 * the caller must re-read the object to find out. Unconditional PUTs never report `unknown`: they are retried and
 * then either succeed or throw.
 */
export type PutResult = { ok: true; etag: string } | { ok: false; why: 'precondition' | 'unknown' };

/**
 * The raw object store under a repository: S3 (`S3Backend`), in-process Maps (`MemoryBackend`) or a fault-injecting
 * wrapper of either (`FaultyBackend`). Keys are relative to the backend's prefix (`packs/…`, `refs/heads/main`);
 * ETags are always unquoted, in and out. Failures other than a refused condition throw a viva error (`RemoteError`,
 * exit 17, naming the repository URL).
 *
 * @example
 * const r = await backend.put('refs/heads/main', body, { ifNoneMatch: '*' });
 * if (!r.ok && r.why === 'unknown') await backend.get('refs/heads/main');  // did it land?
 */
export interface Backend {
  /** The repository URL the backend serves, without secrets (`s3://bucket/prefix?endpoint=…`, `memory://name`). */
  readonly url: string;
  /** The object's bytes (or the given range of them) and ETag; `undefined` when the key does not exist. */
  get(key: string, range?: ByteRange): Promise<{ body: Buffer; etag: string } | undefined>;
  /** The object's ETag, size and mtime without its bytes; `undefined` when the key does not exist. */
  head(key: string): Promise<Omit<ObjectInfo, 'key'> | undefined>;
  /** Stores `body` under `key`, unconditionally or under `cond` (see `PutResult`). */
  put(key: string, body: Buffer, cond?: PutCondition): Promise<PutResult>;
  /** Every object whose key starts with `prefix`, in key order, fetched page by page (S3 pages hold 1000 keys). */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deletes the keys (in batches of 1000); a key that does not exist is not an error. */
  delete(keys: string[]): Promise<void>;
}

/** Objects larger than this go up as a multipart upload (8 MiB parts); smaller ones in one PUT. */
export const MULTIPART_THRESHOLD = 16 * 1024 * 1024;
/** The part size of a multipart upload. */
export const MULTIPART_PART_SIZE = 8 * 1024 * 1024;
/** How many keys one listing page and one DeleteObjects request hold (S3's limit). */
export const PAGE_SIZE = 1000;

/** `etag` without the double quotes S3 puts around it (and without a weak `W/` mark). */
export function unquoteEtag(etag: string | undefined): string {
  if (!etag) return '';
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}
