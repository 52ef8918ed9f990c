/**
 * A package source that is a plain directory of `.deb` files (what `apt-get download` or a build leaves): each
 * package's control data is read once and remembered by the file's identity (device, inode, size, times) in an index
 * the caller keeps (the repository), so a second look at the same directory reads no package again. The result is the
 * same PackageUniverse a Debian repository's Packages index gives, with `Filename`, `Size` and `SHA256` filled in, so
 * the resolver and the installer cannot tell the two kinds of source apart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SourceReadError, systemReason } from '../errors.js';
import { hashDeb, readDeb } from './deb.js';
import { fieldValue, parseDeb822 } from './deb822.js';
import { PackageUniverse, candidateFromParagraph } from './source.js';

/** What is remembered of one .deb: its control paragraph (as text, with Filename, Size and SHA256 added). */
export interface DebIndexCache {
  get(key: string): string | undefined;
  put(key: string, value: string): void;
}

/** The options of {@link readDebDirectory}: the architecture, a universe to add to, and a cache of control data. */
export interface ReadDebDirectoryOptions {
  /** Only packages of this architecture and `all` are offered (as apt does for a Packages index of one arch). */
  arch: string;
  universe?: PackageUniverse;
  cache?: DebIndexCache;
}

/** What {@link readDebDirectory} read: the packages offered, and how many had to be read now. */
export interface DebDirectoryResult {
  universe: PackageUniverse;
  /** Packages whose control data had to be read now (the rest came from the cache). */
  read: number;
  packages: number;
}

/** The cache key of a .deb: its path and identity, so any change to the file (or a new file in its place) misses. */
function debKey(file: string, st: fs.BigIntStats): string {
  return `deb:${path.resolve(file)}:${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * The SHA256 readDebDirectory computed for `file` when it had the identity `st` (from a stat with `bigint: true`),
 * or undefined when `cache` holds no entry for it: a hit means the file has not changed since it was hashed. No I/O.
 *
 * @example
 * const sha256 = lookupDebHash(cache, file, fs.statSync(file, { bigint: true })) ?? await hashDeb(file);
 */
export function lookupDebHash(cache: DebIndexCache | undefined, file: string, st: fs.BigIntStats): string | undefined {
  const stanza = cache?.get(debKey(file, st));
  const p = stanza === undefined ? undefined : parseDeb822(stanza)[0];
  return p ? fieldValue(p, 'SHA256')?.toLowerCase() : undefined;
}

/** The control paragraph of a package as a Packages index would give it: its own fields, then Filename, Size, SHA256. */
async function indexStanza(file: string, rel: string, size: number): Promise<string> {
  const deb = await readDeb(file);
  const lines = deb.control.fields.map((f) => `${f.name}: ${f.value.replace(/\n/g, '\n ')}`);
  lines.push(`Filename: ${rel}`, `Size: ${size}`, `SHA256: ${await hashDeb(file)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Reads every `*.deb` below `dir` (recursively, sorted by path) into a universe. Throws SourceReadError when `dir`
 * cannot be read, CorruptInputError / UnsafeInputError / UnsupportedInputError naming a broken package.
 *
 * @example
 * const { universe } = await readDebDirectory('/var/cache/apt/archives', { arch: 'amd64' });
 */
export async function readDebDirectory(dir: string, options: ReadDebDirectoryOptions): Promise<DebDirectoryResult> {
  const universe = options.universe ?? new PackageUniverse();
  const files: string[] = [];
  const walk = (d: string) => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(d, { withFileTypes: true });
    } catch (e) {
      throw new SourceReadError(d, systemReason(e), { cause: e });
    }
    for (const n of names) {
      const p = path.join(d, n.name);
      if (n.isDirectory()) walk(p);
      else if (n.name.endsWith('.deb') && (n.isFile() || n.isSymbolicLink())) files.push(p);
    }
  };
  walk(dir);
  files.sort();
  let read = 0;
  let packages = 0;
  for (const file of files) {
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(file, { bigint: true });
    } catch (e) {
      throw new SourceReadError(file, systemReason(e), { cause: e });
    }
    const rel = path.relative(dir, file);
    const key = debKey(file, st);
    let stanza = options.cache?.get(key);
    if (stanza === undefined) {
      stanza = await indexStanza(file, rel, Number(st.size));
      options.cache?.put(key, stanza);
      read++;
    }
    const [p] = parseDeb822(stanza);
    if (!p) continue;
    const c = candidateFromParagraph(p, file, dir);
    if (c.arch !== options.arch && c.arch !== 'all') continue;
    universe.add(c);
    packages++;
  }
  return { universe, read, packages };
}
