/**
 * Sync between repositories, as git does it: remotes by name, fetch into remote-tracking refs
 * (`refs/remotes/NAME/...`), fast-forward pull, push with compare-and-swap ref updates, clone, ls-remote.
 * Only missing objects move (see sync/transfer.ts); every received object is verified before it is stored; refs move
 * on the receiving side only when everything they need is durable.
 */
import { type MergeOpResult, merge } from './merge.js';
import fs from 'node:fs';
import path from 'node:path';
import { AbortedError, NotARepositoryError, RefConflictError, RefExistsError, RefNotFoundError, RemoteError, RepositoryExistsError, UsageError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { HEAD, HEADS, REMOTES, TAGS, assertRefName, shortRefName } from '../model/ref.js';
import { REPO_DIR, Repository, isBucketUrl } from '../store/repository.js';
import { parseS3Url } from '../store/remote/s3-backend.js';
import { readCommit } from '../store/typed.js';
import { LocalPeer, type Peer, receiveObjects, remoteSentBadObject } from '../sync/peer.js';
import { type BadObject, planTransfer } from '../sync/transfer.js';
import { HttpPeer, clientToken } from '../sync/http-peer.js';
import { type ObjectId, type StoredObject } from '../sync/peer.js';
import { ensureContent, imageBlobs, partialConfig, setContentFetcher, setPartial } from '../sync/partial.js';
import { defaultAuthor, type ProgressEvent } from './commit.js';
import { resolveRevision } from './resolve.js';
import { LOCAL_REMOTE, type UpstreamResult, readUpstream, setUpstream } from './upstream.js';

/** How often a transfer yields to the event loop (objects, stored bytes), so signal handlers run during a local one. */
const YIELD_EVERY_OBJECTS = 256;
const YIELD_EVERY_BYTES = 4 << 20;

/**
 * Passes objects through, reporting progress (objects as `files`, stored bytes) as they go by. Between repositories
 * on local paths nothing in the transfer waits for I/O, so it yields to the event loop every few hundred objects or
 * MB: without that a SIGINT handler (clone's abort) would never run before the end.
 */
async function* counted(objects: AsyncIterable<StoredObject>, total: number, phase: string, onProgress?: (e: ProgressEvent) => void, signal?: AbortSignal): AsyncGenerator<StoredObject> {
  let n = 0;
  let bytes = 0;
  let sinceYield = 0;
  for await (const o of objects) {
    if (n % YIELD_EVERY_OBJECTS === 0 || bytes - sinceYield >= YIELD_EVERY_BYTES) {
      await new Promise(setImmediate);
      sinceYield = bytes;
    }
    if (signal?.aborted) throw new AbortedError();
    n++;
    bytes += o.stored.length;
    onProgress?.({ phase, files: n, bytes, path: `${n}/${total} objects`, totalFiles: total });
    yield o;
  }
}

/** The options of {@link fetch}. */
export interface FetchOptions {
  /** HTTP remotes: the file the token is read from (default: the remote's own; VIVA_TOKEN overrides it). */
  tokenFile?: string;
  /** `manifests`: fetch commits, trees and package records but not file content (a partial fetch). */
  filter?: 'manifests';
  /** Move local tags that point elsewhere on the remote (git's `fetch --force`). */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

/** The options of {@link push}. */
export interface PushOptions {
  /** Allow updates that are not fast-forwards, and moving tags. */
  force?: boolean;
  /** HTTP remotes: the file the token is read from (default: the remote's own; VIVA_TOKEN overrides it). */
  tokenFile?: string;
  /** `push -u`: record each pushed branch's remote branch as its upstream. */
  setUpstream?: boolean;
  onProgress?: (e: ProgressEvent) => void;
}

/** The options of {@link clone}. */
export interface CloneOptions {
  /** The branch to check out as HEAD (default: the remote's HEAD branch). */
  branch?: string;
  /** HTTP remotes: the file the token is read from (VIVA_TOKEN overrides it). */
  tokenFile?: string;
  /** `manifests`: a partial clone, without file content (fetched later with fetchImageContent). */
  filter?: 'manifests';
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

/** The options of {@link pull}. */
export interface PullOptions {
  /** Refuse a diverged branch (RefConflictError) instead of merging. */
  ffOnly?: boolean;
  /** The merge commit's author (default: VIVA_AUTHOR, else user@host). */
  author?: string;
  onProgress?: (e: ProgressEvent) => void;
}

/** A configured remote (`viva remote add`), as listRemotes returns it. */
export interface RemoteConfig {
  name: string;
  url: string;
  /** HTTP remotes: the file the push token is read from (VIVA_TOKEN overrides it). */
  tokenFile?: string;
}

const REMOTES_KEY = 'remotes';

function remotesOf(repo: Repository): Record<string, { url: string; tokenFile?: string }> {
  return (repo.meta.get(REMOTES_KEY) as Record<string, { url: string; tokenFile?: string }> | undefined) ?? {};
}

/** The configured remotes, sorted by name (`viva remote -v`). Locking: none. */
export function listRemotes(repo: Repository): RemoteConfig[] {
  return Object.entries(remotesOf(repo)).map(([name, r]) => ({ name, url: r.url, ...(r.tokenFile ? { tokenFile: r.tokenFile } : {}) })).sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Checks a remote name: a valid single ref component path (it becomes refs/remotes/NAME/). */
function checkRemoteName(name: string): void {
  if (!name || name.includes('/')) throw new UsageError(`remote name '${name}' must be one non-empty component (no '/')`);
  assertRefName(`${REMOTES}${name}/x`);
}

/** A path URL is stored absolute (so it works from any directory); http(s) URLs as given. */
function normalizeUrl(url: string): string {
  // An s3:// URL is kept in its canonical form: endpoint and region (from the URL or the environment) but no secrets.
  if (url.startsWith('s3://')) return parseS3Url(url).url;
  // memory:// names an in-process bucket: for programs that embed viva (and tests), not for the command line.
  if (url.startsWith('memory://')) return url;
  if (/^https?:\/\//.test(url)) {
    try { new URL(url); } catch { throw new UsageError(`URL '${url}' is not a valid URL`); }
    return url;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new UsageError(`URL '${url}': only paths, http(s):// and s3:// URLs are supported`);
  return path.resolve(url);
}

/**
 * Configures the remote `name` at `url` (a path or an http(s):// URL; a path is made absolute), as `git remote add`.
 * Throws: InvalidRefNameError for a bad name, RefExistsError when the remote exists, UsageError for another URL scheme.
 *
 * @example
 * addRemote(repo, 'origin', 'https://images.example.com/viva');
 */
export function addRemote(repo: Repository, name: string, url: string, options: { tokenFile?: string } = {}): RemoteConfig {
  checkRemoteName(name);
  const all = remotesOf(repo);
  if (all[name]) throw new RefExistsError(name, `remote '${name}' already exists (${all[name]!.url})`);
  const u = normalizeUrl(url);
  const tokenFile = options.tokenFile ? path.resolve(options.tokenFile) : undefined;
  repo.meta.put(REMOTES_KEY, { ...all, [name]: { url: u, ...(tokenFile ? { tokenFile } : {}) } });
  return { name, url: u, ...(tokenFile ? { tokenFile } : {}) };
}

/**
 * Removes the remote `name` and its remote-tracking branches (`refs/remotes/NAME/…`), as `git remote remove`.
 * Throws: RefNotFoundError when there is no such remote.
 */
export async function removeRemote(repo: Repository, name: string): Promise<void> {
  const all = remotesOf(repo);
  if (!all[name]) throw new RefNotFoundError(name, `no such remote '${name}'`);
  delete all[name];
  const tracking = repo.refs.list(`${REMOTES}${name}/`);
  await repo.refs.update(tracking.map((r) => ({ ref: r.ref, newOid: null, message: `remote ${name} removed` })), defaultAuthor());
  repo.meta.put(REMOTES_KEY, all);
}

/**
 * `name` if it is a configured remote, else `name` itself as a URL (a path or http(s)://). As git, a bare word
 * (no '/', no ':', not '.' or '..') that names no remote is a path only if it exists; otherwise it is a remote name
 * the user misspelt: RefNotFoundError "no such remote".
 */
export function resolveRemote(repo: Repository | undefined, nameOrUrl: string, tokenFile?: string): { name?: string; url: string; tokenFile?: string } {
  const r = repo ? remotesOf(repo)[nameOrUrl] : undefined;
  const tf = tokenFile ?? r?.tokenFile;
  if (r) return { name: nameOrUrl, url: r.url, ...(tf ? { tokenFile: tf } : {}) };
  if (repo && /^[^/:\\]+$/.test(nameOrUrl) && nameOrUrl !== '.' && nameOrUrl !== '..' && !fs.existsSync(nameOrUrl)) {
    const names = Object.keys(remotesOf(repo));
    throw new RefNotFoundError(nameOrUrl, `no such remote '${nameOrUrl}'${names.length ? ` (remotes: ${names.join(', ')})` : ' (no remotes configured; add one with \'viva remote add\')'}`);
  }
  return { url: normalizeUrl(nameOrUrl), ...(tf ? { tokenFile: tf } : {}) };
}

/**
 * Opens the repository at a URL as a peer: a path, a `viva serve` URL, or a bucket (`s3://…`, read through a cache on
 * this host, `$VIVA_CACHE_DIR` or `~/.cache/viva`).
 */
export async function openPeer(remote: { url: string; tokenFile?: string }, mode: 'read' | 'write', signal?: AbortSignal): Promise<Peer> {
  if (/^https?:\/\//.test(remote.url)) return new HttpPeer(remote.url, clientToken(remote.tokenFile), signal);
  if (isBucketUrl(remote.url)) {
    try {
      return new LocalPeer(await Repository.connect(remote.url, mode), remote.url);
    } catch (e) {
      if (e instanceof NotARepositoryError) throw new RemoteError(remote.url, 'not a viva repository');
      throw e;
    }
  }
  // A path that holds no repository is an unreachable remote (exit 17), not a problem of the local repository.
  if (!fs.existsSync(remote.url)) throw new RemoteError(remote.url, 'no such repository (the path does not exist)');
  try {
    return new LocalPeer(await Repository.connect(remote.url, mode), remote.url);
  } catch (e) {
    if (e instanceof NotARepositoryError) throw new RemoteError(remote.url, 'not a viva repository');
    throw e;
  }
}

export interface TransferStats {
  objects: number;
  bytes: number;
  /** Objects the plan asked about (has-queries), and the round trips. */
  asked: number;
  queries: number;
}

/** What {@link fetch} did: the remote-tracking refs it moved, the tags it left alone, and the objects it copied. */
export interface FetchResult extends TransferStats {
  remote: string;
  url: string;
  updated: Array<{ ref: string; old: Oid | null; new: Oid }>;
  /** Local tags left as they are because the remote's tag of that name points elsewhere (git's "would clobber existing tag"). */
  rejected: Array<{ ref: string; remoteRef: string; old: Oid; new: Oid; reason: string }>;
  /** The remote's HEAD branch (full ref), if symbolic. */
  head?: string;
}

/** The namespaces a short ref name is looked up in, in git's order (rev-parse's rules, without remotes). */
const SHORT_NAMESPACES = [TAGS, HEADS];

/**
 * The full names a short ref name may stand for, in git's order: `tags/X` and `heads/X` are `refs/tags/X` and
 * `refs/heads/X` first (git's `refs/%s` rule), then NAME as a tag, then as a branch.
 */
function candidateRefs(name: string): string[] {
  const out = name.startsWith('tags/') || name.startsWith('heads/') ? [`refs/${name}`] : [];
  return [...out, ...SHORT_NAMESPACES.map((ns) => ns + name)];
}

/**
 * The full name a short ref name stands for among `names`, as git resolves a refspec's source: `refs/...` as given,
 * else `refs/tags/NAME` or `refs/heads/NAME`, whichever exists. Throws UsageError when both exist (as git's "src
 * refspec matches more than one"); a name that matches nothing comes back as `refs/heads/NAME` (for the caller's
 * not-found error).
 */
export function expandShortRef(name: string, names: Iterable<string>, where: string): string {
  if (name.startsWith('refs/')) return name;
  const have = new Set(names);
  const hits = candidateRefs(name).filter((n) => have.has(n));
  if (hits.length > 1) throw new UsageError(`'${name}' matches more than one ref ${where}: ${hits.join(', ')} (give the full name)`);
  return hits[0] ?? HEADS + name;
}

/** A destination ref: a full name as given, a short one in the namespace of `src` (a tag stays a tag). */
function sameNamespace(dst: string, src: string): string {
  if (dst.startsWith('refs/')) return dst;
  return (src.startsWith(TAGS) ? TAGS : HEADS) + dst;
}

/**
 * Fetches the remote's branches into `refs/remotes/NAME/...` (forced, as git's default refspec) and its tags into
 * `refs/tags/...` (new ones; a tag that exists here and points elsewhere there is rejected, as git's "would clobber existing tag", unless `force` or a +refspec). `refspecs` limit what is fetched: NAME (a short name is looked up as a tag, then a
 * branch, on the remote; both existing is an error) or [+]SRC:DST; a short DST stays in SRC's namespace.
 */
export async function fetch(repo: Repository, remote: string, refspecs: string[] = [], options: FetchOptions = {}): Promise<FetchResult> {
  const r = resolveRemote(repo, remote, options.tokenFile);
  // A partial clone keeps fetching manifests only from its promisor remote (a fetch by path or URL has no remote
  // name, and an ordinary repository has no promisor: both fetch everything).
  const promisor = partialConfig(repo)?.remote;
  const filter = options.filter ?? (promisor !== undefined && r.name !== undefined && promisor === r.name ? 'manifests' : undefined);
  const signal = options.signal;
  const peer = await openPeer(r, 'read', signal);
  try {
    const { refs, head } = await peer.listRefs();
    const trackingPrefix = r.name ? `${REMOTES}${r.name}/` : undefined;
    // Refspecs: NAME (a remote branch into its remote-tracking ref, a tag into refs/tags/) or [+]SRC:DST (into a
    // local ref of the same namespace as SRC unless DST is a full name; + allows non-fast-forward).
    const remoteNames = refs.map((x) => x.ref);
    const specs = refspecs.map((spec) => {
      const force = spec.startsWith('+');
      const body = force ? spec.slice(1) : spec;
      const i = body.indexOf(':');
      const src = i < 0 ? body : body.slice(0, i);
      const dst = i < 0 ? undefined : body.slice(i + 1);
      if (!src || dst === '') throw new UsageError(`refspec '${spec}' is not NAME or [+]SRC:DST`);
      const full = expandShortRef(src, remoteNames, `on ${r.url}`);
      return { src: full, ...(dst ? { dst: assertRefName(sameNamespace(dst, full)) } : {}), force };
    });
    const wanted = refs.filter((x) => {
      if (specs.length) return specs.some((s) => s.src === x.ref);
      return x.ref.startsWith(HEADS) || x.ref.startsWith(TAGS);
    });
    for (const x of wanted) assertRefName(x.ref);
    for (const s of specs) if (!refs.some((x) => x.ref === s.src)) throw new RefNotFoundError(s.src, `'${shortRefName(s.src)}' does not exist on ${r.url}`);
    const plan = await planTransfer(peer, (ids) => new LocalPeer(repo).has(ids), wanted.map((x) => x.oid), { ...(filter ? { filter } : {}), bad: remoteDamage(r.url) });
    const stats = await receiveObjects(repo, counted(peer.read(plan.objects), plan.objects.length, 'receiving', options.onProgress, signal), { bad: sentBadData(r.url) });
    if (signal?.aborted) throw new AbortedError();
    const updates: Array<{ ref: string; newOid: Oid; expectedOld: Oid | null; message: string }> = [];
    const rejected: FetchResult['rejected'] = [];
    // One remote ref may feed several refspecs (`v1 v1:copy`): each is one update.
    for (const [x, spec] of wanted.flatMap((x) => (specs.length ? specs.filter((s) => s.src === x.ref) : [undefined]).map((s) => [x, s] as const))) {
      let local: string | undefined;
      if (spec?.dst) local = spec.dst;
      else if (x.ref.startsWith(HEADS)) local = trackingPrefix ? `${trackingPrefix}${x.ref.slice(HEADS.length)}` : undefined;
      else local = x.ref;
      if (!local || updates.some((u) => u.ref === local)) continue;
      const old = repo.refs.resolve(local)?.oid ?? null;
      if (old === x.oid) continue;
      // As git: an existing tag is not moved by fetch (the update is rejected) unless forced.
      if (local.startsWith(TAGS) && old && !spec?.force && !options.force) {
        rejected.push({ ref: local, remoteRef: x.ref, old, new: x.oid, reason: 'would clobber existing tag' });
        continue;
      }
      // A refspec into a local branch fast-forwards only, unless it starts with '+'.
      if (spec?.dst && old && !spec.force && !isAncestor(repo, old, x.oid)) {
        throw new RefConflictError(local, old, x.oid, `${shortRefName(local)}: ${shortRefName(x.ref)} on ${r.url} is not a fast-forward of it (use +${shortRefName(x.ref)}:${shortRefName(local)} to force)`);
      }
      updates.push({ ref: local, newOid: x.oid, expectedOld: old, message: `fetch from ${r.url}` });
    }
    if (updates.length) await repo.refs.update(updates, defaultAuthor());
    return {
      remote: r.name ?? r.url, url: r.url, updated: updates.map((u) => ({ ref: u.ref, old: u.expectedOld, new: u.newOid })), rejected,
      ...stats, asked: plan.asked, queries: plan.queries, ...(head ? { head } : {}),
    };
  } catch (e) {
    // An aborted HTTP request surfaces as a transport error: say what happened instead.
    if (signal?.aborted) throw new AbortedError();
    throw e;
  } finally {
    await peer.close();
  }
}

/** A damaged object read from a remote is the remote's problem, not this repository's. */
function remoteDamage(url: string): BadObject {
  return (id, reason) => new RemoteError(url, `${id.kind} '${id.oid}' ${reason} (the remote repository is damaged)`);
}

/**
 * A received object that fails verification: the remote's problem too (exit 17). A repository on a local path sends
 * its stored bytes as they are, so there the remote is damaged; over HTTP the bytes may also have changed on the way.
 */
function sentBadData(url: string): BadObject {
  return remoteSentBadObject(url, /^https?:\/\//.test(url) ? 'the remote sent bad data' : 'the remote repository is damaged');
}

/** True when `ancestor` is `descendant` or one of its ancestors (both must be in `repo`). */
export function isAncestor(repo: Repository, ancestor: Oid, descendant: Oid): boolean {
  const seen = new Set<Oid>();
  const stack = [descendant];
  while (stack.length) {
    const c = stack.pop()!;
    if (c === ancestor) return true;
    if (seen.has(c)) continue;
    seen.add(c);
    if (!repo.objects.hasObject('commit', c)) continue;
    stack.push(...readCommit(repo.objects, c).parents);
  }
  return false;
}

/** One `SRC:DST` of a push (`parsePushSpec` reads git's refspec syntax). */
export interface PushSpec {
  /** Local revision (empty with delete). */
  src: string;
  /**
   * Remote ref: a full name, or a short one (looked up among the remote's tags and branches, else put in the
   * namespace of `src`: a tag stays a tag). Default: the full ref `src` names, or a branch of the same name.
   */
  dst?: string;
}

/** What {@link push} did: the remote refs it created, moved or deleted, and the objects it sent. */
export interface PushResult extends TransferStats {
  remote: string;
  url: string;
  updated: Array<{ ref: string; old: Oid | null; new: Oid | null; forced: boolean }>;
  /** push -u: the branches that now track what they were pushed to. */
  tracking?: UpstreamResult[];
}

/**
 * The remote `push` and `pull` use when none is named: the upstream remote of HEAD's branch, else `origin` (git's
 * rule). Locking: none.
 */
export function defaultRemote(repo: Repository): string {
  const head = repo.refs.read(HEAD)?.symref;
  const up = head ? readUpstream(repo, head) : undefined;
  return up && up.remote !== LOCAL_REMOTE ? up.remote : 'origin';
}

/**
 * What `push REMOTE` without a refspec pushes, as git's push.default=simple: HEAD's branch to its upstream branch
 * (which must have the same name) when REMOTE is the branch's remote (its upstream's, or `origin` without one); to a
 * branch of the same name on any other remote. Throws UsageError when HEAD is not on a branch, or the branch has no
 * upstream (unless `setUpstream`: `push -u REMOTE` then pushes it under its own name and records that).
 */
function simplePushSpec(repo: Repository, remoteName: string | undefined, remote: string, setUpstream: boolean): PushSpec {
  const head = repo.refs.read(HEAD)?.symref;
  if (!head?.startsWith(HEADS)) throw new UsageError(`you are not currently on a branch: name what to push (viva push ${remote} SRC[:DST])`);
  const name = head.slice(HEADS.length);
  const up = readUpstream(repo, head);
  if (remoteName === undefined || remoteName !== (up?.remote ?? 'origin') || (!up && setUpstream)) return { src: head, dst: head };
  if (!up) throw new UsageError(`the current branch '${name}' has no upstream branch: to push it and set the remote as upstream, use 'viva push -u ${remote} ${name}'`);
  if (up.merge !== head) {
    throw new UsageError(`the upstream branch of your current branch does not match the name of your current branch: to push to the upstream branch, use 'viva push ${remote} HEAD:${shortRefName(up.merge)}'; to push to the branch of the same name, use 'viva push ${remote} HEAD'`);
  }
  return { src: head, dst: up.merge };
}

/** Parses `SRC[:DST]` (no DST: the ref SRC names; `:DST` or --delete deletes). */
export function parsePushSpec(spec: string, del = false): PushSpec {
  if (del) return { src: '', dst: spec };
  const i = spec.indexOf(':');
  if (i < 0) return { src: spec };
  return { src: spec.slice(0, i), dst: spec.slice(i + 1) };
}

/**
 * The local ref a push source names, as git matches it: a full ref, HEAD's branch, or a short name that is a tag or
 * a branch here (both: UsageError, git's "src refspec matches more than one"). undefined for other revisions
 * (`main~1`, a commit id), which resolveRevision handles.
 */
function localSourceRef(repo: Repository, src: string): string | undefined {
  if (src.startsWith('refs/')) return repo.refs.resolve(src)?.oid ? src : undefined;
  if (src === HEAD) {
    const target = repo.refs.read(HEAD)?.symref;
    return target && repo.refs.resolve(target)?.oid ? target : undefined; // unborn: resolveRevision says so
  }
  const hits = candidateRefs(src).filter((n) => repo.refs.resolve(n)?.oid);
  if (hits.length > 1) throw new UsageError(`src refspec '${src}' matches more than one: ${hits.join(', ')} (give the full name)`);
  return hits[0];
}

/**
 * Pushes local revisions to remote refs. A non-fast-forward update is refused (RefConflictError) unless `force`, and
 * so is moving a tag that exists on the remote (RefExistsError); the remote update is compare-and-swap against what
 * was listed, so a concurrent push makes it fail. Short names resolve as git's do: `push R v1` of a tag updates
 * `refs/tags/v1` there, of a branch `refs/heads/v1`.
 */
export async function push(repo: Repository, remote: string, specs: PushSpec[], options: PushOptions = {}): Promise<PushResult> {
  const r = resolveRemote(repo, remote, options.tokenFile);
  if (options.setUpstream && !r.name) throw new UsageError(`push -u needs a configured remote, not a path or URL ('${remote}'): viva remote add NAME ${remote}`);
  if (!specs.length) specs = [simplePushSpec(repo, r.name, remote, options.setUpstream ?? false)];
  // push -u: the local branches pushed to remote branches get them as upstream, also when already up to date.
  const upstreams: Array<{ branch: string; merge: string }> = [];
  const peer = await openPeer(r, 'write');
  try {
    const { refs } = await peer.listRefs();
    const remoteRefs = new Map(refs.map((x) => [x.ref, x.oid]));
    const updates: Array<{ ref: string; newOid: Oid | null; expectedOld: Oid | null; forced: boolean }> = [];
    for (const s of specs) {
      if (s.dst === '') throw new UsageError(`push spec '${s.src}:': empty destination`);
      if (!s.src) {
        if (!s.dst) throw new UsageError('push: nothing to delete');
        const dst = assertRefName(expandShortRef(s.dst, remoteRefs.keys(), `on ${r.url}`));
        const old = remoteRefs.get(dst) ?? null;
        if (!old) throw new RefNotFoundError(dst, `'${shortRefName(dst)}' does not exist on ${r.url}`);
        updates.push({ ref: dst, newOid: null, expectedOld: old, forced: false });
        continue;
      }
      const srcRef = localSourceRef(repo, s.src);
      const next = srcRef ? repo.refs.resolve(srcRef)?.oid! : resolveRevision(repo, s.src).oid;
      let dst: string;
      if (s.dst === undefined) dst = srcRef && (srcRef.startsWith(HEADS) || srcRef.startsWith(TAGS)) ? srcRef : HEADS + s.src;
      else if (s.dst.startsWith('refs/')) dst = s.dst;
      else {
        // A short destination: the remote ref of that name if there is one, else in the source's namespace.
        const hits = candidateRefs(s.dst).filter((n) => remoteRefs.has(n));
        if (hits.length > 1) throw new UsageError(`dst refspec '${s.dst}' matches more than one on ${r.url}: ${hits.join(', ')} (give the full name)`);
        dst = hits[0] ?? sameNamespace(s.dst, srcRef ?? HEADS);
      }
      assertRefName(dst);
      if (options.setUpstream && srcRef?.startsWith(HEADS) && dst.startsWith(HEADS)) upstreams.push({ branch: srcRef, merge: dst });
      const old = remoteRefs.get(dst) ?? null;
      if (old === next) continue;
      let forced = false;
      if (old && dst.startsWith(TAGS)) {
        // As git: a tag on the remote is not moved, fast-forward or not, without --force.
        if (!options.force) throw new RefExistsError(dst, `tag '${shortRefName(dst)}' already exists on ${r.url} (use --force to replace it)`);
        forced = true;
      } else if (old && !isAncestor(repo, old, next)) {
        if (!options.force) {
          throw new RefConflictError(dst, old, next, `${shortRefName(dst)} on ${r.url} is not an ancestor of ${s.src} (non-fast-forward): the remote has commits yours lacks; fetch them, move your branch onto them (viva branch -f) and commit on top, or push --force to replace them`);
        }
        forced = true;
      }
      updates.push({ ref: dst, newOid: next, expectedOld: old, forced });
    }
    const tips = updates.flatMap((u) => (u.newOid ? [u.newOid] : []));
    const local = new LocalPeer(repo);
    const plan = await planTransfer(local, (ids) => peer.has(ids), tips);
    const stats = await peer.write(counted(local.read(plan.objects), plan.objects.length, 'sending', options.onProgress));
    if (updates.length) await peer.updateRefs(updates.map((u) => ({ ref: u.ref, newOid: u.newOid, expectedOld: u.expectedOld })), defaultAuthor());
    // Remote-tracking refs follow what the remote now has.
    if (r.name) {
      const track = updates.filter((u) => u.ref.startsWith(HEADS)).map((u) => ({ ref: `${REMOTES}${r.name}/${u.ref.slice(HEADS.length)}`, newOid: u.newOid, message: `push to ${r.url}` }));
      if (track.length) await repo.refs.update(track.filter((t) => t.newOid !== null || repo.refs.resolve(t.ref)?.oid), defaultAuthor());
    }
    const tracking = r.name ? upstreams.map((u) => setUpstream(repo, u.branch, { remote: r.name!, merge: u.merge })) : [];
    return {
      remote: r.name ?? r.url, url: r.url, updated: updates.map((u) => ({ ref: u.ref, old: u.expectedOld, new: u.newOid, forced: u.forced })), ...stats, asked: plan.asked, queries: plan.queries,
      ...(tracking.length ? { tracking } : {}),
    };
  } finally {
    await peer.close();
  }
}

/** What {@link clone} did: the new repository's directory, the branch it checked out as HEAD, and the fetch. */
export interface CloneResult extends FetchResult {
  dir: string;
  /** The local branch made for the remote's HEAD branch (or --branch), which HEAD points at; absent when none was. */
  branch?: string;
  /** That branch's upstream (`origin/x`). */
  tracking?: UpstreamResult;
  /** git's clone warnings: an empty repository, a remote HEAD naming a missing branch. */
  warnings: string[];
}

/**
 * The directory `clone URL` without DIR makes, as git names it: the last path component of URL, without a trailing
 * `/` or `.viva` (`/srv/images/.viva` and `/srv/images.viva` → `images`); for an http(s) URL the last segment of its
 * path, or its host name when the path is empty. Throws UsageError when nothing is left to name it by.
 */
export function defaultCloneDir(url: string): string {
  let p = url;
  if (/^https?:\/\//i.test(url)) {
    try {
      const u = new URL(url);
      p = decodeURIComponent(u.pathname);
      if (!p.replace(/[/]+/g, '')) p = u.hostname;
    } catch { /* as a path */ }
  }
  p = p.replace(/[/\\]+$/, '');
  if (p.endsWith(`/${REPO_DIR}`)) p = p.slice(0, -REPO_DIR.length - 1).replace(/[/\\]+$/, '');
  let name = p.slice(Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\')) + 1);
  if (name.endsWith(REPO_DIR) && name !== REPO_DIR) name = name.slice(0, -REPO_DIR.length);
  if (!name || name === '.' || name === '..' || name === REPO_DIR) throw new UsageError(`cannot guess a directory name from '${url}': give DIR`);
  return name;
}

/**
 * What creating a repository in `dir` will add, as an undo: the directories it creates (`dir` and any missing
 * parents), or `.viva` in a `dir` that exists, or only the new files in a `.viva` that exists. Nothing that was there
 * before is ever removed.
 */
function undoCreation(dir: string): () => void {
  const undo = planUndo(dir);
  // Best effort: the clone's own error is the one to report, never a failure of its cleanup (a path under a file).
  return () => { try { undo(); } catch { /* see above */ } };
}

function planUndo(dir: string): () => void {
  const root = path.resolve(dir);
  let top: string | undefined;
  for (let d = root; !fs.existsSync(d); d = path.dirname(d)) {
    top = d;
    if (path.dirname(d) === d) break;
  }
  if (top) return () => fs.rmSync(top!, { recursive: true, force: true });
  if (!fs.statSync(root).isDirectory()) return () => undefined; // init refuses it; nothing to undo
  const data = path.join(root, REPO_DIR);
  if (!fs.existsSync(data)) return () => fs.rmSync(data, { recursive: true, force: true });
  const before = new Set(fs.readdirSync(data));
  return () => {
    for (const n of fs.readdirSync(data)) if (!before.has(n)) fs.rmSync(path.join(data, n), { recursive: true, force: true });
  };
}

/**
 * Creates `dir` as a new repository with remote `origin` = url, fetches everything, and makes a local branch for the
 * remote's HEAD branch or `branch`, tracking its remote branch, with HEAD on it. When the remote's HEAD names no
 * branch that exists (an empty repository, HEAD on a missing branch), HEAD names that branch unborn and `warnings`
 * says so, in git's words.
 *
 * Any failure — an unreachable or missing remote, a missing `branch`, a transfer cut midway, `signal` (AbortedError)
 * — removes what the clone created, as git does, so the same command can simply be run again: `dir` itself when it
 * did not exist, its `.viva` when it did (an empty `dir` stays, empty). Nothing that was there before is touched.
 */
export async function clone(url: string, dir: string, options: CloneOptions = {}): Promise<CloneResult> {
  const undo = undoCreation(dir);
  let repo: Repository | undefined;
  try {
    repo = Repository.init(dir);
  } catch (e) {
    if (!(e instanceof RepositoryExistsError)) undo();
    throw e;
  }
  try {
    addRemote(repo, 'origin', url, options.tokenFile ? { tokenFile: options.tokenFile } : {});
    if (options.filter) setPartial(repo, { remote: 'origin', filter: options.filter });
    const f = await fetch(repo, 'origin', [], { ...(options.onProgress ? { onProgress: options.onProgress } : {}), ...(options.signal ? { signal: options.signal } : {}) });
    const wanted = options.branch ?? (f.head?.startsWith(HEADS) ? f.head.slice(HEADS.length) : undefined);
    const warnings: string[] = [];
    const tip = wanted === undefined ? undefined : repo.refs.resolve(`${REMOTES}origin/${wanted}`)?.oid;
    let branch: string | undefined;
    let tracking: UpstreamResult | undefined;
    if (wanted !== undefined && tip) {
      // HEAD first, so that the branch's creation is HEAD's first reflog entry too (git's "clone: from URL").
      await repo.refs.setSymbolic(HEAD, `${HEADS}${wanted}`);
      await repo.refs.update([{ ref: `${HEADS}${wanted}`, newOid: tip, expectedOld: null, message: `clone: from ${url}` }], defaultAuthor());
      tracking = setUpstream(repo, `${HEADS}${wanted}`, { remote: 'origin', merge: `${HEADS}${wanted}` });
      branch = wanted;
    } else if (options.branch) {
      throw new RefNotFoundError(options.branch, `branch '${options.branch}' does not exist on ${url}`);
    } else {
      // As git: HEAD names the remote's HEAD branch, unborn here; say why nothing is checked out.
      if (wanted !== undefined) await repo.refs.setSymbolic(HEAD, `${HEADS}${wanted}`);
      const any = repo.refs.list('refs/').length > 0;
      if (!any) warnings.push('You appear to have cloned an empty repository.');
      else if (wanted !== undefined) warnings.push('remote HEAD refers to nonexistent ref, unable to checkout');
      else warnings.push('remote HEAD is not on a branch: no local branch was created');
    }
    if (options.signal?.aborted) throw new AbortedError();
    const root = repo.root;
    const r = repo;
    repo = undefined;
    await r.close();
    return { ...f, dir: root, ...(branch ? { branch } : {}), ...(tracking ? { tracking } : {}), warnings };
  } catch (e) {
    if (repo) await repo.close().catch(() => undefined);
    undo();
    throw options.signal?.aborted ? new AbortedError() : e;
  }
}

/** What {@link pull} did: the fetch, then how the branch moved (fast-forward, or a merge of the remote's branch). */
export interface PullResult extends FetchResult {
  branch: string;
  from: Oid | null;
  to: Oid;
  fastForward: boolean;
  /** A diverged branch: the merge of the remote's into it (status 'conflicts': nothing moved). */
  merge?: MergeOpResult;
}

/**
 * Fetches, then brings the local branch (default: HEAD's) up to the remote's: a fast-forward when it can, else a merge
 * of the remote's branch into it (as git pull), unless `ffOnly` (then a diverged branch is refused, exit 12).
 * Without `remote`, the branch's upstream (`branch -u`, `push -u`, a tracking branch) says where from, as git's
 * `branch.NAME.remote`/`merge` do — its remote and branch name, or a local branch (no fetch) —, else `origin` and the
 * branch's own name; with `remote` and no `branch`, the upstream's branch name when the upstream is on that remote.
 */
export async function pull(repo: Repository, remote?: string, branch?: string, options: PullOptions = {}): Promise<PullResult> {
  const local = branch ? `${HEADS}${branch}` : repo.refs.read(HEAD)?.symref;
  if (!local?.startsWith(HEADS)) throw new UsageError('HEAD is not on a branch: name the branch to pull');
  const name = local.slice(HEADS.length);
  const up = branch ? undefined : readUpstream(repo, name);
  if (up?.remote === LOCAL_REMOTE && remote === undefined) {
    return bringUp(repo, local, name, up.ref, up.name, { ...options, empty: { remote: LOCAL_REMOTE, url: LOCAL_REMOTE, updated: [], rejected: [], objects: 0, bytes: 0, asked: 0, queries: 0 } });
  }
  const from = remote ?? (up && up.remote !== LOCAL_REMOTE ? up.remote : 'origin');
  const theirName = up && up.remote === from ? shortRefName(up.merge) : name;
  const r = resolveRemote(repo, from);
  if (!r.name) throw new UsageError(`'${from}' is not a configured remote (viva remote add ${from} URL)`);
  const f = await fetch(repo, from, [`${HEADS}${theirName}`], options.onProgress ? { onProgress: options.onProgress } : {}); // the branch, even if a tag has its name
  const theirs = `${REMOTES}${r.name}/${theirName}`;
  if (!repo.refs.resolve(theirs)?.oid) throw new RefNotFoundError(theirName, `branch '${theirName}' does not exist on ${r.url}`);
  return bringUp(repo, local, name, theirs, `${r.name}/${theirName}`, { ...options, empty: f });
}

/** Fast-forwards `local` to `theirs` (a ref), or merges it in when both moved (refused with ffOnly). */
async function bringUp(repo: Repository, local: string, name: string, theirsRef: string, theirsName: string, options: PullOptions & { empty: FetchResult }): Promise<PullResult> {
  const f = options.empty;
  const theirs = repo.refs.resolve(theirsRef)?.oid;
  if (!theirs) throw new RefNotFoundError(theirsName, `branch '${theirsName}' does not exist`);
  const ours = repo.refs.resolve(local)?.oid ?? null;
  if (ours === theirs) return { ...f, branch: name, from: ours, to: theirs, fastForward: false };
  if (ours && isAncestor(repo, theirs, ours)) return { ...f, branch: name, from: ours, to: ours, fastForward: false };
  if (ours && !isAncestor(repo, ours, theirs)) {
    if (options.ffOnly) throw new RefConflictError(local, ours, theirs, `${name} and ${theirsName} have diverged: not a fast-forward (pull without --ff-only merges)`);
    const m = await merge(repo, { a: local, b: theirsRef, branch: local, message: `merge ${theirsName} into ${name}`, ...(options.author ? { author: options.author } : {}) });
    return { ...f, branch: name, from: ours, to: m.id ?? ours, fastForward: false, merge: m };
  }
  await repo.refs.update([{ ref: local, newOid: theirs, expectedOld: ours, message: `pull ${theirsName}: fast-forward` }], defaultAuthor());
  return { ...f, branch: name, from: ours, to: theirs, fastForward: true };
}

/** The refs of a remote repository. */
export async function lsRemote(repo: Repository | undefined, remote: string): Promise<{ url: string; head?: string; refs: Array<{ ref: string; oid: Oid }> }> {
  const r = resolveRemote(repo, remote);
  const peer = await openPeer(r, 'read');
  try {
    return { url: r.url, ...(await peer.listRefs()) };
  } finally {
    await peer.close();
  }
}

/**
 * Demand fetch for partial clones: the given blobs and their chunks (with `manifests`: blob records only), from the
 * promisor remote. Resolves with the bytes received.
 */
async function fetchContent(repo: Repository, remote: string, ids: ObjectId[], options: { filter?: 'manifests' } = {}): Promise<number> {
  const r = resolveRemote(repo, remote);
  const peer = await openPeer(r, 'read');
  try {
    const plan = await planTransfer(peer, (q) => new LocalPeer(repo).has(q), ids, { ...options, bad: remoteDamage(r.url) });
    let bytes = 0;
    const counted = async function* (objects: AsyncIterable<StoredObject>) {
      for await (const o of objects) { bytes += o.stored.length; yield o; }
    };
    await receiveObjects(repo, counted(peer.read(plan.objects)), { bad: sentBadData(r.url) });
    return bytes;
  } finally {
    await peer.close();
  }
}
setContentFetcher(fetchContent);

/**
 * Reads objects from the promisor remote of a partial clone as the remote stores them, without verifying or
 * storing them: for blob records, which cannot be verified before their content is local (see putPromisedRecords).
 * Throws UsageError outside a partial clone, RemoteError when the remote cannot be reached or lacks one.
 */
export async function readPromisorObjects(repo: Repository, ids: ObjectId[]): Promise<StoredObject[]> {
  const cfg = partialConfig(repo);
  if (!cfg) throw new UsageError('this repository has all content already (it is not a partial clone)');
  const r = resolveRemote(repo, cfg.remote);
  const peer = await openPeer(r, 'read');
  try {
    const out: StoredObject[] = [];
    for await (const o of peer.read(ids)) out.push(o);
    return out;
  } finally {
    await peer.close();
  }
}

/** `viva fetch --content REV`: fills in every file of an image in a partial clone. */
export async function fetchImageContent(repo: Repository, rev: string): Promise<{ blobs: number }> {
  if (!partialConfig(repo)) throw new UsageError('this repository has all content already (it is not a partial clone)');
  const c = resolveRevision(repo, rev).commit;
  return { blobs: await ensureContent(repo, imageBlobs(repo, c)) };
}
