/** The `Backend` over S3 (AWS, Ceph RGW, MinIO) with `@aws-sdk/client-s3`, loaded only when an s3:// URL is used. */
import http from 'node:http';
import https from 'node:https';
import type { S3Client } from '@aws-sdk/client-s3';
import { UsageError } from '../../errors.js';
import {
  MULTIPART_PART_SIZE, MULTIPART_THRESHOLD, PAGE_SIZE, unquoteEtag,
  type Backend, type ByteRange, type ObjectInfo, type PutCondition, type PutResult,
} from './backend.js';
import { checkRange } from './memory-backend.js';
import { isUnknownOutcome, s3ErrorName, s3Status, toVivaError } from './s3-errors.js';
import { LightS3 } from './s3-light.js';

/** Where an S3 repository lives: bucket, key prefix ('' or ending in '/'), endpoint and region, and its canonical URL. */
export interface S3Location {
  bucket: string;
  /** The key prefix of the repository inside the bucket: empty, or ending in '/'. */
  prefix: string;
  /** The endpoint URL (`http://127.0.0.1:7480`), or undefined for AWS's own endpoint of the region. */
  endpoint?: string;
  region: string;
  /** `s3://BUCKET/PREFIX` plus `?endpoint=…&region=…` when they were given: holds no secrets, safe to store. */
  url: string;
}

/** Options of `parseS3Url`: the `--endpoint` and `--region` flags, which win over the URL's query. */
export interface S3UrlOptions { endpoint?: string; region?: string; env?: NodeJS.ProcessEnv }

/** The region when neither a flag, the URL nor `AWS_REGION`/`AWS_DEFAULT_REGION` gives one. */
export const DEFAULT_REGION = 'us-east-1';

/**
 * Parses `s3://BUCKET/PREFIX[?endpoint=URL&region=R]`. Precedence: `options` (the flags) > the URL's query >
 * `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL` and `AWS_REGION`/`AWS_DEFAULT_REGION` > `us-east-1`. Credentials never come
 * from the URL (only from the SDK's default chain: environment, `~/.aws`, profile, instance metadata).
 *
 * Throws `UsageError` for another scheme, a missing or invalid bucket name, a user or password in the URL, an
 * endpoint that is not http(s), or an unknown query parameter.
 *
 * @example
 * parseS3Url('s3://viva-ci/images/', { endpoint: 'http://127.0.0.1:7480' })
 * // { bucket: 'viva-ci', prefix: 'images/', endpoint: 'http://127.0.0.1:7480', region: 'us-east-1',
 * //   url: 's3://viva-ci/images/?endpoint=http%3A%2F%2F127.0.0.1%3A7480&region=us-east-1' }
 */
export function parseS3Url(text: string, options: S3UrlOptions = {}): S3Location {
  const env = options.env ?? process.env;
  const m = /^s3:\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/.exec(text);
  if (!m) throw new UsageError(`'${text}' is not an s3:// URL (s3://BUCKET/PREFIX)`);
  const authority = m[1]!;
  if (authority.includes('@')) {
    throw new UsageError(`'${redact(text)}' has credentials in it; give them through AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE`);
  }
  const bucket = authority;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..')) {
    throw new UsageError(`'${bucket}' is not a valid bucket name (3-63 characters: a-z, 0-9, '.', '-')`);
  }
  let prefix = decodeURIComponent((m[2] ?? '').replace(/^\/+/, ''));
  if (prefix.split('/').some((p, i, all) => (p === '' && i < all.length - 1) || p === '.' || p === '..')) {
    throw new UsageError(`'${text}' has an empty, '.' or '..' path segment`);
  }
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  const query = new URLSearchParams(m[3] ?? '');
  for (const k of query.keys()) if (k !== 'endpoint' && k !== 'region') throw new UsageError(`unknown parameter '${k}' in '${text}' (endpoint, region)`);
  const endpoint = options.endpoint ?? query.get('endpoint') ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
  const region = options.region ?? query.get('region') ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || DEFAULT_REGION);
  if (endpoint !== undefined) {
    let u: URL;
    try { u = new URL(endpoint); } catch { throw new UsageError(`endpoint '${endpoint}' is not a URL`); }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) {
      throw new UsageError(`endpoint '${redact(endpoint)}' must be an http:// or https:// URL without credentials`);
    }
  }
  const q = new URLSearchParams();
  if (endpoint !== undefined) q.set('endpoint', endpoint.replace(/\/+$/, ''));
  if (endpoint !== undefined || options.region !== undefined || query.has('region')) q.set('region', region);
  const qs = q.toString();
  const url = `s3://${bucket}/${prefix.split('/').map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`;
  return { bucket, prefix, endpoint: endpoint?.replace(/\/+$/, ''), region, url };
}

/** Options of `S3Backend` beyond the location. */
export interface S3BackendOptions {
  /**
   * Explicit credentials, for programs that embed viva and for tests; the CLI never passes them, so it uses the SDK's
   * default chain only.
   */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Attempts of an idempotent request (GET, HEAD, LIST, DELETE, unconditional PUT), first one included. */
  maxAttempts?: number;
  /**
   * Send GETs and LISTs without the SDK first (see s3-light.ts; default true): a warm command then never loads it. The
   * SDK answers whatever the light path cannot.
   */
  light?: boolean;
}

/** Attempts of idempotent requests (on 5xx, throttling, lost or refused connections), with exponential backoff. */
export const S3_MAX_ATTEMPTS = 10;
/** The first retry's delay, doubling on each retry up to RETRY_CAP_MS (half of it jittered). */
export const RETRY_BASE_MS = 100;
export const RETRY_CAP_MS = 2000;
/** Upload parts in flight of one multipart upload. */
export const MULTIPART_QUEUE = 4;

interface Clients {
  sdk: typeof import('@aws-sdk/client-s3');
  /** Standard retries: for idempotent requests. */
  retrying: S3Client;
  /** One attempt: for conditional PUTs, whose retry must first re-read the object. */
  once: S3Client;
}

/**
 * A bucket prefix on S3 as a `Backend`. The SDK is imported on the first request (not when this module loads), so a
 * viva that never touches s3:// never pays for it. Client settings for Ceph RGW and AWS alike: path-style addressing,
 * checksums only where an operation requires one (RGW refuses the SDK's default chunked trailer), keep-alive with 16
 * sockets, 5 s connect and 60 s request timeouts. Idempotent calls use the standard retry with `S3_MAX_ATTEMPTS`;
 * conditional PUTs are sent once, and any answer that leaves their outcome open (409, 500, 503, a socket error) is
 * reported as `{ ok: false, why: 'unknown' }`. Bodies above `MULTIPART_THRESHOLD` go up as a multipart upload (8 MiB
 * parts, 4 in flight); those cannot be conditional. Every other failure is a `RemoteError` from `toVivaError`.
 *
 * @example
 * const b = new S3Backend(parseS3Url('s3://viva-ci/repo/', { endpoint: 'http://127.0.0.1:7480' }));
 * await b.put('config.json', Buffer.from('{}'), { ifNoneMatch: '*' });
 */
export class S3Backend implements Backend {
  readonly url: string;
  private clients?: Promise<Clients>;
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
  };

  private readonly light?: LightS3;

  constructor(readonly location: S3Location, private readonly options: S3BackendOptions = {}) {
    this.url = location.url;
    if (options.light !== false) this.light = new LightS3(location, this.agents, options.credentials);
  }

  /** What a worker thread needs to make the same backend (`SyncReader`'s I/O thread): location and options. */
  workerSpec(): { kind: 's3'; location: S3Location; options: S3BackendOptions } {
    return { kind: 's3', location: this.location, options: this.options };
  }

  async get(key: string, range?: ByteRange): Promise<{ body: Buffer; etag: string } | undefined> {
    if (range) checkRange(range);
    const quick = await this.light?.get(key, range);
    if (quick !== undefined) return quick ?? undefined;
    const { sdk, retrying } = await this.sdk();
    try {
      const res = await retrying.send(new sdk.GetObjectCommand({
        Bucket: this.location.bucket, Key: this.key(key),
        Range: range && `bytes=${range.offset}-${range.offset + range.length - 1}`,
      }));
      const bytes = res.Body ? await res.Body.transformToByteArray() : new Uint8Array();
      return { body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), etag: unquoteEtag(res.ETag) };
    } catch (e) {
      if (s3ErrorName(e) === 'NoSuchKey') return undefined;
      if (s3Status(e) === 416) throw this.error(e, key, `range ${range?.offset}+${range?.length} of '${key}' is not satisfiable`);
      throw this.error(e, key);
    }
  }

  async head(key: string): Promise<Omit<ObjectInfo, 'key'> | undefined> {
    const { sdk, retrying } = await this.sdk();
    try {
      const res = await retrying.send(new sdk.HeadObjectCommand({ Bucket: this.location.bucket, Key: this.key(key) }));
      return { etag: unquoteEtag(res.ETag), size: res.ContentLength ?? 0, mtime: res.LastModified?.getTime() ?? 0 };
    } catch (e) {
      // HEAD answers have no body, so a missing key and a missing bucket are both a bare 404: tell them apart.
      if (s3Status(e) === 404) {
        if (await this.bucketExists()) return undefined;
        throw this.error(Object.assign(new Error('NoSuchBucket'), { name: 'NoSuchBucket' }), key);
      }
      throw this.error(e, key);
    }
  }

  async put(key: string, body: Buffer, cond?: PutCondition): Promise<PutResult> {
    const { sdk, retrying, once } = await this.sdk();
    const Key = this.key(key);
    if (body.length > MULTIPART_THRESHOLD) {
      if (cond) throw new RangeError(`a conditional PUT of ${body.length} bytes ('${key}') would need a multipart upload, which cannot be conditional`);
      return { ok: true, etag: await this.putMultipart(key, body) };
    }
    const input = {
      Bucket: this.location.bucket, Key, Body: body, ContentLength: body.length,
      // RGW 16 compares If-Match with the stored ETag as given: it must be unquoted (the quoted form always gets 412).
      IfMatch: cond && 'ifMatch' in cond ? cond.ifMatch : undefined,
      IfNoneMatch: cond && 'ifNoneMatch' in cond ? cond.ifNoneMatch : undefined,
    };
    try {
      const res = await (cond ? once : retrying).send(new sdk.PutObjectCommand(input));
      return { ok: true, etag: unquoteEtag(res.ETag) };
    } catch (e) {
      if (cond) {
        const status = s3Status(e);
        if (status === 412) return { ok: false, why: 'precondition' };
        // AWS answers If-Match on a missing key with 404 NoSuchKey (RGW with 412): the condition failed either way.
        if (status === 404 && 'ifMatch' in cond && s3ErrorName(e) === 'NoSuchKey') return { ok: false, why: 'precondition' };
        if (isUnknownOutcome(e)) return { ok: false, why: 'unknown' };
      }
      throw this.error(e, key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const quick = await this.light?.list(prefix);
    if (quick) {
      yield* quick;
      return;
    }
    const { sdk, retrying } = await this.sdk();
    let token: string | undefined;
    do {
      let res;
      try {
        res = await retrying.send(new sdk.ListObjectsV2Command({
          Bucket: this.location.bucket, Prefix: this.key(prefix), ContinuationToken: token, MaxKeys: PAGE_SIZE,
        }));
      } catch (e) {
        throw this.error(e, prefix);
      }
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key.slice(this.location.prefix.length), etag: unquoteEtag(o.ETag), size: o.Size ?? 0, mtime: o.LastModified?.getTime() ?? 0 };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(keys: string[]): Promise<void> {
    const { sdk, retrying } = await this.sdk();
    for (let i = 0; i < keys.length; i += PAGE_SIZE) {
      const batch = keys.slice(i, i + PAGE_SIZE);
      let res;
      try {
        res = await retrying.send(new sdk.DeleteObjectsCommand({
          Bucket: this.location.bucket, Delete: { Objects: batch.map((k) => ({ Key: this.key(k) })), Quiet: true },
        }));
      } catch (e) {
        throw this.error(e, batch[0]);
      }
      const failed = (res.Errors ?? []).filter((x) => x.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const f = failed[0]!;
        throw this.error(Object.assign(new Error(f.Message ?? f.Code), { name: f.Code ?? 'Error' }),
          f.Key?.slice(this.location.prefix.length));
      }
    }
  }

  /** Closes the keep-alive connections; the backend must not be used afterwards. */
  async close(): Promise<void> {
    if (this.clients) {
      const c = await this.clients.catch(() => undefined);
      c?.retrying.destroy();
      c?.once.destroy();
    }
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private async putMultipart(key: string, body: Buffer): Promise<string> {
    const { retrying, sdk } = await this.sdk();
    const { Upload } = await import('@aws-sdk/lib-storage');
    try {
      const res = await new Upload({
        client: retrying,
        params: { Bucket: this.location.bucket, Key: this.key(key), Body: body },
        partSize: MULTIPART_PART_SIZE, queueSize: MULTIPART_QUEUE, leavePartsOnError: false,
      }).done();
      const etag = unquoteEtag(res.ETag);
      if (etag) return etag;
      // RGW answers CompleteMultipartUpload with an empty ETag; HEAD has the real one ("…-N").
      const h = await retrying.send(new sdk.HeadObjectCommand({ Bucket: this.location.bucket, Key: this.key(key) }));
      return unquoteEtag(h.ETag);
    } catch (e) {
      throw this.error(e, key);
    }
  }

  private async bucketExists(): Promise<boolean> {
    const { sdk, retrying } = await this.sdk();
    try {
      await retrying.send(new sdk.HeadBucketCommand({ Bucket: this.location.bucket }));
      return true;
    } catch (e) {
      if (s3Status(e) === 404) return false;
      throw this.error(e);
    }
  }

  private key(k: string): string { return this.location.prefix + k; }

  private error(e: unknown, key?: string, message?: string): Error {
    const endpoint = this.location.endpoint ?? `https://s3.${this.location.region}.amazonaws.com`;
    const err = toVivaError(e, { url: this.url, endpoint, bucket: this.location.bucket, key });
    if (message !== undefined) err.message = `${this.url}: ${message}`;
    return err;
  }

  private sdk(): Promise<Clients> {
    // viva pins the SDK at a release that supports Node 20: its notice about later releases is noise on every command.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.clients ??= Promise.all([import('@aws-sdk/client-s3'), import('@smithy/core/retry')]).then(([sdk, retry]) => {
      const config = {
        region: this.location.region,
        endpoint: this.location.endpoint,
        forcePathStyle: true,
        // RGW refuses the SDK's default (a chunked body with a checksum trailer: 411 MissingContentLength).
        requestChecksumCalculation: 'WHEN_REQUIRED' as const,
        responseChecksumValidation: 'WHEN_REQUIRED' as const,
        credentials: this.options.credentials,
        retryMode: 'standard',
        requestHandler: { connectionTimeout: 5000, requestTimeout: 60_000, httpAgent: this.agents.http, httpsAgent: this.agents.https },
      };
      return {
        sdk,
        // Backoff 100 ms doubling to 2 s, half jittered: about 11 s of retrying in all, which rides out a gateway
        // restarting (the SDK's default full jitter can spend all its attempts in under a second).
        retrying: new sdk.S3Client({
          ...config,
          retryStrategy: new retry.ConfiguredRetryStrategy(this.options.maxAttempts ?? S3_MAX_ATTEMPTS,
            (attempt: number) => Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** attempt) * (0.5 + Math.random() / 2)),
        }),
        once: new sdk.S3Client({ ...config, maxAttempts: 1 }),
      };
    });
    return this.clients;
  }
}

function redact(text: string): string { return text.replace(/\/\/[^/@]*@/, '//***@'); }
