/**
 * `viva serve`: one repository over HTTP(S) on node:http (the protocol is six fixed endpoints, see docs/protocol.md;
 * a framework would add nothing). Read-only unless push is allowed, and push always needs the token, compared in
 * constant time. Request bodies are size-limited, every pushed object is verified before it is stored, a bad request
 * gets a 4xx and one log line, and the server goes on serving others.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { SourceReadError, UsageError, VivaError, systemReason } from '../errors.js';
import type { Repository } from '../store/repository.js';
import { LocalPeer, applyRefUpdates, receiveObjects, type RefUpdateRequest } from './peer.js';
import { WireError, decodeFrames, decodeKeys, frameBlocks } from './wire.js';

/** The options of {@link serve}: where to listen, and whether pushes are accepted (with a token). */
export interface ServeOptions {
  /** host:port; port 0 picks a free one. */
  listen?: string;
  /** File holding the push token (first line). Required for allowPush. */
  tokenFile?: string;
  allowPush?: boolean;
  tls?: { cert: string; key: string };
  /** Largest has/objects request body (default 64 MiB) and largest push (default 64 GiB). */
  maxRequestBytes?: number;
  maxPushBytes?: number;
  log?: (line: string) => void;
  /**
   * Answers every request outside the protocol's /v1/ paths (the web view: commands/serve.ts passes webHandler);
   * without one they get 404. It learns whether the server has a token and how to check one.
   */
  handler?: ServeHandler;
}

/** What {@link serve} tells its {@link ServeOptions.handler} about authentication. */
export interface ServeAuth {
  /** The server was started with a token (--token-file). */
  required: boolean;
  /** Whether `token` is the server's token, compared in constant time. */
  check(token: string): boolean;
  /** The server speaks TLS. */
  tls: boolean;
}

/** A handler for requests outside the sync protocol (see {@link ServeOptions.handler}): resolves with the status sent. */
export type ServeHandler = (req: http.IncomingMessage, res: http.ServerResponse, auth: ServeAuth) => Promise<number>;

/** A running server ({@link serve}): its URL and how to stop it. */
export interface Server {
  url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

function tokenDigest(t: string): Buffer {
  return crypto.createHash('sha256').update(t).digest();
}

async function body(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > max) throw new HttpError(413, `request body exceeds ${max} bytes`);
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

function json(res: http.ServerResponse, status: number, v: unknown): void {
  const b = Buffer.from(JSON.stringify(v));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': b.length });
  res.end(b);
}

/** A file named on the command line (token, certificate, key): SourceReadError (exit 14) naming it when unreadable. */
function readUserFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new SourceReadError(file, systemReason(e));
  }
}

/** How often a server of a bucket repository re-reads its refs and index at most (ms). */
export const REFRESH_MS = 1000;

/** Starts serving `repo` (opened for writing when push is allowed). */
export async function serve(repo: Repository, options: ServeOptions = {}): Promise<Server> {
  const [host, portText] = (options.listen ?? '127.0.0.1:0').split(/:(?=[^:]*$)/);
  const port = Number(portText);
  if (!host || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--listen '${options.listen}' is not HOST:PORT`);
  let token: Buffer | undefined;
  if (options.tokenFile) {
    const t = readUserFile(options.tokenFile).toString('utf8').split('\n')[0]!.trim();
    if (!t) throw new UsageError(`token file '${options.tokenFile}' is empty`);
    token = tokenDigest(t);
  }
  if (options.allowPush && !token) throw new UsageError('--allow-push needs --token-file: pushes are always authenticated');
  const maxRequest = options.maxRequestBytes ?? 64 << 20;
  const maxPush = options.maxPushBytes ?? 64 * 1024 ** 3;
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const peer = new LocalPeer(repo);

  const authorize = (req: http.IncomingMessage) => {
    if (!options.allowPush) throw new HttpError(403, 'this server is read-only (start it with --allow-push)');
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    if (!m) throw new HttpError(401, 'a push needs a token (Authorization: Bearer …)');
    if (!crypto.timingSafeEqual(tokenDigest(m[1]!.trim()), token!)) throw new HttpError(403, 'wrong token');
  };

  const auth: ServeAuth = {
    required: token !== undefined,
    check: (candidate) => token !== undefined && crypto.timingSafeEqual(tokenDigest(candidate), token),
    tls: options.tls !== undefined,
  };

  // A repository in a bucket changes under this server (other hosts and servers write to it): its refs and index
  // are re-read before a request, at most once a second, so that several servers behind one load balancer agree.
  let refreshed = 0;
  let refreshing: Promise<unknown> | undefined;
  const refresh = async () => {
    if (!repo.inBucket) return;
    if (Date.now() - refreshed >= REFRESH_MS) {
      refreshed = Date.now();
      refreshing = repo.refresh().finally(() => { refreshing = undefined; });
    }
    await refreshing;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<number> => {
    const url = new URL(req.url ?? '/', 'http://x');
    await refresh();
    if (options.handler && !url.pathname.startsWith('/v1/')) return options.handler(req, res, auth);
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case 'GET /v1/refs': {
        json(res, 200, await peer.listRefs());
        return 200;
      }
      case 'POST /v1/has': {
        const ids = decodeKeys(await body(req, maxRequest));
        const present = await peer.has(ids);
        const out = Buffer.from(present.map((p) => (p ? 1 : 0)));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.length });
        res.end(out);
        return 200;
      }
      case 'POST /v1/objects': {
        const ids = decodeKeys(await body(req, maxRequest));
        for (const i of ids) if (!repo.objects.hasObject(i.kind, i.oid)) throw new HttpError(404, `${i.kind} ${i.oid} is not in this repository`);
        res.writeHead(200, { 'content-type': 'application/x-viva-objects' });
        // The end frame is the last block's tail.
        for await (const block of frameBlocks(peer.read(ids))) {
          if (!res.write(block)) await new Promise((r) => res.once('drain', r));
        }
        res.end();
        return 200;
      }
      case 'POST /v1/auth': {
        // Lets a client learn that its push would be refused before it streams any object.
        authorize(req);
        await body(req, 1024);
        json(res, 200, { push: true });
        return 200;
      }
      case 'POST /v1/receive': {
        authorize(req);
        const r = await receiveObjects(repo, decodeFrames(req, { maxTotal: maxPush }));
        json(res, 200, r);
        return 200;
      }
      case 'POST /v1/update-refs': {
        authorize(req);
        const b = JSON.parse((await body(req, maxRequest)).toString('utf8')) as { updates?: RefUpdateRequest[]; who?: string };
        if (!Array.isArray(b.updates) || b.updates.some((u) => typeof u?.ref !== 'string' || (u.newOid !== null && typeof u.newOid !== 'string'))) {
          throw new HttpError(400, 'body must be {"updates": [{"ref", "newOid", "expectedOld"}], "who"}');
        }
        await applyRefUpdates(repo, b.updates, typeof b.who === 'string' && b.who.length < 256 ? b.who : 'viva push <push@viva>');
        json(res, 200, { updated: b.updates.length });
        return 200;
      }
      default:
        throw new HttpError(404, `no such endpoint: ${req.method} ${url.pathname}`);
    }
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const start = Date.now();
    handle(req, res).then(
      (status) => log(`${new Date().toISOString()} ${req.socket?.remoteAddress ?? "-"} ${req.method} ${req.url} ${status} ${Date.now() - start}ms`),
      (e: unknown) => {
        // The server's own storage failing is a server error (507 for a full disk, 500 for damage), and its message
        // does not give away the server's paths; what the client sent wrong stays a 4xx.
        const storage = e instanceof VivaError && (e.code === 'ERR_WRITE' || e.code === 'ERR_REPOSITORY_DAMAGED');
        const status = e instanceof HttpError ? e.status : e instanceof WireError || e instanceof SyntaxError ? 400
          : storage ? ((e as VivaError).code === 'ERR_WRITE' ? 507 : 500)
          : e instanceof VivaError ? (e.code === 'ERR_REF_CONFLICT' ? 409 : e.code === 'ERR_REPOSITORY_CORRUPT' ? 422 : 400) : 500;
        const message = storage
          ? ((e as VivaError).code === 'ERR_WRITE' ? 'the server cannot store the objects: no space left or an i/o error (nothing was referenced)' : 'the repository on the server is damaged')
          : e instanceof Error ? e.message : String(e);
        const logged = e instanceof Error ? e.message : String(e);
        const answer = () => {
          if (!res.headersSent) json(res, status, { error: { status, message, ...(e instanceof VivaError ? { code: e.code } : {}) } });
          else res.destroy();
        };
        if (req.complete || req.destroyed) answer();
        else {
          // The client is still sending: read (and drop) up to 64 MiB more so it can read the answer, then give up.
          let left = 64 << 20;
          req.on('data', (c: Buffer) => { left -= c.length; if (left < 0) req.socket?.destroy(); });
          req.once('end', answer);
          req.once('error', () => undefined);
          req.resume();
        }
        log(`${new Date().toISOString()} ${req.socket?.remoteAddress ?? "-"} ${req.method} ${req.url} ${status} ${Date.now() - start}ms ${logged}`);
      },
    );
  };
  let server: http.Server;
  if (options.tls) {
    const tls = { cert: readUserFile(options.tls.cert), key: readUserFile(options.tls.key) };
    try {
      server = https.createServer(tls, onRequest);
    } catch (e) {
      throw new UsageError(`--tls-cert '${options.tls.cert}' / --tls-key '${options.tls.key}': not a PEM certificate and its key (${(e as Error).message})`);
    }
  } else {
    server = http.createServer(onRequest);
  }
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    // An address in use or not ours is a --listen the user must change.
    server.once('error', (e) => reject(new UsageError(`cannot listen on '${options.listen ?? `${host}:${port}`}': ${systemReason(e)}`)));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `${options.tls ? 'https' : 'http'}://${shownHost}:${addr.port}/`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
