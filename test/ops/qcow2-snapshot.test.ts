/**
 * `viva commit disk.qcow2 --snapshot NAME`: a qcow2 internal snapshot (made with qemu-img snapshot -c, then the active
 * layer written with qemu-io and grown) commits to the same disk as a copy reverted to it (qemu-img snapshot -a) and
 * converted to raw, the
 * active layer stays the default, and a missing snapshot or a non-qcow2 source is a usage error (exit 2).
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { viva } from '../helpers/cli.js';
import { writeTree } from '../helpers/repo.js';
import { commitIds, have, initRepo, makeGptExt4Disk, run } from '../helpers/gpt-disk.js';

const maybe = have('qemu-img') && have('qemu-io') && have('mke2fs') && have('sfdisk') ? test : test.skip;

async function rootOf(t: import('ava').ExecutionContext, repo: string, args: string[]): Promise<{ root: string; tree: string }> {
  const { root, tree } = await commitIds(t, repo, args);
  return { root, tree };
}

maybe('commit --snapshot: an internal snapshot commits like its raw conversion; the active layer stays the default', async (t) => {
  const { dir, repo } = await initRepo(t);
  const tree = path.join(dir, 'tree');
  writeTree(tree, { etc: { hostname: 'before\n' } });
  const raw = path.join(dir, 'disk.raw');
  makeGptExt4Disk(raw, tree);
  const img = path.join(dir, 'disk.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, img]);
  run('qemu-img', ['snapshot', '-c', 'before', img]);
  // After the snapshot: bytes past the partition change, and the disk grows by 8 MiB.
  run('qemu-io', ['-c', 'write -P 0x55 22020096 65536', img]);
  run('qemu-img', ['snapshot', '-c', 'after', img]);
  run('qemu-img', ['resize', '-q', img, '+8M']);
  run('qemu-io', ['-c', 'write -P 0x66 29360128 4096', img]);

  // The snapshot as qemu-img snapshot -a reverts to it (with the disk size it had; 'convert -l' keeps today's size).
  const applied = path.join(dir, 'applied.qcow2');
  fs.copyFileSync(img, applied);
  run('qemu-img', ['snapshot', '-a', 'before', applied]);
  const snapRaw = path.join(dir, 'before.raw');
  run('qemu-img', ['convert', '-O', 'raw', applied, snapRaw]);
  t.is(fs.statSync(snapRaw).size, 24 * 1024 * 1024);
  const activeRaw = path.join(dir, 'active.raw');
  run('qemu-img', ['convert', '-O', 'raw', img, activeRaw]);

  const before = await rootOf(t, repo, [img, '--snapshot', 'before']);
  t.deepEqual(before, await rootOf(t, repo, [snapRaw]));
  t.deepEqual(before, await rootOf(t, repo, [raw]));
  // By id, as qemu-img snapshot -l lists it.
  t.deepEqual(await rootOf(t, repo, [img, '--snapshot', '1']), before);
  const after = await rootOf(t, repo, [img, '--snapshot', 'after']);
  t.not(after.root, before.root);
  t.is(after.tree, before.tree);
  const active = await rootOf(t, repo, [img]);
  t.deepEqual(active, await rootOf(t, repo, [activeRaw]));
  t.not(active.root, after.root);
  const cat = await viva(['cat', 'HEAD:p1/etc/hostname', '-C', repo]);
  t.is(cat.stdout, 'before\n');

  const missing = await viva(['commit', img, '--snapshot', 'nope', '-C', repo, '-m', 'x']);
  t.is(missing.code, 2, missing.stderr);
  t.regex(missing.stderr, /no snapshot 'nope' in .*disk\.qcow2.*'before' \(id 1\), 'after' \(id 2\)/);
  for (const source of [raw, tree]) {
    const r = await viva(['commit', source, '--snapshot', 'before', '-C', repo, '-m', 'x']);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /--snapshot reads a qcow2 image's internal snapshot/);
  }
});
