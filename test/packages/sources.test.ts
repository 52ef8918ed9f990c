/**
 * openSources: every form of `--from` (a directory of .debs, a repository with dists/, a flat repository), locally and
 * over a real HTTP server on 127.0.0.1, gives the same universe, and fetch hands out only files whose size and SHA256
 * are those the index gives. The packages are built at test time with dpkg-deb and indexed with dpkg-scanpackages.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AbortedError, CorruptInputError, SourceReadError, UnsafeInputError, UnsupportedInputError, UsageError } from '../../src/errors.js';
import { type PackageSources, openSources } from '../../src/packages/sources.js';
import type { PackageCandidate, PackageUniverse } from '../../src/packages/source.js';
import { tmpDir } from '../helpers/repo.js';

const have = (p: string) => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0;
const maybe = have('dpkg-deb') && have('dpkg-scanpackages') && have('xz') ? test : test.skip;

const ARCH = 'amd64';
/** What every form of the fixture offers an amd64 image (armonly is arm64). */
const OFFERED = { app: '1.0', lib: '2.0' };

interface Fixture {
  /** Served at `url`: debs/, flat/, repo/, more/ and each test's own copies. */
  dir: string;
  url: string;
  /** Requests by path. */
  requests: Map<string, number>;
  /** SHA256 of each .deb by file name. */
  sha: Map<string, string>;
  server: http.Server;
}
let fx: Fixture | undefined;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function build(out: string, scratch: string, name: string, version: string, arch: string, extra = ''): void {
  const root = path.join(scratch, `${name}-${version}-${arch}`);
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr/share/doc', name), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/share/doc', name, 'README'), `${name} ${version}\n`);
  fs.writeFileSync(path.join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: ${version}\nArchitecture: ${arch}\nMaintainer: T <t@example.org>\n${extra ? `${extra}\n` : ''}Description: test package ${name}\n`);
  fs.mkdirSync(out, { recursive: true });
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, path.join(out, `${name}_${version}_${arch}.deb`)], { stdio: 'ignore' });
}

function scan(cwd: string, args: string[]): string {
  return execFileSync('dpkg-scanpackages', ['-m', ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

/**
 * A static server for `root`: `/cut/PATH` serves PATH but drops the connection half-way through a .deb body, and
 * `/status/NNN/…` answers NNN.
 */
function serve(root: string, requests: Map<string, number>): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    let rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.set(rel, (requests.get(rel) ?? 0) + 1);
    const status = /^\/status\/(\d{3})\//.exec(rel);
    if (status) return void res.writeHead(Number(status[1])).end();
    const cut = rel.startsWith('/cut/');
    if (cut) rel = rel.slice('/cut'.length);
    if (rel.split('/').includes('..')) return void res.writeHead(400).end();
    let data: Buffer;
    try {
      data = fs.readFileSync(path.join(root, rel));
    } catch {
      return void res.writeHead(404).end();
    }
    res.writeHead(200, { 'content-length': data.length });
    if (cut && rel.endsWith('.deb')) res.write(data.subarray(0, data.length >> 1), () => res.destroy());
    else res.end(data);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test.before(async () => {
  if (maybe === test.skip) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-sources-'));
  const scratch = path.join(dir, 'build');
  build(path.join(dir, 'debs'), scratch, 'app', '1.0', 'amd64', 'Depends: lib (>= 2.0)');
  build(path.join(dir, 'debs'), scratch, 'lib', '2.0', 'all');
  build(path.join(dir, 'debs'), scratch, 'armonly', '1.0', 'arm64');
  build(path.join(dir, 'more'), scratch, 'app', '1.1', 'amd64', 'Depends: lib (>= 2.0)');
  const sha = new Map<string, string>();
  for (const d of ['debs', 'more']) for (const f of fs.readdirSync(path.join(dir, d))) sha.set(f, sha256(fs.readFileSync(path.join(dir, d, f))));
  // A flat repository: the .debs and `dpkg-scanpackages . | gzip` beside them (and the same as .xz, which HTTP prefers).
  fs.cpSync(path.join(dir, 'debs'), path.join(dir, 'flat'), { recursive: true });
  const flatIndex = scan(path.join(dir, 'flat'), ['.']);
  fs.writeFileSync(path.join(dir, 'flat', 'Packages.gz'), gzipSync(flatIndex));
  fs.writeFileSync(path.join(dir, 'flat', 'Packages.xz'), execFileSync('xz', ['-c'], { input: flatIndex }));
  // A repository: pool/ and dists/stable/main/binary-amd64/Packages.gz with a Release file; and in flat-index/ an
  // index whose Filename fields are relative to the repository (apt's `deb URL DIR/`).
  const repo = path.join(dir, 'repo');
  fs.cpSync(path.join(dir, 'debs'), path.join(repo, 'pool', 'main'), { recursive: true });
  const bin = path.join(repo, 'dists', 'stable', 'main', 'binary-amd64');
  fs.mkdirSync(bin, { recursive: true });
  const gz = gzipSync(scan(repo, ['-a', ARCH, 'pool']));
  fs.writeFileSync(path.join(bin, 'Packages.gz'), gz);
  fs.writeFileSync(path.join(repo, 'dists', 'stable', 'Release'),
    `Origin: test\nSuite: stable\nComponents: main\nArchitectures: ${ARCH}\nSHA256:\n ${sha256(gz)} ${gz.length} main/binary-amd64/Packages.gz\n`);
  fs.mkdirSync(path.join(repo, 'flat-index'));
  fs.writeFileSync(path.join(repo, 'flat-index', 'Packages'), scan(repo, ['pool']));
  const requests = new Map<string, number>();
  const server = await serve(dir, requests);
  fx = { dir, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, sha, server };
});

test.after.always(() => {
  if (!fx) return;
  fx.server.closeAllConnections();
  fx.server.close();
  fs.rmSync(fx.dir, { recursive: true, force: true });
});

/** name → its versions, newest first. */
function versions(u: PackageUniverse): Record<string, string> {
  return Object.fromEntries([...u.names()].sort().map((n) => [n, u.lookupVersions(n).map((c) => c.version).join(' ')]));
}

function open(t: ExecutionContext, specs: string[], cacheDir = tmpDir(t)): Promise<PackageSources> {
  return openSources(specs, { arch: ARCH, cacheDir });
}

/** A copy of the fixture directory `from` (served as `/name`), its index edited by `edit`. */
function copyOf(t: ExecutionContext, from: string, edit?: (index: string) => string): { dir: string; url: string } {
  const name = `t-${path.basename(tmpDir(t))}`;
  const dir = path.join(fx!.dir, name);
  fs.cpSync(path.join(fx!.dir, from), dir, { recursive: true });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  if (edit) {
    fs.writeFileSync(path.join(dir, 'Packages.gz'), gzipSync(edit(gunzipSync(fs.readFileSync(path.join(dir, 'Packages.gz'))).toString('utf8'))));
    fs.rmSync(path.join(dir, 'Packages.xz'), { force: true });
  }
  return { dir, url: `${fx!.url}/${name}` };
}

function app(s: PackageSources, version = '1.0'): PackageCandidate {
  return s.universe.lookupVersions('app').find((c) => c.version === version)!;
}

/** Each form, local and over HTTP: the spec (D: the fixture directory, U: its URL) and the kind it is read as. */
const FORMS: Array<[string, (d: string, u: string) => string, string]> = [
  ['a directory of .debs', (d) => `${d}/debs`, 'debs'],
  ['a flat repository', (d) => `${d}/flat`, 'flat'],
  ['a flat repository as DIR ./', (d) => `${d}/flat ./`, 'flat'],
  ['a repository, every suite', (d) => `${d}/repo`, 'repository'],
  ['a repository, one suite', (d) => `${d}/repo stable`, 'repository'],
  ['a repository, suite and component', (d) => `${d}/repo stable main`, 'repository'],
  ['an index in a subdirectory (DIR SUBDIR/)', (d) => `${d}/repo flat-index/`, 'flat'],
  ['a flat repository over HTTP', (_, u) => `${u}/flat`, 'flat'],
  ['a flat repository over HTTP as URL ./', (_, u) => `${u}/flat/ ./`, 'flat'],
  ['a repository over HTTP, suite and component', (_, u) => `${u}/repo stable main`, 'repository'],
  ['a repository over HTTP, components from Release', (_, u) => `${u}/repo stable`, 'repository'],
  ['an index in a subdirectory over HTTP', (_, u) => `${u}/repo flat-index/`, 'flat'],
];

for (const [title, spec, kind] of FORMS) {
  maybe(`sources: ${title} offers the packages of the image's architecture, fetched with their SHA256`, async (t) => {
    const s = await open(t, [spec(fx!.dir, fx!.url)]);
    t.deepEqual(versions(s.universe), OFFERED);
    t.deepEqual(s.sources.map((x) => [x.spec, x.kind, x.packages]), [[spec(fx!.dir, fx!.url), kind, 2]]);
    for (const name of ['app', 'lib']) {
      const c = s.universe.lookupVersions(name)[0]!;
      const file = await s.fetch(c);
      t.is(sha256(fs.readFileSync(file)), c.sha256!, name);
      t.is(c.sha256, fx!.sha.get(path.basename(c.filename!)), name);
    }
  });
}

maybe('sources: several sources make one universe, the first source of a version wins', async (t) => {
  const s = await open(t, [`${fx!.dir}/more`, `${fx!.url}/repo stable main`, `${fx!.dir}/flat`]);
  t.deepEqual(versions(s.universe), { app: '1.1 1.0', lib: '2.0' });
  t.deepEqual(s.sources.map((x) => [x.kind, x.packages]), [['debs', 1], ['repository', 2], ['flat', 2]]);
  t.is(app(s).origin, `${fx!.url}/repo/`);
  t.is(app(s, '1.1').origin, `${fx!.dir}/more`);
  t.is(sha256(fs.readFileSync(await s.fetch(app(s, '1.1')))), fx!.sha.get('app_1.1_amd64.deb')!);
  t.is(sha256(fs.readFileSync(await s.fetch(app(s)))), fx!.sha.get('app_1.0_amd64.deb')!);
});

maybe('sources: a downloaded .deb is kept: a second fetch, also from a new opening, reads no network; a damaged copy is downloaded again, the temporary file of a dead download removed', async (t) => {
  const { url } = copyOf(t, 'flat');
  const debPath = `${new URL(url).pathname}/app_1.0_amd64.deb`;
  const cacheDir = tmpDir(t);
  // Left by a download killed an hour ago, and by one under way.
  fs.mkdirSync(path.join(cacheDir, 'debs'));
  const dead = path.join(cacheDir, 'debs', `.${'1'.repeat(64)}.1.0.part`);
  const live = path.join(cacheDir, 'debs', `.${'2'.repeat(64)}.2.0.part`);
  fs.writeFileSync(dead, 'x');
  fs.writeFileSync(live, 'x');
  fs.utimesSync(dead, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
  const s = await open(t, [url], cacheDir);
  const file = await s.fetch(app(s));
  t.false(fs.existsSync(dead));
  t.true(fs.existsSync(live));
  fs.rmSync(live);
  t.is(file, path.join(cacheDir, 'debs', `${app(s).sha256}.deb`));
  t.is(fx!.requests.get(debPath), 1);
  t.is(await s.fetch(app(s)), file);
  const again = await open(t, [url], cacheDir);
  t.is(await again.fetch(app(again)), file);
  t.is(fx!.requests.get(debPath), 1);
  fs.writeFileSync(file, Buffer.alloc(fs.statSync(file).size));
  t.is(await again.fetch(app(again)), file);
  t.is(fx!.requests.get(debPath), 2);
  t.is(sha256(fs.readFileSync(file)), app(again).sha256!);
  t.deepEqual(fs.readdirSync(path.join(cacheDir, 'debs')), [path.basename(file)]);
});

/** The index entry of app 1.0 with `field` set to `value`. */
const lie = (field: string, value: (old: string) => string) => (index: string) =>
  index.replace(new RegExp(`(Package: app\\n(?:.+\\n)*?${field}: )(.*)`), (_, head: string, old: string) => head + value(old));

for (const [what, field, value, says] of [
  ['SHA256', 'SHA256', () => '0'.repeat(64), /says SHA256 0{64}, the file has [0-9a-f]{64}/],
  ['a larger Size', 'Size', (n: string) => String(Number(n) + 1), /says Size \d+, the file has \d+ bytes/],
  ['a smaller Size', 'Size', (n: string) => String(Number(n) - 1), /says Size \d+, the file has (\d+ bytes|more bytes than that)/],
] as const) {
  maybe(`sources: a package whose index lies about ${what} is refused, locally and over HTTP`, async (t) => {
    const { dir, url } = copyOf(t, 'flat', lie(field, value));
    for (const spec of [dir, url]) {
      const cacheDir = tmpDir(t);
      const s = await open(t, [spec], cacheDir);
      const e = await t.throwsAsync(s.fetch(app(s)), { instanceOf: CorruptInputError });
      t.regex(e!.message, /package 'app' 1\.0 \(amd64\): the Packages index of '/);
      t.true(e!.message.includes(`index of '${spec.startsWith('http') ? `${spec}/` : spec}' says`), e!.message);
      t.regex(e!.message, says);
      t.false(fs.existsSync(path.join(cacheDir, 'debs')) && fs.readdirSync(path.join(cacheDir, 'debs')).length > 0, 'nothing is kept');
      t.is(sha256(fs.readFileSync(await s.fetch(s.universe.lookupVersions('lib')[0]!))), fx!.sha.get('lib_2.0_all.deb')!);
    }
  });
}

maybe('sources: a truncated download or file is refused and nothing is kept', async (t) => {
  const cacheDir = tmpDir(t);
  const cut = await open(t, [`${fx!.url}/cut/flat`], cacheDir);
  const e = await t.throwsAsync(cut.fetch(app(cut)), { instanceOf: SourceReadError });
  t.true(e!.message.startsWith(`cannot read '${fx!.url}/cut/flat/app_1.0_amd64.deb': transfer cut off: `), e!.message);
  t.deepEqual(fs.readdirSync(path.join(cacheDir, 'debs')), []);
  // The file itself cut short (its index unchanged).
  const { dir, url } = copyOf(t, 'flat');
  const deb = path.join(dir, 'app_1.0_amd64.deb');
  fs.truncateSync(deb, fs.statSync(deb).size >> 1);
  for (const spec of [dir, url]) {
    const s = await open(t, [spec], cacheDir);
    const e2 = await t.throwsAsync(s.fetch(app(s)), { instanceOf: CorruptInputError });
    t.regex(e2!.message, /package 'app' 1\.0 \(amd64\): the Packages index of '.*' says Size \d+, the file has \d+ bytes$/);
  }
  t.deepEqual(fs.readdirSync(path.join(cacheDir, 'debs')), []);
});

maybe('sources: a .deb of a directory source that changed since it was read is refused; a missing one is a read error', async (t) => {
  const { dir } = copyOf(t, 'debs');
  const memo = new Map<string, string>();
  const indexCache = { get: (k: string) => memo.get(k), put: (k: string, v: string) => void memo.set(k, v) };
  const s = await openSources([dir], { arch: ARCH, cacheDir: tmpDir(t), indexCache });
  t.is(await s.fetch(app(s)), path.join(dir, 'app_1.0_amd64.deb'));
  const deb = path.join(dir, 'app_1.0_amd64.deb');
  const bytes = fs.readFileSync(deb);
  bytes[bytes.length - 1] ^= 1;
  fs.writeFileSync(deb, bytes);
  const e = await t.throwsAsync(s.fetch(app(s)), { instanceOf: CorruptInputError });
  t.regex(e!.message, /: package 'app' 1\.0 \(amd64\): the index of the \.deb directory '.*' says SHA256 [0-9a-f]{64}, the file has [0-9a-f]{64}$/);
  fs.rmSync(deb);
  const e2 = await t.throwsAsync(s.fetch(app(s)), { instanceOf: SourceReadError });
  t.is(e2!.message, `cannot read '${deb}': no such file or directory (ENOENT)`);
});

maybe('sources: a Filename outside the source is refused', async (t) => {
  const { dir } = copyOf(t, 'flat', (index) => index.replace('Filename: ./app_1.0_amd64.deb', 'Filename: ../flat/app_1.0_amd64.deb'));
  const s = await open(t, [dir]);
  const e = await t.throwsAsync(s.fetch(app(s)), { instanceOf: UnsafeInputError });
  t.regex(e!.message, /Filename '\.\.\/flat\/app_1\.0_amd64\.deb' points outside the source/);
});

maybe('sources: a missing index over HTTP names the URL and the status', async (t) => {
  const u = fx!.url;
  const e = await t.throwsAsync(open(t, [`${u}/debs`]), { instanceOf: SourceReadError });
  t.true(e!.message.startsWith(`cannot read '${u}/debs/': no Packages index at its top (404 Not Found)`), e!.message);
  t.regex(e!.message, /SUITE \[COMPONENT…\]'; a directory of \.deb files cannot be read over HTTP/);
  const e2 = await t.throwsAsync(open(t, [`${u}/repo stable contrib`]), { instanceOf: SourceReadError });
  t.is(e2!.message, `cannot read '${u}/repo/dists/stable/contrib/binary-amd64/': no Packages index here nor in binary-all (404 Not Found)`);
  const e3 = await t.throwsAsync(open(t, [`${u}/repo oldstable`]), { instanceOf: SourceReadError });
  t.is(e3!.message, `cannot read '${u}/repo/dists/oldstable/Release': 404 Not Found (without a Release file, name the components)`);
  const e4 = await t.throwsAsync(open(t, [`${u}/status/500/flat`]), { instanceOf: SourceReadError });
  t.regex(e4!.message, new RegExp(`^cannot read '${u}/status/500/flat/InRelease': 500 Internal Server Error$`));
  const e5 = await t.throwsAsync(open(t, [`${fx!.dir}/nothing`]), { instanceOf: SourceReadError });
  t.is(e5!.message, `cannot read '${fx!.dir}/nothing': no such file or directory (ENOENT)`);
});

maybe('sources: a malformed spec is a usage error', async (t) => {
  for (const spec of ['', '  ', `deb ${fx!.url}/repo stable main`, 'ftp://example.org/debian', `${fx!.url}/flat ./ main`,
    'http://user:secret@127.0.0.1/debian', `${fx!.dir}/debs/app_1.0_amd64.deb`, 'http://[::1/']) {
    const e = await t.throwsAsync(open(t, [`${fx!.dir}/flat`, spec]), { instanceOf: UsageError }, JSON.stringify(spec));
    t.true(e!.message.startsWith(`package source '${spec}'`), e!.message);
  }
  // A bad spec is found before any other source is read.
  const before = fx!.requests.get('/flat/Packages.xz') ?? 0;
  await t.throwsAsync(open(t, [`${fx!.url}/flat`, 'deb x']), { instanceOf: UsageError });
  t.is(fx!.requests.get('/flat/Packages.xz') ?? 0, before);
});

maybe('sources: an unreachable server is a read error, not a hang', async (t) => {
  t.timeout(20_000);
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const e = await t.throwsAsync(open(t, [`http://127.0.0.1:${port}/debian stable main`]), { instanceOf: SourceReadError });
  t.regex(e!.message, new RegExp(`^cannot read 'http://127\\.0\\.0\\.1:${port}/debian/dists/stable/InRelease': connection refused`));
});

maybe('sources: an aborted signal stops opening and fetching', async (t) => {
  const abort = new AbortController();
  const s = await openSources([`${fx!.url}/flat`], { arch: ARCH, cacheDir: tmpDir(t), signal: abort.signal });
  abort.abort();
  await t.throwsAsync(s.fetch(app(s)), { instanceOf: AbortedError });
  await t.throwsAsync(openSources([`${fx!.url}/flat`], { arch: ARCH, cacheDir: tmpDir(t), signal: abort.signal }), { instanceOf: AbortedError });
});

// Serial (ava runs serial tests before the others), as it takes xz off PATH for the whole process.
(maybe === test ? test.serial : test.skip)('sources: without xz an index is read from Packages.gz, and only Packages.xz is unsupported', async (t) => {
  const { dir, url } = copyOf(t, 'flat');
  const saved = process.env.PATH;
  process.env.PATH = tmpDir(t);
  try {
    t.deepEqual(versions((await open(t, [url])).universe), OFFERED);
    fs.rmSync(path.join(dir, 'Packages.gz'));
    fs.cpSync(path.join(fx!.dir, 'flat', 'Packages.xz'), path.join(dir, 'Packages.xz'));
    const e = await t.throwsAsync(open(t, [url]), { instanceOf: UnsupportedInputError });
    t.is(e!.message, `${url}/Packages.xz: reading xz-compressed indexes needs 'xz', which is not installed`);
  } finally {
    process.env.PATH = saved;
  }
});
