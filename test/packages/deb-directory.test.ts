/** A directory of .deb files as a package source: the same candidates a dpkg-scanpackages index gives; cached by identity. */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readDebDirectory } from '../../src/packages/deb-directory.js';
import { readRepository } from '../../src/packages/source.js';
import { parseDeb822 } from '../../src/packages/deb822.js';
import { resolveInstall } from '../../src/packages/resolve.js';
import { CorruptInputError } from '../../src/errors.js';
import { tmpDir } from '../helpers/repo.js';

const have = (p: string) => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0;
const maybe = have('dpkg-deb') && have('dpkg-scanpackages') ? test : test.skip;

function build(dir: string, name: string, version: string, arch: string, extra = ''): void {
  const root = path.join(dir, 'build', `${name}-${version}-${arch}`);
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr/share/doc', name), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/share/doc', name, 'README'), `${name} ${version}\n`);
  fs.writeFileSync(path.join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: ${version}\nArchitecture: ${arch}\nMaintainer: T <t@example.org>\n${extra ? `${extra}\n` : ''}Description: test package ${name}\n long description\n`);
  execFileSync('dpkg-deb', ['--build', '-Zgzip', root, path.join(dir, 'debs', `${name}_${version}_${arch}.deb`)], { stdio: 'ignore' });
}

maybe('deb directory: the candidates equal a dpkg-scanpackages index of the same files; a second read uses the cache', async (t) => {
  const dir = tmpDir(t);
  fs.mkdirSync(path.join(dir, 'debs', 'sub'), { recursive: true });
  build(dir, 'app', '1.0', 'amd64', 'Depends: libx (>= 1.0) | liby, tool\nPre-Depends: dpkg (>= 1.19)');
  build(dir, 'libx', '1.2', 'amd64', 'Provides: libx-virt (= 1.2)\nMulti-Arch: same');
  build(dir, 'tool', '2.0', 'all', 'Conflicts: oldtool');
  build(dir, 'armonly', '1.0', 'arm64');
  fs.renameSync(path.join(dir, 'debs', 'tool_2.0_all.deb'), path.join(dir, 'debs', 'sub', 'tool_2.0_all.deb'));
  // The reference: the same directory as a repository indexed by dpkg-scanpackages.
  const repo = path.join(dir, 'repo');
  const binDir = path.join(repo, 'dists/stable/main/binary-amd64');
  fs.mkdirSync(binDir, { recursive: true });
  fs.symlinkSync(path.join(dir, 'debs'), path.join(repo, 'pool'));
  const index = execFileSync('dpkg-scanpackages', ['-m', 'pool'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  fs.writeFileSync(path.join(binDir, 'Packages'), index);
  const ref = await readRepository(repo, { arch: 'amd64' });

  const memo = new Map<string, string>();
  const cache = { get: (k: string) => memo.get(k), put: (k: string, v: string) => void memo.set(k, v) };
  const r = await readDebDirectory(path.join(dir, 'debs'), { arch: 'amd64', cache });
  t.is(r.read, 4);
  t.is(r.packages, 3); // armonly is arm64
  for (const name of ['app', 'libx', 'tool']) {
    const a = r.universe.lookupVersions(name)[0]!;
    const b = ref.lookupVersions(name)[0]!;
    t.is(a.version, b.version, name);
    t.is(a.sha256, b.sha256, name);
    t.is(a.size, b.size, name);
    t.is(a.filename, b.filename!.replace(/^pool\//, ''), name);
    t.deepEqual([a.depends, a.preDepends, a.conflicts, a.provides, a.multiArch], [b.depends, b.preDepends, b.conflicts, b.provides, b.multiArch], name);
  }
  t.deepEqual(r.universe.lookupVersions('armonly'), []);
  // The resolver sees the directory as it sees the repository.
  const status = parseDeb822('Package: dpkg\nStatus: install ok installed\nVersion: 1.21.22\nArchitecture: amd64\n');
  const plan = resolveInstall(status, r.universe, { install: [{ name: 'app' }] }, { arch: 'amd64' });
  t.deepEqual(plan.install.map((p) => p.name).sort(), ['app', 'libx', 'tool']);
  // Again: nothing is read.
  const again = await readDebDirectory(path.join(dir, 'debs'), { arch: 'amd64', cache });
  t.is(again.read, 0);
  t.is(again.packages, 3);
  // A changed file is read again.
  fs.appendFileSync(path.join(dir, 'debs', 'sub', 'tool_2.0_all.deb'), '');
  build(dir, 'tool', '2.0', 'all', 'Conflicts: oldtool\nPriority: optional');
  fs.renameSync(path.join(dir, 'debs', 'tool_2.0_all.deb'), path.join(dir, 'debs', 'sub', 'tool_2.0_all.deb'));
  t.is((await readDebDirectory(path.join(dir, 'debs'), { arch: 'amd64', cache })).read, 1);
});

maybe('deb directory: a broken package is refused naming the file', async (t) => {
  const dir = tmpDir(t);
  fs.mkdirSync(path.join(dir, 'debs'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'debs', 'bad_1.0_amd64.deb'), 'not an ar archive');
  const e = await t.throwsAsync(readDebDirectory(path.join(dir, 'debs'), { arch: 'amd64' }), { instanceOf: CorruptInputError });
  t.regex(e!.message, /bad_1\.0_amd64\.deb/);
});
