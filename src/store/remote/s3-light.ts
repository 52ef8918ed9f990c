/**
 * A small S3 reader for the requests every warm command makes (GET and LIST), signed with SigV4 by `@smithy/signature-v4`
 * over node's own HTTP agents. Loading the whole AWS SDK takes about 65 ms, more than `viva log` on a warm cache needs
 * in all; this path loads in about 20 ms. It answers only what it can answer for certain: a 200 or 206 (and a GET's
 * 404 NoSuchKey); anything else (another status, a lost connection, no credentials in the environment) returns
 * `undefined`, and the caller sends the request again through the SDK, whose retries and error mapping are the only
 * ones viva has.
 */
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { ByteRange, ObjectInfo } from './backend.js';
import { PAGE_SIZE, unquoteEtag } from './backend.js';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** node's sha256 (and HMAC-sha256) in the shape the signer asks for. */
type Source = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: Source): Buffer => (typeof d === 'string' ? Buffer.from(d, 'utf8') : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d));
class NodeSha256 {
  private hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(private readonly secret?: Source) { this.hash = this.make(); }
  private make() { return this.secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(this.secret)); }
  update(data: Source): void { this.hash.update(bytes(data)); }
  async digest(): Promise<Uint8Array> { return new Uint8Array(this.hash.digest()); }
  reset(): void { this.hash = this.make(); }
}

/** Where the bucket prefix is (S3Location's fields this reader uses). */
export interface LightLocation { bucket: string; prefix: string; endpoint?: string; region: string }

interface Credentials { accessKeyId: string; secretAccessKey: string; sessionToken?: string }

/** Answers of one request: status, headers, body. */
interface Answer { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/**
 * GET and LIST of one bucket prefix without the SDK. `credentials`: the backend's explicit ones, else the environment's
 * (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`[/`AWS_SESSION_TOKEN`]); with neither, every call returns undefined.
 */
export class LightS3 {
  private signer?: Promise<{ sign(req: unknown): Promise<{ headers: Record<string, string> }> } | undefined>;

  constructor(private readonly location: LightLocation, private readonly agents: { http: http.Agent; https: https.Agent }, private readonly credentials?: Credentials) {}

  /** The object, `null` when the key does not exist, or undefined when the SDK must answer. */
  async get(key: string, range?: ByteRange): Promise<{ body: Buffer; etag: string } | null | undefined> {
    const headers: Record<string, string> = range ? { range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {};
    const a = await this.request(`/${this.location.prefix}${key}`, {}, headers);
    if (!a) return undefined;
    if (a.status === 200 || a.status === 206) return { body: a.body, etag: unquoteEtag(String(a.headers.etag ?? '')) };
    if (a.status === 404 && a.body.includes('<Code>NoSuchKey</Code>')) return null;
    return undefined;
  }

  /** Every object below `prefix`, or undefined when the SDK must answer (then nothing was yielded). */
  async list(prefix: string): Promise<ObjectInfo[] | undefined> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix: this.location.prefix + prefix, 'max-keys': String(PAGE_SIZE), 'encoding-type': 'url' };
      if (token) query['continuation-token'] = token;
      const a = await this.request('', query, {});
      if (!a || a.status !== 200) return undefined;
      const xml = a.body.toString('utf8');
      for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const c = m[1]!;
        const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(c)?.[1];
        const k = field('Key');
        if (k === undefined) return undefined;
        out.push({
          key: decodeURIComponent(k.replace(/\+/g, ' ')).slice(this.location.prefix.length),
          etag: unquoteEtag(unescapeXml(field('ETag') ?? '')), size: Number(field('Size') ?? 0), mtime: Date.parse(field('LastModified') ?? '') || 0,
        });
      }
      token = /<IsTruncated>true<\/IsTruncated>/.test(xml) ? unescapeXml(/<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1] ?? '') || undefined : undefined;
      if (/<IsTruncated>true<\/IsTruncated>/.test(xml) && !token) return undefined;
    } while (token);
    return out;
  }

  private credentialsNow(): Credentials | undefined {
    if (this.credentials) return this.credentials;
    const env = process.env;
    if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) return undefined;
    return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
  }

  private async request(keyPath: string, query: Record<string, string>, extra: Record<string, string>): Promise<Answer | undefined> {
    const creds = this.credentialsNow();
    if (!creds) return undefined;
    this.signer ??= import('@smithy/signature-v4').then(({ SignatureV4 }) => new SignatureV4({
      credentials: creds, region: this.location.region, service: 's3', sha256: NodeSha256, uriEscapePath: false,
    })).catch(() => undefined);
    const signer = await this.signer;
    if (!signer) return undefined;
    const base = new URL(this.location.endpoint ?? `https://s3.${this.location.region}.amazonaws.com`);
    const path = `/${this.location.bucket}${keyPath.split('/').map(encodeSegment).join('/')}`;
    const host = base.host;
    const signed = await signer.sign({
      method: 'GET', protocol: base.protocol, hostname: base.hostname, port: base.port ? Number(base.port) : undefined, path, query,
      headers: { host, 'x-amz-content-sha256': EMPTY_SHA256, ...extra },
    });
    const qs = Object.entries(query).map(([k, v]) => `${encodeSegment(k)}=${encodeSegment(v)}`).join('&');
    const mod = base.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      const req = mod.request({
        method: 'GET', host: base.hostname, port: base.port || undefined, path: qs ? `${path}?${qs}` : path, headers: signed.headers,
        agent: base.protocol === 'https:' ? this.agents.https : this.agents.http, timeout: 10_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', () => resolve(undefined));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(undefined));
      req.end();
    });
  }
}

/** RFC 3986 encoding, as SigV4 wants it (every byte but unreserved characters). */
function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function unescapeXml(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
}
