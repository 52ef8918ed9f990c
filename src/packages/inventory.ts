/**
 * Package inventories read from an image's own package database: Debian's `var/lib/dpkg/status` (deb822 stanzas)
 * and Alpine's `lib/apk/db/installed` (one `X:value` line per field). Malformed records are skipped and reported as
 * problems with their line number; they never stop the rest of the inventory.
 */
import { parseDeb822 } from './deb822.js';
import { compareDebVersions, parseDebVersion } from './debversion.js';
import { compareRpmVersions, parseRpmSqlite } from './rpm.js';

import type { Inventory, InventoryProblem, Package, PackageFormat } from './types.js';

export type { Inventory, InventoryProblem, Package, PackageFormat };

/** Where each format keeps its database, relative to the image root. */
export const PACKAGE_DATABASES: Array<{ format: PackageFormat; path: string }> = [
  { format: 'deb', path: 'var/lib/dpkg/status' },
  { format: 'apk', path: 'lib/apk/db/installed' },
  { format: 'rpm', path: 'var/lib/rpm/rpmdb.sqlite' },
];

function sortPackages(ps: Package[]): Package[] {
  return ps.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : (a.arch ?? '') < (b.arch ?? '') ? -1 : (a.arch ?? '') > (b.arch ?? '') ? 1 : 0));
}

/** Parses a dpkg status file; only packages whose Status says "installed" are listed. */
export function parseDpkgStatus(text: string, file = 'var/lib/dpkg/status'): Inventory {
  const packages: Package[] = [];
  const problems: InventoryProblem[] = [];
  const record = (f: Map<string, string>, line: number) => {
    const name = f.get('package');
    const status = f.get('status');
    const version = f.get('version');
    if (!name) { problems.push({ file, line, message: 'record without a Package field' }); return; }
    if (!status) { problems.push({ file, line, message: `package '${name}' has no Status field` }); return; }
    const words = status.split(/\s+/);
    if (words.length !== 3) { problems.push({ file, line, message: `package '${name}' has a malformed Status '${status}'` }); return; }
    if (words[2] !== 'installed') return; // config-files, not-installed, half-installed...
    if (!version) { problems.push({ file, line, message: `installed package '${name}' has no Version field` }); return; }
    const parsed = parseDebVersion(version);
    if (typeof parsed === 'string') problems.push({ file, line, message: `package '${name}' version '${version}': ${parsed}` });
    const arch = f.get('architecture');
    const src = f.get('source')?.split(/\s+/)[0];
    packages.push({ name, version, ...(arch ? { arch } : {}), ...(src && src !== name ? { source: src } : {}) });
  };
  for (const p of parseDeb822(text)) {
    for (const q of p.problems) problems.push({ file, ...q });
    if (p.fields.length) record(new Map(p.fields.map((f) => [f.name.toLowerCase(), f.value])), p.line);
  }
  return { format: 'deb', file, packages: sortPackages(packages), problems };
}

/** Parses Alpine's installed database (`P:` name, `V:` version, `A:` arch, records separated by blank lines). */
export function parseApkInstalled(text: string, file = 'lib/apk/db/installed'): Inventory {
  const packages: Package[] = [];
  const problems: InventoryProblem[] = [];
  const lines = text.split('\n');
  let rec: Record<string, string> = {};
  let start = 0;
  for (let i = 0; i <= lines.length; i++) {
    const line = i < lines.length ? lines[i]!.replace(/\r$/, '') : '';
    if (line === '') {
      if (Object.keys(rec).length) {
        if (!rec.P) problems.push({ file, line: start + 1, message: 'record without a P: (package name) line' });
        else if (!rec.V) problems.push({ file, line: start + 1, message: `package '${rec.P}' has no V: (version) line` });
        else packages.push({ name: rec.P, version: rec.V, ...(rec.A ? { arch: rec.A } : {}), ...(rec.o && rec.o !== rec.P ? { source: rec.o } : {}) });
      }
      rec = {};
      start = i + 1;
      continue;
    }
    if (line.length < 2 || line[1] !== ':') { problems.push({ file, line: i + 1, message: `line is not an 'X:value' pair` }); continue; }
    const k = line[0]!;
    if (!(k in rec)) rec[k] = line.slice(2);
  }
  return { format: 'apk', file, packages: sortPackages(packages), problems };
}

/** Parses a package database of any supported format (rpm's is a binary sqlite file). */
export async function parseInventory(format: PackageFormat, data: Buffer, file: string): Promise<Inventory> {
  if (format === 'rpm') return parseRpmSqlite(data, file);
  const text = data.toString('utf8');
  return format === 'deb' ? parseDpkgStatus(text, file) : parseApkInstalled(text, file);
}

/** The version order of a package format: dpkg's for deb (and apk, whose common versions order the same), rpm's for rpm. */
export function versionOrder(format: PackageFormat | undefined): (a: string, b: string) => number {
  return format === 'rpm' ? compareRpmVersions : compareDebVersions;
}

/** One package that differs between two package inventories: added, removed, upgraded, downgraded or changed. */
export interface PackageChange {
  /** Disk commits: the partition the package is installed in (`p1`). */
  partition?: string;
  name: string;
  arch?: string;
  change: 'added' | 'removed' | 'upgraded' | 'downgraded' | 'changed';
  from?: string;
  to?: string;
}

/** Package-level difference of two inventories (by name and arch), versions ordered by `compare`. */
export function diffInventories(a: Package[], b: Package[], compare: (x: string, y: string) => number): PackageChange[] {
  const key = (p: Package) => `${p.name}\0${p.arch ?? ''}`;
  const before = new Map(a.map((p) => [key(p), p]));
  const after = new Map(b.map((p) => [key(p), p]));
  const out: PackageChange[] = [];
  for (const [k, p] of before) {
    const q = after.get(k);
    const arch = p.arch ? { arch: p.arch } : {};
    if (!q) out.push({ name: p.name, ...arch, change: 'removed', from: p.version });
    else if (q.version !== p.version) {
      const c = compare(q.version, p.version);
      out.push({ name: p.name, ...arch, change: c > 0 ? 'upgraded' : c < 0 ? 'downgraded' : 'changed', from: p.version, to: q.version });
    }
  }
  for (const [k, q] of after) if (!before.has(k)) out.push({ name: q.name, ...(q.arch ? { arch: q.arch } : {}), change: 'added', to: q.version });
  return out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
}
