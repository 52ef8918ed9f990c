/**
 * `viva nbd`: disk commits served read-only as block devices over the NBD protocol (doc/proto.md of the
 * NetworkBlockDevice/nbd repository), straight from the repository through a {@link DiskReader}: nothing is
 * materialized, each read is composed from the disk's run table and verified chunks.
 *
 * Why our own server: npm has NBD clients and kernel-device wrappers but no maintained server, and the part a
 * read-only export needs is small: the fixed newstyle handshake (EXPORT_NAME, LIST, INFO/GO with block sizes,
 * ABORT, STRUCTURED_REPLY, LIST/SET_META_CONTEXT for base:allocation, STARTTLS with node's TLS) and the transmission phase (READ with holes as
 * OFFSET_HOLE chunks, BLOCK_STATUS, FLUSH, CACHE, DISC; WRITE, TRIM and WRITE_ZEROES refused with EPERM, or with
 * --writable sent to a session's copy-on-write overlay, ../ops/nbd-overlay.ts, FUA meaning a flush after that write).
 *
 * Each connection is a state machine over its socket, as nbdkit's server/protocol*.c: every length and offset is
 * checked before use; a bad option gets an NBD_REP_ERR_* reply, a bad request an NBD error reply, and traffic that
 * cannot be answered (bad magic, a client that stalls in the handshake, an oversized payload) closes that
 * connection only. One log line per connection.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { RepositoryCorruptError, SourceReadError, UsageError, VivaError, systemReason } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { DiskFetcher, fetchDiskMaps } from '../ops/disk-fetch.js';
import { BlobRangeReader, DiskReader, type DiskExtent } from '../ops/disk-reader.js';
import { Overlay, generateSessionName, sessionDir, type BaseReader } from '../ops/nbd-overlay.js';
import { PROFILE_BLOCK, ReadProfileRecorder, loadReadProfile, saveReadProfile } from '../ops/read-profile.js';
import { resolveRevision } from '../ops/resolve.js';
import type { Repository } from '../store/repository.js';
import { readDisk } from '../store/typed.js';
import { partialConfig } from '../sync/partial.js';
import {
  BASE_ALLOCATION, BASE_ALLOCATION_ID, CMD, CMD_FLAG, FLAG_C_FIXED_NEWSTYLE, FLAG_C_NO_ZEROES, FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES,
  IHAVEOPT, INFO, NBD_ERR, OPT, REP, REPLY_FLAG_DONE, REPLY_TYPE, REQUEST_BYTES, REQUEST_MAGIC, STATE_HOLE, STATE_ZERO, TFLAG,
  encodeChunkHeader, encodeErrorChunk, encodeGreeting, encodeOptReply, encodeSimpleReply,
} from './protocol.js';

/** Default address: loopback, the port IANA assigned to NBD. */
export const DEFAULT_NBD_LISTEN = '127.0.0.1:10809';
/** Seconds a client may take to finish the handshake before it is disconnected. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10;
/** Largest READ (and WRITE payload) accepted: the protocol's customary maximum block size. */
export const MAX_REQUEST_BYTES = 32 << 20;
/** Largest option payload accepted (export names are at most 4096 bytes). */
const MAX_OPTION_BYTES = 64 << 10;
/** Zero stretches at least this long are sent as OFFSET_HOLE chunks (shorter ones go with the data around them). */
const HOLE_MIN = 64 << 10;
/** Decoded chunks kept for all exports together. */
const CHUNK_CACHE_BYTES = 64 << 20;

/** One export: a disk commit and the name clients ask for. */
export interface NbdExport {
  name: string;
  rev: string;
  commit: Oid;
  disk: Oid;
  size: number;
  /** A directory commit: the tree its disk was built from, and whether it was built by this server (else found). */
  fromTree?: { tree: Oid; built: boolean };
}

/** The options of {@link serveNbd}. */
export interface NbdServeOptions {
  /** Revisions to export (at least one), each under its own name; the first is the default export (name ''). */
  revs: string[];
  /** Export name of the (single) revision instead of the revision text. */
  name?: string;
  /** HOST:PORT (port 0: a free one); default {@link DEFAULT_NBD_LISTEN}. Not with `socket`. */
  listen?: string;
  /** A Unix socket path to listen on instead of TCP (a stale socket there is replaced). */
  socket?: string;
  /** Seconds; default {@link DEFAULT_HANDSHAKE_TIMEOUT}. */
  handshakeTimeout?: number;
  /**
   * Serve the (single) revision writable: writes go to the copy-on-write overlay of session `session` (default: a
   * generated name) in the repository's data directory; an existing session is reopened at its last flushed state
   * (its base must be the same commit).
   */
  writable?: { session?: string };
  /**
   * Require TLS (NBD_OPT_STARTTLS) with this certificate and key (PEM files): a client that asks for anything else
   * first gets NBD_REP_ERR_TLS_REQD. Clients are not authenticated by it; the traffic is encrypted.
   */
  tls?: { cert: string; key: string };
  /** Virtual size in bytes of the disk built for a directory commit (default: autoTreeDiskSize); refused for disk commits. */
  size?: number;
  /** Called before and after a directory commit's disk is built or found (building can take a while). */
  onBuild?: (rev: string, phase: 'start' | 'built' | 'found') => void;
  log?: (line: string) => void;
}

/** A running NBD server ({@link serveNbd}). */
export interface NbdServer {
  exports: NbdExport[];
  /** One URI per export, in order (nbd://HOST:PORT/NAME or nbd+unix:///NAME?socket=PATH). */
  uris: string[];
  /** E.g. listening beyond loopback (NBD has no authentication). */
  warnings: string[];
  /** The writable session's name and whether it was created now (not reopened). */
  session?: { name: string; created: boolean };
  /** Stops serving; a writable session is flushed and its lock released. */
  /** Bytes served to clients so far, and (in a partial clone) fetched from the promisor remote for them. */
  stats(): NbdServerStats;
  close(): Promise<void>;
}

/** Counters of a running {@link NbdServer}, over all exports and connections. */
export interface NbdServerStats {
  bytesRead: number;
  bytesFetched: number;
  fetchRequests: number;
}

interface LiveExport extends NbdExport {
  /** The base disk's bytes (a writable export reads through its overlay, over this). */
  reader: DiskReader;
  overlay?: Overlay;
  /** In a partial clone: fetches what a read needs that is not local. */
  fetcher?: DiskFetcher;
  bytesRead: number;
  /** The blocks clients read first, kept as the disk's read profile when the server stops. */
  profile: ReadProfileRecorder;
}

/**
 * Resolves the revisions to disk commits and starts serving them read-only.
 * Locking: none (reads only; commits may run meanwhile — a ref moved later does not change a running export).
 * Throws: UsageError (not a disk commit, bad --listen, duplicate names, address in use), RevisionNotFoundError.
 *
 * @example
 * const s = await serveNbd(repo, { revs: ['vm/web'], listen: '127.0.0.1:10809' });
 * console.log(s.uris[0]); // nbd://127.0.0.1:10809/vm/web
 */
export async function serveNbd(repo: Repository, options: NbdServeOptions): Promise<NbdServer> {
  if (!options.revs.length) throw new UsageError('name at least one revision to serve');
  if (options.name !== undefined && options.revs.length > 1) throw new UsageError('--name names the export of a single revision; with several, each is named by its revision');
  if (options.listen !== undefined && options.socket !== undefined) throw new UsageError('--listen and --socket cannot be combined');
  if (options.writable && options.revs.length > 1) throw new UsageError('--writable serves a single revision');
  const tlsContext = options.tls ? tlsContextOf(options.tls) : undefined;
  const blobs = new BlobRangeReader(repo.objects, CHUNK_CACHE_BYTES);
  const exports: LiveExport[] = [];
  for (const rev of options.revs) {
    const r = resolveRevision(repo, rev);
    const name = options.name ?? rev;
    if (exports.some((e) => e.name === name)) throw new UsageError(`export name '${name}' given twice`);
    if (Buffer.byteLength(name) > 4096) throw new UsageError(`export name '${name.slice(0, 40)}…' is longer than 4096 bytes`);
    let diskOid = r.commit.root;
    let fromTree: NbdExport['fromTree'];
    if (r.commit.rootKind === 'tree') {
      // A directory commit: served as the disk built once from its tree (and kept for the next server).
      if (repo.mode !== 'write') throw new UsageError(`'${rev}' is a directory commit: its disk is built on first use, which needs the repository open for writing`, { rev });
      options.onBuild?.(rev, 'start');
      // Loaded here: building a disk needs the checkout and commit machinery, which serving a disk does not.
      const { diskOfTree } = await import('../ops/build-tree-disk.js');
      const t = await diskOfTree(repo, rev, r.commit, { ...(options.size !== undefined ? { size: options.size } : {}) });
      options.onBuild?.(rev, t.built ? 'built' : 'found');
      diskOid = t.disk;
      fromTree = { tree: r.commit.root, built: t.built };
    } else if (options.size !== undefined) {
      throw new UsageError(`--size sizes the disk built for a directory commit: '${rev}' is a disk commit, served at its own size`, { rev });
    }
    const disk = readDisk(repo.objects, diskOid);
    const reader = new DiskReader(repo.objects, disk, blobs);
    exports.push({ name, rev, commit: r.oid, disk: diskOid, size: disk.size, reader, bytesRead: 0, profile: new ReadProfileRecorder(), ...(fromTree ? { fromTree } : {}) });
  }
  // A partial clone: the run tables' maps now, the bytes a client reads when it reads them.
  let mapBytes = 0;
  if (partialConfig(repo)) {
    for (const e of exports) {
      mapBytes += await fetchDiskMaps(repo, e.disk);
      e.fetcher = new DiskFetcher(repo, e.reader);
    }
  }
  let session: NbdServer['session'];
  if (options.writable) {
    const ex = exports[0]!;
    const name = options.writable.session ?? generateSessionName();
    const dir = sessionDir(repo.dataDir, name);
    const created = !fs.existsSync(dir);
    ex.overlay = created
      ? Overlay.create(repo.dataDir, { name, rev: ex.rev, commit: ex.commit, disk: ex.disk, size: ex.size }, ex.reader)
      : Overlay.open(dir, ex.reader, 'write');
    if (ex.overlay.info.commit !== ex.commit) {
      const base = ex.overlay.info;
      ex.overlay.close();
      throw new UsageError(`nbd session '${name}' is over '${base.rev}' (commit ${base.commit.slice(0, 12)}), not '${ex.rev}'`, { session: name });
    }
    session = { name, created };
  }
  const closeOverlays = () => { for (const e of exports) e.overlay?.close(); };
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const timeoutMs = (options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT) * 1000;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const c = new Connection(sock, exports, timeoutMs, tlsContext);
    void c.run().then((reason) => {
      log(`${new Date().toISOString()} ${c.peer}${c.secure ? ' tls' : ''} ${c.exportName === undefined ? '-' : `'${c.exportName}'`} ${c.requests} requests ${c.bytesRead} bytes read${c.bytesFetched ? ` (${c.bytesFetched} fetched)` : ''} ${c.bytesWritten ? `${c.bytesWritten} bytes written ` : ''}${Date.now() - c.started}ms ${reason}${c.failed ? `; ${c.failed} failed, first: ${c.firstError}` : ''}`);
      sock.destroy();
    });
  });
  const warnings: string[] = [];
  let uris: string[];
  if (options.socket !== undefined) {
    const file = options.socket;
    // A socket left by a server that was killed: replaced. Anything else at that path is the user's.
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (st?.isSocket()) fs.rmSync(file);
    else if (st) { closeOverlays(); throw new UsageError(`--socket '${file}' exists and is not a socket`); }
    await listen(server, { path: file }, `--socket '${file}'`).catch((e: unknown) => { closeOverlays(); throw e; });
    uris = exports.map((e) => `nbd${tlsContext ? 's' : ''}+unix:///${uriName(e.name)}?socket=${encodeURIComponent(file).replace(/%2F/g, '/')}`);
  } else {
    const text = options.listen ?? DEFAULT_NBD_LISTEN;
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
    const port = Number(m?.[2]);
    if (!m || port > 65535) { closeOverlays(); throw new UsageError(`--listen '${text}' is not HOST:PORT`); }
    const host = m[1]!.replace(/^\[|\]$/g, '');
    if (!isLoopback(host)) {
      warnings.push(tlsContext
        ? `listening on '${text}', beyond loopback: TLS encrypts the traffic, but NBD does not authenticate clients: anyone who can reach it can read these disks`
        : `listening on '${text}', beyond loopback: NBD has no authentication, anyone who can reach it can read these disks`);
    }
    await listen(server, { host, port }, `--listen '${text}'`).catch((e: unknown) => { closeOverlays(); throw e; });
    const addr = server.address() as net.AddressInfo;
    const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    uris = exports.map((e) => `nbd${tlsContext ? 's' : ''}://${shown}:${addr.port}/${uriName(e.name)}`);
  }
  // Chunks are decoded and verified ahead of reads on worker threads; what an earlier server's clients read first
  // (a boot's reads) is decoded now, while the client starts.
  blobs.startPrefetch(repo.objects);
  for (const e of exports) {
    const blocks = loadReadProfile(repo.dataDir, e.disk, e.size);
    if (blocks.length) e.reader.prefetch(blocks.map((b) => ({ offset: b * PROFILE_BLOCK, length: PROFILE_BLOCK })));
  }
  return {
    exports: exports.map(({ name, rev, commit, disk, size, fromTree }) => ({ name, rev, commit, disk, size, ...(fromTree ? { fromTree } : {}) })),
    stats: () => ({
      bytesRead: exports.reduce((n, e) => n + e.bytesRead, 0),
      bytesFetched: exports.reduce((n, e) => n + (e.fetcher?.stats.bytes ?? 0), mapBytes),
      fetchRequests: exports.reduce((n, e) => n + (e.fetcher?.stats.requests ?? 0), 0),
    }),
    uris,
    warnings,
    ...(session ? { session } : {}),
    close: () => new Promise<void>((resolve, reject) => {
      for (const s of sockets) s.destroy();
      server.close(() => {
        void blobs.close();
        for (const e of exports) saveReadProfile(repo.dataDir, e.disk, e.profile);
        if (options.socket !== undefined) fs.rmSync(options.socket, { force: true });
        // The last flush of a writable session can fail (a full disk): the caller reports it.
        try {
          closeOverlays();
        } catch (e) {
          reject(e);
          return;
        }
        resolve();
      });
    }),
  };
}

/** The TLS context of --tls-cert/--tls-key: SourceReadError naming a file that cannot be read, UsageError for bad PEM. */
function tlsContextOf(files: { cert: string; key: string }): tls.SecureContext {
  const read = (file: string) => {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw new SourceReadError(file, systemReason(e));
    }
  };
  const cert = read(files.cert);
  const key = read(files.key);
  try {
    return tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  } catch (e) {
    throw new UsageError(`--tls-cert '${files.cert}' and --tls-key '${files.key}' are not a matching PEM certificate and key: ${(e as Error).message}`);
  }
}

function listen(server: net.Server, where: net.ListenOptions, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new UsageError(`cannot listen on ${what}: ${systemReason(e)}`)));
    server.listen(where, () => resolve());
  });
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || /^::ffff:127\./i.test(host);
}

/** Client-chosen text as it may go into the log: control characters (a forged second line) shown as '?', at most 200 characters. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, '?').slice(0, 200);
}

/** An export name as a URI path (slashes kept: qemu takes the whole path as the name). */
function uriName(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/** The connection ended; `reason` goes to the log line. */
class Closed extends Error {}

/** Buffered exact-length reads from a socket. */
class SocketReader {
  private bufs: Buffer[] = [];
  private have = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private ended: Error | undefined;

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- node's own listener type
  private readonly listeners: Array<[string, (...a: any[]) => void]>;

  constructor(private readonly sock: net.Socket) {
    const end = (e: Error) => {
      this.ended ??= e;
      this.pump();
    };
    this.listeners = [
      ['data', (d: Buffer) => {
        this.bufs.push(d);
        this.have += d.length;
        // A client that sends faster than we answer waits in TCP, not in our memory.
        if (this.have > 2 * MAX_REQUEST_BYTES) sock.pause();
        this.pump();
      }],
      ['end', () => end(new Closed('client closed the connection'))],
      ['close', () => end(new Closed('connection closed'))],
      ['error', (e: Error) => end(new Closed(`connection error: ${systemReason(e)}`))],
    ];
    for (const [ev, f] of this.listeners) sock.on(ev, f);
  }

  /**
   * Stops reading the socket (TLS takes it over after NBD_OPT_STARTTLS); returns how many bytes were buffered and
   * not read: a client must send nothing more before the TLS handshake.
   */
  detach(): number {
    for (const [ev, f] of this.listeners) this.sock.off(ev, f);
    return this.have;
  }

  private take(n: number): Buffer {
    const all = this.bufs.length === 1 ? this.bufs[0]! : Buffer.concat(this.bufs);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.bufs = rest.length ? [rest] : [];
    this.have -= n;
    if (this.have <= MAX_REQUEST_BYTES) this.sock.resume();
    return out;
  }

  private pump(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.have >= w.n) {
      this.waiter = undefined;
      w.resolve(this.take(w.n));
    } else if (this.ended) {
      this.waiter = undefined;
      w.reject(this.have ? new Closed(`${this.ended.message} in the middle of a message`) : this.ended);
    }
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.pump();
    });
  }

  /** Reads and drops `n` bytes (a refused write's payload) without holding them all. */
  async skip(n: number): Promise<void> {
    while (n > 0) {
      const k = Math.min(n, 1 << 20);
      await this.read(k);
      n -= k;
    }
  }
}

/** One client: handshake, then requests until it disconnects. */
class Connection {
  readonly peer: string;
  readonly started = Date.now();
  exportName: string | undefined;
  requests = 0;
  bytesRead = 0;
  bytesWritten = 0;
  /** In a partial clone: bytes fetched from the promisor remote for this client's reads. */
  bytesFetched = 0;
  /** Requests answered with an error, and the first one's message. */
  failed = 0;
  firstError = '';
  private in: SocketReader;
  /** Whether NBD_OPT_STARTTLS made the connection a TLS one. */
  secure = false;
  private structured = false;
  private noZeroes = false;
  /** SET_META_CONTEXT's choice: for which export, and whether base:allocation was selected. */
  private meta: { name: string; allocation: boolean } | undefined;

  constructor(private sock: net.Socket, private readonly exports: LiveExport[], private readonly timeoutMs: number, private readonly tlsContext?: tls.SecureContext) {
    this.peer = sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : 'unix';
    this.in = new SocketReader(sock);
    sock.setNoDelay(true);
  }

  /** Runs the session; resolves with why it ended (never rejects). */
  async run(): Promise<string> {
    try {
      // A deadline for the whole handshake, not an idle timer: a byte every few seconds does not hold a slot forever.
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; this.sock.destroy(); }, this.timeoutMs);
      let ex: LiveExport | undefined;
      try {
        ex = await this.handshake();
      } catch (e) {
        if (timedOut) return `handshake timed out after ${this.timeoutMs / 1000}s`;
        throw e;
      } finally {
        clearTimeout(timer);
      }
      if (!ex) return 'aborted in the handshake';
      this.exportName = ex.name;
      return await this.transmission(ex);
    } catch (e) {
      if (e instanceof Closed) return e.message;
      return `error: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  /** Writes `parts` as one (a reply header and its data), then waits while the socket's buffer is full. */
  private async send(...parts: Buffer[]): Promise<void> {
    if (this.sock.destroyed) throw new Closed('connection closed');
    this.sock.cork();
    for (const p of parts) this.sock.write(p);
    this.sock.uncork();
    if (this.sock.writableNeedDrain) {
      await new Promise<void>((resolve, reject) => {
        const onClose = () => reject(new Closed('connection closed while sending'));
        this.sock.once('close', onClose);
        this.sock.once('drain', () => { this.sock.off('close', onClose); resolve(); });
      });
    }
  }

  /** Hands the socket to TLS (NBD_OPT_STARTTLS was acknowledged); the negotiation goes on inside it. */
  private async startTls(): Promise<void> {
    if (this.in.detach()) throw new Closed('client sent data before the TLS handshake');
    const raw = this.sock;
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.tlsContext! });
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', () => resolve());
      secure.once('error', (e) => reject(new Closed(`TLS handshake failed: ${systemReason(e)}`)));
      secure.once('close', () => reject(new Closed('connection closed in the TLS handshake')));
    });
    secure.on('error', () => undefined);
    this.sock = secure;
    this.in = new SocketReader(secure);
    secure.setNoDelay(true);
    this.secure = true;
  }

  private find(name: string): LiveExport | undefined {
    return name === '' ? this.exports[0] : this.exports.find((e) => e.name === name);
  }

  private transmissionFlags(ex: LiveExport): number {
    // Connections to one writable export share its overlay in this process: a flush on one covers all (multi-conn).
    let f = TFLAG.HAS_FLAGS | TFLAG.SEND_FLUSH | TFLAG.CAN_MULTI_CONN | TFLAG.SEND_CACHE;
    f |= ex.overlay ? TFLAG.SEND_FUA | TFLAG.SEND_TRIM | TFLAG.SEND_WRITE_ZEROES : TFLAG.READ_ONLY;
    if (this.structured) f |= TFLAG.SEND_DF;
    return f;
  }

  /** Fixed newstyle negotiation; resolves with the export chosen, or undefined after NBD_OPT_ABORT. */
  private async handshake(): Promise<LiveExport | undefined> {
    await this.send(encodeGreeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
    const cflags = (await this.in.read(4)).readUInt32BE(0);
    if (cflags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) throw new Closed(`unknown client flags 0x${cflags.toString(16)}`);
    const fixed = (cflags & FLAG_C_FIXED_NEWSTYLE) !== 0;
    this.noZeroes = (cflags & FLAG_C_NO_ZEROES) !== 0;
    for (;;) {
      const h = await this.in.read(16);
      if (h.readBigUInt64BE(0) !== IHAVEOPT) throw new Closed('bad option magic');
      const opt = h.readUInt32BE(8);
      const len = h.readUInt32BE(12);
      if (len > MAX_OPTION_BYTES) throw new Closed(`option ${opt} of ${len} bytes is too long`);
      const data = await this.in.read(len);
      const reply = (type: number, payload?: Uint8Array) => this.send(encodeOptReply(opt, type, payload));
      const invalid = (why: string) => reply(REP.ERR_INVALID, Buffer.from(why));
      if (!fixed && opt !== OPT.EXPORT_NAME) throw new Closed(`option ${opt} from a client without fixed newstyle`);
      // A server with a certificate serves nothing in clear: only STARTTLS (and ABORT) before TLS.
      if (this.tlsContext && !this.secure && opt !== OPT.STARTTLS && opt !== OPT.ABORT) {
        if (opt === OPT.EXPORT_NAME) throw new Closed('NBD_OPT_EXPORT_NAME without TLS: this server requires NBD_OPT_STARTTLS');
        await reply(REP.ERR_TLS_REQD, Buffer.from('this server requires TLS: send NBD_OPT_STARTTLS first'));
        continue;
      }
      switch (opt) {
        case OPT.STARTTLS: {
          if (!this.tlsContext) { await reply(REP.ERR_UNSUP, Buffer.from('TLS is not enabled on this server (--tls-cert, --tls-key)')); break; }
          if (this.secure) { await invalid('TLS is already on'); break; }
          if (len) { await invalid('NBD_OPT_STARTTLS takes no data'); break; }
          await reply(REP.ACK);
          await this.startTls();
          break;
        }
        case OPT.EXPORT_NAME: {
          const ex = this.find(data.toString('utf8'));
          // No way to refuse an export name but to hang up (the reason for NBD_OPT_GO).
          if (!ex) throw new Closed(`unknown export '${printable(data.toString('utf8'))}'`);
          const b = Buffer.alloc(this.noZeroes ? 10 : 134);
          b.writeBigUInt64BE(BigInt(ex.size), 0);
          b.writeUInt16BE(this.transmissionFlags(ex), 8);
          await this.send(b);
          return ex;
        }
        case OPT.ABORT:
          await reply(REP.ACK);
          return undefined;
        case OPT.LIST: {
          if (len) { await invalid('NBD_OPT_LIST takes no data'); break; }
          for (const e of this.exports) {
            const name = Buffer.from(e.name);
            const desc = Buffer.from(`${e.commit.slice(0, 12)} (${e.size} bytes)`);
            const b = Buffer.alloc(4 + name.length + desc.length);
            b.writeUInt32BE(name.length, 0);
            name.copy(b, 4);
            desc.copy(b, 4 + name.length);
            await reply(REP.SERVER, b);
          }
          await reply(REP.ACK);
          break;
        }
        case OPT.INFO:
        case OPT.GO: {
          const p = parseNameAndInfos(data);
          if (typeof p === 'string') { await invalid(p); break; }
          const ex = this.find(p.name);
          if (!ex) { await reply(REP.ERR_UNKNOWN, Buffer.from(`no export '${p.name}'`)); break; }
          const info = Buffer.alloc(12);
          info.writeUInt16BE(INFO.EXPORT, 0);
          info.writeBigUInt64BE(BigInt(ex.size), 2);
          info.writeUInt16BE(this.transmissionFlags(ex), 10);
          await reply(REP.INFO, info);
          if (p.infos.includes(INFO.NAME)) await reply(REP.INFO, Buffer.concat([u16(INFO.NAME), Buffer.from(ex.name)]));
          if (p.infos.includes(INFO.DESCRIPTION)) await reply(REP.INFO, Buffer.concat([u16(INFO.DESCRIPTION), Buffer.from(`${ex.rev} (commit ${ex.commit.slice(0, 12)})`)]));
          if (p.infos.includes(INFO.BLOCK_SIZE)) {
            const b = Buffer.alloc(14);
            b.writeUInt16BE(INFO.BLOCK_SIZE, 0);
            b.writeUInt32BE(1, 2);
            b.writeUInt32BE(4096, 6);
            b.writeUInt32BE(MAX_REQUEST_BYTES, 10);
            await reply(REP.INFO, b);
          }
          await reply(REP.ACK);
          if (opt === OPT.GO) {
            // Meta contexts chosen for another export do not carry over.
            if (this.meta && this.meta.name !== ex.name && !(this.meta.name === '' && ex === this.exports[0])) this.meta = undefined;
            return ex;
          }
          break;
        }
        case OPT.STRUCTURED_REPLY:
          if (len) { await invalid('NBD_OPT_STRUCTURED_REPLY takes no data'); break; }
          this.structured = true;
          await reply(REP.ACK);
          break;
        case OPT.LIST_META_CONTEXT:
        case OPT.SET_META_CONTEXT: {
          if (!this.structured) { await invalid('meta contexts need structured replies (NBD_OPT_STRUCTURED_REPLY first)'); break; }
          const p = parseMetaQuery(data);
          if (typeof p === 'string') { await invalid(p); break; }
          if (!this.find(p.name)) { await reply(REP.ERR_UNKNOWN, Buffer.from(`no export '${p.name}'`)); break; }
          const list = opt === OPT.LIST_META_CONTEXT;
          const match = list
            ? p.queries.length === 0 || p.queries.some((q) => q === 'base:' || q === BASE_ALLOCATION)
            : p.queries.includes(BASE_ALLOCATION);
          if (match) {
            const b = Buffer.alloc(4 + BASE_ALLOCATION.length);
            b.writeUInt32BE(BASE_ALLOCATION_ID, 0);
            b.write(BASE_ALLOCATION, 4);
            await reply(REP.META_CONTEXT, b);
          }
          if (!list) this.meta = { name: p.name, allocation: match };
          await reply(REP.ACK);
          break;
        }
        default:
          await reply(REP.ERR_UNSUP, Buffer.from(`option ${opt} is not supported`));
      }
    }
  }

  /** Requests until NBD_CMD_DISC or the client goes; resolves with the reason. */
  private async transmission(ex: LiveExport): Promise<string> {
    for (;;) {
      const h = await this.in.read(REQUEST_BYTES);
      if (h.readUInt32BE(0) !== REQUEST_MAGIC) throw new Closed(`bad request magic 0x${h.readUInt32BE(0).toString(16)}`);
      const flags = h.readUInt16BE(4);
      const type = h.readUInt16BE(6);
      const cookie = Buffer.from(h.subarray(8, 16));
      const offset = Number(h.readBigUInt64BE(16));
      const length = h.readUInt32BE(24);
      this.requests++;
      const inRange = offset + length <= ex.size;
      switch (type) {
        case CMD.DISC:
          ex.overlay?.flush();
          return 'disconnected';
        case CMD.READ: {
          if (length > MAX_REQUEST_BYTES) { await this.fail(cookie, NBD_ERR.EINVAL, `read of ${length} bytes exceeds the ${MAX_REQUEST_BYTES}-byte maximum`); break; }
          if (!inRange) { await this.fail(cookie, NBD_ERR.EINVAL, `read of ${length} bytes at ${offset} beyond the ${ex.size}-byte disk`); break; }
          await this.read(ex, cookie, offset, length, (flags & CMD_FLAG.DF) !== 0);
          break;
        }
        case CMD.WRITE: {
          // The payload follows the header: read past it to stay in step, unless it is too big to be honest.
          if (length > MAX_REQUEST_BYTES) {
            await this.fail(cookie, NBD_ERR.EINVAL, `write of ${length} bytes exceeds the ${MAX_REQUEST_BYTES}-byte maximum`);
            throw new Closed(`write of ${length} bytes refused and the connection closed`);
          }
          if (!ex.overlay || !inRange) {
            await this.in.skip(length);
            if (!ex.overlay) await this.fail(cookie, NBD_ERR.EPERM, 'the export is read-only');
            else await this.fail(cookie, NBD_ERR.ENOSPC, `write of ${length} bytes at ${offset} beyond the ${ex.size}-byte disk`);
            break;
          }
          const data = await this.in.read(length);
          await this.change(ex.overlay, cookie, flags, () => ex.overlay!.write(offset, data));
          this.bytesWritten += length;
          break;
        }
        case CMD.TRIM:
        case CMD.WRITE_ZEROES:
          if (!ex.overlay) { await this.fail(cookie, NBD_ERR.EPERM, 'the export is read-only'); break; }
          if (!inRange) { await this.fail(cookie, NBD_ERR.ENOSPC, `${type === CMD.TRIM ? 'trim' : 'write-zeroes'} of ${length} bytes at ${offset} beyond the ${ex.size}-byte disk`); break; }
          await this.change(ex.overlay, cookie, flags, () => ex.overlay!.zero(offset, length, type === CMD.TRIM));
          break;
        case CMD.RESIZE:
          await this.fail(cookie, ex.overlay ? NBD_ERR.ENOTSUP : NBD_ERR.EPERM, ex.overlay ? 'the export cannot be resized' : 'the export is read-only');
          break;
        case CMD.FLUSH:
          if (ex.overlay) await this.change(ex.overlay, cookie, CMD_FLAG.FUA, () => undefined);
          else await this.ok(cookie);
          break;
        case CMD.CACHE:
          if (!inRange) await this.fail(cookie, NBD_ERR.EINVAL, `cache of ${length} bytes at ${offset} beyond the ${ex.size}-byte disk`);
          else await this.ok(cookie);
          break;
        case CMD.BLOCK_STATUS: {
          if (!this.structured || !this.meta?.allocation) { await this.fail(cookie, NBD_ERR.EINVAL, 'no meta context was negotiated'); break; }
          if (!inRange || length === 0) { await this.fail(cookie, NBD_ERR.EINVAL, `block status of ${length} bytes at ${offset} outside the ${ex.size}-byte disk`); break; }
          await this.blockStatus(ex, cookie, offset, length, (flags & CMD_FLAG.REQ_ONE) !== 0);
          break;
        }
        default:
          await this.fail(cookie, NBD_ERR.EINVAL, `unknown command ${type}`);
      }
    }
  }

  /** A write, write-zeroes, trim or flush on the overlay; FUA: flushed before the reply. I/O errors are EIO to the client. */
  private async change(overlay: Overlay, cookie: Buffer, flags: number, apply: () => void): Promise<void> {
    try {
      apply();
      if (flags & CMD_FLAG.FUA) overlay.flush();
    } catch (e) {
      if (!(e instanceof VivaError) && !(e instanceof RangeError) && typeof (e as NodeJS.ErrnoException).code !== 'string') throw e;
      await this.fail(cookie, (e as NodeJS.ErrnoException).code === 'ENOSPC' ? NBD_ERR.ENOSPC : NBD_ERR.EIO, `cannot write the overlay: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    await this.ok(cookie);
  }

  private async ok(cookie: Buffer): Promise<void> {
    await this.send(this.structured ? encodeChunkHeader(REPLY_FLAG_DONE, REPLY_TYPE.NONE, cookie, 0) : encodeSimpleReply(0, cookie));
  }

  private async fail(cookie: Buffer, error: number, message: string): Promise<void> {
    if (!this.failed++) this.firstError = message;
    await this.send(this.structured ? encodeErrorChunk(cookie, error, message) : encodeSimpleReply(error, cookie));
  }

  private async read(ex: LiveExport, cookie: Buffer, offset: number, length: number, dontFragment: boolean): Promise<void> {
    let parts: Buffer[];
    try {
      if (ex.fetcher) {
        const before = ex.fetcher.stats.bytes;
        await ex.fetcher.ensure(offset, length);
        this.bytesFetched += ex.fetcher.stats.bytes - before;
      }
      // A writable export reads through its overlay; the base's chunks are decoded ahead only without one.
      if (!ex.overlay) await ex.reader.prepare(offset, length);
      const bytes = (o: number, n: number): Buffer[] => (ex.overlay ? [ex.overlay.read(o, n)] : ex.reader.readParts(o, n));
      if (!this.structured) {
        parts = [encodeSimpleReply(0, cookie), ...bytes(offset, length)];
      } else {
        // Data stretches (with the short zero runs between them) as OFFSET_DATA chunks, long zero runs as OFFSET_HOLE.
        const segs = dontFragment ? [{ offset, length, zero: false }] : coarse((ex.overlay ?? ex.reader).extents(offset, length));
        parts = [];
        if (!segs.length) parts.push(encodeChunkHeader(REPLY_FLAG_DONE, REPLY_TYPE.NONE, cookie, 0));
        segs.forEach((s, i) => {
          const flags = i === segs.length - 1 ? REPLY_FLAG_DONE : 0;
          const at = Buffer.alloc(8);
          at.writeBigUInt64BE(BigInt(s.offset));
          if (s.zero) {
            const b = Buffer.alloc(4);
            b.writeUInt32BE(s.length);
            parts.push(encodeChunkHeader(flags, REPLY_TYPE.OFFSET_HOLE, cookie, 12), at, b);
          } else {
            parts.push(encodeChunkHeader(flags, REPLY_TYPE.OFFSET_DATA, cookie, 8 + s.length), at, ...bytes(s.offset, s.length));
          }
        });
      }
    } catch (e) {
      // A damaged object is the repository's problem, reported to this client as an I/O error; the server goes on.
      if (!(e instanceof VivaError) && !(e instanceof RangeError)) throw e;
      const msg = e instanceof RepositoryCorruptError ? e.message : `cannot read: ${e.message}`;
      await this.fail(cookie, NBD_ERR.EIO, msg);
      return;
    }
    this.bytesRead += length;
    ex.bytesRead += length;
    ex.profile.note(offset, length);
    await this.send(...parts);
  }

  private async blockStatus(ex: LiveExport, cookie: Buffer, offset: number, length: number, one: boolean): Promise<void> {
    let extents;
    try {
      extents = coarse((ex.overlay ?? ex.reader).extents(offset, length));
    } catch (e) {
      if (!(e instanceof VivaError)) throw e;
      await this.fail(cookie, NBD_ERR.EIO, e.message);
      return;
    }
    if (one) extents = extents.slice(0, 1);
    const b = Buffer.alloc(4 + 8 * extents.length);
    b.writeUInt32BE(BASE_ALLOCATION_ID, 0);
    extents.forEach((x, i) => {
      b.writeUInt32BE(x.length, 4 + 8 * i);
      b.writeUInt32BE(x.zero ? STATE_HOLE | STATE_ZERO : 0, 8 + 8 * i);
    });
    await this.send(Buffer.concat([encodeChunkHeader(REPLY_FLAG_DONE, REPLY_TYPE.BLOCK_STATUS, cookie, b.length), b]));
  }
}

/**
 * Extents with zero stretches shorter than {@link HOLE_MIN} folded into the data around them: fewer, larger reads
 * for a client that reads data extents one by one (qemu-img convert), and fewer hole chunks. Data may hold zeros.
 */
function coarse(extents: DiskExtent[]): DiskExtent[] {
  const out: DiskExtent[] = [];
  for (const x of extents) {
    const zero = x.zero && x.length >= HOLE_MIN;
    const last = out[out.length - 1];
    if (last && last.zero === zero) last.length += x.length;
    else out.push({ offset: x.offset, length: x.length, zero });
  }
  return out;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** NBD_OPT_INFO / NBD_OPT_GO data: u32 name length, name, u16 count, u16 info types. A string: why it is malformed. */
function parseNameAndInfos(d: Buffer): { name: string; infos: number[] } | string {
  if (d.length < 6) return 'option data too short';
  const n = d.readUInt32BE(0);
  if (n > d.length - 6) return 'export name length exceeds the option';
  const name = d.subarray(4, 4 + n).toString('utf8');
  const count = d.readUInt16BE(4 + n);
  if (d.length !== 6 + n + 2 * count) return 'information request count does not match the option length';
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(d.readUInt16BE(6 + n + 2 * i));
  return { name, infos };
}

/** NBD_OPT_LIST/SET_META_CONTEXT data: u32 name length, name, u32 query count, each u32 length + query. */
function parseMetaQuery(d: Buffer): { name: string; queries: string[] } | string {
  if (d.length < 8) return 'option data too short';
  const n = d.readUInt32BE(0);
  if (n > d.length - 8) return 'export name length exceeds the option';
  const name = d.subarray(4, 4 + n).toString('utf8');
  const count = d.readUInt32BE(4 + n);
  let at = 8 + n;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > d.length) return 'query count exceeds the option';
    const len = d.readUInt32BE(at);
    if (len > d.length - at - 4) return 'query length exceeds the option';
    queries.push(d.subarray(at + 4, at + 4 + len).toString('utf8'));
    at += 4 + len;
  }
  if (at !== d.length) return 'trailing bytes after the queries';
  return { name, queries };
}
