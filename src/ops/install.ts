/**
 * Installing, upgrading and removing Debian packages in images, offline, as derived commits.
 *
 * The work is split the way it is cheapest to share:
 *
 * 1. resolution (resolve.ts) against the image's own dpkg status and the sources: what apt would choose;
 * 2. unpacking at tree level (unpack-debs.ts): each .deb's files are read once into a stored package record
 *    (deb-record.ts, keyed by the .deb's sha256) and merged into the image's tree as `dpkg --unpack` would;
 * 3. what only running code can do — maintainer scripts, triggers, `dpkg --configure`, removals — runs in the
 *    sandbox (sandbox.ts): the image's own dpkg, chrooted into an overlay whose bottom layer is a checkout of the
 *    base kept per tree id (sandbox-layer.ts), with the unpacked files as a layer above it. Its changes become tree
 *    edits;
 * 4. the result is a commit with a derivation record naming the request and the packages by id; the same request
 *    on the same base tree (memo key: base tree id + recipe id, no time in it) returns the recorded result at once.
 *
 * Scripts run as dpkg runs them for `dpkg -i`, with one documented difference: all `preinst`s of a round run before
 * the round's packages are unpacked (dpkg runs each just before its own package). A round ends where a package
 * pre-depends on one unpacked in the same round, which must be configured first (as apt splits dpkg runs).
 */
import { globRegExp } from './find.js';
import { PackageStateError, ScriptFailedError, UsageError, VivaError } from '../errors.js';
import type { Commit, RootKind, RootMeta } from '../model/commit.js';
import { partitionDirName } from '../model/disk.js';
import { type PackageDerivation, type PackageOp, type PackageRecipe, encodeDerivation, packageRecipeId } from '../model/derivation.js';
import type { Oid } from '../model/oid.js';
import { branchRef } from '../model/ref.js';
import { readDeb, hashDeb } from '../packages/deb.js';
import type { DebIndexCache } from '../packages/deb-directory.js';
import { type Deb822Paragraph, fieldValue, formatDeb822, parseDeb822 } from '../packages/deb822.js';
import { DPKG_INFO_DIR, DPKG_STATUS, bytes, hasFiles, latin1 } from '../packages/dpkg-db.js';
import { type InstallPlan, type InstallRequest, resolveInstall } from '../packages/resolve.js';
import { Sandbox, applyChanges } from '../packages/sandbox.js';
import { type PackageSources, openSources } from '../packages/sources.js';
import { type PackageCandidate, PackageUniverse, candidateFromParagraph } from '../packages/source.js';
import { compareDebVersions } from '../packages/debversion.js';
import type { Repository } from '../store/repository.js';
import { readBlobBytes, readCommit, readDisk, tryReadPath } from '../store/typed.js';
import { patchDisk } from './derive-disk.js';
import { MutableTree } from '../tree/mutable-tree.js';
import { type DebRecord, debRecord, findDebRecord, hasDebRecord, loadDebRecord, rememberDebRecords } from './deb-record.js';
import type { DeriveBase } from './derive.js';
import { TOOL, memoized } from './derive.js';
import { readDerivation } from './derivations.js';
import { resolveRevision } from './resolve.js';
import { cachedCheckout, sandboxRoot, writeLayer } from './sandbox-layer.js';
import { storeBytes, storeContent } from '../store/store-content.js';
import { type UnpackDeb, parseInterests, unpackDebs } from './unpack-debs.js';
import { commitIdentity, firstLine, writeCommits } from './write-commit.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Images of a fleet worked on at once (at most the number of CPUs). */
const FLEET_JOBS = 2;

/**
 * The options of {@link packageOp}: the operation, the image (or fleet of branches), the packages and where they come from.
 */
export interface PackageOpOptions {
  op: PackageOp;
  /** The image to start from (a revision); with `branch`. Or `branches`. */
  base?: string;
  /** Branch of the result (created, or advanced: its head becomes the parent). */
  branch?: string;
  /** Fleet form: every branch matching this glob (`web/*`), each getting a commit on itself. */
  branches?: string;
  /** Package names (`name`, `name=version`) or .deb paths (install only: a path ends in `.deb`). */
  packages: string[];
  /** Package sources (see packages/sources.ts). */
  from: string[];
  /** Run maintainer scripts and triggers (default true). False leaves packages unpacked, as `dpkg --unpack`. */
  scripts?: boolean;
  /** remove: purge configuration files too. */
  purge?: boolean;
  message?: string;
  author?: string;
  time?: number;
  signal?: AbortSignal;
}

/** One package installed, upgraded or removed in an image. */
export interface PackageChangeItem {
  name: string;
  arch: string;
  version?: string;
  /** The version it replaced (upgrade) or that was removed. */
  from?: string;
}

/** What a package operation did on one image (one branch): its status, the new commit and the packages changed. */
export interface PackageOpItem {
  branch: string;
  /** `unchanged`: the request had nothing to do on this image (no commit; `reason` says why). */
  status: 'done' | 'unchanged' | 'failed';
  reason?: string;
  /** The new commit (done). */
  commit?: Oid;
  parent?: Oid | null;
  base: { rev: string; commit: Oid };
  recipe?: Oid;
  /** The same request on the same base tree had been made before: its result was reused. */
  reused?: boolean;
  installed: PackageChangeItem[];
  removed: PackageChangeItem[];
  /** Package records read from .deb files now (the others were in the repository). */
  unpacked?: number;
  error?: { code: string; exitCode?: number; message: string; output?: string };
}

/** What {@link packageOp} (or {@link install}, {@link upgrade}, {@link remove}) did, per image, with counts. */
export interface PackageOpResult {
  op: PackageOp;
  items: PackageOpItem[];
  done: number;
  unchanged: number;
  failed: number;
}

/** What a request resolved to on one base: the plan, the records, the recipe. */
interface Prepared {
  plan: InstallPlan;
  records: DebRecord[];
  recipe: PackageRecipe;
}

/**
 * The index of .deb directories (each file's control paragraph by its identity: path, device, inode, size, times),
 * kept in the repository's meta database so a second look at a directory reads no package. New entries are written
 * in one transaction when the source has been read.
 */
class RepoDebIndexCache implements DebIndexCache {
  private readonly fresh = new Map<string, string>();
  constructor(private readonly repo: Repository) {}
  get(key: string): string | undefined {
    return this.fresh.get(key) ?? (this.repo.meta.get(`debindex:${key}`) as string | undefined);
  }
  put(key: string, value: string): void {
    this.fresh.set(key, value);
  }
  flush(): void {
    if (this.fresh.size === 0) return;
    const entries = [...this.fresh];
    this.fresh.clear();
    this.repo.meta.putAll(entries.map(([k, v]) => [`debindex:${k}`, v]));
  }
}

/** State shared by every image of one run (a fleet): sources opened once per architecture, records read once. */
class Session {
  private readonly sources = new Map<string, Promise<PackageSources>>();
  /** .deb arguments by path: their candidate and sha256. */
  private readonly localDebs = new Map<string, Promise<{ candidate: PackageCandidate; sha256: Oid }>>();
  readonly records = new Map<Oid, Promise<DebRecord>>();

  constructor(readonly repo: Repository, readonly options: PackageOpOptions) {}

  universe(arch: string): Promise<PackageSources> {
    let s = this.sources.get(arch);
    if (!s) {
      const indexCache = new RepoDebIndexCache(this.repo);
      s = openSources(this.options.from, { arch, cacheDir: path.join(this.repo.dataDir, 'cache', 'packages'), indexCache, ...(this.options.signal ? { signal: this.options.signal } : {}) })
        .finally(() => indexCache.flush());
      this.sources.set(arch, s);
    }
    return s;
  }

  localDeb(file: string): Promise<{ candidate: PackageCandidate; sha256: Oid }> {
    let p = this.localDebs.get(file);
    if (!p) {
      p = (async () => {
        const deb = await readDeb(file);
        const sha256 = await hashDeb(file);
        const text = `${deb.control.fields.map((f) => `${f.name}: ${f.value}`).join('\n')}\nFilename: ${path.basename(file)}\nSHA256: ${sha256}\n`;
        const [para] = parseDeb822(text);
        return { candidate: candidateFromParagraph(para!, file, path.dirname(path.resolve(file))), sha256 };
      })();
      this.localDebs.set(file, p);
    }
    return p;
  }

  /** The stored record of `c` (from the repository's cache, else fetched and read now). */
  record(c: PackageCandidate, sources: PackageSources | undefined, sha256: Oid): Promise<DebRecord> {
    let r = this.records.get(sha256);
    if (!r) {
      r = (async () => {
        const known = await findDebRecord(this.repo, sha256, c.filename ?? c.name);
        if (known) return known;
        const file = sources && !this.localCandidates.has(c) ? await sources.fetch(c) : path.join(c.origin ?? '', c.filename ?? '');
        return debRecord(this.repo, this.repo.objects, file, sha256, this.options.signal);
      })();
      this.records.set(sha256, r);
    }
    return r;
  }

  /** Candidates made from .deb arguments (read from their own path, not fetched from a source). */
  readonly localCandidates = new Set<PackageCandidate>();

  private readonly checkouts = new Map<Oid, Promise<{ dir: string }>>();

  /** Starts making the cached checkout `base` will need, without waiting for it (its errors surface in `checkout`). */
  prefetchCheckout(base: DeriveBase): void {
    const bottom = sharedBottom(this.repo, base);
    this.checkout(bottom.rev, bottom.tree, bottom.rootMeta).catch(() => undefined);
  }

  /** The cached checkout of `tree`, made once even when several images of a fleet ask at the same time. */
  checkout(rev: string, tree: Oid, rootMeta: RootMeta): Promise<{ dir: string }> {
    let c = this.checkouts.get(tree);
    if (!c) {
      c = cachedCheckout(this.repo, rev, tree, rootMeta);
      this.checkouts.set(tree, c);
    }
    return c;
  }
}

/**
 * Where an image's packages live: a tree commit's tree, or the file system of a disk commit that holds the dpkg
 * database (`partition`: its directory in the disk's view, `p1`; '' for a bare file system). `base` is the image as a
 * tree commit of that file system, which the install steps work on.
 */
interface ImageRoot {
  base: DeriveBase;
  disk?: { partition: string };
}

function imageRoot(repo: Repository, image: DeriveBase, name: string): ImageRoot {
  if (image.commit.rootKind === 'tree') return { base: image };
  const disk = readDisk(repo.objects, image.commit.root);
  const fileSystems = disk.regions.filter((r) => r.content.kind === 'fs');
  for (const r of fileSystems) {
    if (r.content.kind !== 'fs') continue;
    if (tryReadPath(repo.objects, r.content.tree, bytes(DPKG_STATUS))?.type !== 'file') continue;
    const partition = r.partition ? partitionDirName(r.partition.index) : '';
    const commit: Commit = { ...image.commit, rootKind: 'tree', root: r.content.tree, rootMeta: r.content.rootMeta };
    return { base: { oid: image.oid, commit, name: image.name ?? name }, disk: { partition } };
  }
  // A dpkg database in an LVM logical volume: found, but patching file systems inside LVs is not supported.
  for (const r of disk.regions) {
    if (r.content.kind !== 'lvm') continue;
    for (const v of r.content.volumes) {
      if (tryReadPath(repo.objects, v.content.tree, bytes(DPKG_STATUS))?.type !== 'file') continue;
      throw new UsageError(`${name}: the dpkg database is in LVM logical volume '${r.content.vg}/${v.name}': packages cannot be installed into logical volumes (install into a checkout and commit the disk again)`);
    }
  }
  throw new PackageStateError(name, `no dpkg database (/${DPKG_STATUS}) on ${fileSystems.length ? `any file system of the disk (${fileSystems.map((r) => (r.partition ? partitionDirName(r.partition.index) : 'the disk')).join(', ')})` : 'the disk: it has no file system viva reads'}`);
}

/**
 * The commit's image with the file system the packages went into replaced by `fs` (a tree commit: `fs` itself; a
 * disk: its ext2/3/4 file system patched in place, as derive patches it).
 */
async function imageWith(repo: Repository, image: DeriveBase, root: ImageRoot, fs: { root: Oid; rootMeta: RootMeta }, time: number): Promise<{ rootKind: RootKind; root: Oid; rootMeta: RootMeta }> {
  if (!root.disk) return { rootKind: 'tree', ...fs };
  const disk = readDisk(repo.objects, image.commit.root);
  let view = fs.root;
  let viewMeta = fs.rootMeta;
  if (root.disk.partition) {
    const t = MutableTree.open(repo.objects, { tree: disk.view, ...(image.commit.rootMeta ? { rootMeta: image.commit.rootMeta } : {}) });
    t.graft(Buffer.from(root.disk.partition), fs.root, { ...fs.rootMeta, xattrs: fs.rootMeta.xattrs.map((x) => ({ name: x.name, value: Buffer.from(x.value) })) });
    view = t.write(repo.objects).oid;
    viewMeta = t.rootMeta();
  }
  return { rootKind: 'disk', root: await patchDisk(repo, repo.objects, image, view, viewMeta, time), rootMeta: viewMeta };
}

/** The image's dpkg status (its stanzas) and native architecture; PackageStateError when it has none. */
async function readImageStatus(repo: Repository, base: DeriveBase, name: string): Promise<{ status: Deb822Paragraph[]; arch: string }> {
  const e = tryReadPath(repo.objects, base.commit.root, bytes(DPKG_STATUS));
  if (e?.type !== 'file' || !e.oid) throw new PackageStateError(name, `no dpkg database (/${DPKG_STATUS}): not a Debian-family image`);
  const status = parseDeb822(latin1(await readBlobBytes(repo.objects, e.oid, e.size, DPKG_STATUS)));
  const dpkg = status.find((p) => fieldValue(p, 'Package') === 'dpkg' && /\binstalled$/.test(fieldValue(p, 'Status') ?? ''));
  const arch = dpkg ? fieldValue(dpkg, 'Architecture') : undefined;
  if (!arch || arch === 'all') throw new PackageStateError(name, `dpkg is not installed in the image (/${DPKG_STATUS}): its architecture is unknown`);
  return { status, arch };
}

/** The packages on the image (dpkg states with files), by name. */
function installedVersions(status: Deb822Paragraph[]): Map<string, { version: string; arch: string }> {
  const out = new Map<string, { version: string; arch: string }>();
  for (const p of status) {
    if (!hasFiles(p)) continue;
    out.set(fieldValue(p, 'Package')!, { version: fieldValue(p, 'Version') ?? '', arch: fieldValue(p, 'Architecture') ?? '' });
  }
  return out;
}

/** Splits `name=version` (apt's form); a name must be a Debian package name. */
function parseRequested(arg: string): { name: string; version?: string } {
  const i = arg.indexOf('=');
  const name = i < 0 ? arg : arg.slice(0, i);
  const version = i < 0 ? undefined : arg.slice(i + 1);
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name) || version === '') throw new UsageError(`'${arg}' is not a package name (name or name=version) or a .deb file`);
  return version ? { name, version } : { name };
}

/** Resolves the request on one base and reads the records it needs. */
async function prepare(s: Session, base: DeriveBase, name: string): Promise<Prepared> {
  const { options } = s;
  const { status, arch } = await readImageStatus(s.repo, base, name);
  const installed = installedVersions(status);
  const request: InstallRequest = { install: [] };
  const recipeRequest: PackageRecipe['request'] = [];
  let sources: PackageSources | undefined;
  let universe = new PackageUniverse();
  if (options.op !== 'remove') {
    sources = await s.universe(arch);
    universe = sources.universe;
  }
  if (options.op === 'remove') {
    for (const a of options.packages) {
      const q = parseRequested(a);
      if (!installed.has(q.name)) throw new PackageStateError(name, `package '${q.name}' is not installed, so not removed`);
    }
    request.remove = options.packages.map((a) => parseRequested(a).name);
  } else {
    for (const a of options.packages) {
      if (a.endsWith('.deb')) {
        if (options.op !== 'install') throw new UsageError(`'${a}': .deb files are given to install, not ${options.op}`);
        const { candidate } = await s.localDeb(a);
        s.localCandidates.add(candidate);
        universe.add(candidate);
        // The file given wins over a source's package of the same version (apt prefers a local .deb the same way).
        request.install.push({ name: candidate.name, version: candidate.version });
        recipeRequest.push({ name: candidate.name, version: candidate.version });
        continue;
      }
      const q = parseRequested(a);
      if (options.op === 'upgrade' && !installed.has(q.name)) throw new PackageStateError(name, `package '${q.name}' is not installed, so not upgraded (use install)`);
      request.install.push(q);
      recipeRequest.push(q);
    }
    if (options.op === 'upgrade' && options.packages.length === 0) {
      for (const [pkg, v] of installed) {
        const best = universe.lookupVersions(pkg).find((c) => c.arch === v.arch || c.arch === 'all');
        if (best && compareDebVersions(best.version, v.version) > 0) request.install.push({ name: pkg });
      }
    }
  }
  const plan = resolveInstall(status, universe, request, { arch });
  // A package not read before: no earlier result can be reused, so the sandbox will run; its checkout of the base is
  // made while the packages are read.
  if (options.scripts !== false && plan.install.some((p) => p.candidate.sha256 && !s.records.has(p.candidate.sha256) && !hasDebRecord(s.repo, p.candidate.sha256))) {
    s.prefetchCheckout(base);
  }
  const records: DebRecord[] = [];
  for (const p of plan.install) {
    const c = p.candidate;
    const sha256 = c.sha256 ?? (await s.localDeb(path.join(c.origin ?? '', c.filename ?? ''))).sha256;
    records.push(await s.record(c, sources, sha256));
  }
  const recipe: PackageRecipe = {
    request: recipeRequest,
    remove: request.remove ?? [],
    purge: options.purge === true,
    scripts: options.scripts !== false,
    debs: plan.install.map((p, i) => ({ name: p.name, version: p.version, arch: p.arch, sha256: records[i]!.sha256, record: records[i]!.record })),
    removed: plan.remove.filter((r) => r.reason !== 'requested').map((r) => r.name),
  };
  return { plan, records, recipe };
}

/** A maintainer-script environment as dpkg 1.21 sets it. */
function scriptEnv(pkg: string, arch: string, script: string): string {
  return `DPKG_MAINTSCRIPT_PACKAGE=${pkg} DPKG_MAINTSCRIPT_ARCH=${arch} DPKG_MAINTSCRIPT_NAME=${script} DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1 DPKG_ADMINDIR=/var/lib/dpkg DPKG_ROOT= DPKG_FORCE=`;
}

/**
 * The shell lines that run a maintainer script the image does not hold (a new preinst, an old postrm) as dpkg runs
 * them, from `var/lib/dpkg/tmp.ci` (removed after); its bytes travel in `env` (base64, under a fresh name).
 */
function tmpScript(env: Record<string, string>, data: Buffer, pkg: string, arch: string, script: 'preinst' | 'postrm', args: string): string {
  const k = `VIVA_SCRIPT_${Object.keys(env).length}`;
  env[k] = data.toString('base64');
  const at = `/var/lib/dpkg/tmp.ci/${script}`;
  return `mkdir -p /var/lib/dpkg/tmp.ci && printf '%s' "$${k}" | base64 -d > ${at} && chmod 755 ${at}`
    + ` && ${scriptEnv(pkg, arch, script)} ${at} ${args} || exit $?; rm -rf /var/lib/dpkg/tmp.ci`;
}

/** Shell-quotes a word. */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs `argv` in the sandbox; a non-zero exit is a ScriptFailedError for `step`. */
async function runStep(sb: Sandbox, name: string, step: string, script: string, env: Record<string, string>): Promise<void> {
  const r = await sb.run(['/bin/sh', '-c', script], { DEBIAN_FRONTEND: 'noninteractive', DEBCONF_NONINTERACTIVE_SEEN: 'true', ...env });
  if (r.code !== 0) throw new ScriptFailedError(name, step, r.code, r.output);
}

/**
 * Splits the packages to unpack into rounds: a package that pre-depends on a package unpacked in the same round
 * starts a new one (its pre-dependency must be configured before it is unpacked).
 */
function rounds(plan: InstallPlan, records: DebRecord[]): Array<Array<{ p: InstallPlan['install'][number]; r: DebRecord }>> {
  const out: Array<Array<{ p: InstallPlan['install'][number]; r: DebRecord }>> = [[]];
  let names = new Set<string>();
  plan.install.forEach((p, i) => {
    const pre = p.candidate.preDepends.flat().map((x) => x.name);
    if (pre.some((n) => names.has(n))) {
      out.push([]);
      names = new Set();
    }
    out[out.length - 1]!.push({ p, r: records[i]! });
    names.add(p.name);
    for (const pv of p.candidate.provides) names.add(pv.name);
  });
  return out.filter((r) => r.length);
}

/** Carries out `prep` on `base`: the new tree and its root metadata. */
async function apply(s: Session, base: DeriveBase, name: string, prep: Prepared, mtimeNs: bigint): Promise<{ root: Oid; rootMeta: RootMeta }> {
  const repo = s.repo;
  const store = repo.objects;
  const rootMeta = base.commit.rootMeta;
  const tree = MutableTree.open(store, { tree: base.commit.root, ...(rootMeta ? { rootMeta } : {}), imageName: name });
  const unpackOf = (r: DebRecord): UnpackDeb => r.unpack;
  if (!prep.recipe.scripts) {
    if (prep.plan.remove.length) throw new UsageError(`${name}: removing packages (${prep.plan.remove.map((r) => r.name).join(', ')}) runs their scripts: not possible with --no-scripts`);
    await unpackDebs(store, store, tree, prep.records.map(unpackOf), { mtimeNs, ...(s.options.signal ? { signal: s.options.signal } : {}) });
    await markAutoInstalled(store, tree, prep, mtimeNs);
    const w = tree.write(store);
    return { root: w.oid, rootMeta: tree.rootMeta() };
  }

  const bottom = sharedBottom(repo, base);
  const { dir } = await s.checkout(bottom.rev, bottom.tree, bottom.rootMeta);
  Sandbox.removeStale(sandboxRoot(repo));
  const sb = Sandbox.create(dir, sandboxRoot(repo));
  const made = ['proc', 'sys', 'dev'].filter((d) => !tree.lookup(bytes(d)));
  const takeChanges = async () => {
    await applyChanges(sb.upper, tree, async (e) => storeContent(store, e.content!, s.options.signal), { made });
    sb.stack();
  };
  try {
    let shown = bottom.tree;
    const layerTo = async (to: Oid, meta: RootMeta) => {
      if (to === shown) return;
      const l = sb.layerDir();
      await writeLayer(store, shown, to, meta, l);
      sb.addLayer(l);
      shown = to;
    };
    await layerTo(base.commit.root, rootMeta ?? tree.rootMeta());
    addPolicyLayer(sb, tree);

    if (prep.plan.remove.length) {
      const names = prep.plan.remove.map((r) => r.name);
      const how = prep.recipe.purge ? '--purge' : '--remove';
      await runStep(sb, name, `dpkg ${how} ${names.join(' ')}`, `exec dpkg ${how} --force-confdef --force-confold ${names.map(sq).join(' ')}`, {});
      await takeChanges();
    }
    for (const round of rounds(prep.plan, prep.records)) {
      // Before unpacking: the old version's prerm and the new preinst, as dpkg runs them (from tmp.ci, removed after).
      const pre: string[] = [];
      const env: Record<string, string> = {};
      const post: string[] = [];
      for (const { p, r } of round) {
        const c = r.unpack.deb.control;
        const script = r.unpack.deb.controlFiles.get('preinst');
        const info = `/${DPKG_INFO_DIR}/${c.package}`;
        if (p.from) pre.push(`if [ -x ${sq(`${info}.prerm`)} ]; then ${scriptEnv(c.package, c.architecture, 'prerm')} ${sq(`${info}.prerm`)} upgrade ${sq(p.version)} || exit $?; fi`);
        if (script) pre.push(tmpScript(env, script.data, c.package, c.architecture, 'preinst', p.from ? `upgrade ${sq(p.from)}` : 'install'));
        // The old postrm runs after the new files are in place: kept from the base before the unpack replaces it.
        if (p.from) {
          const old = tree.lookup(bytes(`${DPKG_INFO_DIR}/${c.package}.postrm`)) ?? tree.lookup(bytes(`${DPKG_INFO_DIR}/${c.package}:${c.architecture}.postrm`));
          if (old?.type === 'file' && old.oid) {
            post.push(tmpScript(env, await readBlobBytes(store, old.oid, old.size, 'postrm'), c.package, c.architecture, 'postrm', `upgrade ${sq(p.version)}`));
          }
        }
      }
      if (pre.length) {
        await runStep(sb, name, `preinst of ${round.map((x) => x.p.name).join(', ')}`, pre.join('\n'), env);
        await takeChanges();
        shown = tree.write(store).oid;
      }
      const interests = await fileInterests(store, tree);
      const unpacked = await unpackDebs(store, store, tree, round.map((x) => unpackOf(x.r)), { mtimeNs, ...(s.options.signal ? { signal: s.options.signal } : {}) });
      await layerTo(tree.write(store).oid, tree.rootMeta());
      // File triggers (man-db's /usr/share/man, …) that dpkg activates while it unpacks: viva unpacked, so they are
      // activated by name before configuring, as dpkg-trigger does (dpkg processes them at the end of its run). A
      // package's paths meet the interests registered before it: its own new ones count from the next package on.
      const names = new Set<string>();
      round.forEach((x, i) => {
        const paths = (x.r.unpack.files ?? []).map((f) => `/${latin1(f.path)}`).concat(unpacked.packages[i]!.removed);
        for (const n of triggeredBy(paths, interests)) names.add(n);
        const own = x.r.unpack.deb.controlFiles.get('triggers');
        for (const t of own ? parseInterests(latin1(own.data)) : []) if (t.name.startsWith('/')) interests.add(t.name.replace(/\/+$/, ''));
      });
      // dpkg-trigger takes one name per run; activated in the order dpkg meets the paths (archive order).
      for (const n of names) post.push(`dpkg-trigger --no-await ${sq(n)} || exit $?`);
      post.push('exec dpkg --configure --pending --force-confdef --force-confold');
      await runStep(sb, name, `dpkg --configure of ${round.map((x) => x.p.name).join(', ')}`, post.join('\n'), env);
      await takeChanges();
      shown = tree.write(store).oid;
    }
  } finally {
    sb.remove();
  }
  await markAutoInstalled(store, tree, prep, mtimeNs);
  const w = tree.write(store);
  return { root: w.oid, rootMeta: tree.rootMeta() };
}

const APT_EXTENDED_STATES = 'var/lib/apt/extended_states';

/**
 * apt's record of which packages were installed only as dependencies (`var/lib/apt/extended_states`, read by
 * `apt-get autoremove`), kept as `apt-get install` keeps it: packages pulled in get `Auto-Installed: 1`, packages
 * named in the request lose their mark, removed ones their stanza. Other stanzas stay byte for byte; new ones are
 * appended (apt itself rewrites the file in its cache's order). Nothing happens in an image without apt's state
 * directory.
 */
async function markAutoInstalled(store: Repository['objects'], tree: MutableTree, prep: Prepared, mtimeNs: bigint): Promise<void> {
  if (tree.lookup(bytes('var/lib/apt'))?.type !== 'dir') return;
  const node = tree.lookup(bytes(APT_EXTENDED_STATES));
  const old = node?.type === 'file' && node.oid ? (await readBlobBytes(store, node.oid, node.size, APT_EXTENDED_STATES)).toString('utf8') : '';
  const requested = new Set(prep.recipe.request.map((q) => q.name));
  const gone = new Set(prep.plan.remove.map((r) => r.name));
  const paragraphs = parseDeb822(old).filter((p) => p.fields.length);
  const keep = paragraphs.filter((p) => {
    const n = fieldValue(p, 'Package') ?? '';
    return !gone.has(n) && !requested.has(n);
  });
  const known = new Set(keep.map((p) => fieldValue(p, 'Package')));
  const added = prep.plan.install.filter((p) => !p.requested && !p.from && !known.has(p.name))
    .map((p) => ({ fields: [{ name: 'Package', value: p.name }, { name: 'Architecture', value: p.arch === 'all' ? nativeArch(prep) : p.arch }, { name: 'Auto-Installed', value: '1' }] }));
  if (keep.length === paragraphs.length && added.length === 0) return;
  // apt ends every stanza with a blank line, the last one too.
  const text = `${formatDeb822([...keep, ...added])}\n`;
  const content = await storeBytes(store, Buffer.from(text));
  const meta = { mode: 0o644, uid: 0, gid: 0, mtimeNs, xattrs: [] };
  tree.writeFile(bytes(APT_EXTENDED_STATES), content, { newMeta: meta, mtimeNs });
}

/** The image's architecture as the plan saw it (the first package that is not `all`), for apt's stanzas. */
function nativeArch(prep: Prepared): string {
  return prep.plan.install.find((p) => p.arch !== 'all')?.arch ?? prep.plan.remove.find((p) => p.arch !== 'all')?.arch ?? 'amd64';
}

/** Exit status of policy-rc.d that tells invoke-rc.d and deb-systemd-invoke not to start or stop a service. */
const POLICY_RC_D = '#!/bin/sh\n# viva: no service is started or stopped while packages are installed offline\nexit 101\n';

/**
 * A layer with `usr/sbin/policy-rc.d` answering 101 (as debootstrap and mmdebstrap install one): maintainer scripts
 * do not start daemons in the sandbox. It is a lower layer, so it never becomes part of the image; its directories
 * carry the image's own metadata so the merged view is unchanged but for the one file.
 */
function addPolicyLayer(sb: Sandbox, tree: MutableTree): void {
  const usr = tree.lookup(bytes('usr'));
  const sbin = tree.lookup(bytes('usr/sbin'));
  if (usr?.type !== 'dir' || sbin?.type !== 'dir' || tree.lookup(bytes('usr/sbin/policy-rc.d'))) return;
  const l = sb.layerDir();
  const made: Array<[string, typeof usr]> = [['usr', usr], ['usr/sbin', sbin]];
  for (const [p] of made) fs.mkdirSync(path.join(l, p));
  fs.writeFileSync(path.join(l, 'usr/sbin/policy-rc.d'), POLICY_RC_D, { mode: 0o755 });
  for (const [p, n] of made.reverse()) {
    const at = path.join(l, p);
    fs.chownSync(at, n.uid, n.gid);
    fs.chmodSync(at, n.mode & 0o7777);
    const secs = Number(n.mtimeNs / 1000n) / 1e6;
    fs.utimesSync(at, secs, secs);
  }
  sb.addLayer(l);
}

/** The file-trigger interest paths of the image (`var/lib/dpkg/triggers/File`). */
async function fileInterests(store: Repository['objects'], tree: MutableTree): Promise<Set<string>> {
  const node = tree.lookup(bytes('var/lib/dpkg/triggers/File'));
  if (node?.type !== 'file' || !node.oid) return new Set();
  return new Set(latin1(await readBlobBytes(store, node.oid, node.size, 'var/lib/dpkg/triggers/File')).split('\n')
    .map((l) => l.split(' ')[0] ?? '').filter((p) => p.startsWith('/')).map((p) => p.replace(/\/+$/, '')));
}

/** The file-trigger names that `paths` (absolute image paths) activate: a path at or below an interest path, as dpkg's trig_file_activate matches them. */
function triggeredBy(paths: string[], interests: Set<string>): string[] {
  const hit = new Set<string>();
  for (const p of paths) {
    for (let at = p; at.length > 0; at = at.slice(0, Math.max(0, at.lastIndexOf('/')))) {
      if (interests.has(at)) hit.add(at);
    }
  }
  return [...hit];
}

/**
 * The tree whose cached checkout the sandbox starts from: the bottom of the image's derivation chain (a clone's
 * base, the base of an install on a clone), so that every image derived from one base shares one checkout.
 */
function sharedBottom(repo: Repository, base: DeriveBase): { rev: string; tree: Oid; rootMeta: RootMeta } {
  let cur = { oid: base.oid, commit: base.commit };
  for (let depth = 0; depth < 64; depth++) {
    const dv = readDerivation(cur.oid, cur.commit);
    const b = dv?.bases[0];
    if (!b || b.rootKind !== 'tree' || !repo.objects.hasObject('commit', b.commit)) break;
    const c = readCommit(repo.objects, b.commit);
    if (c.rootKind !== 'tree' || !c.rootMeta) break;
    cur = { oid: b.commit, commit: c };
  }
  const meta = cur.commit.rootMeta ?? { mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] };
  return { rev: cur.oid, tree: cur.commit.root, rootMeta: meta };
}

function defaultMessage(op: PackageOp, prep: Prepared, o: PackageOpOptions): string {
  const names = o.packages.length ? o.packages.map((a) => (a.endsWith('.deb') ? path.basename(a) : a)).join(' ') : 'all packages';
  return `${op} ${names}${op === 'install' && prep.plan.install.length > o.packages.length ? ` (+${prep.plan.install.length - o.packages.length} dependencies)` : ''}`;
}

/** The images a run works on: BASE → BRANCH, or every branch matching `branches` onto itself. */
function targets(repo: Repository, o: PackageOpOptions): Array<{ rev: string; ref: string }> {
  if (o.branches !== undefined) {
    if (o.base !== undefined || o.branch !== undefined) throw new UsageError('--branches GLOB takes the place of BASE and -b: give one form');
    const re = globRegExp(o.branches, '--branches');
    const refs = repo.refs.list('refs/heads/').filter((r) => re.test(r.ref.slice('refs/heads/'.length)));
    if (refs.length === 0) throw new UsageError(`--branches '${o.branches}' matches no branch`);
    return refs.map((r) => ({ rev: r.ref.slice('refs/heads/'.length), ref: r.ref }));
  }
  if (o.base === undefined || o.branch === undefined) throw new UsageError('give BASE and -b BRANCH (or --branches GLOB)');
  return [{ rev: o.base, ref: branchRef(o.branch) }];
}

/**
 * Replays a package derivation on another base (`rebuild`): the same request, resolved again against the new base's
 * dpkg database with the packages the derivation recorded as the only source (their stored records: no .deb file or
 * source is needed). Returns the result and the derivation of the replay (its package list may differ: a dependency
 * the new base already has is not unpacked again). Memoized as install is.
 * Throws what packageOp throws for one image (DependencyError when the new base needs a package not recorded).
 */
export async function replayPackages(repo: Repository, image: DeriveBase, dv: PackageDerivation, time: number): Promise<{ rootKind: RootKind; root: Oid; rootMeta: RootMeta; reused: boolean; dv: PackageDerivation }> {
  const old = dv.recipe;
  const s = new Session(repo, { op: dv.kind, packages: [], from: [], scripts: old.scripts, purge: old.purge });
  const name = image.name ?? image.oid.slice(0, 12);
  const root = imageRoot(repo, image, name);
  const base = root.base;
  const { status, arch } = await readImageStatus(repo, base, name);
  const universe = new PackageUniverse();
  const bySha = new Map<Oid, DebRecord>();
  for (const d of old.debs) {
    const rec = await findDebRecord(repo, d.sha256, `${d.name}_${d.version}_${d.arch}.deb`) ?? { record: d.record, sha256: d.sha256, unpack: await loadDebRecord(repo, d.record, `${d.name}_${d.version}_${d.arch}.deb`), reused: true };
    const fields = rec.unpack.deb.control.fields.map((f) => `${f.name}: ${f.value}`).join('\n');
    const [para] = parseDeb822(`${fields}\nSHA256: ${d.sha256}\n`);
    universe.add(candidateFromParagraph(para!, `package record ${d.record}`));
    bySha.set(d.sha256, rec);
    s.records.set(d.sha256, Promise.resolve(rec));
  }
  const request: InstallRequest = dv.kind === 'remove' ? { install: [], remove: old.remove } : { install: old.request.length ? old.request : old.debs.map((d) => ({ name: d.name, version: d.version })) };
  const plan = resolveInstall(status, universe, request, { arch });
  const records = plan.install.map((p) => bySha.get(p.candidate.sha256!)!);
  const recipe: PackageRecipe = {
    ...old,
    debs: plan.install.map((p, i) => ({ name: p.name, version: p.version, arch: p.arch, sha256: records[i]!.sha256, record: records[i]!.record })),
    removed: plan.remove.filter((r) => r.reason !== 'requested').map((r) => r.name),
  };
  const next: PackageDerivation = { kind: dv.kind, bases: [{ commit: image.oid, rootKind: image.commit.rootKind, root: image.commit.root }], recipe, tool: TOOL };
  const hit = memoized(repo, image, packageRecipeId(recipe));
  if (hit) return { ...hit, reused: true, dv: next };
  const fs = await apply(s, base, name, { plan, records, recipe }, BigInt(time) * 1_000_000_000n);
  return { ...await imageWith(repo, image, root, fs, time), reused: false, dv: next };
}

/**
 * Installs, upgrades or removes packages in one image (BASE → a commit on BRANCH) or in every branch matching a
 * glob (each onto itself). Per image: the request is resolved against its dpkg database, the packages unpacked at
 * tree level (each .deb read once: records are kept by sha256), scripts run in the sandbox unless `scripts: false`,
 * and the result committed with a derivation record; the same request on the same base tree reuses the recorded
 * result. In the fleet form one image's failure does not stop the others; each branch moves alone, by
 * compare-and-swap, only when its own result is complete.
 *
 * Throws (single form; the fleet form reports per branch): UsageError, RevisionNotFoundError, PackageStateError,
 * DependencyError, FileConflictError, ScriptFailedError, SandboxError, source errors (SourceReadError,
 * CorruptInputError), RefConflictError. Nothing is written on a failure.
 *
 * @example
 * await packageOp(repo, { op: 'install', base: 'debian/base', branch: 'debian/tools', packages: ['htop'], from: ['/srv/debs'] });
 */
export async function packageOp(repo: Repository, options: PackageOpOptions): Promise<PackageOpResult> {
  const id = commitIdentity(options);
  if (options.message !== undefined && options.message.trim() === '') throw new UsageError(`aborting ${options.op} due to empty message`);
  if (options.op !== 'upgrade' && options.packages.length === 0) throw new UsageError(`nothing to ${options.op}: name at least one package`);
  if (options.op !== 'remove' && options.from.length === 0 && !options.packages.every((p) => p.endsWith('.deb'))) throw new UsageError('say where packages come from: --from DIR|URL');
  if (options.purge && options.op !== 'remove') throw new UsageError('--purge goes with remove');
  const list = targets(repo, options);
  const fleet = options.branches !== undefined;
  const s = new Session(repo, options);
  const items: PackageOpItem[] = [];
  const mtimeNs = BigInt(id.time) * 1_000_000_000n;
  await repo.beginSession(options.op);
  try {
    const runOne = async (t: { rev: string; ref: string }): Promise<PackageOpItem> => {
      const r = resolveRevision(repo, t.rev);
      const image: DeriveBase = { oid: r.oid, commit: r.commit, name: t.rev };
      const head = repo.refs.resolve(t.ref)?.oid ?? null;
      const item: PackageOpItem = { branch: t.ref, status: 'failed', base: { rev: t.rev, commit: r.oid }, installed: [], removed: [] };
      try {
        const root = imageRoot(repo, image, t.rev);
        const base = root.base;
        const prep = await prepare(s, base, t.rev);
        const rid = packageRecipeId(prep.recipe);
        item.recipe = rid;
        item.installed = prep.plan.install.map((p) => ({ name: p.name, arch: p.arch, version: p.version, ...(p.from ? { from: p.from } : {}) }));
        item.removed = prep.plan.remove.map((p) => ({ name: p.name, arch: p.arch, from: p.version }));
        if (prep.plan.install.length === 0 && prep.plan.remove.length === 0) {
          // As apt: nothing to do is no error ("already the newest version"); no commit is made.
          item.status = 'unchanged';
          item.reason = options.op === 'upgrade' && options.packages.length === 0
            ? 'nothing to upgrade: every package is at the newest version the sources have'
            : `${options.packages.map((a) => (a.endsWith('.deb') ? path.basename(a) : a)).join(', ')} already installed at ${options.packages.length === 1 ? 'that version' : 'those versions'}`;
          return item;
        }
        let applied = memoized(repo, image, rid);
        if (applied) item.reused = true;
        else applied = await imageWith(repo, image, root, await apply(s, base, t.rev, prep, mtimeNs), id.time);
        item.unpacked = prep.records.filter((x) => !x.reused).length;
        const dv: PackageDerivation = { kind: options.op, bases: [{ commit: image.oid, rootKind: image.commit.rootKind, root: image.commit.root }], recipe: prep.recipe, tool: TOOL };
        const message = options.message ?? defaultMessage(options.op, prep, options);
        const commit: Commit = {
          rootKind: applied.rootKind, root: applied.root, parents: head ? [head] : [], author: id.author, time: id.time, tzOffset: id.tzOffset, message,
          labels: [], source: { format: options.op }, rootMeta: applied.rootMeta, derivation: encodeDerivation(dv),
        };
        const [oid] = await writeCommits(repo, [{ commit, ref: t.ref, expectedOld: head, reflog: `${options.op}: ${firstLine(message)}` }], { who: id.author });
        rememberDebRecords(repo, prep.records.filter((x) => !x.reused));
        Object.assign(item, { status: 'done', commit: oid, parent: head });
      } catch (e) {
        // One image: nothing it wrote stays. A fleet's images run side by side and share the pending objects: a failed
        // one's objects stay unreferenced (gc removes them); its branch does not move.
        if (!fleet) repo.objects.discard();
        if (!fleet || !(e instanceof VivaError)) throw e;
        item.error = { code: e.code, message: e.message, ...(e instanceof ScriptFailedError ? { output: e.output } : {}) };
      }
      return item;
    };
    // The fleet's images two at a time (the sandbox's dpkg runs in its own processes): results in branch order.
    const jobs = fleet ? Math.max(1, Math.min(FLEET_JOBS, os.availableParallelism())) : 1;
    const out: PackageOpItem[] = new Array(list.length);
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(jobs, list.length) }, async () => {
      while (next < list.length) {
        const i = next++;
        out[i] = await runOne(list[i]!);
      }
    }));
    items.push(...out);
  } finally {
    try { await repo.endSession(); } catch { /* gc clears a stale session */ }
  }
  const count = (st: PackageOpItem['status']) => items.filter((i) => i.status === st).length;
  return { op: options.op, items, done: count('done'), unchanged: count('unchanged'), failed: count('failed') };
}

/** The options of {@link install}, {@link upgrade} and {@link remove}: those of {@link packageOp} without `op`. */
export type PackageRequest = Omit<PackageOpOptions, 'op'>;

/**
 * Installs packages into an image as a new commit, as `apt-get install` would leave it (`viva install`): packageOp
 * with `op: 'install'`. `packages` are names, `name=version`, or paths of .deb files; `from` says where the packages
 * and their dependencies come from.
 *
 * Throws: as {@link packageOp}.
 *
 * @example
 * const r = await install(repo, { base: 'debian/12/base', branch: 'debian/12/tools', packages: ['htop'], from: ['/var/cache/apt/archives'] });
 * console.log(r.items[0]?.commit);
 */
export function install(repo: Repository, options: PackageRequest): Promise<PackageOpResult> {
  return packageOp(repo, { ...options, op: 'install' });
}

/**
 * Upgrades the packages of an image (all of them, or those named) to the newest versions `from` offers, as a new
 * commit (`viva upgrade`): packageOp with `op: 'upgrade'`.
 *
 * Throws: as {@link packageOp}.
 *
 * @example
 * await upgrade(repo, { base: 'debian/12/tools', branch: 'debian/12/tools', packages: [], from: ['/srv/mirror'] });
 */
export function upgrade(repo: Repository, options: PackageRequest): Promise<PackageOpResult> {
  return packageOp(repo, { ...options, op: 'upgrade' });
}

/**
 * Removes packages from an image as a new commit, as `apt-get remove` (or `purge` with `purge: true`) would leave
 * it (`viva remove`): packageOp with `op: 'remove'`.
 *
 * Throws: as {@link packageOp}.
 *
 * @example
 * await remove(repo, { base: 'debian/12/tools', branch: 'debian/12/slim', packages: ['htop'], from: [] });
 */
export function remove(repo: Repository, options: PackageRequest): Promise<PackageOpResult> {
  return packageOp(repo, { ...options, op: 'remove' });
}
