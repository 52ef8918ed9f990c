/**
 * Sync between repositories, as git does it: remotes by name, fetch into remote-tracking refs
 * (`refs/remotes/NAME/...`), fast-forward pull, push with compare-and-swap ref updates, clone, ls-remote.
 * Only missing objects move (see sync/transfer.ts); every received object is verified before it is stored; refs move
 * on the receiving side only when everything they need is durable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { NotARepositoryError, RefConflictError, RefExistsError, RefNotFoundError, RemoteError, UsageError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { HEAD, HEADS, REMOTES, TAGS, assertRefName, shortRefName } from '../model/ref.js';
import { listRefs, readRef, resolveRef, setSymbolicRef, updateRefs } from '../store/refs.js';
import { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { LocalPeer, type Peer, receiveObjects } from '../sync/peer.js';
import { planTransfer } from '../sync/transfer.js';
import { HttpPeer, clientToken } from '../sync/http-peer.js';
import { type ObjectId, type StoredObject } from '../sync/peer.js';
import { ensureContent, imageBlobs, partialConfig, setContentFetcher, setPartial } from '../sync/partial.js';
import { defaultAuthor, type ProgressEvent } from './commit.js';
import { resolveRevision } from './resolve.js';

/** Passes objects through, reporting progress (objects as `files`, stored bytes) as they go by. */
async function* counted(objects: AsyncIterable<StoredObject>, total: number, phase: string, onProgress?: (e: ProgressEvent) => void): AsyncGenerator<StoredObject> {
  let n = 0;
  let bytes = 0;
  for await (const o of objects) {
    n++;
    bytes += o.stored.length;
    onProgress?.({ phase, files: n, bytes, path: `${n}/${total} objects` });
    yield o;
  }
}

export interface RemoteConfig {
  name: string;
  url: string;
  /** HTTP remotes: the file the push token is read from (VIVA_TOKEN overrides it). */
  tokenFile?: string;
}

const REMOTES_KEY = 'remotes';

function remotesOf(repo: Repository): Record<string, { url: string; tokenFile?: string }> {
  return (repo.store.meta.get(REMOTES_KEY) as Record<string, { url: string; tokenFile?: string }> | undefined) ?? {};
}

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
  if (/^https?:\/\//.test(url)) {
    try { new URL(url); } catch { throw new UsageError(`URL '${url}' is not a valid URL`); }
    return url;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new UsageError(`URL '${url}': only paths and http(s):// URLs are supported`);
  return path.resolve(url);
}

export function addRemote(repo: Repository, name: string, url: string, options: { tokenFile?: string } = {}): RemoteConfig {
  checkRemoteName(name);
  const all = remotesOf(repo);
  if (all[name]) throw new RefExistsError(name, `remote '${name}' already exists (${all[name]!.url})`);
  const u = normalizeUrl(url);
  const tokenFile = options.tokenFile ? path.resolve(options.tokenFile) : undefined;
  repo.store.env.transactionSync(() => repo.store.meta.putSync(REMOTES_KEY, { ...all, [name]: { url: u, ...(tokenFile ? { tokenFile } : {}) } }));
  return { name, url: u, ...(tokenFile ? { tokenFile } : {}) };
}

export function removeRemote(repo: Repository, name: string): void {
  const all = remotesOf(repo);
  if (!all[name]) throw new RefNotFoundError(name, `no such remote '${name}'`);
  delete all[name];
  const tracking = listRefs(repo.store, `${REMOTES}${name}/`);
  updateRefs(repo.store, tracking.map((r) => ({ ref: r.ref, newOid: null, message: `remote ${name} removed` })), defaultAuthor());
  repo.store.env.transactionSync(() => repo.store.meta.putSync(REMOTES_KEY, all));
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

/** Opens the repository at a URL (a path, or a `viva serve` URL) as a peer. */
export function openPeer(remote: { url: string; tokenFile?: string }, mode: 'read' | 'write'): Peer {
  if (/^https?:\/\//.test(remote.url)) return new HttpPeer(remote.url, clientToken(remote.tokenFile));
  // A path that holds no repository is an unreachable remote (exit 17), not a problem of the local repository.
  if (!fs.existsSync(remote.url)) throw new RemoteError(remote.url, 'no such repository (the path does not exist)');
  try {
    return new LocalPeer(Repository.open(remote.url, mode));
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

export interface FetchResult extends TransferStats {
  remote: string;
  url: string;
  updated: Array<{ ref: string; old: Oid | null; new: Oid }>;
  /** The remote's HEAD branch (full ref), if symbolic. */
  head?: string;
}

/**
 * Fetches the remote's branches into `refs/remotes/NAME/...` (forced, as git's default refspec) and its tags into
 * `refs/tags/...` (new ones only). `refspecs` (branch names) limit what is fetched.
 */
export async function fetch(repo: Repository, remote: string, refspecs: string[] = [], options: { tokenFile?: string; filter?: 'manifests'; onProgress?: (e: ProgressEvent) => void } = {}): Promise<FetchResult> {
  const r = resolveRemote(repo, remote, options.tokenFile);
  // A partial clone keeps fetching manifests only from its promisor remote.
  const filter = options.filter ?? (partialConfig(repo)?.remote === r.name ? 'manifests' : undefined);
  const peer = openPeer(r, 'read');
  try {
    const { refs, head } = await peer.listRefs();
    const trackingPrefix = r.name ? `${REMOTES}${r.name}/` : undefined;
    // Refspecs: BRANCH (into the remote-tracking ref) or [+]SRC:DST (into a local ref; + allows non-fast-forward).
    const specs = refspecs.map((spec) => {
      const force = spec.startsWith('+');
      const body = force ? spec.slice(1) : spec;
      const i = body.indexOf(':');
      const src = i < 0 ? body : body.slice(0, i);
      const dst = i < 0 ? undefined : body.slice(i + 1);
      const full = (n: string) => (n.startsWith('refs/') ? n : `${HEADS}${n}`);
      if (!src || dst === '') throw new UsageError(`refspec '${spec}' is not BRANCH or [+]SRC:DST`);
      return { src: full(src), ...(dst ? { dst: assertRefName(full(dst)) } : {}), force };
    });
    const wanted = refs.filter((x) => {
      if (specs.length) return specs.some((s) => s.src === x.ref);
      return x.ref.startsWith(HEADS) || x.ref.startsWith(TAGS);
    });
    for (const x of wanted) assertRefName(x.ref);
    for (const s of specs) if (!refs.some((x) => x.ref === s.src)) throw new RefNotFoundError(s.src, `'${shortRefName(s.src)}' does not exist on ${r.url}`);
    const plan = await planTransfer(peer, (ids) => new LocalPeer(repo).has(ids), wanted.map((x) => x.oid), filter ? { filter } : {});
    const stats = await receiveObjects(repo, counted(peer.read(plan.objects), plan.objects.length, 'receiving', options.onProgress));
    const updates: Array<{ ref: string; newOid: Oid; expectedOld: Oid | null; message: string }> = [];
    for (const x of wanted) {
      const spec = specs.find((s) => s.src === x.ref);
      let local: string | undefined;
      if (spec?.dst) local = spec.dst;
      else if (x.ref.startsWith(HEADS)) local = trackingPrefix ? `${trackingPrefix}${x.ref.slice(HEADS.length)}` : undefined;
      else local = x.ref;
      if (!local) continue;
      const old = resolveRef(repo.store, local) ?? null;
      if (old === x.oid) continue;
      if (x.ref.startsWith(TAGS) && old && !spec?.force) continue; // an existing tag is not moved by fetch
      // A refspec into a local branch fast-forwards only, unless it starts with '+'.
      if (spec?.dst && old && !spec.force && !isAncestor(repo, old, x.oid)) {
        throw new RefConflictError(local, old, x.oid, `${shortRefName(local)}: ${shortRefName(x.ref)} on ${r.url} is not a fast-forward of it (use +${shortRefName(x.ref)}:${shortRefName(local)} to force)`);
      }
      updates.push({ ref: local, newOid: x.oid, expectedOld: old, message: `fetch from ${r.url}` });
    }
    if (updates.length) updateRefs(repo.store, updates, defaultAuthor());
    return {
      remote: r.name ?? r.url, url: r.url, updated: updates.map((u) => ({ ref: u.ref, old: u.expectedOld, new: u.newOid })),
      ...stats, asked: plan.asked, queries: plan.queries, ...(head ? { head } : {}),
    };
  } finally {
    await peer.close();
  }
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
    if (!repo.store.hasObject('commit', c)) continue;
    stack.push(...readCommit(repo.store, c).parents);
  }
  return false;
}

export interface PushSpec {
  /** Local revision (empty with delete). */
  src: string;
  /** Remote branch name or full ref. */
  dst: string;
}

export interface PushResult extends TransferStats {
  remote: string;
  url: string;
  updated: Array<{ ref: string; old: Oid | null; new: Oid | null; forced: boolean }>;
}

/** Parses `SRC[:DST]` (DST defaults to SRC's branch name; `:DST` or --delete deletes). */
export function parsePushSpec(spec: string, del = false): PushSpec {
  if (del) return { src: '', dst: spec };
  const i = spec.indexOf(':');
  if (i < 0) return { src: spec, dst: spec.startsWith(HEADS) ? spec.slice(HEADS.length) : spec };
  return { src: spec.slice(0, i), dst: spec.slice(i + 1) };
}

/**
 * Pushes local revisions to remote refs. A non-fast-forward update is refused (RefConflictError) unless `force`;
 * the remote update is compare-and-swap against what was listed, so a concurrent push makes it fail.
 */
export async function push(repo: Repository, remote: string, specs: PushSpec[], options: { force?: boolean; tokenFile?: string; onProgress?: (e: ProgressEvent) => void } = {}): Promise<PushResult> {
  if (!specs.length) throw new UsageError('nothing to push: give SRC[:DST]');
  const r = resolveRemote(repo, remote, options.tokenFile);
  const peer = openPeer(r, 'write');
  try {
    const { refs } = await peer.listRefs();
    const remoteRefs = new Map(refs.map((x) => [x.ref, x.oid]));
    const updates: Array<{ ref: string; newOid: Oid | null; expectedOld: Oid | null; forced: boolean }> = [];
    for (const s of specs) {
      if (!s.dst) throw new UsageError(`push spec '${s.src}:': empty destination`);
      const dst = s.dst.startsWith('refs/') ? s.dst : `${HEADS}${s.dst}`;
      assertRefName(dst);
      const old = remoteRefs.get(dst) ?? null;
      if (!s.src) {
        if (!old) throw new RefNotFoundError(dst, `branch '${shortRefName(dst)}' does not exist on ${r.url}`);
        updates.push({ ref: dst, newOid: null, expectedOld: old, forced: false });
        continue;
      }
      const next = resolveRevision(repo, s.src).oid;
      if (old === next) continue;
      let forced = false;
      if (old && !isAncestor(repo, old, next)) {
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
      if (track.length) updateRefs(repo.store, track.filter((t) => t.newOid !== null || resolveRef(repo.store, t.ref)), defaultAuthor());
    }
    return { remote: r.name ?? r.url, url: r.url, updated: updates.map((u) => ({ ref: u.ref, old: u.expectedOld, new: u.newOid, forced: u.forced })), ...stats, asked: plan.asked, queries: plan.queries };
  } finally {
    await peer.close();
  }
}

export interface CloneResult extends FetchResult {
  dir: string;
  branch?: string;
}

/** Creates `dir` as a new repository with remote `origin` = url, fetches everything, and checks out (as a branch) the remote's HEAD branch or `branch`. */
export async function clone(url: string, dir: string, options: { branch?: string; tokenFile?: string; filter?: 'manifests'; onProgress?: (e: ProgressEvent) => void } = {}): Promise<CloneResult> {
  const repo = Repository.init(dir);
  try {
    addRemote(repo, 'origin', url, options.tokenFile ? { tokenFile: options.tokenFile } : {});
    if (options.filter) setPartial(repo, { remote: 'origin', filter: options.filter });
    const f = await fetch(repo, 'origin', [], options.onProgress ? { onProgress: options.onProgress } : {});
    const branch = options.branch ?? (f.head?.startsWith(HEADS) ? f.head.slice(HEADS.length) : undefined);
    if (branch) {
      const tracking = resolveRef(repo.store, `${REMOTES}origin/${branch}`);
      if (!tracking) {
        if (options.branch) throw new RefNotFoundError(branch, `branch '${branch}' does not exist on ${url}`);
      } else {
        updateRefs(repo.store, [{ ref: `${HEADS}${branch}`, newOid: tracking, expectedOld: null, message: `clone from ${url}` }], defaultAuthor());
        setSymbolicRef(repo.store, HEAD, `${HEADS}${branch}`);
      }
    }
    return { ...f, dir: repo.root, ...(branch ? { branch } : {}) };
  } finally {
    await repo.close();
  }
}

export interface PullResult extends FetchResult {
  branch: string;
  from: Oid | null;
  to: Oid;
  fastForward: boolean;
}

/** Fetches, then fast-forwards the local branch (default: HEAD's) to the remote's; a diverged branch is refused. */
export async function pull(repo: Repository, remote = 'origin', branch?: string): Promise<PullResult> {
  const local = branch ? `${HEADS}${branch}` : readRef(repo.store, HEAD)?.symref;
  if (!local?.startsWith(HEADS)) throw new UsageError('HEAD is not on a branch: name the branch to pull');
  const name = local.slice(HEADS.length);
  const r = resolveRemote(repo, remote);
  if (!r.name) throw new UsageError(`'${remote}' is not a configured remote (viva remote add ${remote} URL)`);
  const f = await fetch(repo, remote, [name]);
  const theirs = resolveRef(repo.store, `${REMOTES}${r.name}/${name}`);
  if (!theirs) throw new RefNotFoundError(name, `branch '${name}' does not exist on ${r.url}`);
  const ours = resolveRef(repo.store, local) ?? null;
  if (ours === theirs) return { ...f, branch: name, from: ours, to: theirs, fastForward: false };
  if (ours && !isAncestor(repo, ours, theirs)) {
    throw new RefConflictError(local, ours, theirs, `${name} and ${r.name}/${name} have diverged: pull can only fast-forward (merge is not available yet)`);
  }
  updateRefs(repo.store, [{ ref: local, newOid: theirs, expectedOld: ours, message: `pull ${r.name} ${name}: fast-forward` }], defaultAuthor());
  return { ...f, branch: name, from: ours, to: theirs, fastForward: true };
}

/** The refs of a remote repository. */
export async function lsRemote(repo: Repository | undefined, remote: string): Promise<{ url: string; head?: string; refs: Array<{ ref: string; oid: Oid }> }> {
  const r = resolveRemote(repo, remote);
  const peer = openPeer(r, 'read');
  try {
    return { url: r.url, ...(await peer.listRefs()) };
  } finally {
    await peer.close();
  }
}

/** Demand fetch for partial clones: the given blobs and their chunks, from the promisor remote. */
async function fetchContent(repo: Repository, remote: string, ids: ObjectId[]): Promise<void> {
  const r = resolveRemote(repo, remote);
  const peer = openPeer(r, 'read');
  try {
    const plan = await planTransfer(peer, (q) => new LocalPeer(repo).has(q), ids);
    await receiveObjects(repo, peer.read(plan.objects));
  } finally {
    await peer.close();
  }
}
setContentFetcher(fetchContent);

/** `viva fetch --content REV`: fills in every file of an image in a partial clone. */
export async function fetchImageContent(repo: Repository, rev: string): Promise<{ blobs: number }> {
  if (!partialConfig(repo)) throw new UsageError('this repository has all content already (it is not a partial clone)');
  const c = resolveRevision(repo, rev).commit;
  return { blobs: await ensureContent(repo, imageBlobs(repo, c)) };
}
