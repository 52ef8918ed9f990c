/**
 * Dependency resolution against a real repository built at test time (dpkg-deb + dpkg-scanpackages), each case
 * checked against what `apt-get install --simulate` chooses from the same repository and dpkg status file.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { CorruptInputError, DependencyError } from '../../src/errors.js';
import { parseDeb822 } from '../../src/packages/deb822.js';
import { type InstallPlan, type InstallRequest, resolveInstall } from '../../src/packages/resolve.js';
import { PackageUniverse, readRepository } from '../../src/packages/source.js';

const run = promisify(execFile);

function has(program: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const HAVE_DPKG = has('dpkg-deb') && has('dpkg-scanpackages');
const HAVE_APT = has('apt-get');

/** name, version, extra control fields. Together: chains, alternatives, virtuals, conflicts, versions, Pre-Depends. */
const PACKAGES: Array<[string, string, string]> = [
  ['app', '1.0', 'Depends: libx (>= 1.0), tool'],
  ['libx', '1.2', 'Depends: libc-fake'],
  ['libc-fake', '2.0', 'Priority: required'],
  ['tool', '1.0', 'Depends: mawk-fake | gawk-fake'],
  ['gawk-fake', '1.0', 'Provides: awk-fake'],
  ['alt-user', '1.0', 'Depends: alt-a | alt-b'],
  ['alt-a', '1.0', ''],
  ['alt-b', '1.0', ''],
  ['alt-inst', '1.0', 'Depends: alt-b | liba'],
  ['mailer', '1.0', 'Depends: mail-agent'],
  ['postfix-fake', '1.0', 'Provides: mail-agent'],
  ['edit-user', '1.0', 'Depends: editor-virt'],
  ['vim-fake', '1.0', 'Provides: editor-virt\nPriority: optional'],
  ['nano-fake', '1.0', 'Provides: editor-virt\nPriority: important'],
  ['eq-user', '1.0', 'Depends: eqvirt'],
  ['zz-prov', '1.0', 'Provides: eqvirt\nPriority: optional'],
  ['aa-prov', '1.0', 'Provides: eqvirt\nPriority: optional'],
  ['oldreq', '1.0', 'Depends: libv (<< 2.0)'],
  ['libv', '1.5', ''],
  ['libv', '2.1', ''],
  ['usesa', '1.0', 'Depends: liba (>= 1.0)'],
  ['needsnewa', '1.0', 'Depends: liba (>= 2.0)'],
  ['liba', '2.0', ''],
  ['c1', '1.0', 'Conflicts: c2'],
  ['c2', '1.0', ''],
  ['newmta', '1.0', 'Conflicts: oldmta'],
  ['broken', '1.0', 'Depends: nonexistent (>= 1)'],
  ['pd', '1.0', 'Pre-Depends: pdlib\nDepends: pdother'],
  ['pdlib', '1.0', ''],
  ['pdother', '1.0', 'Depends: pd'],
  ['anyuser', '1.0', 'Depends: interp:any (>= 1)'],
  ['interp', '1.0', 'Multi-Arch: allowed'],
  ['anti-base', '1.0', 'Conflicts: base-files'],
  ['breaker', '1.0', 'Breaks: liba (<< 2.0)'],
  ['shared-user', '1.0', 'Depends: shared'],
  ['shared', '1.0', 'Priority: optional'],
  ['shared-prov', '1.0', 'Provides: shared\nPriority: required'],
  ['newer-mta', '1.0', ''],
];

const STATUS = `Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Version: 12.4
Architecture: amd64
Description: base

Package: liba
Status: install ok installed
Version: 1.0
Architecture: amd64
Description: a library

Package: liba-user
Status: install ok installed
Version: 1.0
Architecture: amd64
Depends: liba (>= 1.0)
Description: uses liba

Package: oldmta
Status: install ok installed
Version: 1.0
Architecture: amd64
Description: an old mail agent

Package: picky
Status: install ok installed
Version: 1.0
Architecture: amd64
Conflicts: newer-mta
Description: conflicts with a package not installed

Package: gone
Status: deinstall ok config-files
Version: 0.1
Architecture: amd64
Description: removed, its conffiles kept
`;

interface Fixture {
  dir: string;
  repo: string;
  status: string;
  universe: PackageUniverse;
  apt?: (args: string[]) => Promise<{ code: number; out: string }>;
}

let fixture: Fixture | undefined;

test.before(async () => {
  if (!HAVE_DPKG) return;
  const dir = await mkdtemp(path.join(tmpdir(), 'viva-resolve-'));
  const repo = path.join(dir, 'repo');
  const pool = path.join(repo, 'pool', 'main');
  await mkdir(pool, { recursive: true });
  for (const [name, version, extra] of PACKAGES) {
    const root = path.join(dir, 'build', `${name}_${version}`);
    await mkdir(path.join(root, 'DEBIAN'), { recursive: true });
    const control = `Package: ${name}\nVersion: ${version}\nArchitecture: amd64\nMaintainer: Test <test@example.org>\n${extra ? `${extra}\n` : ''}Description: test package ${name}\n`;
    await writeFile(path.join(root, 'DEBIAN', 'control'), control);
    await run('dpkg-deb', ['--root-owner-group', '-Znone', '--build', root, path.join(pool, `${name}_${version}_amd64.deb`)]);
  }
  const { stdout } = await run('dpkg-scanpackages', ['--multiversion', 'pool'], { cwd: repo });
  const bin = path.join(repo, 'dists', 'stable', 'main', 'binary-amd64');
  await mkdir(bin, { recursive: true });
  await writeFile(path.join(bin, 'Packages.gz'), gzipSync(stdout));
  const status = path.join(dir, 'status');
  await writeFile(status, STATUS);
  const universe = await readRepository(repo, { arch: 'amd64' });
  fixture = { dir, repo, status, universe };
  if (!HAVE_APT) return;
  const sandbox = path.join(dir, 'apt');
  for (const d of ['etc/sources.list.d', 'etc/preferences.d', 'etc/trusted.gpg.d', 'cache/archives/partial', 'lists/partial', 'state', 'log']) {
    await mkdir(path.join(sandbox, d), { recursive: true });
  }
  await writeFile(path.join(sandbox, 'etc', 'sources.list'), `deb [trusted=yes] file:${repo} stable main\n`);
  const opts = [
    `Dir=${sandbox}`, `Dir::Etc=${sandbox}/etc`, `Dir::Etc::SourceList=${sandbox}/etc/sources.list`, `Dir::Etc::SourceParts=${sandbox}/etc/sources.list.d`,
    'Dir::Etc::Preferences=/dev/null', `Dir::Etc::PreferencesParts=${sandbox}/etc/preferences.d`, 'Dir::Etc::Trusted=/dev/null',
    `Dir::Etc::TrustedParts=${sandbox}/etc/trusted.gpg.d`, `Dir::State=${sandbox}/state`, `Dir::State::status=${status}`,
    `Dir::Cache=${sandbox}/cache`, `Dir::State::Lists=${sandbox}/lists`, `Dir::Log=${sandbox}/log`, 'Debug::NoLocking=1',
    'APT::Architecture=amd64', 'APT::Architectures::=amd64', 'APT::Install-Recommends=false', 'APT::Get::List-Cleanup=false',
  ].flatMap((o) => ['-o', o]);
  const apt = async (args: string[]) => {
    try {
      const r = await run('apt-get', [...opts, ...args], { env: { ...process.env, LC_ALL: 'C' } });
      return { code: 0, out: r.stdout };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof err.code === 'number' ? err.code : 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
    }
  };
  const update = await apt(['update', '-q']);
  if (update.code !== 0) throw new Error(`apt-get update failed: ${update.out}`);
  fixture.apt = apt;
});

test.after.always(async () => {
  if (fixture) await rm(fixture.dir, { recursive: true, force: true });
});

/** The plan as apt's simulation lines: `Inst NAME [OLD] (NEW)` in order, then `Remv NAME [OLD]` sorted. */
function planLines(plan: InstallPlan): string[] {
  return [
    ...plan.install.map((p) => `Inst ${p.name}${p.from ? ` [${p.from}]` : ''} (${p.version})`),
    ...plan.remove.map((r) => `Remv ${r.name} [${r.version}]`),
  ];
}

function aptLines(out: string): string[] {
  const inst: string[] = [];
  const remv: string[] = [];
  for (const line of out.split('\n')) {
    let m = /^Inst (\S+) (?:\[(\S+)\] )?\((\S+)/.exec(line);
    if (m) inst.push(`Inst ${m[1]}${m[2] ? ` [${m[2]}]` : ''} (${m[3]})`);
    m = /^Remv (\S+)(?: \[(\S+)\])?/.exec(line);
    if (m) remv.push(`Remv ${m[1]} [${m[2]}]`);
  }
  return [...inst, ...remv.sort()];
}

function aptArgs(request: InstallRequest): string[] {
  return [...request.install.map((i) => (i.version ? `${i.name}=${i.version}` : i.name)), ...(request.remove ?? []).map((n) => `${n}-`)];
}

function resolve(request: InstallRequest): InstallPlan {
  return resolveInstall(parseDeb822(STATUS), fixture!.universe, request, { arch: 'amd64' });
}

/** The same request through viva and through apt: the same Inst/Remv lines, in the same order. */
const agrees = test.macro(async (t: ExecutionContext, request: InstallRequest, expected: string[]) => {
  if (!fixture) throw new Error('the fixture repository was not built');
  const plan = resolve(request);
  t.deepEqual(planLines(plan), expected);
  if (!fixture.apt) throw new Error('apt-get missing');
  const r = await fixture.apt(['install', '--simulate', '-q', ...aptArgs(request)]);
  t.is(r.code, 0, r.out);
  t.deepEqual(aptLines(r.out), expected, r.out);
});

/** viva refuses with DependencyError (message matched); apt refuses the same request. */
const refuses = test.macro(async (t: ExecutionContext, request: InstallRequest, message: RegExp, kind: string) => {
  if (!fixture) throw new Error('the fixture repository was not built');
  const e = t.throws(() => resolve(request), { instanceOf: DependencyError });
  t.regex(e!.message, message);
  t.is(e!.code, 'ERR_DEPENDENCY');
  t.is((e!.data as { kind: string }).kind, kind);
  if (!fixture.apt) throw new Error('apt-get missing');
  const r = await fixture.apt(['install', '--simulate', '-q', ...aptArgs(request)]);
  t.not(r.code, 0, r.out);
  t.regex(r.out, /^E: /m);
});

// Each case is checked against apt itself: without apt-get (CI installs it) they are skipped, not half-run.
const skipUnless = HAVE_DPKG && HAVE_APT ? test.serial : test.skip;

skipUnless('resolve: a chain of dependencies, dependencies first', agrees, { install: [{ name: 'app' }] },
  ['Inst libc-fake (2.0)', 'Inst libx (1.2)', 'Inst gawk-fake (1.0)', 'Inst tool (1.0)', 'Inst app (1.0)']);
skipUnless('resolve: alternatives: the first one that exists, the first of two', agrees, { install: [{ name: 'tool' }, { name: 'alt-user' }] },
  ['Inst alt-a (1.0)', 'Inst alt-user (1.0)', 'Inst gawk-fake (1.0)', 'Inst tool (1.0)']);
skipUnless('resolve: an installed package satisfies a later alternative', agrees, { install: [{ name: 'alt-inst' }] }, ['Inst alt-inst (1.0)']);
skipUnless('resolve: a virtual package with one provider', agrees, { install: [{ name: 'mailer' }] }, ['Inst postfix-fake (1.0)', 'Inst mailer (1.0)']);
skipUnless('resolve: a virtual package named in the request, one provider', agrees, { install: [{ name: 'mail-agent' }] }, ['Inst postfix-fake (1.0)']);
skipUnless('resolve: two providers, the higher Priority wins', agrees, { install: [{ name: 'edit-user' }] }, ['Inst nano-fake (1.0)', 'Inst edit-user (1.0)']);
skipUnless('resolve: two providers of equal Priority, the one apt met last wins', agrees, { install: [{ name: 'eq-user' }] }, ['Inst zz-prov (1.0)', 'Inst eq-user (1.0)']);
skipUnless('resolve: an installed version satisfies the dependency (no upgrade)', agrees, { install: [{ name: 'usesa' }] }, ['Inst usesa (1.0)']);
skipUnless('resolve: a versioned dependency upgrades an installed package', agrees, { install: [{ name: 'needsnewa' }] }, ['Inst liba [1.0] (2.0)', 'Inst needsnewa (1.0)']);
skipUnless('resolve: Breaks against an installed version upgrades it', agrees, { install: [{ name: 'breaker' }] }, ['Inst liba [1.0] (2.0)', 'Inst breaker (1.0)']);
skipUnless('resolve: an older version asked for by version satisfies a (<<) dependency', agrees, { install: [{ name: 'oldreq' }, { name: 'libv', version: '1.5' }] },
  ['Inst libv (1.5)', 'Inst oldreq (1.0)']);
skipUnless('resolve: Conflicts with an installed package removes it', agrees, { install: [{ name: 'newmta' }] }, ['Inst newmta (1.0)', 'Remv oldmta [1.0]']);
skipUnless('resolve: a real package wins over a provider of its name', agrees, { install: [{ name: 'shared-user' }] }, ['Inst shared (1.0)', 'Inst shared-user (1.0)']);
skipUnless('resolve: an installed package that conflicts with the new one is removed', agrees, { install: [{ name: 'newer-mta' }] }, ['Inst newer-mta (1.0)', 'Remv picky [1.0]']);
skipUnless('resolve: Pre-Depends strictly first, a Depends loop cut', agrees, { install: [{ name: 'pd' }] }, ['Inst pdlib (1.0)', 'Inst pdother (1.0)', 'Inst pd (1.0)']);
skipUnless('resolve: :any is satisfied by a Multi-Arch: allowed package', agrees, { install: [{ name: 'anyuser' }] }, ['Inst interp (1.0)', 'Inst anyuser (1.0)']);
skipUnless('resolve: removing a package removes what depends on it', agrees, { install: [], remove: ['liba'] }, ['Remv liba [1.0]', 'Remv liba-user [1.0]']);

skipUnless('resolve: a missing dependency names the package and the relation', refuses, { install: [{ name: 'broken' }] },
  /^broken depends on nonexistent \(>= 1\), which no source provides$/, 'missing');
skipUnless('resolve: the candidate is too new for a (<<) dependency (apt does not pick older versions by itself)', refuses, { install: [{ name: 'oldreq' }] },
  /^oldreq depends on libv \(<< 2\.0\), but the candidate version of 'libv' is 2\.1$/, 'version');
skipUnless('resolve: two requested packages that conflict', refuses, { install: [{ name: 'c1' }, { name: 'c2' }] },
  /^c1 conflicts with c2, but c1 1\.0 is to be installed$/, 'conflict');
skipUnless('resolve: a conflict with an Essential package', refuses, { install: [{ name: 'anti-base' }] },
  /^anti-base conflicts with base-files, and base-files is Essential: it is removed only when asked for by name$/, 'essential');
skipUnless('resolve: a virtual package with two providers must be named', refuses, { install: [{ name: 'editor-virt' }] },
  /^'editor-virt' is a virtual package provided by nano-fake, vim-fake: name the one to install$/, 'virtual');
skipUnless('resolve: an unknown package', refuses, { install: [{ name: 'no-such-package' }] }, /^package 'no-such-package' is not in any source$/, 'unknown-package');

skipUnless('resolve: an Essential package named in remove is removed', (t) => {
  const plan = resolve({ install: [], remove: ['base-files'] });
  t.deepEqual(planLines(plan), ['Remv base-files [12.4]']);
  t.is(plan.remove[0]!.reason, 'requested');
});

skipUnless('resolve: a planned install carries what unpacking needs (file, size, sha256)', (t) => {
  const plan = resolve({ install: [{ name: 'needsnewa' }] });
  const liba = plan.install[0]!;
  t.is(liba.from, '1.0');
  t.false(liba.requested);
  t.true(plan.install[1]!.requested);
  t.is(liba.candidate.filename, 'pool/main/liba_2.0_amd64.deb');
  t.regex(liba.candidate.sha256 ?? '', /^[0-9a-f]{64}$/);
  t.true((liba.candidate.size ?? 0) > 0);
});

skipUnless('source: Release checksums are checked; plain, .gz and .xz indexes read alike', async (t) => {
  const { repo } = fixture!;
  const bin = path.join(repo, 'dists', 'stable', 'main', 'binary-amd64');
  const gz = await readFile(path.join(bin, 'Packages.gz'));
  const copy = path.join(fixture!.dir, 'copy');
  const cbin = path.join(copy, 'dists', 'stable', 'main', 'binary-amd64');
  await mkdir(cbin, { recursive: true });
  const plain = (await run('sh', ['-c', `gzip -dc < '${path.join(bin, 'Packages.gz')}'`])).stdout;
  await writeFile(path.join(cbin, 'Packages.xz'), execFileSync('xz', ['-c'], { input: plain }));
  const names = (u: PackageUniverse) => [...u.names()].sort();
  t.deepEqual(names(await readRepository(copy, { arch: 'amd64' })), names(fixture!.universe));
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
  const xz = await readFile(path.join(cbin, 'Packages.xz'));
  const release = (sum: string) => `Origin: test\nSuite: stable\nSHA256:\n ${sum} ${xz.length} main/binary-amd64/Packages.xz\n`;
  await writeFile(path.join(copy, 'dists', 'stable', 'Release'), release(sha(xz)));
  t.is((await readRepository(copy, { arch: 'amd64', suite: 'stable' })).lookupVersions('libv').map((c) => c.version).join(' '), '2.1 1.5');
  await writeFile(path.join(copy, 'dists', 'stable', 'Release'), release(sha(gz)));
  const e = await t.throwsAsync(readRepository(copy, { arch: 'amd64' }), { instanceOf: CorruptInputError });
  t.regex(e!.message, /Packages\.xz: Release: SHA256 [0-9a-f]{64} \(\d+ bytes\) does not match the Release file's/);
  // InRelease (clearsigned; the signature is not checked) wins over Release.
  await writeFile(path.join(copy, 'dists', 'stable', 'InRelease'),
    `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n${release(sha(xz))}-----BEGIN PGP SIGNATURE-----\n\nxyz\n-----END PGP SIGNATURE-----\n`);
  t.is((await readRepository(copy, { arch: 'amd64' })).lookupProviders('eqvirt').length, 2);
});
