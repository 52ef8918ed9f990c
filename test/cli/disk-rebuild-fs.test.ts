/** `viva checkout --fs vfat|xfs` as a user meets it: warnings for what FAT cannot hold, --strict, the root requirement of xfs. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { EXIT } from '../../src/cli/exit-codes.js';
import { dumpRepository, tmpDir, viva, vivaOk } from '../helpers/cli.js';

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const have = (...cmds: string[]) => cmds.every((c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status === 0);

/** A repository whose HEAD holds a file, a symlink, a fifo and a 0600 file. */
async function linuxTree(t: import('ava').ExecutionContext): Promise<{ dir: string; repo: string }> {
  const dir = tmpDir(t);
  fs.chmodSync(dir, 0o755);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'vm\n');
  fs.writeFileSync(path.join(src, 'etc/secret'), 'shh\n', { mode: 0o600 });
  fs.chmodSync(path.join(src, 'etc/secret'), 0o600);
  fs.symlinkSync('hostname', path.join(src, 'etc/link'));
  fs.symlinkSync('hostname', path.join(src, 'etc/link2'));
  execFileSync('mkfifo', [path.join(src, 'fifo')]);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['commit', src, '-C', repo, '-m', 'tree']);
  return { dir, repo };
}

(have('mkfs.vfat', 'mcopy', 'mattrib', 'sfdisk') ? test : test.skip)('checkout --fs vfat: one warning line per kind of loss, exit 0; --strict exits 16 and writes nothing', async (t) => {
  const { dir, repo } = await linuxTree(t);
  const out = path.join(dir, 'esp.raw');
  const r = await viva(['checkout', '-C', repo, 'HEAD', out, '--size', '40M', '--fs', 'vfat']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^checked out [0-9a-f]{12} to .*esp\.raw \(raw, new disk built from the tree\): .* virtual disk$/m);
  const lines = r.stderr.trim().split('\n').filter((l) => !/owner not kept/.test(l));
  t.deepEqual(lines, [
    'warning: etc/link: symbolic link not written: FAT has none (and 1 more symbolic link)',
    'warning: etc/secret: mode not kept: FAT has no permission bits, only read-only',
    'warning: fifo: fifo not written: FAT has none',
  ]);
  const strict = path.join(dir, 'strict.raw');
  const s = await viva(['checkout', '-C', repo, 'HEAD', strict, '--size', '40M', '--fs', 'vfat', '--strict']);
  t.is(s.code, EXIT.CHECKOUT_FAILED, s.stderr);
  t.regex(s.stderr, /^error: cannot create '.*strict\.raw': 'etc\/link': symbolic link not written: FAT has none \(and 1 more symbolic link\) \(--strict\)$/m);
  t.false(fs.existsSync(strict));
});

(isRoot && have('mkfs.xfs') ? test : test.skip)('checkout --fs xfs: not root, one error line and exit 16 before any work; too small a --size is exit 2', async (t) => {
  const { dir, repo } = await linuxTree(t);
  const tooSmall = await viva(['checkout', '-C', repo, 'HEAD', path.join(dir, 'small.raw'), '--size', '200M', '--fs', 'xfs']);
  t.is(tooSmall.code, EXIT.USAGE, tooSmall.stderr);
  t.regex(tooSmall.stderr, /^error: .*small\.raw: --size 209715200 bytes is too small: mkfs\.xfs makes file systems of 300 MiB or more$/m);
  // Run as nobody, on a repository nobody may open, into a directory nobody may write.
  await dumpRepository(repo);
  execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, repo]);
  const outDir = path.join(dir, 'out');
  fs.mkdirSync(outDir);
  fs.chownSync(outDir, NOBODY, NOBODY);
  const out = path.join(outDir, 'root.raw');
  const r = await viva(['checkout', '-C', repo, 'HEAD', out, '--size', '400M', '--fs', 'xfs'], { uid: NOBODY, gid: NOBODY, env: { HOME: outDir } });
  t.is(r.code, EXIT.CHECKOUT_FAILED, r.stderr);
  t.deepEqual(r.stderr.trim().split('\n'), [`error: cannot create '${out}': an xfs file system is filled through a loop mount, which needs root (run as root, or use --fs ext4)`]);
  t.deepEqual(fs.readdirSync(outDir), []);
});
