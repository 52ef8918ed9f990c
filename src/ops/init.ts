/** The init op: create an empty repository, in a directory or in a bucket. */
import { Repository } from '../store/repository.js';

/** What {@link init} created: the repository's directory, its `.viva` directory and HEAD's branch. */
export interface InitResult {
  /** The repository's directory, or its bucket URL (`s3://BUCKET/PREFIX/?endpoint=…`). */
  path: string;
  /** The `.viva` directory: the repository itself, or this host's cache of the bucket. */
  dataDir: string;
  head: string;
  /** The bucket URL when the repository lives in a bucket (credentials are never part of it). */
  storage?: string;
}

/** Options of {@link init}. */
export interface InitOptions {
  defaultBranch?: string;
  /** Create the repository in this bucket (`s3://BUCKET/PREFIX`) instead of in `dir`; `dir` is then bound to it. */
  storage?: string;
  /** The S3 endpoint (`--endpoint`), stored in the bucket URL. */
  endpoint?: string;
  /** The S3 region (`--region`), stored in the bucket URL. */
  region?: string;
}

/**
 * Creates `dir/.viva` with HEAD on the unborn branch `main`; with `storage`, creates the repository in that bucket
 * (the prefix must hold none; the bucket must exist) and makes `dir` (when given) its cache on this host, bound to
 * it, so that commands run in `dir` use the bucket. Throws RepositoryExistsError.
 *
 * @example await init('/srv/images');
 * @example await init('/srv/images', { storage: 's3://images/fleet', endpoint: 'http://127.0.0.1:7480' });
 */
export async function init(dir: string | undefined, options: InitOptions = {}): Promise<InitResult> {
  const repo = options.storage
    ? await Repository.create(options.storage, { ...options, ...(dir !== undefined ? { cacheDir: dir } : {}) })
    : Repository.init(dir ?? '.', options);
  try {
    return {
      path: repo.inBucket ? repo.location : repo.root, dataDir: repo.dataDir, head: repo.headBranch(),
      ...(repo.inBucket ? { storage: repo.location } : {}),
    };
  } finally {
    await repo.close();
  }
}
