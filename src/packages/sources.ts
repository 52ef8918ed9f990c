/**
 * The package sources of `viva install --from SOURCE` (the flag may repeat): each is opened into one PackageUniverse,
 * in the order given (apt's order of sources.list lines), and a chosen package's .deb is fetched as a local file whose
 * size and SHA256 are those its index gives.
 *
 * A SOURCE is a directory or an `http://` / `https://` URL, optionally followed, space-separated as in a sources.list
 * line without its leading `deb`, by a suite and components:
 *
 * - `DIR`, a directory of `.deb` files (no `dists/`, no `Packages*` at its top): every `*.deb` below it, read once and
 *   remembered by file identity (readDebDirectory). Kind `debs`. Not available over HTTP: a URL cannot be listed.
 * - `DIR` with `dists/` (a Debian repository: `dists/SUITE/COMPONENT/binary-ARCH/Packages[.gz|.xz]` plus `pool/`):
 *   every suite and component. `DIR SUITE [COMPONENT…]` reads one suite (all its components, or those named).
 *   Kind `repository`.
 * - `DIR` with `Packages`, `Packages.gz` or `Packages.xz` at its top (a flat repository, apt's `deb URL ./`, what
 *   `dpkg-scanpackages . > Packages` makes): Filename fields are relative to the directory. `DIR SUBDIR/` (a suite
 *   ending in '/', no components) reads the index in SUBDIR, Filename fields still relative to DIR, as apt does.
 *   Kind `flat`.
 * - `URL SUITE [COMPONENT…]`: a repository over HTTP (components, when not named, from the suite's Release file);
 *   `URL` alone: a flat repository over HTTP (`URL/Packages.xz`, `.gz`, or plain); `URL SUBDIR/` as for a directory.
 *
 * Only packages of the image's architecture and `all` are taken (a repository's `binary-ARCH` and `binary-all`
 * indexes; from a flat index or a .deb directory, by their Architecture field). A suite's `InRelease` or `Release`
 * file (at the top of a flat repository too), when there is one, must agree with the SHA256 and size of each index it
 * lists; its signature is not checked (the sources are trusted, as apt's `[trusted=yes]`). Over HTTP a 404 is a
 * missing file, any other status but 2xx an error, and a response silent for VIVA_HTTP_TIMEOUT seconds (default 60)
 * fails; indexes are read anew each time.
 *
 * fetch checks every file it hands out against the Size and SHA256 of its index: a local file is hashed (unless the
 * .deb directory's cache says it is unchanged since it was hashed), a download is hashed and counted as it arrives and
 * kept in `cacheDir/debs/SHA256.deb` only when both match, so a package is downloaded once (a cached copy is hashed
 * again before use). A package whose index gives no SHA256 is not downloaded; a Filename with '..' or a leading '/'
 * is refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import path from 'node:path';
import { AbortedError, CorruptInputError, SourceReadError, UnsafeInputError, UsageError, VivaError, WriteError, systemReason } from '../errors.js';
import { idleMs, withIdleTimeout } from '../http.js';
import { type DebIndexCache, lookupDebHash, readDebDirectory } from './deb-directory.js';
import { hashDeb } from './deb.js';
import {
  type PackageCandidate, PackageUniverse, type SourceFiles, type SourceReadResult, localSourceFiles, readRepositoryFiles, tryReadFlatRepository,
} from './source.js';

/** The most bytes an index file (Packages.xz, Release, ...) may have over HTTP before the source is refused. */
export const MAX_REMOTE_INDEX_SIZE = 512 << 20;

/** Index names over HTTP, smallest first: each miss costs a request, each byte a transfer. */
const REMOTE_INDEX_NAMES = ['Packages.xz', 'Packages.gz', 'Packages'] as const;

/** What a package source was read as: a directory of .deb files, an apt repository (`dists/`), or a flat repository. */
export type SourceKind = 'debs' | 'repository' | 'flat';

/** The options of {@link openSources}: the image's architecture, the download cache and the control-data cache. */
export interface OpenSourcesOptions {
  /** The image's dpkg architecture (`amd64`); packages of `all` are taken too. */
  arch: string;
  /** Where downloaded .debs are kept (`debs/SHA256.deb`), created when needed: `<repo>/.viva/cache/packages`. */
  cacheDir: string;
  /** Control data of .deb directories, remembered by file identity (readDebDirectory); also spares fetch a rehash. */
  indexCache?: DebIndexCache;
  /** Aborts reading the sources and any fetch (AbortedError). */
  signal?: AbortSignal;
}

/** One package source as given and as read. */
export interface OpenedSource {
  /** The source as given. */
  spec: string;
  kind: SourceKind;
  /** The directory (absolute) or URL (ending in '/') that its candidates' `origin` gives. */
  root: string;
  /** Stanzas of the image's architecture and `all` it offered (a version an earlier source gave too included). */
  packages: number;
}

/** Every package the sources offer ({@link openSources}), with each source as read. */
export interface PackageSources {
  /** Every package of every source; a version two sources offer is the first one's. */
  universe: PackageUniverse;
  /** Each source as given and what it was read as, in order. */
  sources: OpenedSource[];
  /**
   * A local path of the candidate's .deb, its size and SHA256 checked against what its index says: the file in a
   * local source, or a download kept in the cache. Throws CorruptInputError when they differ (naming the index and
   * the package), SourceReadError when the file cannot be read or downloaded, UnsafeInputError for a Filename outside
   * the source, WriteError when the cache cannot be written, AbortedError on `signal`.
   */
  fetch(c: PackageCandidate): Promise<string>;
}

/** One source spec, parsed. */
interface SourceSpec {
  spec: string;
  /** An absolute directory, or a URL ending in '/'. */
  root: string;
  remote: boolean;
  suite?: string;
  components?: string[];
}

/**
 * Opens every source in `specs` (forms in the module comment) into one universe, in order.
 *
 * Throws: UsageError (a malformed spec: empty, a sources.list line with `deb`, another URL scheme, components after
 * a flat path, a file instead of a directory), SourceReadError (a directory or URL that cannot be read, an index
 * missing: names the path or URL and the reason, `404 Not Found` for HTTP), CorruptInputError (an index whose
 * Release checksum differs, a bad stanza, a broken .deb in a directory), UnsupportedInputError (`.xz` without `xz`),
 * AbortedError on `signal`.
 *
 * @example
 * const { universe, fetch } = await openSources(['/srv/debs', 'https://deb.example.org/debian bookworm main'], { arch: 'amd64', cacheDir });
 * const file = await fetch(universe.lookupVersions('htop')[0]!);
 */
export async function openSources(specs: string[], options: OpenSourcesOptions): Promise<PackageSources> {
  const parsed = specs.map(parseSourceSpec);
  const universe = new PackageUniverse();
  const sources: OpenedSource[] = [];
  for (const s of parsed) {
    if (options.signal?.aborted) throw new AbortedError();
    const { kind, packages } = await openSource(s, universe, options);
    sources.push({ spec: s.spec, kind, root: s.root, packages });
  }
  const ctx: FetchContext = { options, kinds: new Map() };
  for (const s of sources) if (!ctx.kinds.has(s.root)) ctx.kinds.set(s.root, s.kind);
  return { universe, sources, fetch: (c) => fetchCandidate(c, ctx) };
}

/** `ROOT [SUITE [COMPONENT…]]`; throws UsageError. */
function parseSourceSpec(spec: string): SourceSpec {
  const words = spec.trim().split(/\s+/).filter(Boolean);
  const bad = (reason: string): never => { throw new UsageError(`package source '${spec}': ${reason}`, { spec }); };
  if (words.length === 0) bad('empty: give a directory or an http(s) URL');
  const [first, suite, ...components] = words as [string, ...string[]];
  if (first === 'deb' || first === 'deb-src') bad(`give the sources.list line without '${first}': ROOT [SUITE [COMPONENT…]]`);
  if (suite?.endsWith('/') && components.length) bad(`a suite ending in '/' is a flat repository's directory and takes no components`);
  let root: string;
  let remote = false;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(first)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (scheme !== 'http' && scheme !== 'https') bad(`'${scheme}:' is not supported: give a directory or an http(s) URL`);
    let url: URL;
    try {
      url = new URL(first);
    } catch {
      return bad(`'${first}' is not a valid URL`);
    }
    if (url.username || url.password) bad('credentials in the URL are not supported');
    url.search = '';
    url.hash = '';
    root = url.href.endsWith('/') ? url.href : `${url.href}/`;
    remote = true;
  } else {
    root = path.resolve(first);
  }
  return { spec, root, remote, ...(suite !== undefined ? { suite } : {}), ...(components.length ? { components } : {}) };
}

/** The directory below the root that a suite ending in '/' names ('' for './'). */
function flatDir(suite: string): string {
  const d = path.posix.normalize(suite).replace(/\/+$/, '');
  return d === '.' ? '' : d;
}

async function openSource(s: SourceSpec, universe: PackageUniverse, options: OpenSourcesOptions): Promise<{ kind: SourceKind } & SourceReadResult> {
  const files = s.remote ? remoteSourceFiles(s.root, options.signal) : localSourceFiles(s.root);
  const repository = async () => ({
    kind: 'repository' as const,
    ...(await readRepositoryFiles(files, { arch: options.arch, universe, ...(s.suite ? { suite: s.suite } : {}), ...(s.components ? { components: s.components } : {}) })),
  });
  const flat = async (dir: string, missing: string) => {
    const r = await tryReadFlatRepository(files, { arch: options.arch, dir, universe });
    if (!r) throw new SourceReadError(files.locate(dir ? `${dir}/` : ''), missing);
    return { kind: 'flat' as const, ...r };
  };
  if (s.suite?.endsWith('/')) return flat(flatDir(s.suite), `no Packages index (${files.notFound})`);
  if (s.suite) return repository();
  if (s.remote) {
    return flat('', `no Packages index at its top (${files.notFound}), so not a flat repository: for one with dists/ give `
      + `'${s.root} SUITE [COMPONENT…]'; a directory of .deb files cannot be read over HTTP (it cannot be listed)`);
  }
  let top: fs.Dirent[];
  try {
    top = fs.readdirSync(s.root, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new UsageError(`package source '${s.spec}' is not a directory (give .deb files as package arguments, not with --from)`, { spec: s.spec });
    }
    throw new SourceReadError(s.root, systemReason(e), { cause: e });
  }
  if (top.some((d) => d.name === 'dists')) return repository(); // a directory, or a link to one
  if (top.some((d) => files.indexNames.includes(d.name))) return flat('', `no Packages index (${files.notFound})`);
  const r = await readDebDirectory(s.root, { arch: options.arch, universe, ...(options.indexCache ? { cache: options.indexCache } : {}) });
  return { kind: 'debs', universe, packages: r.packages };
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP.

/** `rel` (a path below a source's root, '/'-separated) as a URL below `root`, each segment percent-encoded. */
function urlBelow(root: string, rel: string): string {
  return new URL(rel.split('/').map(encodeURIComponent).join('/'), root).href;
}

/** `404 Not Found`. */
function statusLine(res: Response): string {
  return `${res.status} ${res.statusText || STATUS_CODES[res.status] || ''}`.trimEnd();
}

/** A GET whose body fails (SourceReadError, AbortedError) rather than hangs; `cancel` ends the transfer. */
interface RemoteResponse {
  res: Response;
  chunks: AsyncIterable<Uint8Array>;
  cancel(): void;
}

/**
 * GETs `url` (any status). Throws SourceReadError naming the URL when it cannot connect or no answer comes for the
 * idle time, AbortedError on `signal`.
 */
async function httpGet(url: string, signal: AbortSignal | undefined): Promise<RemoteResponse> {
  if (signal?.aborted) throw new AbortedError();
  const ms = idleMs();
  const idle = new AbortController();
  const timer = setTimeout(() => idle.abort(), ms);
  /** `during`: what was under way ('transfer cut off') when the connection failed. */
  const failed = (e: unknown, during?: string): VivaError => {
    if (signal?.aborted) return new AbortedError();
    if (e instanceof VivaError) return e;
    const cause = (e as { cause?: unknown }).cause;
    if (!cause) return new SourceReadError(url, (e as Error).message, { cause: e }); // the idle timeout's own words
    return new SourceReadError(url, `${during ? `${during}: ` : ''}${systemReason(cause)}`, { cause: e });
  };
  let res: Response;
  try {
    // identity: a server that compresses on the fly would make fetch hand over other bytes than the index hashes.
    res = await fetch(url, { signal: signal ? AbortSignal.any([idle.signal, signal]) : idle.signal, headers: { 'accept-encoding': 'identity' } });
  } catch (e) {
    throw idle.signal.aborted && !signal?.aborted ? new SourceReadError(url, `no answer for ${ms / 1000} s`) : failed(e);
  } finally {
    clearTimeout(timer);
  }
  async function* chunks(): AsyncGenerator<Uint8Array> {
    if (!res.body) return;
    try {
      yield* withIdleTimeout(res.body, ms, idle);
    } catch (e) {
      throw failed(e, 'transfer cut off');
    }
  }
  // Aborting ends the transfer whether or not a reader holds the body (the connection is dropped, not drained).
  return { res, chunks: chunks(), cancel: () => idle.abort() };
}

/** The body of `url`, or undefined on 404; any other status but 2xx is a SourceReadError naming URL and status. */
async function tryReadRemote(url: string, signal: AbortSignal | undefined): Promise<Buffer | undefined> {
  const { res, chunks, cancel } = await httpGet(url, signal);
  if (!res.ok) {
    cancel();
    if (res.status === 404) return undefined;
    throw new SourceReadError(url, statusLine(res));
  }
  const parts: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of chunks) {
    bytes += chunk.length;
    if (bytes > MAX_REMOTE_INDEX_SIZE) {
      cancel();
      throw new SourceReadError(url, `more than ${MAX_REMOTE_INDEX_SIZE} bytes: too large for an index`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** The files of a source over HTTP: read by GET, a 404 is a missing file, nothing can be listed. */
function remoteSourceFiles(root: string, signal: AbortSignal | undefined): SourceFiles {
  return {
    root,
    indexNames: REMOTE_INDEX_NAMES,
    notFound: '404 Not Found',
    locate: (rel) => urlBelow(root, rel),
    tryRead: (rel) => tryReadRemote(urlBelow(root, rel), signal),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Fetching a package.

/** `package 'app' 1.0 (amd64)`. */
function describe(c: PackageCandidate): string {
  return `package '${c.name}' ${c.version} (${c.arch})`;
}

/** The index a candidate's size and hash come from, for messages. */
function indexOf(c: PackageCandidate, kind: SourceKind | undefined): string {
  return kind === 'debs' ? `the index of the .deb directory '${c.origin}'` : `the Packages index of '${c.origin}'`;
}

function sizeMismatch(file: string, c: PackageCandidate, kind: SourceKind | undefined, has: string): CorruptInputError {
  return new CorruptInputError(file, describe(c), `${indexOf(c, kind)} says Size ${c.size}, the file has ${has}`);
}

function hashMismatch(file: string, c: PackageCandidate, kind: SourceKind | undefined, has: string): CorruptInputError {
  return new CorruptInputError(file, describe(c), `${indexOf(c, kind)} says SHA256 ${c.sha256}, the file has ${has}`);
}

/** What fetch keeps of openSources: the options, the kind of each root, and the sweep of the download cache. */
interface FetchContext {
  options: OpenSourcesOptions;
  kinds: Map<string, SourceKind>;
  /** Set by the first download. */
  swept?: Promise<void>;
}

async function fetchCandidate(c: PackageCandidate, ctx: FetchContext): Promise<string> {
  const { options } = ctx;
  if (options.signal?.aborted) throw new AbortedError();
  if (c.origin === undefined || c.filename === undefined) throw new Error(`${describe(c)} is not from a package source: nothing to fetch`);
  const segments = c.filename.split('/');
  if (c.filename.startsWith('/') || segments.includes('..')) {
    throw new UnsafeInputError(c.origin, describe(c), `Filename '${c.filename}' points outside the source`);
  }
  const kind = ctx.kinds.get(c.origin);
  if (/^https?:\/\//.test(c.origin)) return fetchRemote(urlBelow(c.origin, c.filename), c, kind, ctx);
  const file = path.join(c.origin, c.filename);
  await checkLocal(file, c, kind, kind === 'debs' ? options.indexCache : undefined);
  return file;
}

/**
 * Checks `file` against the candidate's Size and SHA256 (those the index gives). The hash is read from the file,
 * unless `cache` says the file has not changed since readDebDirectory hashed it. Returns whether the file exists.
 */
async function checkLocal(file: string, c: PackageCandidate, kind: SourceKind | undefined, cache: DebIndexCache | undefined, missingOk = false): Promise<boolean> {
  let st: fs.BigIntStats;
  try {
    st = await stat(file, { bigint: true });
  } catch (e) {
    if (missingOk && (e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new SourceReadError(file, systemReason(e), { cause: e });
  }
  if (!st.isFile()) throw new SourceReadError(file, 'not a regular file');
  if (c.size !== undefined && st.size !== BigInt(c.size)) throw sizeMismatch(file, c, kind, `${st.size} bytes`);
  if (c.sha256 === undefined) return true;
  const sha256 = lookupDebHash(cache, file, st) ?? await hashDeb(file);
  if (sha256 !== c.sha256) throw hashMismatch(file, c, kind, sha256);
  return true;
}

/**
 * The cached download of `url` if it is whole and right, else a new download: streamed into a temporary file in the
 * cache, hashed and counted on the way (a body longer than Size is cut off there), renamed into place only when both
 * match.
 */
async function fetchRemote(url: string, c: PackageCandidate, kind: SourceKind | undefined, ctx: FetchContext): Promise<string> {
  const { options } = ctx;
  // The SHA256 names the cached file, so it must be one (and without one a download could not be checked at all).
  if (c.sha256 === undefined || !/^[0-9a-f]{64}$/.test(c.sha256)) {
    throw new CorruptInputError(url, describe(c), `${indexOf(c, kind)} gives ${c.sha256 === undefined ? 'no SHA256' : `an invalid SHA256 '${c.sha256}'`}: a download could not be checked`);
  }
  const dir = path.join(options.cacheDir, 'debs');
  const cached = path.join(dir, `${c.sha256}.deb`);
  try {
    if (await checkLocal(cached, c, kind, undefined, true)) return cached;
  } catch (e) {
    // A damaged cache entry (a crash, a disk error, an edit): download it again.
    if (!(e instanceof CorruptInputError)) throw e;
    await rm(cached, { force: true });
  }
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new WriteError(dir, systemReason(e), { cause: e });
  }
  await (ctx.swept ??= removeStaleDownloads(dir));
  const { res, chunks, cancel } = await httpGet(url, options.signal);
  if (!res.ok) {
    cancel();
    throw new SourceReadError(url, statusLine(res));
  }
  const tmp = path.join(dir, `.${c.sha256}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  const writeFailed = (e: unknown) => new WriteError(tmp, systemReason(e), { cause: e });
  const out = await open(tmp, 'wx').catch((e: unknown) => { cancel(); throw writeFailed(e); });
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of chunks) {
      bytes += chunk.length;
      if (c.size !== undefined && bytes > c.size) {
        cancel();
        throw sizeMismatch(url, c, kind, 'more bytes than that');
      }
      hash.update(chunk);
      try {
        for (let done = 0; done < chunk.length;) done += (await out.write(chunk, done)).bytesWritten;
      } catch (e) {
        throw writeFailed(e);
      }
    }
    await out.close().catch((e: unknown) => { throw writeFailed(e); });
    if (c.size !== undefined && bytes !== c.size) throw sizeMismatch(url, c, kind, `${bytes} bytes`);
    const sha256 = hash.digest('hex');
    if (sha256 !== c.sha256) throw hashMismatch(url, c, kind, sha256);
    await rename(tmp, cached).catch((e: unknown) => { throw writeFailed(e); });
    return cached;
  } catch (e) {
    await out.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Removes the temporary files of downloads that nobody writes any more (a process killed mid-way): a live download
 * writes at least once per idle time, or fails.
 */
async function removeStaleDownloads(dir: string): Promise<void> {
  const before = Date.now() - 2 * idleMs();
  for (const name of await readdir(dir).catch(() => [])) {
    if (!name.endsWith('.part')) continue;
    const file = path.join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (st && st.mtimeMs < before) await rm(file, { force: true });
  }
}
