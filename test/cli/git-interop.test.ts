/** viva export-git / import-git end to end: the edge tree's round trip (same tree id), git fsck and log, a disk image, exit codes. */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { ROOT, tmpDir, viva as vivaRun, vivaJson as vivaJsonRun, vivaOk as vivaOkRun } from '../helpers/cli.js';
import { haveMke2fs, makeMbrDisk } from '../helpers/mbr-disk.js';
import { EXIT } from '../../src/cli/exit-codes.js';

const isRoot = process.getuid?.() === 0;
const have = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status !== null && spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const haveGit = have('git', '--version');
const haveEdgeTools = isRoot && haveGit && ['setfattr', 'setcap', 'setfacl', 'python3', 'mknod'].every((c) => have(c));

/** `-C REPO` goes after the command name (the global form before it is not parsed here). */
const fix = (args: string[]) => (args[0] === '-C' ? [...args.slice(2), '-C', args[1]!] : args);
const viva = (args: string[]) => vivaRun(fix(args));
const vivaOk = (t: ExecutionContext, args: string[]) => vivaOkRun(t, fix(args));
const vivaJson = (t: ExecutionContext, args: string[]) => vivaJsonRun(t, fix(args));

function fsckStrict(dir: string): { status: number | null; output: string } {
  const r = spawnSync('git', ['-C', dir, 'fsck', '--strict', '--no-dangling'], { encoding: 'utf8' });
  return { status: r.status, output: r.stdout + r.stderr };
}

(haveEdgeTools ? test : test.skip)('export-git/import-git: the edge tree comes back with the same tree id; git fsck --strict is clean and git log shows it', async (t) => {
  const dir = tmpDir(t);
  const edge = path.join(dir, 'edge');
  execFileSync('bash', [path.join(ROOT, 'test/fixtures/mkedge.sh'), edge], { stdio: 'ignore' });
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['-C', repo, 'commit', edge, '-b', 'edge', '-m', 'edge tree']);
  const orig = await vivaJson(t, ['show', '-C', repo, 'edge']);
  const out = path.join(dir, 'edge.git');
  const ex = await vivaJson(t, ['export-git', '-C', repo, 'edge', out]);
  t.like(ex, { created: true, bare: true, commits: 1, refs: [{ ref: 'refs/heads/edge', commit: orig.id }] });
  const f = fsckStrict(out);
  t.is(f.status, 0, f.output);
  t.notRegex(f.output, /error|warning/i);
  t.is(execFileSync('git', ['-C', out, 'log', '--format=%s', 'edge'], { encoding: 'utf8' }), 'edge tree\n');
  // What git cannot hold is in the sidecar: the device, the fifo, the socket, the non-UTF-8 name, the holes.
  const sidecar = execFileSync('git', ['-C', out, 'show', 'edge:.viva-meta'], { encoding: 'utf8' });
  t.regex(sidecar, /^chr chr 0644 0:0 \d+ rdev=1:3$/m);
  t.regex(sidecar, /^fifo fifo /m);
  t.regex(sidecar, /^sock socket /m);
  t.regex(sidecar, /^"non-utf8-\\377\\376" file /m);
  t.regex(sidecar, /^sparse file 0644 0:0 \d+ holes=/m);
  t.regex(sidecar, /^capped file 0755 0:0 \d+ xattr=security\.capability:/m);
  const names = execFileSync('git', ['-C', out, 'ls-tree', '--name-only', 'edge'], { encoding: 'utf8' });
  t.notRegex(names, /^(chr|blk|fifo|sock)$/m);
  t.regex(names, /^\.viva-x-6e6f6e2d757466382dfffe$/m);

  const fresh = path.join(dir, 'fresh');
  await vivaOk(t, ['init', fresh]);
  const im = await vivaJson(t, ['import-git', '-C', fresh, out, 'edge']);
  t.like(im, { branch: 'refs/heads/edge', commits: 1, identical: 1, id: orig.id });
  const back = await vivaJson(t, ['show', '-C', fresh, 'edge']);
  t.is(back.root, orig.root);
  t.is(back.id, orig.id);
});

(haveGit && haveMke2fs() ? test : test.skip)('export-git: a disk image is exported as its view tree; import gives a tree commit with the same tree', async (t) => {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'fs');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc/hostname'), 'disk\n');
  const disk = path.join(dir, 'disk.raw');
  makeMbrDisk(disk, 16, [{ start: 2048, sectors: 28672, type: 0x83, ext4Tree: tree }]);
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['-C', repo, 'commit', disk, '-b', 'vm', '-m', 'a disk']);
  const orig = await vivaJson(t, ['show', '-C', repo, 'vm']);
  t.is(orig.rootKind, 'disk');
  const out = path.join(dir, 'vm.git');
  await vivaOk(t, ['-C', repo, 'export-git', 'vm', out]);
  t.is(fsckStrict(out).status, 0);
  t.is(execFileSync('git', ['-C', out, 'show', 'vm:p1/etc/hostname'], { encoding: 'utf8' }), 'disk\n');
  t.regex(execFileSync('git', ['-C', out, 'show', 'vm:.viva-meta'], { encoding: 'utf8' }), new RegExp(`^@disk ${orig.root}$`, 'm'));
  const fresh = path.join(dir, 'fresh');
  await vivaOk(t, ['init', fresh]);
  const r = await viva(['-C', fresh, 'import-git', out, 'vm']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /^warning: commit [0-9a-f]{12}: disk images are exported as their file trees; import gives a tree commit$/m);
  const back = await vivaJson(t, ['show', '-C', fresh, 'vm']);
  t.is(back.rootKind, 'tree');
  t.is(back.root, orig.tree);
  t.is(back.message, 'a disk');
});

(haveGit ? test : test.skip)('export-git/import-git: one clear line and the documented exit code for each failure', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'f'), 'x\n');
  const repo = path.join(dir, 'repo');
  await vivaOk(t, ['init', repo]);
  await vivaOk(t, ['-C', repo, 'commit', src, '-b', 'main', '-m', 'one']);
  const full = path.join(dir, 'full');
  const text = (await vivaOk(t, ['-C', repo, 'export-git', 'main', full])).stdout;
  t.regex(text, /^created git repository '.*full' \(bare\): 1 commit, 1 tree, 2 blobs \(.*\)\n  [0-9a-f]{12} refs\/heads\/main \([0-9a-f]{12}\)\n  HEAD -> refs\/heads\/main\n$/);
  const junk = path.join(dir, 'junk');
  fs.mkdirSync(junk);
  fs.writeFileSync(path.join(junk, 'a'), '');
  const cases: Array<[string[], number, RegExp]> = [
    [['export-git', 'main', junk], EXIT.CONFLICT, /^error: destination '.*junk' exists and is neither empty nor a git repository\n$/],
    [['export-git', 'nosuch', path.join(dir, 'x')], EXIT.NOT_FOUND, /^error: unknown revision 'nosuch'\n$/],
    [['import-git', full, 'nosuch'], EXIT.NOT_FOUND, /^error: ref 'nosuch' not found in '.*full'\n$/],
    [['import-git', junk, 'main'], EXIT.CORRUPT_INPUT, /^error: .*junk: not a git repository\n$/],
    [['export-git', 'main', full, '--manifests-only'], EXIT.USAGE, /^error: '.*full' holds a full export: export manifests into another directory\n$/],
  ];
  for (const [args, code, re] of cases) {
    const r = await viva(['-C', repo, ...args]);
    t.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, re);
  }
  t.false(fs.existsSync(path.join(dir, 'x')));
  // A sidecar broken in git: named with its commit and line, nothing imported.
  const wt = path.join(dir, 'wt');
  execFileSync('git', ['clone', '-q', full, wt]);
  fs.appendFileSync(path.join(wt, '.viva-meta'), 'g door 0644 0:0 1\n');
  execFileSync('git', ['-C', wt, '-c', 'user.name=G', '-c', 'user.email=g@x', 'commit', '-qam', 'broken']);
  const fresh = path.join(dir, 'fresh');
  await vivaOk(t, ['init', fresh]);
  const r = await viva(['-C', fresh, 'import-git', wt, 'main']);
  t.is(r.code, EXIT.CORRUPT_INPUT);
  t.regex(r.stderr, /^error: .*wt: \.viva-meta in commit [0-9a-f]{12}: line 4: unknown entry type 'door'\n$/);
  t.is((await viva(['-C', fresh, 'log'])).code, EXIT.NOT_FOUND, 'no branch was created');
  // A manifests-only export cannot be imported.
  const review = path.join(dir, 'review');
  await vivaOk(t, ['-C', repo, 'export-git', 'main', review, '--manifests-only']);
  const m = await viva(['-C', fresh, 'import-git', review, 'main']);
  t.is(m.code, EXIT.CORRUPT_INPUT);
  t.regex(m.stderr, /^error: .*review: 'main' is a manifests-only export \(manifest\.txt instead of files\): it cannot be imported\n$/);
});
