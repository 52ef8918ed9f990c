/**
 * writeLayer: the overlayfs layer that turns one tree into another (new and changed entries, whiteouts for removed
 * ones), and with a `keep` filter only the entries a program reads, with the directories above them.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { writeLayer } from '../../src/ops/sandbox-layer.js';
import { commitAt, tmpRepo, writeTree } from '../helpers/repo.js';

async function twoTrees(t: Parameters<typeof tmpRepo>[0]) {
  const { repo, dir } = tmpRepo(t);
  const src = path.join(dir, 'src');
  writeTree(src, { etc: { 'ld.so.conf': 'include /etc/ld.so.conf.d/*.conf\n', hostname: 'a\n' }, usr: { lib: { 'libold.so.1': 'old', 'libgone.so.2': 'gone' }, share: { doc: { a: 'a' } } } });
  const before = await commitAt(repo, src, { message: 'before' });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'b\n');
  fs.mkdirSync(path.join(src, 'etc/ld.so.conf.d'));
  fs.writeFileSync(path.join(src, 'etc/ld.so.conf.d/x.conf'), '/opt/x/lib\n');
  fs.writeFileSync(path.join(src, 'usr/lib/libold.so.1'), 'new');
  fs.writeFileSync(path.join(src, 'usr/lib/libnew.so.3'), 'new lib');
  fs.writeFileSync(path.join(src, 'usr/lib/ld-linux.so.2'), 'loader');
  fs.writeFileSync(path.join(src, 'usr/lib/libnot-a-library.txt'), 'text');
  fs.rmSync(path.join(src, 'usr/lib/libgone.so.2'));
  fs.mkdirSync(path.join(src, 'usr/share/doc/new'));
  fs.writeFileSync(path.join(src, 'usr/share/doc/new/README'), 'doc');
  const after = await commitAt(repo, src, { message: 'after', tick: 1 });
  const meta = { mode: 0o755, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mtimeNs: 0n, xattrs: [] };
  return { repo, dir, before: before.tree, after: after.tree, meta };
}

function listed(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, p));
      out.push(st.isCharacterDevice() ? `${p} (whiteout)` : p);
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  return out;
}

// Whiteouts are character devices: making them needs root.
const rootOnly = process.getuid?.() === 0 ? test : test.skip;

rootOnly('writeLayer: new and changed entries and whiteouts; with keep, only what it accepts and the directories above', async (t) => {
  const { repo, dir, before, after, meta } = await twoTrees(t);
  const all = path.join(dir, 'all');
  fs.mkdirSync(all);
  await writeLayer(repo.objects, before, after, meta, all);
  t.deepEqual(listed(all), [
    'etc', 'etc/hostname', 'etc/ld.so.conf.d', 'etc/ld.so.conf.d/x.conf',
    'usr', 'usr/lib', 'usr/lib/ld-linux.so.2', 'usr/lib/libgone.so.2 (whiteout)', 'usr/lib/libnew.so.3', 'usr/lib/libnot-a-library.txt', 'usr/lib/libold.so.1',
    'usr/share', 'usr/share/doc', 'usr/share/doc/new', 'usr/share/doc/new/README',
  ]);
  t.is(fs.readFileSync(path.join(all, 'usr/lib/libold.so.1'), 'utf8'), 'new');
  const some = path.join(dir, 'some');
  fs.mkdirSync(some);
  const keep = (p: Buffer) => /^etc\/ld\.so\.conf|\/lib[^/]*\.so[^/]*$|\/ld-[^/]*\.so[^/]*$/.test(p.toString('latin1'));
  await writeLayer(repo.objects, before, after, meta, some, keep);
  t.deepEqual(listed(some), [
    'etc', 'etc/ld.so.conf.d', 'etc/ld.so.conf.d/x.conf',
    'usr', 'usr/lib', 'usr/lib/ld-linux.so.2', 'usr/lib/libgone.so.2 (whiteout)', 'usr/lib/libnew.so.3', 'usr/lib/libold.so.1',
  ]);
});
