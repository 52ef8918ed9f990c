/**
 * Package sources: the binary packages a Debian repository offers (`dists/SUITE/COMPONENT/binary-ARCH/Packages[.gz|.xz]`
 * plus `pool/`, or a flat repository's one `Packages` index), read into a PackageUniverse that the resolver looks
 * packages and virtual packages up in. The files are read through SourceFiles, so the same code reads a directory and
 * (sources.ts) a URL.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CorruptInputError, RelationSyntaxError, SourceReadError, UnsupportedInputError, UsageError, describeErrno, systemReason } from '../errors.js';
import { type Deb822Paragraph, type RelationGroup, type RelationOp, fieldValue, parseDeb822, parseRelations } from './deb822.js';
import { compareDebVersions, parseDebVersion } from './debversion.js';

export type MultiArch = 'no' | 'same' | 'foreign' | 'allowed';

/** One version of one binary package, from a source's index or from the image's dpkg status file. */
export interface PackageCandidate {
  name: string;
  version: string;
  /** `amd64`, `all`, ... */
  arch: string;
  multiArch: MultiArch;
  essential: boolean;
  /** `Protected: yes` (apt ≥ 2.1): treated as Essential. */
  protected: boolean;
  /** `Important: yes`: apt prefers such providers. */
  important: boolean;
  /** apt's number for Priority: required 1, important 2, standard 3, optional 4, extra 5; 0 when absent. */
  priority: number;
  preDepends: RelationGroup[];
  depends: RelationGroup[];
  conflicts: RelationGroup[];
  breaks: RelationGroup[];
  replaces: RelationGroup[];
  /** Provided names, each with the version it is provided at (`Provides: foo (= 1.2)`), if any. */
  provides: Array<{ name: string; version?: string }>;
  /** Path of the .deb below the repository root (`pool/main/h/htop/htop_3.2.2-2_amd64.deb`); absent for installed packages. */
  filename?: string;
  size?: number;
  sha256?: string;
  /**
   * The source the stanza came from, which `filename` is relative to: a directory (a repository root, a directory of
   * .deb files), or for a source over HTTP its URL, ending in '/' (sources.ts fetches by it).
   */
  origin?: string;
  /** The stanza it was read from, fields in order. */
  paragraph: Deb822Paragraph;
}

/** apt's Priority numbers (pkgCache::State::VerPriority). */
const PRIORITIES: Record<string, number> = { required: 1, important: 2, standard: 3, optional: 4, extra: 5 };

/**
 * Reads the fields the resolver needs from a Packages or status stanza. Throws CorruptInputError (naming `file` and the
 * package) for a stanza without Package or Version, an invalid version, or a relation field that does not parse.
 */
export function candidateFromParagraph(p: Deb822Paragraph, file: string, origin?: string): PackageCandidate {
  const name = fieldValue(p, 'Package');
  const version = fieldValue(p, 'Version');
  if (!name) throw new CorruptInputError(file, `line ${p.line}`, 'stanza without a Package field');
  if (!version) throw new CorruptInputError(file, `package '${name}'`, 'no Version field');
  const parsed = parseDebVersion(version);
  if (typeof parsed === 'string') throw new CorruptInputError(file, `package '${name}'`, `version '${version}': ${parsed}`);
  const rel = (field: string): RelationGroup[] => {
    const text = fieldValue(p, field);
    if (text === undefined) return [];
    try {
      return parseRelations(text, field);
    } catch (e) {
      if (e instanceof RelationSyntaxError) throw new CorruptInputError(file, `package '${name}'`, e.message);
      throw e;
    }
  };
  const provides = rel('Provides').map((g) => {
    const r = g[0]!;
    if (g.length > 1 || (r.op && r.op !== '=')) {
      throw new CorruptInputError(file, `package '${name}'`, `Provides may only list names with '(= VERSION)': '${fieldValue(p, 'Provides')}'`);
    }
    return r.version ? { name: r.name, version: r.version } : { name: r.name };
  });
  const yes = (f: string) => fieldValue(p, f)?.toLowerCase() === 'yes';
  const ma = fieldValue(p, 'Multi-Arch')?.toLowerCase();
  const size = fieldValue(p, 'Size');
  const filename = fieldValue(p, 'Filename');
  const sha256 = fieldValue(p, 'SHA256');
  return {
    name,
    version,
    arch: fieldValue(p, 'Architecture') ?? 'all',
    multiArch: ma === 'same' || ma === 'foreign' || ma === 'allowed' ? ma : 'no',
    essential: yes('Essential'),
    protected: yes('Protected'),
    important: yes('Important'),
    priority: PRIORITIES[fieldValue(p, 'Priority')?.toLowerCase() ?? ''] ?? 0,
    preDepends: rel('Pre-Depends'),
    depends: rel('Depends'),
    conflicts: rel('Conflicts'),
    breaks: rel('Breaks'),
    replaces: rel('Replaces'),
    provides,
    ...(filename ? { filename } : {}),
    ...(size && /^\d+$/.test(size) ? { size: Number(size) } : {}),
    ...(sha256 ? { sha256: sha256.toLowerCase() } : {}),
    ...(origin ? { origin } : {}),
    paragraph: p,
  };
}

/**
 * Every available package version by name, and the providers of every virtual name. Names get a number in the order
 * apt's cache would create them (each stanza's package, then the names its relations and Provides mention), which
 * apt uses as the last tie-break between providers.
 */
export class PackageUniverse {
  private readonly byName = new Map<string, PackageCandidate[]>();
  private readonly providers = new Map<string, Array<{ pkg: PackageCandidate; version?: string }>>();
  private readonly ids = new Map<string, number>();

  /** Adds one version; a second stanza with the same name, version and architecture is ignored (apt keeps the first). */
  add(c: PackageCandidate): void {
    const list = this.byName.get(c.name) ?? [];
    if (list.some((o) => o.arch === c.arch && compareDebVersions(o.version, c.version) === 0)) return;
    this.noteName(c.name);
    for (const groups of [c.preDepends, c.depends, c.conflicts, c.breaks, c.replaces]) for (const g of groups) for (const r of g) this.noteName(r.name);
    for (const p of c.provides) this.noteName(p.name);
    list.push(c);
    list.sort((a, b) => compareDebVersions(b.version, a.version));
    this.byName.set(c.name, list);
    for (const p of c.provides) {
      const ps = this.providers.get(p.name) ?? [];
      ps.push({ pkg: c, ...(p.version ? { version: p.version } : {}) });
      this.providers.set(p.name, ps);
    }
  }

  /** Records a name apt would create at this point (also used for the image's installed packages, read after sources). */
  noteName(name: string): void {
    if (!this.ids.has(name)) this.ids.set(name, this.ids.size);
  }

  /** apt's creation number of `name` (names never seen come last). */
  order(name: string): number {
    return this.ids.get(name) ?? Number.MAX_SAFE_INTEGER;
  }

  /** Versions of the real package `name`, newest first (empty when only provided, or unknown). */
  lookupVersions(name: string): readonly PackageCandidate[] {
    return this.byName.get(name) ?? [];
  }

  /** The packages that provide `name`, with the provided version if the Provides line gave one. */
  lookupProviders(name: string): ReadonlyArray<{ pkg: PackageCandidate; version?: string }> {
    return this.providers.get(name) ?? [];
  }

  /** Every real package name. */
  names(): IterableIterator<string> {
    return this.byName.keys();
  }
}

/** The options of {@link readRepository}: which suite, components and architecture of an apt repository to read. */
export interface ReadRepositoryOptions {
  /** `dists/` subdirectory; default: every suite under `dists/` (a source that cannot be listed needs one). */
  suite?: string;
  /**
   * Default: every component directory of the suite, or where the source cannot be listed (HTTP) the Release file's
   * `Components`. A component given here must have an index for the architecture or for `all`.
   */
  components?: string[];
  /** Architecture of the image (`amd64`); `binary-all` is read too when present. */
  arch: string;
  /** Adds to an existing universe (several sources) instead of a new one. */
  universe?: PackageUniverse;
}

/**
 * Read access to the files of one package source by their path below its root (`dists/stable/Release`): a local
 * directory (localSourceFiles) or a URL (sources.ts). The readers below read through it, so a repository reads the same
 * from disk and over HTTP.
 */
export interface SourceFiles {
  /** The root as candidates' `origin` gives it: a directory, or a URL ending in '/'. */
  readonly root: string;
  /** Index names in the order to try them: locally the plain file first (nothing to decompress), remotely the smallest. */
  readonly indexNames: readonly string[];
  /** What a missing file is called in messages ('no such file or directory (ENOENT)', '404 Not Found'). */
  readonly notFound: string;
  /** The path or URL of `rel`, for messages. */
  locate(rel: string): string;
  /** The bytes of `rel`, or undefined when there is no such file. Throws SourceReadError. */
  tryRead(rel: string): Promise<Buffer | undefined>;
  /** The subdirectories of `rel`; absent where the source cannot be listed (HTTP). Throws SourceReadError. */
  listDirs?(rel: string): Promise<string[]>;
}

/** The decompressed bytes of `Packages`, `Packages.gz` or `Packages.xz`, in that order of preference. */
const INDEX_NAMES = ['Packages', 'Packages.gz', 'Packages.xz'] as const;

/** The files below the directory `root`. */
export function localSourceFiles(root: string): SourceFiles {
  return {
    root,
    indexNames: INDEX_NAMES,
    notFound: `${describeErrno('ENOENT')} (ENOENT)`,
    locate: (rel) => path.join(root, rel),
    async tryRead(rel) {
      const file = path.join(root, rel);
      try {
        return await readFile(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
        throw new SourceReadError(file, systemReason(e));
      }
    },
    listDirs: (rel) => listDirs(path.join(root, rel)),
  };
}

/** What one source added to a universe: `packages` counts the stanzas read (a version another source gave too included). */
export interface SourceReadResult {
  universe: PackageUniverse;
  packages: number;
}

/**
 * Reads the Packages indexes of a Debian repository in `root` (the directory holding `dists/` and `pool/`) into a
 * universe: `dists/SUITE/COMPONENT/binary-ARCH/` and `binary-all/`, whichever of Packages, Packages.gz or
 * Packages.xz is there (the first; of those the suite's Release file lists, when it lists any). When the suite has a
 * `Release` or `InRelease` file that lists the index, its SHA256 and size must match (the signature of InRelease is not
 * checked: the source is trusted, as apt's `[trusted=yes]`). The .deb files themselves are not read.
 *
 * Throws: SourceReadError (unreadable directory or file, a component given in `components` without an index),
 * CorruptInputError (checksum mismatch, bad stanza), UnsupportedInputError (`.xz` without the `xz` program).
 *
 * @example
 * const universe = await readRepository('/srv/debian', { suite: 'bookworm', arch: 'amd64' });
 * universe.lookupVersions('htop')[0]?.filename; // 'pool/main/h/htop/htop_3.2.2-2_amd64.deb'
 */
export async function readRepository(root: string, options: ReadRepositoryOptions): Promise<PackageUniverse> {
  return (await readRepositoryFiles(localSourceFiles(root), options)).universe;
}

/**
 * readRepository over any SourceFiles (a URL too). Where `files` cannot be listed, `options.suite` is required, and
 * the components come from the suite's Release file when `options.components` does not give them.
 *
 * Throws: as readRepository; UsageError when a suite or components are needed and not given, SourceReadError naming
 * the Release file when components are needed and there is none.
 *
 * @example
 * const { packages } = await readRepositoryFiles(localSourceFiles('/srv/debian'), { suite: 'bookworm', components: ['main'], arch: 'amd64' });
 */
export async function readRepositoryFiles(files: SourceFiles, options: ReadRepositoryOptions): Promise<SourceReadResult> {
  const universe = options.universe ?? new PackageUniverse();
  let suites: string[];
  if (options.suite) suites = [options.suite];
  else if (files.listDirs) suites = (await files.listDirs('dists')).sort();
  else throw new UsageError(`'${files.root}' cannot be listed: name the suite to read from its dists/`);
  if (suites.length === 0) throw new SourceReadError(files.locate('dists'), 'no suite under dists/');
  let packages = 0;
  for (const suite of suites) {
    const base = `dists/${suite}`;
    const release = await readRelease(files, base);
    const components = options.components ?? (files.listDirs ? (await files.listDirs(base)).sort() : release?.components);
    if (!components && !release) throw new SourceReadError(files.locate(`${base}/Release`), `${files.notFound} (without a Release file, name the components)`);
    if (!components) throw new UsageError(`the Release file of '${files.locate(base)}' names no components: name them`);
    for (const component of components) {
      let found = false;
      for (const arch of [options.arch, 'all']) {
        const n = await readIndex(files, base, `${component}/binary-${arch}`, release, universe);
        if (n === undefined) continue;
        found = true;
        packages += n;
      }
      if (!found && options.components) {
        throw new SourceReadError(files.locate(`${base}/${component}/binary-${options.arch}/`), `no Packages index here nor in binary-all (${files.notFound})`);
      }
    }
  }
  return { universe, packages };
}

export interface ReadFlatRepositoryOptions {
  /** Only packages of this architecture and `all` are offered: a flat index lists every architecture in one file. */
  arch: string;
  /** The directory below the root that holds the index (apt's `deb URL DIR/`); default: the root itself. */
  dir?: string;
  universe?: PackageUniverse;
}

/**
 * Reads a flat repository (apt's `deb URL ./`, what `dpkg-scanpackages . > Packages` makes): a Packages,
 * Packages.gz or Packages.xz in `options.dir` (default the root), whose Filename fields are relative to the root. A
 * `Release` or `InRelease` beside the index is checked as in readRepository. Returns undefined when there is no index.
 *
 * Throws: SourceReadError, CorruptInputError, UnsupportedInputError, as readRepository.
 *
 * @example
 * const flat = await tryReadFlatRepository(localSourceFiles('/srv/debs'), { arch: 'amd64' });
 */
export async function tryReadFlatRepository(files: SourceFiles, options: ReadFlatRepositoryOptions): Promise<SourceReadResult | undefined> {
  const universe = options.universe ?? new PackageUniverse();
  const base = options.dir ?? '';
  const n = await readIndex(files, base, '', await readRelease(files, base), universe, options.arch);
  return n === undefined ? undefined : { universe, packages: n };
}

async function listDirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (e) {
    throw new SourceReadError(dir, systemReason(e));
  }
}

/** `a/b`, or `b` when `a` is empty (paths below a source's root, always with '/'). */
function below(a: string, b: string): string {
  return a && b ? `${a}/${b}` : a || b;
}

interface Release {
  /** Path below the Release file's directory → its SHA256 and size, from the SHA256 field. */
  sums: Map<string, { sha256: string; size: number }>;
  /** The Components field, when there is one. */
  components?: string[];
}

/** The Release (or InRelease) file in `base`, or undefined without one. */
async function readRelease(files: SourceFiles, base: string): Promise<Release | undefined> {
  for (const name of ['InRelease', 'Release']) {
    const rel = below(base, name);
    const data = await files.tryRead(rel);
    if (data === undefined) continue;
    let text = data.toString('utf8');
    if (name === 'InRelease') text = clearsignedBody(text, files.locate(rel));
    const p = parseDeb822(text)[0];
    const sums = new Map<string, { sha256: string; size: number }>();
    for (const line of (p ? fieldValue(p, 'SHA256') ?? '' : '').split('\n')) {
      const w = line.trim().split(/\s+/);
      if (w.length !== 3) continue;
      sums.set(w[2]!, { sha256: w[0]!.toLowerCase(), size: Number(w[1]) });
    }
    const components = p ? fieldValue(p, 'Components')?.split(/\s+/).filter(Boolean) : undefined;
    return { sums, ...(components?.length ? { components } : {}) };
  }
  return undefined;
}

/** The signed text of an OpenPGP clearsigned message (RFC 4880 §7), dash-escaping undone. */
function clearsignedBody(text: string, file: string): string {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines[0] !== '-----BEGIN PGP SIGNED MESSAGE-----') return text;
  const start = lines.indexOf('', 1);
  const end = lines.indexOf('-----BEGIN PGP SIGNATURE-----');
  if (start < 0 || end < start) throw new CorruptInputError(file, 'signed message', 'no text between the armour headers and the signature');
  return lines.slice(start + 1, end).map((l) => (l.startsWith('- ') ? l.slice(2) : l)).join('\n');
}

/**
 * Adds the stanzas of the first index in `base/sub` (of those the Release file lists, when it lists any there) to
 * `universe`, only those of `onlyArch` and `all` when given; returns how many, or undefined when there is no index.
 */
async function readIndex(files: SourceFiles, base: string, sub: string, release: Release | undefined, universe: PackageUniverse, onlyArch?: string): Promise<number | undefined> {
  const listed = release ? files.indexNames.filter((n) => release.sums.has(below(sub, n))) : [];
  // An index this machine cannot decompress (.xz without xz) is passed over for the next one, if there is one.
  let unsupported: UnsupportedInputError | undefined;
  for (const name of listed.length ? listed : files.indexNames) {
    const rel = below(base, below(sub, name));
    const file = files.locate(rel);
    const data = await files.tryRead(rel);
    if (data === undefined) continue;
    const expected = release?.sums.get(below(sub, name));
    if (expected) {
      const sha256 = createHash('sha256').update(data).digest('hex');
      if (sha256 !== expected.sha256 || data.length !== expected.size) {
        throw new CorruptInputError(file, 'Release', `SHA256 ${sha256} (${data.length} bytes) does not match the Release file's ${expected.sha256} (${expected.size} bytes)`);
      }
    }
    let text: Buffer;
    try {
      text = name.endsWith('.gz') ? gunzipSync(data) : name.endsWith('.xz') ? await unxz(data, file) : data;
    } catch (e) {
      if (e instanceof UnsupportedInputError) {
        unsupported ??= e;
        continue;
      }
      if (e instanceof CorruptInputError) throw e;
      throw new CorruptInputError(file, 'compressed data', (e as Error).message);
    }
    let n = 0;
    for (const p of parseDeb822(text.toString('utf8'))) {
      if (p.problems.length) throw new CorruptInputError(file, `line ${p.problems[0]!.line}`, p.problems[0]!.message);
      if (p.fields.length === 0) continue;
      const c = candidateFromParagraph(p, file, files.root);
      if (onlyArch !== undefined && c.arch !== onlyArch && c.arch !== 'all') continue;
      universe.add(c);
      n++;
    }
    return n;
  }
  if (unsupported) throw unsupported;
  return undefined;
}

/** Decompresses with the `xz` program, as the tar reader does (no xz decoder in node). */
function unxz(data: Buffer, file: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('xz', ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { if (err.length < 4096) err += d.toString('utf8'); });
    child.stdin.on('error', () => undefined); // xz exiting early on bad input: reported by its exit status
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'ENOENT' ? new UnsupportedInputError(file, `reading xz-compressed indexes needs 'xz', which is not installed`) : e);
    });
    child.once('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new CorruptInputError(file, 'xz data', err.trim().split('\n')[0]?.replace(/^xz: \(stdin\): /, '') || `xz exited with ${code ?? signal}`));
    });
    child.stdin.end(data);
  });
}

/** True when `version` (of a package or of a Provides) satisfies `op ref`; an unversioned relation is always true. */
export function versionSatisfies(version: string | undefined, op: RelationOp | undefined, ref: string | undefined): boolean {
  if (!op) return true;
  if (version === undefined) return false;
  const c = compareDebVersions(version, ref!);
  switch (op) {
    case '<<': return c < 0;
    case '<=': return c <= 0;
    case '=': return c === 0;
    case '>=': return c >= 0;
    case '>>': return c > 0;
  }
}
