/**
 * The find op: which images contain a file. Checksums are answered from the content index (blob → parent trees →
 * ... → roots → commits, each shared subtree resolved once); the other predicates walk the manifests of the
 * commits in scope, each distinct tree once (a subtree shared by 500 images is read once, its matches reused).
 * Packages come from each image's own package database, parsed once per distinct database file.
 */
import { hexIfNotUtf8 } from '../model/quote.js';
import { InvalidTimeError, PathNotFoundError, UsageError } from '../errors.js';
import { type Commit, parseCommitTime } from '../model/commit.js';
import { type Oid, isOid } from '../model/oid.js';
import { HEADS, shortRefName } from '../model/ref.js';
import type { EntryType, TreeEntry } from '../model/tree.js';
import { CONTENT_INDEX_VERSION, MAX_INDEXED_NAME, indexKey } from '../store/content-index.js';
import type { Repository } from '../store/repository.js';
import { OBJECT_KINDS } from '../store/object-store.js';
import { commitTree, readCommit, readTree } from '../store/typed.js';
import type { VersionConstraint } from '../packages/debversion.js';
import type { Inventory } from '../packages/types.js';
import { resolveEntry } from './resolve.js';
import { walkTree } from '../tree/walk.js';

/** Which commits {@link find} looks in: every commit, every branch head, or the heads under one ref prefix. */
export type FindScope = { kind: 'all' } | { kind: 'heads' } | { kind: 'ref'; prefix: string };

/** The options of {@link find}: what to match (checksum, name or path glob, size, type) and where to look. */
export interface FindOptions {
  /** Full sha256 values or prefixes of at least 8 hex digits. */
  sha256?: string[];
  /** Glob on the entry's name (`*.conf`). */
  name?: string;
  /** Glob on the whole path (`etc/**` + `/*.conf`, `usr/lib/*`). */
  path?: string;
  /** `N`, `+N` (more than), `-N` (less than), with an optional K/M/G suffix (binary). */
  size?: string;
  type?: string;
  /** Octal: `0644` exactly, `-0600` all of these bits, `/4000` any of them. */
  mode?: string;
  uid?: number;
  /** `NAME` or `NAME=VALUE`. */
  xattr?: string;
  /** Modified after this time: ISO date or seconds since the epoch. */
  newer?: string;
  /** Packages by name (a glob), with an optional version constraint. */
  package?: string;
  version?: string;
  scope?: FindScope;
}

/** One entry {@link find} matched: the commit and ref it is in, its path and what matched. */
export interface FindHit {
  ref: string;
  commit: Oid;
  /** UTF-8 text (lossy); `pathHex` holds the exact bytes when they are not UTF-8. */
  path: string;
  pathHex?: string;
  /** Checksum queries: the checksum matched. */
  sha256?: string;
  type?: EntryType;
  size?: number;
  /** Package queries. */
  package?: { name: string; version: string; arch?: string };
  /** Package queries on disk commits: the partition the package is installed in (`p1`; `path` starts with it). */
  partition?: string;
}

const TYPES: Record<string, EntryType> = {
  f: 'file', file: 'file', d: 'dir', dir: 'dir', l: 'symlink', symlink: 'symlink', c: 'chr', chr: 'chr', b: 'blk',
  blk: 'blk', p: 'fifo', fifo: 'fifo', s: 'socket', socket: 'socket',
};

/** A glob as a RegExp: `*` and `?` stay within a path component, `**` crosses them, `[...]` is a class. */
export function globRegExp(glob: string, what = 'glob'): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      if (glob[i + 2] === '/') { re += '(?:.*/)?'; i += 2; } else { re += '.*'; i++; }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) throw new UsageError(`${what} '${glob}': '[' at ${i} has no closing ']'`);
      let cls = glob.slice(i + 1, end);
      if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < glob.length) { re += glob[++i]!.replace(/[.+^${}()|[\]\\*?]/g, '\\$&'); }
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  try {
    return new RegExp(`^${re}$`, 's');
  } catch (e) {
    throw new UsageError(`${what} '${glob}' is not a valid pattern: ${(e as Error).message}`);
  }
}

function parseSizeTest(s: string): (n: number) => boolean {
  const m = /^([+-]?)(\d+)([kmgt]?)$/i.exec(s.trim());
  if (!m) throw new UsageError(`size '${s}' is not N, +N or -N with an optional K, M, G or T suffix`);
  const n = Number(m[2]) * 1024 ** ' kmgt'.indexOf((m[3] || ' ').toLowerCase());
  return m[1] === '+' ? (x) => x > n : m[1] === '-' ? (x) => x < n : (x) => x === n;
}

function parseModeTest(s: string): (m: number) => boolean {
  const m = /^([-/]?)([0-7]{1,4})$/.exec(s.trim());
  if (!m) throw new UsageError(`mode '${s}' is not octal (0644), -MODE (all of these bits) or /MODE (any of them)`);
  const bits = parseInt(m[2]!, 8);
  return m[1] === '-' ? (x) => (x & bits) === bits : m[1] === '/' ? (x) => (x & bits) !== 0 : (x) => x === bits;
}

/** ISO 8601 dates as `--newer` documents them: a day, optionally a time, optionally a zone. */
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * `--newer`'s time as nanoseconds: whole seconds since the epoch, or an ISO date. Anything else (`1.5`, `1e20`, which
 * Date.parse would read as some date in 2001 or refuse) is an InvalidTimeError.
 */
function parseTime(s: string): bigint {
  if (/^\d+$/.test(s)) return BigInt(parseCommitTime(s, '--newer')) * 1_000_000_000n;
  const t = ISO_DATE.test(s) ? Date.parse(s.replace(' ', 'T')) : Number.NaN;
  if (Number.isNaN(t)) throw new InvalidTimeError('--newer', s, 'neither seconds since the epoch nor an ISO date (2024-01-31, 2024-01-31T12:00:00Z)');
  return BigInt(t) * 1_000_000n;
}

/** Entry predicates from the options (undefined when none is given). */
function entryFilter(o: FindOptions): ((path: string, e: TreeEntry) => boolean) | undefined {
  const tests: Array<(path: string, e: TreeEntry) => boolean> = [];
  if (o.name !== undefined) { const r = globRegExp(o.name, 'name'); tests.push((_p, e) => r.test(e.name.toString('utf8'))); }
  if (o.path !== undefined) { const r = globRegExp(o.path.replace(/^\/+/, ''), 'path'); tests.push((p) => r.test(p)); }
  if (o.size !== undefined) { const t = parseSizeTest(o.size); tests.push((_p, e) => e.type === 'file' && t(e.size)); }
  if (o.type !== undefined) {
    const ty = TYPES[o.type];
    if (!ty) throw new UsageError(`type '${o.type}' is not one of f d l c b p s (or file dir symlink chr blk fifo socket)`);
    tests.push((_p, e) => e.type === ty);
  }
  if (o.mode !== undefined) { const t = parseModeTest(o.mode); tests.push((_p, e) => t(e.mode)); }
  if (o.uid !== undefined) { const u = o.uid; tests.push((_p, e) => e.uid === u); }
  if (o.xattr !== undefined) {
    const eq = o.xattr.indexOf('=');
    const name = eq < 0 ? o.xattr : o.xattr.slice(0, eq);
    const value = eq < 0 ? undefined : Buffer.from(o.xattr.slice(eq + 1));
    if (!name) throw new UsageError(`xattr '${o.xattr}' is not NAME or NAME=VALUE`);
    tests.push((_p, e) => e.xattrs.some((x) => x.name === name && (!value || Buffer.from(x.value).equals(value))));
  }
  if (o.newer !== undefined) { const t = parseTime(o.newer); tests.push((_p, e) => e.mtimeNs > t); }
  return tests.length ? (p, e) => tests.every((f) => f(p, e)) : undefined;
}

/**
 * The commits a scope covers, each with the ref it is reported under (its first ref in ref order). With `roots`,
 * also fills it with the commits of the scope by their root's index key (latin1), in id order: what the content
 * index's `ix-root` says of them, without a read per tree.
 */
export function scopeCommits(repo: Repository, scope: FindScope = { kind: 'all' }, roots?: Map<string, Oid[]>): Map<Oid, string> {
  const refs = repo.refs.list('').filter((r) => r.ref.startsWith('refs/'));
  const chosen = scope.kind === 'heads' ? refs.filter((r) => r.ref.startsWith(HEADS))
    : scope.kind === 'ref' ? refs.filter((r) => shortRefName(r.ref).startsWith(scope.prefix) || r.ref.startsWith(scope.prefix))
      : refs;
  const out = new Map<Oid, string>();
  const rooted = (c: Oid, commit: Commit) => {
    if (!roots) return;
    const k = indexKey(commit.rootKind, commit.root).toString('latin1');
    const list = roots.get(k);
    if (list) list.push(c);
    else roots.set(k, [c]);
  };
  for (const r of chosen) {
    const name = shortRefName(r.ref);
    if (scope.kind === 'heads') {
      if (!out.has(r.oid)) { out.set(r.oid, name); if (roots) rooted(r.oid, readCommit(repo.objects, r.oid)); }
      continue;
    }
    const stack = [r.oid];
    while (stack.length) {
      const c = stack.pop()!;
      if (out.has(c)) continue;
      out.set(c, name);
      const commit = readCommit(repo.objects, c);
      rooted(c, commit);
      for (const p of commit.parents) stack.push(p);
    }
  }
  for (const list of roots?.values() ?? []) list.sort();
  return out;
}

export function requireIndex(repo: Repository): void {
  const v = repo.contentIndex.version();
  if (v !== CONTENT_INDEX_VERSION) {
    throw new UsageError(`the content index of this repository is ${v === undefined ? 'missing (made before it existed)' : `version ${v}, not ${CONTENT_INDEX_VERSION}`}: run 'viva index rebuild'`);
  }
}

/**
 * (commit, path) of every occurrence of an object (blob or tree), through parent links; memoized per tree.
 * Paths are byte strings (latin1: one character per byte of the name, as the index stores it): joining them makes a
 * rope, not a buffer, which for thousands of hits is most of the garbage a query would make. {@link pathText} turns
 * one into text.
 */
export class Resolver {
  private memo = new Map<string, string[]>();
  private trees = new Map<Oid, TreeEntry[]>();

  /**
   * `roots`: the commits of the scope by their root's index key (see scopeCommits), read instead of the index's
   * `ix-root` for each tree: a resolver given it finds only occurrences in those commits.
   */
  constructor(private readonly repo: Repository, private readonly roots?: Map<string, Oid[]>) {}

  private entries(tree: Oid): TreeEntry[] {
    let e = this.trees.get(tree);
    if (!e) {
      e = readTree(this.repo.objects, tree).entries;
      if (this.trees.size > 4096) this.trees.clear();
      this.trees.set(tree, e);
    }
    return e;
  }

  /**
   * `key`: the object's index key (see indexKey). Returns commit and path in turn, flat (`[c0, p0, c1, p1, ...]`).
   * Flat, and read with indexed loops: a command runs this code once, before the compiler would remove the iterator
   * and pair objects that `for (const [c, p] of ...)` makes, and those were a third of the query's garbage.
   */
  occurrences(key: Buffer, depth = 0): string[] {
    const ks = key.toString('latin1');
    const hit = this.memo.get(ks);
    if (hit) return hit;
    if (depth > 4096) return [];
    const out: string[] = [];
    const index = this.repo.contentIndex;
    // Only trees and disks are roots of commits: a blob's key has no ix-root entries (a cursor saved per checksum).
    if (key[0] !== OBJECT_KINDS.blob) {
      if (this.roots) {
        const cs = this.roots.get(ks);
        if (cs) for (let i = 0; i < cs.length; i++) out.push(cs[i]!, '');
      } else for (const v of index.roots(key)) out.push(v.toString('hex'), '');
    }
    // Each parent link is the parent's index key (kind byte and id, as indexKey makes it) and the child's name
    // (see decodeParent).
    const links = index.parents(key);
    for (let l = 0; l < links.length; l++) {
      const v = links[l]!;
      const up = this.occurrences(v.subarray(0, 33), depth + 1);
      // A disk's file system tree is at the disk's own path.
      if (v[0] === OBJECT_KINDS.disk) { for (let i = 0; i < up.length; i++) out.push(up[i]!); continue; }
      // A name too long for the index: the parent tree says which of its entries hold the child (those with shorter
      // names have links of their own).
      const names = v.length > 33 ? [v.toString('latin1', 33)] : this.longNames(v.toString('hex', 1, 33), key.toString('hex', 1, 33));
      for (let i = 0; i < up.length; i += 2) {
        const prefix = up[i + 1]!;
        for (let n = 0; n < names.length; n++) out.push(up[i]!, prefix ? `${prefix}/${names[n]!}` : names[n]!);
      }
    }
    // A blob's occurrences are asked for once per query: kept, they would outlive the young generation for nothing.
    if (key[0] !== OBJECT_KINDS.blob) this.memo.set(ks, out);
    return out;
  }

  /** The names (byte strings) under which `tree` holds `child` that are too long for the index. */
  private longNames(tree: Oid, child: Oid): string[] {
    return this.entries(tree).filter((e) => e.oid === child && e.name.length > MAX_INDEXED_NAME).map((e) => e.name.toString('latin1'));
  }
}

/** A path of {@link Resolver.occurrences} as UTF-8 text (lossy). A path of ASCII bytes is its own text. */
export function pathText(bytes: string): string {
  return NON_ASCII.test(bytes) ? Buffer.from(bytes, 'latin1').toString('utf8') : bytes;
}
const NON_ASCII = /[^\x00-\x7f]/;

/** The package readers a package query needs, loaded only then (with their parsers, about 5 ms at every start). */
async function packageModules() {
  const [{ parseConstraint }, { versionOrder }, { imageFileSystems, inventoryAt }] = await Promise.all([
    import('../packages/debversion.js'), import('../packages/inventory.js'), import('./image-packages.js'),
  ]);
  return { parseConstraint, versionOrder, imageFileSystems, inventoryAt };
}

/** A query's parts, checked: UsageError for bad patterns, sizes, modes, times and version expressions. */
interface Query {
  filter: ((path: string, e: TreeEntry) => boolean) | undefined;
  constraint: VersionConstraint | undefined;
  pkgName: RegExp | undefined;
  sums: string[];
  scope: Map<Oid, string>;
  /** For a checksum query: the scope's commits by their root (see scopeCommits). */
  roots: Map<string, Oid[]> | undefined;
}

/** `parse`: debversion's parseConstraint, loaded by find() for a query with a version (see packageModules). */
function prepare(repo: Repository, options: FindOptions, parse?: (expr: string) => VersionConstraint): Query {
  const filter = entryFilter(options);
  const constraint = options.version !== undefined ? parse!(options.version) : undefined;
  const pkgName = options.package !== undefined ? globRegExp(options.package, 'package') : undefined;
  if (constraint && !pkgName) throw new UsageError('--version needs --package');
  const sums = (options.sha256 ?? []).map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const s of sums) if (!/^[0-9a-f]{8,64}$/.test(s)) throw new UsageError(`'${s}' is not a sha256 (64 hex digits, or a prefix of at least 8)`);
  if (!sums.length && !filter && !pkgName) throw new UsageError('nothing to find: give --sha256, --stdin, --name, --path, --size, --type, --mode, --uid, --xattr, --newer or --package');
  const roots = sums.length ? new Map<string, Oid[]>() : undefined;
  return { filter, constraint, pkgName, sums, scope: scopeCommits(repo, options.scope, roots), roots };
}

/**
 * Streams the hits of a query. Locking: none (read-only; works while a commit runs).
 * Throws UsageError for bad patterns, sizes, modes, times, version expressions, or a repository without its index.
 */
export async function* find(repo: Repository, options: FindOptions): AsyncGenerator<FindHit> {
  const pkg = options.package !== undefined || options.version !== undefined ? await packageModules() : undefined;
  const q = prepare(repo, options, pkg?.parseConstraint);
  if (q.sums.length || !q.pkgName) {
    yield* fileHits(repo, options, q);
    return;
  }
  const { scope, pkgName, constraint } = q;
  const { imageFileSystems, inventoryAt, versionOrder } = pkg!;
  // Every file system of an image: a tree commit's root, each partition's file system of a disk commit.
  const inventories = new Map<Oid, Inventory | undefined>();
  for (const [commit, ref] of scope) {
    for (const fsys of imageFileSystems(repo, readCommit(repo.objects, commit))) {
      if (!inventories.has(fsys.tree)) inventories.set(fsys.tree, await inventoryAt(repo, fsys.tree));
      const inv = inventories.get(fsys.tree);
      for (const p of inv?.packages ?? []) {
        if (!pkgName.test(p.name)) continue;
        if (constraint && !constraint.test(p.version, versionOrder(inv!.format))) continue;
        yield {
          ref, commit, path: fsys.partition ? `${fsys.partition}/${inv!.file}` : inv!.file,
          package: { name: p.name, version: p.version, ...(p.arch ? { arch: p.arch } : {}) }, ...(fsys.partition ? { partition: fsys.partition } : {}),
        };
      }
    }
  }
}

/**
 * The hits of a query without `package` (checksums, entry predicates): what {@link find} yields for it, as a plain
 * generator — no promise per hit, which for thousands of hits costs more than the lookups.
 * Throws UsageError as find does (here at the call), and for a query with `package` or `version` (answered by find).
 */
export function findFiles(repo: Repository, options: FindOptions): Generator<FindHit> {
  if (options.package !== undefined || options.version !== undefined) throw new UsageError('a package query is answered by find(), not findFiles()');
  return fileHits(repo, options, prepare(repo, options));
}

/** The checksum and manifest branches of a query. */
function* fileHits(repo: Repository, options: FindOptions, q: Query): Generator<FindHit> {
  const { filter, sums, scope } = q;
  if (sums.length) {
    requireIndex(repo);
    const resolver = new Resolver(repo, q.roots);
    for (const s of sums) {
      const oids: Oid[] = [];
      if (s.length === 64) oids.push(s);
      else {
        for (const k of repo.contentIndex.parentKeys('blob', s)) oids.push(k.toString('hex', 1));
      }
      for (const oid of oids.length > 1 ? [...new Set(oids)] : oids) {
        if (!isOid(oid)) continue;
        const occ = resolver.occurrences(indexKey('blob', oid));
        for (let i = 0; i < occ.length; i += 2) {
          const commit = occ[i]!;
          const p = occ[i + 1]!;
          const ref = scope.get(commit);
          if (ref === undefined) continue;
          // A path of ASCII bytes is its own text (most are): no buffer, no decoding.
          if (!filter && !NON_ASCII.test(p)) { yield { ref, commit, path: p, sha256: oid, type: 'file' }; continue; }
          const raw = Buffer.from(p, 'latin1');
          const path = raw.toString('utf8');
          if (filter) {
            // Entry predicates need the entry itself: look it up (trees are cached).
            const e = lookup(repo, commit, raw);
            if (!e || !filter(path, e)) continue;
          }
          const hex = hexIfNotUtf8(raw);
          yield hex ? { ref, commit, path, pathHex: hex, sha256: oid, type: 'file' } : { ref, commit, path, sha256: oid, type: 'file' };
        }
      }
    }
    return;
  }

  // Manifest walk, each distinct tree once: matches below a tree are kept as paths relative to it. Path globs
  // depend on the whole path, so only name/attribute queries can reuse a subtree's matches.
  const cacheable = options.path === undefined;
  // Paths are matched as UTF-8 text and kept as bytes too (`raw`), so that a name that is not UTF-8 is reported exactly.
  type Match = { path: string; raw: Buffer; e: TreeEntry };
  const memo = new Map<Oid, Match[]>();
  const slash = Buffer.from('/');
  /** Appends `ms` (matches relative to the directory `name`) to `out`, relative to its parent. */
  const appendUnder = (out: Match[], name: Buffer, ms: Match[]) => {
    const n = name.toString('utf8');
    for (const m of ms) out.push({ path: `${n}/${m.path}`, raw: Buffer.concat([name, slash, m.raw]), e: m.e });
  };
  // A fold over the walk: one frame per directory being walked collects its matches (relative to it when cacheable);
  // when the walk leaves a directory its frame is memoized by tree id and added to its parent's. A directory whose
  // id is memoized is taken from there and not walked again.
  const walk = (tree: Oid): Match[] => {
    const known = memo.get(tree);
    if (known) return known;
    const frames: Array<{ oid: Oid; out: Match[] }> = [{ oid: tree, out: [] }];
    walkTree(repo.objects, tree, (p, e) => {
      const top = frames[frames.length - 1]!.out;
      const raw = cacheable ? e.name : p;
      const path = raw.toString('utf8');
      if (filter!(path, e)) top.push({ path, raw, e });
      if (e.type !== 'dir' || !e.oid) return false;
      if (!cacheable) return true;
      const m = memo.get(e.oid);
      if (m) { appendUnder(top, e.name, m); return false; }
      frames.push({ oid: e.oid, out: [] });
      return true;
    }, {
      leave: (_p, e) => {
        if (!cacheable) return;
        const f = frames.pop()!;
        memo.set(f.oid, f.out);
        appendUnder(frames[frames.length - 1]!.out, e.name, f.out);
      },
    });
    const out = frames[0]!.out;
    if (cacheable) memo.set(tree, out);
    return out;
  };
  for (const [commit, ref] of scope) {
    const tree = commitTree(repo.objects, readCommit(repo.objects, commit));
    for (const m of walk(tree)) {
      const hex = hexIfNotUtf8(m.raw);
      yield { ref, commit, path: m.path, ...(hex ? { pathHex: hex } : {}), type: m.e.type, size: m.e.size };
    }
  }
}

function lookup(repo: Repository, commit: Oid, path: Buffer): TreeEntry | undefined {
  try {
    return resolveEntry(repo, commit, readCommit(repo.objects, commit), path, commit).entry;
  } catch (e) {
    if (e instanceof PathNotFoundError) return undefined;
    throw e;
  }
}
