/**
 * A minimal but real Debian root, built offline from the packages installed on the host: the files of a dependency
 * closure of host packages, their dpkg database entries byte for byte, and the few files a bootstrap would add, so
 * that `chroot ROOT dpkg -i …` with maintainer scripts, triggers, alternatives and diversions behaves as on a
 * Debian system. Tests compare viva's install/upgrade/remove against real dpkg on copies of it.
 *
 * What is taken from the host, and how:
 * - packages: the Pre-Depends/Depends closure of BASE_PACKAGES plus `extra` (alternatives and virtual packages are
 *   resolved to a package already chosen when there is one, else to the first installed one, so `awk` is mawk);
 * - files: every path of each package's `info/PKG.list`, docs, man pages and locales included (they are half of the
 *   ~3500 paths, but `dpkg -V` reports every skipped one as missing, even under a dpkg `path-exclude`), with mode,
 *   owner and mtime; hard links kept; a file that another package diverts is taken from where the host keeps it;
 * - database: the packages' stanzas of the host's `status` (unchanged bytes, host order), every `info/PKG.*` file,
 *   `info/format`, the packages' diversions, trigger interests (`triggers/File` and the per-trigger files) and
 *   alternatives (re-registered with `update-alternatives --root` for the choices that are in the root); empty
 *   `available`, `statoverride`, `triggers/Unincorp`, `updates/`;
 * - merged /usr: `bin`, `sbin`, `lib*` are symlinks exactly where the host has them.
 *
 * What is made up, as debootstrap and the packages' first configuration would: `etc/passwd`, `group`, `shadow`,
 * `gshadow` with root plus the users and groups that own copied files (in practice the `shadow` group, gid 42, which
 * passwd's postinst creates), `etc/hostname`, `etc/hosts`, `etc/nsswitch.conf` (from base-files' default),
 * `etc/ld.so.cache` (host `ldconfig -r`), base-files' first-install directories (`var/run` → /run, `var/lock`,
 * `run/lock`, `/usr/local/*`, …), device nodes in `dev` (null, zero, full, random, urandom, tty), and empty `proc`,
 * `sys`, `tmp`, `root`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The packages every root has: dpkg and what maintainer scripts commonly run. */
export const BASE_PACKAGES = [
  'dpkg', 'libc-bin', 'dash', 'coreutils', 'diffutils', 'sed', 'grep', 'tar', 'findutils', 'debianutils', 'base-files',
  'passwd', 'mawk',
  // login: /etc/login.defs, which useradd and groupadd read for the system id ranges; Essential in bookworm.
  'login',
  // perl-base: debconf is in the closure (libpam-modules pre-depends on it) and its frontend is perl; adduser: most
  // Debian postinsts create users with it. Together 8 MB, ~50 ms of the build.
  'perl-base', 'adduser',
];

export interface DebianRootOptions {
  /** More host packages (with their dependencies) to put in the root. */
  extra?: string[];
}

export interface DebianRoot {
  root: string;
  /** The packages in the root, as dpkg names them (`libc6:amd64` for Multi-Arch: same), in dpkg's order (name, then architecture). */
  packages: string[];
  /** Listed files the host does not have (an admin removed them, or a dpkg path-exclude): `dpkg -V` reports them. */
  missing: string[];
}

const ADMIN = '/var/lib/dpkg';
const MERGED = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];
/** The environment of everything run in the root: nothing from the host's. */
export const ROOT_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LC_ALL: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
  DEBCONF_NONINTERACTIVE_SEEN: 'true',
};

function has(cmd: string, args = ['--version']): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/**
 * True when roots can be built and used here: running as root (files keep their owners, chroot, mount), on a dpkg
 * host with every base package installed, with unshare, chroot, mount, ldconfig and update-alternatives.
 */
export const debianRootAvailable: boolean = process.getuid?.() === 0
  && fs.existsSync(path.join(ADMIN, 'status'))
  && has('dpkg-query', ['-W', ...BASE_PACKAGES])
  && has('unshare') && has('chroot') && has('mount') && has('update-alternatives') && fs.existsSync('/sbin/ldconfig');

/** An installed package of the host, as hostClosure reads it from dpkg-query. */
export interface HostPackage {
  /** `${binary:Package}`: the name dpkg's info files and status use. */
  key: string;
  name: string;
  arch: string;
  provides: string[];
  /** Pre-Depends then Depends: each a list of alternatives (names only). */
  depends: string[][];
}

let hostCache: { packages: Map<string, HostPackage[]>; providers: Map<string, HostPackage[]>; arch: string } | undefined;

/** The host's installed packages (cached: the host does not change while tests run). */
function host(): NonNullable<typeof hostCache> {
  if (hostCache) return hostCache;
  const arch = execFileSync('dpkg', ['--print-architecture']).toString().trim();
  const out = execFileSync('dpkg-query', ['-W', '-f=${binary:Package}\t${Package}\t${Architecture}\t${db:Status-Abbrev}\t${Provides}\t${Pre-Depends}\t${Depends}\n'], { maxBuffer: 64 << 20 }).toString();
  const names = (field: string) => field.split('|').map((a) => a.trim().split(/[\s(:]/)[0]!).filter(Boolean);
  const packages = new Map<string, HostPackage[]>();
  const providers = new Map<string, HostPackage[]>();
  for (const line of out.split('\n')) {
    if (!line) continue;
    const [key, name, pkgArch, status, provides, pre, dep] = line.split('\t') as [string, string, string, string, string, string, string];
    if (!status.startsWith('ii')) continue;
    const p: HostPackage = {
      key, name, arch: pkgArch,
      provides: provides.split(',').map((s) => s.trim().split(/[\s(:]/)[0]!).filter(Boolean),
      depends: [pre, dep].flatMap((f) => f.split(',')).map(names).filter((g) => g.length > 0),
    };
    packages.set(name, [...(packages.get(name) ?? []), p]);
    for (const v of p.provides) providers.set(v, [...(providers.get(v) ?? []), p]);
  }
  // The native architecture first, then `all`, then foreign ones.
  const rank = (p: HostPackage) => (p.arch === arch ? 0 : p.arch === 'all' ? 1 : 2);
  for (const list of [...packages.values(), ...providers.values()]) list.sort((a, b) => rank(a) - rank(b));
  hostCache = { packages, providers, arch };
  return hostCache;
}

/**
 * The Pre-Depends/Depends closure of `roots` among the host's installed packages. An alternative or virtual package
 * already satisfied by a chosen package adds nothing; otherwise its first installed candidate is chosen.
 */
export function hostClosure(roots: string[]): HostPackage[] {
  const { packages, providers } = host();
  const chosen = new Map<string, HostPackage>();
  const queue: HostPackage[] = [];
  const add = (p: HostPackage) => {
    if (chosen.has(p.key)) return;
    chosen.set(p.key, p);
    queue.push(p);
  };
  for (const name of roots) {
    const p = packages.get(name)?.[0];
    if (!p) throw new Error(`package '${name}' is not installed on this host`);
    add(p);
  }
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const group of p.depends) {
      const candidates = group.flatMap((n) => [...(packages.get(n) ?? []), ...(providers.get(n) ?? [])]);
      if (candidates.length === 0) throw new Error(`dependency '${group.join(' | ')}' of '${p.key}' is not installed on this host`);
      if (!candidates.some((c) => chosen.has(c.key))) add(candidates[0]!);
    }
  }
  // dpkg's order: by name, then architecture.
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return [...chosen.values()].sort((a, b) => cmp(a.name, b.name) || cmp(a.arch, b.arch));
}

/** Host diversions: `from` → where it went and which package made it (`:` for a local one). */
function readDiversions(): Map<string, { to: string; by: string }> {
  const file = path.join(ADMIN, 'diversions');
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [];
  const out = new Map<string, { to: string; by: string }>();
  for (let i = 0; i + 2 < lines.length; i += 3) out.set(lines[i]!, { to: lines[i + 1]!, by: lines[i + 2]! });
  return out;
}

/** The package name (no architecture) of a `pkg`, `pkg:arch` or `pkg/noawait` reference. */
function baseName(ref: string): string {
  return ref.split('/')[0]!.split(':')[0]!;
}

/**
 * Copies `paths` (the union of the packages' `.list` files, sorted so that directories come before their contents)
 * from the host into `root`, refusing any path that a symlink would lead out of the root. Returns the owners seen (for
 * passwd and group) and the listed paths the host does not have.
 */
function copyFiles(root: string, paths: string[], owners: Map<string, Set<string>>, diversions: ReturnType<typeof readDiversions>, names: Set<string>): { ids: { uids: Set<number>; gids: Set<number> }; missing: string[] } {
  const inside = new Map<string, boolean>();
  const isInside = (dir: string): boolean => {
    let ok = inside.get(dir);
    if (ok === undefined) {
      const real = fs.realpathSync(dir);
      ok = real === root || real.startsWith(`${root}/`);
      inside.set(dir, ok);
    }
    return ok;
  };
  /** Makes sure the parent of `p` is a directory in the root, creating missing ones (0755) only below a checked one. */
  const checkParent = (p: string) => {
    const dir = path.dirname(p);
    let existing = dir;
    while (!fs.existsSync(existing)) existing = path.dirname(existing);
    if (!isInside(existing)) throw new Error(`path '${p}' leads out of the root through a symlink`);
    if (existing !== dir) fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (!isInside(dir)) throw new Error(`path '${p}' leads out of the root through a symlink`);
  };
  const links = new Map<string, string>();
  const dirs: Array<[string, fs.Stats]> = [];
  const uids = new Set<number>();
  const gids = new Set<number>();
  const missing: string[] = [];
  for (const p of paths) {
    if (p === '/.' || p === '/') continue;
    // A file another package diverts sits at the diversion's target on the host; in the root too if that package
    // is in the root, else at its own name.
    const d = diversions.get(p);
    const divertedByOther = d !== undefined && d.by !== ':' && !owners.get(p)?.has(d.by);
    const hostPath = divertedByOther ? d.to : p;
    const rootRel = divertedByOther && names.has(d.by) ? d.to : p;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(hostPath);
    } catch {
      missing.push(p);
      continue;
    }
    const target = path.join(root, rootRel);
    checkParent(target);
    const existing = fs.lstatSync(target, { throwIfNoEntry: false });
    if (existing) {
      // A directory listed by several packages, or a merged-/usr symlink made first.
      if ((existing.isDirectory() || existing.isSymbolicLink()) && (st.isDirectory() || st.isSymbolicLink())) continue;
      throw new Error(`path '${rootRel}' is listed twice with different types`);
    }
    uids.add(st.uid);
    gids.add(st.gid);
    if (st.isDirectory()) {
      fs.mkdirSync(target);
      dirs.push([target, st]);
    } else if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(hostPath), target);
      fs.lchownSync(target, st.uid, st.gid);
      fs.lutimesSync(target, st.atime, st.mtime);
      continue;
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? links.get(key) : undefined;
      if (first) {
        fs.linkSync(first, target);
        continue;
      }
      if (st.nlink > 1) links.set(key, target);
      fs.copyFileSync(hostPath, target, fs.constants.COPYFILE_FICLONE);
    } else {
      missing.push(p);
      continue;
    }
    // chown before chmod: chown clears set-id bits.
    fs.chownSync(target, st.uid, st.gid);
    fs.chmodSync(target, st.mode & 0o7777);
    if (!st.isDirectory()) fs.utimesSync(target, st.atime, st.mtime);
  }
  for (const [dir, st] of dirs.reverse()) fs.utimesSync(dir, st.atime, st.mtime);
  return { ids: { uids, gids }, missing };
}

/** Splits a deb822 file into its stanzas (text without the separating blank lines). */
function stanzas(text: string): string[] {
  return text.split(/\n\n+/).map((s) => s.replace(/^\n+|\n+$/g, '')).filter(Boolean);
}

function field(stanza: string, name: string): string | undefined {
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(stanza)?.[1];
}

/** The dpkg database of `pkgs`, taken from the host's. */
function writeDatabase(root: string, pkgs: HostPackage[], names: Set<string>): void {
  const admin = path.join(root, ADMIN);
  fs.mkdirSync(path.join(admin, 'info'), { recursive: true });
  fs.mkdirSync(path.join(admin, 'updates'), { recursive: true });
  fs.mkdirSync(path.join(admin, 'triggers'), { recursive: true });
  fs.mkdirSync(path.join(admin, 'parts'), { recursive: true });
  fs.mkdirSync(path.join(admin, 'alternatives'), { recursive: true });
  const keys = new Set(pkgs.map((p) => p.key));
  const wanted = new Set(pkgs.map((p) => `${p.name}\0${p.arch}`));
  const status = stanzas(fs.readFileSync(path.join(ADMIN, 'status'), 'utf8'))
    .filter((s) => wanted.has(`${field(s, 'Package')}\0${field(s, 'Architecture')}`) && /^install ok installed$/.test(field(s, 'Status') ?? ''));
  if (status.length !== pkgs.length) throw new Error(`host status has ${status.length} of the ${pkgs.length} packages installed`);
  fs.writeFileSync(path.join(admin, 'status'), status.map((s) => `${s}\n\n`).join(''));
  fs.writeFileSync(path.join(admin, 'available'), '');
  fs.writeFileSync(path.join(admin, 'statoverride'), '');
  for (const file of fs.readdirSync(path.join(ADMIN, 'info'))) {
    const dot = file.lastIndexOf('.');
    if (file === 'format' || (dot > 0 && keys.has(file.slice(0, dot)))) {
      fs.copyFileSync(path.join(ADMIN, 'info', file), path.join(admin, 'info', file));
      const st = fs.statSync(path.join(ADMIN, 'info', file));
      fs.chmodSync(path.join(admin, 'info', file), st.mode & 0o7777);
      fs.utimesSync(path.join(admin, 'info', file), st.atime, st.mtime);
    }
  }
  if (!fs.existsSync(path.join(admin, 'info', 'format'))) fs.writeFileSync(path.join(admin, 'info', 'format'), '1\n');

  const diversions: string[] = [];
  for (const [from, d] of readDiversions()) if (names.has(d.by)) diversions.push(from, d.to, d.by);
  fs.writeFileSync(path.join(admin, 'diversions'), diversions.map((l) => `${l}\n`).join(''));

  // Trigger interests: `triggers/File` lines "PATH PKG[/noawait]", and one file per explicit trigger listing
  // "PKG[/noawait]" lines; only the root's packages, and no file for a trigger nobody in the root is interested in.
  const hostTriggers = path.join(ADMIN, 'triggers');
  for (const file of fs.existsSync(hostTriggers) ? fs.readdirSync(hostTriggers) : []) {
    if (file === 'Lock' || file === 'Unincorp') continue;
    const lines = fs.readFileSync(path.join(hostTriggers, file), 'utf8').split('\n').filter(Boolean);
    const kept = lines.filter((l) => names.has(baseName(file === 'File' ? l.slice(l.lastIndexOf(' ') + 1) : l)));
    if (kept.length > 0 || file === 'File') fs.writeFileSync(path.join(admin, 'triggers', file), kept.map((l) => `${l}\n`).join(''));
  }
  fs.writeFileSync(path.join(admin, 'triggers', 'Unincorp'), '');
}

interface Alternative {
  name: string;
  mode: string;
  link: string;
  slaves: Array<{ name: string; link: string }>;
  choices: Array<{ path: string; priority: string; slaves: string[] }>;
}

/** Parses an update-alternatives state file (`/var/lib/dpkg/alternatives/NAME`). */
function parseAlternative(name: string, text: string): Alternative {
  const lines = text.split('\n');
  let i = 0;
  const next = () => lines[i++] ?? '';
  const mode = next();
  const link = next();
  const slaves: Alternative['slaves'] = [];
  for (let s = next(); s !== ''; s = next()) slaves.push({ name: s, link: next() });
  const choices: Alternative['choices'] = [];
  for (let c = next(); c !== ''; c = next()) choices.push({ path: c, priority: next(), slaves: slaves.map(() => next()) });
  return { name, mode, link, slaves, choices };
}

/** Registers the host's alternatives whose choices are files of the root, as the packages' postinsts did. */
function writeAlternatives(root: string, files: Set<string>): void {
  const dir = path.join(ADMIN, 'alternatives');
  fs.mkdirSync(path.join(root, 'etc/alternatives'), { recursive: true });
  fs.mkdirSync(path.join(root, 'var/log'), { recursive: true });
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []) {
    const alt = parseAlternative(name, fs.readFileSync(path.join(dir, name), 'utf8'));
    for (const c of alt.choices.filter((ch) => files.has(ch.path))) {
      const slaves = alt.slaves.flatMap((s, k) => (c.slaves[k] ? ['--slave', s.link, s.name, c.slaves[k]!] : []));
      execFileSync('update-alternatives', ['--root', root, '--quiet', '--install', alt.link, alt.name, c.path, c.priority, ...slaves], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
    const current = fs.existsSync(`/etc/alternatives/${name}`) ? fs.readlinkSync(`/etc/alternatives/${name}`) : undefined;
    if (alt.mode === 'manual' && current && files.has(current)) {
      execFileSync('update-alternatives', ['--root', root, '--quiet', '--set', alt.name, current], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
  }
  // update-alternatives' log of the bootstrap is no part of the image.
  fs.rmSync(path.join(root, 'var/log/alternatives.log'), { force: true });
}

/** Host lines of a colon-separated file (passwd, group) that `keep` accepts, in host order. */
function hostEntries(file: string, keep: (fields: string[]) => boolean): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l && keep(l.split(':')));
}

function write(root: string, rel: string, data: string, mode = 0o644, gid = 0): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
  fs.chownSync(p, 0, gid);
  fs.chmodSync(p, mode);
}

/** Users and groups, the files a bootstrap writes, base-files' first-install directories, device nodes. */
function writeSystem(root: string, ids: { uids: Set<number>; gids: Set<number> }, names: Set<string>): void {
  const uids = new Set([0, ...ids.uids]);
  const gids = new Set([0, ...ids.gids]);
  const users = hostEntries('/etc/passwd', (f) => uids.has(Number(f[2])))
    .map((l) => (l.startsWith('root:') ? 'root:x:0:0:root:/root:/bin/sh' : l));
  for (const u of users) gids.add(Number(u.split(':')[3]));
  const groups = hostEntries('/etc/group', (f) => gids.has(Number(f[2]))).map((l) => l.split(':').slice(0, 3).join(':') + ':');
  const userNames = new Set(users.map((u) => u.split(':')[0]!));
  const groupNames = new Set(groups.map((g) => g.split(':')[0]!));
  const shadowGid = groups.find((g) => g.startsWith('shadow:'))?.split(':')[2];
  write(root, 'etc/passwd', users.map((l) => `${l}\n`).join(''));
  write(root, 'etc/group', groups.map((l) => `${l}\n`).join(''));
  // Passwords locked; 19000 = 2022-01-08, a fixed "last changed" day.
  write(root, 'etc/shadow', [...userNames].map((u) => `${u}:*:19000:0:99999:7:::\n`).join(''), 0o640, Number(shadowGid ?? 0));
  write(root, 'etc/gshadow', [...groupNames].map((g) => `${g}:*::\n`).join(''), 0o640, Number(shadowGid ?? 0));
  write(root, 'etc/hostname', 'debian-root\n');
  write(root, 'etc/hosts', '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  const nss = path.join(root, 'usr/share/base-files/nsswitch.conf');
  write(root, 'etc/nsswitch.conf', fs.existsSync(nss) ? fs.readFileSync(nss, 'utf8') : 'passwd: files\ngroup: files\nshadow: files\ngshadow: files\n');
  if (!fs.existsSync(path.join(root, 'etc/mtab'))) fs.symlinkSync('../proc/self/mounts', path.join(root, 'etc/mtab'));

  const mkdir = (rel: string, mode: number) => {
    const p = path.join(root, rel);
    if (!fs.existsSync(p)) fs.mkdirSync(p, { recursive: true });
    fs.chmodSync(p, mode);
  };
  for (const [rel, mode] of [['proc', 0o555], ['sys', 0o555], ['dev', 0o755], ['dev/pts', 0o755], ['dev/shm', 0o1777], ['tmp', 0o1777],
    ['root', 0o700], ['home', 0o755], ['run', 0o755], ['run/lock', 0o1777], ['var/tmp', 0o1777], ['var/log', 0o755],
    ['var/cache', 0o755], ['var/spool', 0o755], ['mnt', 0o755], ['srv', 0o755], ['opt', 0o755], ['media', 0o755],
    ['etc/opt', 0o755], ['var/opt', 0o755], ['usr/local/bin', 0o755], ['usr/local/sbin', 0o755], ['usr/local/lib', 0o755],
    ['usr/local/share/man', 0o755], ['usr/local/include', 0o755], ['usr/local/src', 0o755], ['usr/local/etc', 0o755]] as const) mkdir(rel, mode);
  // base-files' postinst on first install: /var/run and /var/lock are symlinks into /run.
  for (const [rel, to] of [['var/run', '/run'], ['var/lock', '/run/lock']] as const) {
    const p = path.join(root, rel);
    if (fs.lstatSync(p, { throwIfNoEntry: false })?.isDirectory()) fs.rmdirSync(p);
    if (!fs.existsSync(p)) fs.symlinkSync(to, p);
  }
  if (names.has('base-files')) {
    for (const [from, to] of [['dot.profile', 'root/.profile'], ['dot.bashrc', 'root/.bashrc'], ['motd', 'etc/motd']] as const) {
      const src = path.join(root, 'usr/share/base-files', from);
      if (fs.existsSync(src) && !fs.existsSync(path.join(root, to))) fs.copyFileSync(src, path.join(root, to));
    }
  }
  const nodes: Array<[string, number, number, number]> = [['null', 1, 3, 0o666], ['zero', 1, 5, 0o666], ['full', 1, 7, 0o666],
    ['random', 1, 8, 0o666], ['urandom', 1, 9, 0o666], ['tty', 5, 0, 0o666]];
  execFileSync('sh', ['-c', nodes.map(([n, ma, mi, mode]) => `mknod -m ${mode.toString(8)} '${path.join(root, 'dev', n)}' c ${ma} ${mi}`).join(' && ')]);
  for (const [n, to] of [['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2'], ['ptmx', 'pts/ptmx']] as const) {
    fs.symlinkSync(to, path.join(root, 'dev', n));
  }
  // The cache libc-bin's ldconfig trigger keeps; `-r` makes ldconfig chroot into the root itself.
  execFileSync('/sbin/ldconfig', ['-r', root], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Builds a Debian root in `dir/root` from the host's installed packages (see the module comment for what it holds).
 * Needs `debianRootAvailable`. Takes ~0.2 s on a tmpfs (see scratchDir), seconds on a slow disk; to use one root in
 * several tests, build it once per test file and give each test a `cp -a` copy (`copyRoot`).
 *
 * Throws if a requested package, or a dependency of one, is not installed on the host.
 *
 * @example
 * const { root } = debianRoot(tmpDir(t), { extra: ['gzip'] });
 * runInRoot(root, ['dpkg', '-i', '/tmp/x.deb']);
 */
export function debianRoot(dir: string, options: DebianRootOptions = {}): DebianRoot {
  const root = path.join(fs.realpathSync(dir), 'root');
  fs.mkdirSync(root, { mode: 0o755 });
  const pkgs = hostClosure([...BASE_PACKAGES, ...(options.extra ?? [])]);
  const names = new Set(pkgs.map((p) => p.name));

  // Merged /usr: the same top-level symlinks as the host, made first so that /bin/ls lands in usr/bin.
  for (const d of MERGED) {
    const st = fs.lstatSync(`/${d}`, { throwIfNoEntry: false });
    if (!st?.isSymbolicLink()) continue;
    const to = fs.readlinkSync(`/${d}`);
    if (path.isAbsolute(to)) throw new Error(`host '/${d}' is an absolute symlink`);
    fs.mkdirSync(path.join(root, to), { recursive: true, mode: 0o755 });
    fs.symlinkSync(to, path.join(root, d));
  }

  const owners = new Map<string, Set<string>>();
  for (const p of pkgs) {
    for (const f of fs.readFileSync(path.join(ADMIN, 'info', `${p.key}.list`), 'utf8').split('\n')) {
      if (!f) continue;
      let set = owners.get(f);
      if (!set) owners.set(f, (set = new Set()));
      set.add(p.name);
    }
  }
  const paths = [...owners.keys()].sort();
  const { ids, missing } = copyFiles(root, paths, owners, readDiversions(), names);
  writeDatabase(root, pkgs, names);
  writeAlternatives(root, new Set(paths.filter((p) => fs.existsSync(path.join(root, p)))));
  writeSystem(root, ids, names);
  return { root, packages: pkgs.map((p) => p.key), missing };
}

/** A copy of a root (`cp -a`: owners, modes, links, device nodes, hard links kept) at `dest`. */
export function copyRoot(root: string, dest: string): string {
  execFileSync('cp', ['-a', root, dest]);
  return dest;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Device nodes of the root that runInRoot binds to the host's, so that they work on a `nodev` file system too. */
const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/**
 * Runs `argv` chrooted into `root`, in private mount and pid namespaces with the root's /proc mounted and its device
 * nodes bound to the host's: those mounts and every process the command starts end with it, and nothing is mounted
 * in the caller's namespace. The environment is ROOT_ENV plus `env`. Exit status 125 means the namespace could not
 * be set up (the reason is in stderr).
 */
export function runInRoot(root: string, argv: string[], options: { env?: Record<string, string>; input?: string } = {}): RunResult {
  const setup = `root=$1; shift
for n in ${DEV_NODES.join(' ')}; do
  if [ -c "$root/dev/$n" ]; then mount --bind "/dev/$n" "$root/dev/$n" || exit 125; fi
done
exec chroot "$root" "$@"`;
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', `--mount-proc=${path.join(root, 'proc')}`, '/bin/sh', '-c', setup, 'sh', root, ...argv], {
    env: { ...ROOT_ENV, ...options.env },
    input: options.input ?? '',
    maxBuffer: 64 << 20,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? 128, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Free space a tmpfs needs to be used for roots: a few roots of ~80 MB each, with room to spare. */
const SCRATCH_MIN_FREE = 1 << 30;

/**
 * A new directory for roots: on /dev/shm when it is a tmpfs with at least SCRATCH_MIN_FREE bytes free (creating the
 * ~3500 files of a root there takes a tenth of the time it takes on a disk file system), else under os.tmpdir().
 * The caller removes it.
 */
export function scratchDir(prefix = 'viva-root-'): string {
  let base = os.tmpdir();
  try {
    const s = fs.statfsSync('/dev/shm');
    // TMPFS_MAGIC
    if (s.type === 0x01021994 && s.bavail * s.bsize >= SCRATCH_MIN_FREE) {
      fs.accessSync('/dev/shm', fs.constants.W_OK);
      base = '/dev/shm';
    }
  } catch {
    // No usable /dev/shm: the temp dir.
  }
  return fs.mkdtempSync(path.join(base, prefix));
}
