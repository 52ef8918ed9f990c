/**
 * `config.json`, the object that makes a bucket prefix a viva repository (bucket format 1, docs/format.md): written
 * once at creation with `If-None-Match: *`, read by every host that opens the repository.
 */
import { randomUUID } from 'node:crypto';
import { NotARepositoryError, RepositoryCorruptError, RepositoryExistsError, RepositoryFormatError } from '../../errors.js';
import { DEFAULT_BRANCH, HEADS } from '../../model/ref.js';
import type { RepoConfig } from '../interfaces.js';
import type { Backend } from './backend.js';

/** The key of the repository's configuration, below the prefix. */
export const CONFIG_KEY = 'config.json';
/** The bucket layout this viva writes and reads. */
export const BUCKET_FORMAT = 1;
/** Target pack sizes in a bucket: large packs (few requests per GB), small meta packs (quick to fetch for log/diff). */
export const BUCKET_PACK_TARGET = { data: 8 << 20, meta: 1 << 20 } as const;
/** How long gc waits before deleting what it marked (the default of a new repository; kopia's is 2 h). */
export const DEFAULT_GC_GRACE_SECONDS = 3600;

/** Attempts of the create when its answers leave the outcome open and the key stays free. */
const CREATE_ATTEMPTS = 4;

/** Options of `createBucketConfig`. */
export interface BucketConfigOptions {
  /** The branch HEAD names in a new clone (short name; default `main`). */
  defaultBranch?: string;
  /** Seconds since the epoch (default: now). */
  created?: number;
}

/**
 * Makes `backend`'s prefix a repository: PUTs `config.json` only if the key is free, and returns the configuration.
 * Throws RepositoryExistsError (exit 12) when a repository (or anything else under that key) is already there; a lost
 * answer is settled by reading the key back (ours when it holds what we sent; free: sent again).
 */
export async function createBucketConfig(backend: Backend, options: BucketConfigOptions = {}): Promise<RepoConfig> {
  const config: RepoConfig = {
    format: 1,
    id: randomUUID(),
    created: options.created ?? Math.floor(Date.now() / 1000),
    defaultBranch: HEADS + (options.defaultBranch ?? DEFAULT_BRANCH),
    storage: 's3',
    packTarget: { ...BUCKET_PACK_TARGET },
    gc: { graceSeconds: DEFAULT_GC_GRACE_SECONDS },
  };
  const body = Buffer.from(`${JSON.stringify(encode(config), null, 2)}\n`);
  for (let attempt = 1; ; attempt++) {
    const r = await backend.put(CONFIG_KEY, body, { ifNoneMatch: '*' });
    if (r.ok) return config;
    if (r.why === 'precondition') throw new RepositoryExistsError(backend.url);
    const got = await backend.get(CONFIG_KEY);
    if (got?.body.equals(body)) return config;
    if (got || attempt >= CREATE_ATTEMPTS) throw new RepositoryExistsError(backend.url);
    // Not applied (a 409 or 500 before the write): nothing is there yet, so the create may be sent again.
  }
}

/**
 * The configuration of the repository at `backend`'s prefix. Throws NotARepositoryError (exit 10) when there is no
 * `config.json`, RepositoryFormatError (exit 10) for a newer bucket format, RepositoryCorruptError (exit 15) for one
 * that is not a viva configuration.
 */
export async function readBucketConfig(backend: Backend): Promise<RepoConfig> {
  const got = await backend.get(CONFIG_KEY);
  if (!got) throw new NotARepositoryError(backend.url);
  return parseBucketConfig(got.body, backend.url);
}

/** Parses and checks a `config.json` body (see `readBucketConfig`). */
export function parseBucketConfig(body: Buffer, url: string): RepoConfig {
  const bad = (reason: string) => new RepositoryCorruptError(`${url} ${CONFIG_KEY}`, reason);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  if (j === null || typeof j !== 'object' || j.viva !== 'repository') throw bad('not a viva repository configuration');
  if (typeof j.bucketFormat !== 'number' || !Number.isInteger(j.bucketFormat)) throw bad('no bucketFormat');
  if (j.bucketFormat > BUCKET_FORMAT) throw new RepositoryFormatError(url, j.bucketFormat, BUCKET_FORMAT);
  if (j.format !== 1) throw new RepositoryFormatError(url, Number(j.format), 1);
  const pt = j.packTarget as Record<string, unknown> | undefined;
  const gc = j.gc as Record<string, unknown> | undefined;
  if (typeof j.id !== 'string' || !/^[0-9a-f-]{36}$/.test(j.id)) throw bad('bad id');
  if (typeof j.created !== 'number') throw bad('bad created');
  if (typeof j.defaultBranch !== 'string' || j.defaultBranch === '') throw bad('bad defaultBranch');
  if (!pt || !isSize(pt.data) || !isSize(pt.meta)) throw bad('bad packTarget');
  if (!gc || typeof gc.graceSeconds !== 'number' || gc.graceSeconds < 0) throw bad('bad gc.graceSeconds');
  return {
    format: 1, id: j.id, created: j.created, defaultBranch: HEADS + j.defaultBranch, storage: 's3',
    packTarget: { data: pt.data as number, meta: pt.meta as number }, gc: { graceSeconds: gc.graceSeconds },
  };
}

function encode(c: RepoConfig): Record<string, unknown> {
  return {
    viva: 'repository', bucketFormat: BUCKET_FORMAT, format: c.format, id: c.id, created: c.created,
    defaultBranch: c.defaultBranch.slice(HEADS.length), packTarget: c.packTarget, gc: c.gc,
  };
}

function isSize(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 4096 && v <= 1 << 30;
}
