/**
 * .deb packages built at test time with `dpkg-deb --build` from a declarative spec, and flat repositories of them
 * indexed with `dpkg-scanpackages`: real packages for the install, upgrade and remove tests, reproducible byte for byte.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** A file of a package: its text, or text with mode and owner, or a symlink to `symlink`. */
export type DebFile = string | { data: string | Buffer; mode?: number; uid?: number; gid?: number } | { symlink: string };

export interface DebSpec {
  name: string;
  version: string;
  /** Default 'all'. */
  arch?: string;
  /** More control fields (Depends, Pre-Depends, Provides, Conflicts, Breaks, Replaces, Essential, Multi-Arch, …), in order. A Description or Maintainer here replaces the default one. */
  fields?: Record<string, string>;
  /** Image paths (absolute or relative to /) → content. Regular files default to 0644, files under a `bin/` or `sbin/` directory to 0755. */
  files?: Record<string, DebFile>;
  /** Absolute paths among `files` that are conffiles. */
  conffiles?: string[];
  /** Full maintainer script texts (with their `#!` line). */
  scripts?: Partial<Record<'preinst' | 'postinst' | 'prerm' | 'postrm' | 'config', string>>;
  /** DEBIAN/triggers content. */
  triggers?: string;
  /** Default 'xz', dpkg-deb's own default on Debian 12 (so packages look like the archive's). */
  compression?: 'gzip' | 'xz' | 'zstd' | 'none';
}

/** Every member of a built package has this mtime (2020-01-02T03:04:05Z); also dpkg-deb's SOURCE_DATE_EPOCH. */
export const DEB_MTIME = 1_577_934_245;
export const DEB_MAINTAINER = 'Viva Test <test@example.org>';

const isRoot = process.getuid?.() === 0;

/** The file name Debian gives a package: NAME_VERSION_ARCH.deb, the version without its epoch (as dpkg-name). */
export function debFileName(spec: Pick<DebSpec, 'name' | 'version' | 'arch'>): string {
  return `${spec.name}_${spec.version.replace(/^\d+:/, '')}_${spec.arch ?? 'all'}.deb`;
}

/** The control file: Package, Version, Architecture, Maintainer, the spec's fields in order, Description last. */
function controlText(spec: DebSpec): string {
  const fields: Record<string, string> = { Package: spec.name, Version: spec.version, Architecture: spec.arch ?? 'all', Maintainer: DEB_MAINTAINER };
  for (const [k, v] of Object.entries(spec.fields ?? {})) if (k !== 'Description') fields[k] = v;
  fields.Description = spec.fields?.Description ?? `${spec.name} test package\n Built at test time by viva's tests.`;
  return Object.entries(fields).map(([k, v]) => `${k}: ${v}\n`).join('');
}

function mkdirs(root: string, dir: string): void {
  if (dir === root || fs.existsSync(dir)) return;
  mkdirs(root, path.dirname(dir));
  fs.mkdirSync(dir);
  fs.chmodSync(dir, 0o755);
}

/**
 * Builds the package `spec` into `dir` and returns the path of `dir/NAME_VERSION_ARCH.deb` (see debFileName).
 * Every member gets the mtime DEB_MTIME and the data and control tars are sorted by dpkg-deb, so the same spec gives
 * the same bytes. Regular files other than conffiles get a DEBIAN/md5sums line, as debhelper's dh_md5sums makes.
 * As root, files are owned by their `uid`/`gid` (default 0); dpkg-deb's tar records the host's user and group names
 * for those ids too (as in any real package), and dpkg installs by name when the name exists in the target. When
 * not root, the package is built with `--root-owner-group` and a file with another owner throws.
 *
 * Throws if a conffile is not a regular file of `files`, or dpkg-deb rejects the package (its message included).
 *
 * @example
 * const deb = buildDeb(dir, { name: 'hello', version: '1.0', files: { '/usr/bin/hello': '#!/bin/sh\necho hi\n' } });
 */
export function buildDeb(dir: string, spec: DebSpec): string {
  const out = path.join(dir, debFileName(spec));
  const stage = fs.mkdtempSync(path.join(dir, `.build-${spec.name}-`));
  try {
    // The archive's `./` entry has the stage's mode; mkdtemp makes it 0700.
    fs.chmodSync(stage, 0o755);
    const debian = path.join(stage, 'DEBIAN');
    fs.mkdirSync(debian);
    fs.chmodSync(debian, 0o755);
    const sums: string[] = [];
    const conffiles = new Set(spec.conffiles ?? []);
    for (const [name, file] of Object.entries(spec.files ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const rel = name.replace(/^\/+/, '');
      if (!rel || rel.split('/').some((c) => c === '' || c === '.' || c === '..') || rel.startsWith('DEBIAN')) throw new Error(`bad file name '${name}' in package '${spec.name}'`);
      const p = path.join(stage, rel);
      mkdirs(stage, path.dirname(p));
      if (typeof file === 'object' && 'symlink' in file) {
        fs.symlinkSync(file.symlink, p);
        continue;
      }
      const f = typeof file === 'string' ? { data: file } : file;
      const data = Buffer.from(f.data);
      fs.writeFileSync(p, data);
      const uid = f.uid ?? 0;
      const gid = f.gid ?? 0;
      if (isRoot) fs.chownSync(p, uid, gid);
      else if (uid !== 0 || gid !== 0) throw new Error(`file '${name}' of package '${spec.name}' has an owner other than root: needs root to build`);
      fs.chmodSync(p, f.mode ?? (/(^|\/)s?bin\//.test(rel) ? 0o755 : 0o644));
      if (!conffiles.has(`/${rel}`)) sums.push(`${crypto.createHash('md5').update(data).digest('hex')}  ${rel}\n`);
    }
    for (const c of conffiles) {
      const st = fs.lstatSync(path.join(stage, c), { throwIfNoEntry: false });
      if (!c.startsWith('/') || !st?.isFile()) throw new Error(`conffile '${c}' of package '${spec.name}' is not one of its regular files`);
    }
    const control = (name: string, text: string, mode = 0o644) => {
      fs.writeFileSync(path.join(debian, name), text);
      fs.chmodSync(path.join(debian, name), mode);
    };
    control('control', controlText(spec));
    if (sums.length > 0) control('md5sums', sums.sort((a, b) => (a.slice(34) < b.slice(34) ? -1 : 1)).join(''));
    if (conffiles.size > 0) control('conffiles', [...conffiles].map((c) => `${c}\n`).join(''));
    for (const [name, text] of Object.entries(spec.scripts ?? {})) control(name, text, 0o755);
    if (spec.triggers !== undefined) control('triggers', spec.triggers);
    // Children before their directories, symlinks themselves.
    execFileSync('find', [stage, '-depth', '-exec', 'touch', '-h', '-d', `@${DEB_MTIME}`, '{}', '+']);
    const r = spawnDpkgDeb([...(isRoot ? [] : ['--root-owner-group']), `-Z${spec.compression ?? 'xz'}`, '--build', stage, out]);
    if (r) throw new Error(`dpkg-deb --build failed for '${spec.name}': ${r}`);
    return out;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** Runs dpkg-deb with a fixed SOURCE_DATE_EPOCH; returns its stderr on failure, '' on success. */
function spawnDpkgDeb(args: string[]): string {
  try {
    execFileSync('dpkg-deb', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SOURCE_DATE_EPOCH: String(DEB_MTIME), LC_ALL: 'C' } });
    return '';
  } catch (e) {
    return String((e as { stderr?: Buffer }).stderr ?? e).trim();
  }
}

/**
 * Indexes the .deb files in `dir` as a flat repository (`deb [trusted=yes] file:DIR ./`): writes `dir/Packages`
 * with `dpkg-scanpackages --multiversion .` (every version of a package is listed; Filename is `./NAME.deb`) and
 * `dir/Packages.gz` (gzip without a time stamp, so it is reproducible).
 */
export function scanPackages(dir: string): void {
  const packages = execFileSync('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  fs.writeFileSync(path.join(dir, 'Packages'), packages);
  fs.writeFileSync(path.join(dir, 'Packages.gz'), gzipSync(packages, { level: 9 }));
}
