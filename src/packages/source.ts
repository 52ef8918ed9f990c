/**
 * Package sources: the binary packages a Debian repository offers (`dists/SUITE/COMPONENT/binary-ARCH/Packages[.gz|.xz]`
 * plus `pool/`), read into a PackageUniverse that the resolver looks packages and virtual packages up in.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CorruptInputError, RelationSyntaxError, SourceReadError, UnsupportedInputError, systemReason } from '../errors.js';
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
  /** The repository root (or other source) the stanza came from. */
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

export interface ReadRepositoryOptions {
  /** `dists/` subdirectory; default: every suite under `dists/`. */
  suite?: string;
  /** Default: every component directory of the suite. */
  components?: string[];
  /** Architecture of the image (`amd64`); `binary-all` is read too when present. */
  arch: string;
  /** Adds to an existing universe (several sources) instead of a new one. */
  universe?: PackageUniverse;
}

/** The decompressed bytes of `Packages`, `Packages.gz` or `Packages.xz`, in that order of preference. */
const INDEX_NAMES = ['Packages', 'Packages.gz', 'Packages.xz'] as const;

/**
 * Reads the Packages indexes of a Debian repository in `root` (the directory holding `dists/` and `pool/`) into a
 * universe: `dists/SUITE/COMPONENT/binary-ARCH/` and `binary-all/`, whichever of Packages, Packages.gz or
 * Packages.xz is there (the first). When the suite has a `Release` or `InRelease` file that lists the index, its
 * SHA256 and size must match (the signature of InRelease is not checked: the source is trusted, as apt's
 * `[trusted=yes]`). The .deb files themselves are not read.
 *
 * Throws: SourceReadError (unreadable directory or file), CorruptInputError (checksum mismatch, bad stanza),
 * UnsupportedInputError (`.xz` without the `xz` program).
 *
 * @example
 * const universe = await readRepository('/srv/debian', { suite: 'bookworm', arch: 'amd64' });
 * universe.lookupVersions('htop')[0]?.filename; // 'pool/main/h/htop/htop_3.2.2-2_amd64.deb'
 */
export async function readRepository(root: string, options: ReadRepositoryOptions): Promise<PackageUniverse> {
  const universe = options.universe ?? new PackageUniverse();
  const dists = path.join(root, 'dists');
  const suites = options.suite ? [options.suite] : (await listDirs(dists)).sort();
  if (suites.length === 0) throw new SourceReadError(dists, 'no suite under dists/');
  for (const suite of suites) {
    const suiteDir = path.join(dists, suite);
    const release = await readRelease(suiteDir);
    const components = options.components ?? (await listDirs(suiteDir)).sort();
    for (const component of components) {
      for (const arch of [options.arch, 'all']) {
        const rel = `${component}/binary-${arch}`;
        const found = await readIndex(path.join(suiteDir, rel), rel, release);
        if (!found) continue;
        for (const p of parseDeb822(found.text)) {
          if (p.problems.length) throw new CorruptInputError(found.file, `line ${p.problems[0]!.line}`, p.problems[0]!.message);
          if (p.fields.length === 0) continue;
          universe.add(candidateFromParagraph(p, found.file, root));
        }
      }
    }
  }
  return universe;
}

async function listDirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (e) {
    throw new SourceReadError(dir, systemReason(e));
  }
}

/** path below the suite → { sha256, size } from the SHA256 field of Release (or InRelease), or undefined without one. */
async function readRelease(suiteDir: string): Promise<Map<string, { sha256: string; size: number }> | undefined> {
  for (const name of ['InRelease', 'Release']) {
    const file = path.join(suiteDir, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new SourceReadError(file, systemReason(e));
    }
    if (name === 'InRelease') text = clearsignedBody(text, file);
    const p = parseDeb822(text)[0];
    const sums = p ? fieldValue(p, 'SHA256') : undefined;
    const out = new Map<string, { sha256: string; size: number }>();
    for (const line of (sums ?? '').split('\n')) {
      const w = line.trim().split(/\s+/);
      if (w.length !== 3) continue;
      out.set(w[2]!, { sha256: w[0]!.toLowerCase(), size: Number(w[1]) });
    }
    return out;
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

async function readIndex(dir: string, rel: string, release: Map<string, { sha256: string; size: number }> | undefined): Promise<{ file: string; text: string } | undefined> {
  for (const name of INDEX_NAMES) {
    const file = path.join(dir, name);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw new SourceReadError(file, systemReason(e));
    }
    const expected = release?.get(`${rel}/${name}`);
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
      if (e instanceof CorruptInputError || e instanceof UnsupportedInputError) throw e;
      throw new CorruptInputError(file, 'compressed data', (e as Error).message);
    }
    return { file, text: text.toString('utf8') };
  }
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
