/** remote, fetch, push, clone, pull, ls-remote on the command line between repositories on local paths. */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dataFile, delay, finished, spawnViva, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import crypto from 'node:crypto';
import { SECTOR, makeMbrDisk, patchBytes } from '../helpers/mbr-disk.js';
import { Repository } from '../../src/store/repository.js';
import { encodeStored } from '../../src/store/object-store.js';
import { encodeBlob } from '../../src/model/blob.js';
import { lmdb } from '../helpers/lmdb.js';

/** A source tree with etc/hostname 'one' in DIR/src, committed as BRANCH to a new repository DIR/library. */
async function library(t: ExecutionContext, dir: string, branch: string): Promise<{ src: string; lib: string }> {
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'one\n');
  const lib = path.join(dir, 'library');
  await vivaOk(t, ['init', lib]);
  await vivaOk(t, ['commit', '-C', lib, src, '-b', branch, '-m', 'one']);
  return { src, lib };
}

test('cli sync: clone, commit, push, fetch, pull, ls-remote; non-fast-forward exits 12', async (t) => {
  const dir = tmpDir(t);
  const { src, lib } = await library(t, dir, 'debian/base');
  const c = await vivaOk(t, ['clone', lib, path.join(dir, 'work')]);
  t.regex(c.stdout, /^cloned .*library into .*work: \d+ objects, .*; on branch debian\/base\n$/);
  const work = path.join(dir, 'work');
  t.regex((await vivaOk(t, ['remote', 'list', '-C', work])).stdout, /^origin\t.*library\n$/);
  const ls = await vivaOk(t, ['ls-remote', lib]);
  t.regex(ls.stdout, /^ref: refs\/heads\/debian\/base\tHEAD\n[0-9a-f]{64}\trefs\/heads\/debian\/base\n$/);
  // Work commits and pushes; the library gets only the new objects.
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'two\n');
  await vivaOk(t, ['commit', '-C', work, src, '-m', 'two']);
  const p = await vivaJson(t, ['push', '-C', work, 'origin', 'debian/base']);
  t.is(p.objects, 4);
  t.is((await vivaOk(t, ['log', '-C', lib, '--oneline', 'debian/base'])).stdout.split('\n').filter(Boolean).length, 2);
  // A second clone pulls later work.
  const other = path.join(dir, 'other');
  await vivaOk(t, ['clone', lib, other]);
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'three\n');
  await vivaOk(t, ['commit', '-C', work, src, '-m', 'three']);
  await vivaOk(t, ['push', '-C', work, 'origin', 'debian/base']);
  t.regex((await vivaOk(t, ['pull', '-C', other])).stdout, /^debian\/base: fast-forward [0-9a-f]{12}\.\.[0-9a-f]{12}\n$/);
  t.regex((await vivaOk(t, ['fetch', '-C', other])).stdout, /\(up to date\)/);
  // other commits on top of an older state than the library now has: its push is refused.
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'four\n');
  await vivaOk(t, ['commit', '-C', work, src, '-m', 'four']);
  await vivaOk(t, ['push', '-C', work, 'origin', 'debian/base']);
  await vivaOk(t, ['commit', '-C', other, src, '-m', 'diverged']);
  const refused = await viva(['push', '-C', other, 'origin', 'debian/base']);
  t.is(refused.code, EXIT.CONFLICT);
  t.regex(refused.stderr, /non-fast-forward/);
  const diverged = await viva(['pull', '--ff-only', '-C', other]);
  t.is(diverged.code, EXIT.CONFLICT);
  t.regex(diverged.stderr, /diverged/);
  // Without --ff-only, pull merges the library's branch into the diverged one; then the push is a fast-forward.
  t.regex((await vivaOk(t, ['pull', '-C', other])).stdout, /^\[debian\/base [0-9a-f]{12}\] merged origin\/debian\/base into debian\/base/);
  await vivaOk(t, ['push', '-C', other, 'origin', 'debian/base']);
  await vivaOk(t, ['commit', '-C', other, src, '-m', 'five']);
  t.regex((await vivaOk(t, ['push', '-C', other, 'origin', 'debian/base', '--force'])).stdout, /debian\/base/);
  t.regex((await vivaOk(t, ['fsck', '-C', lib])).stdout, /: ok$/m);
  // Bad remotes and names.
  t.is((await viva(['remote', 'add', '-C', other, 'a/b', lib])).code, EXIT.USAGE);
  t.is((await viva(['fetch', '-C', other, path.join(dir, 'nowhere')])).code, EXIT.REMOTE);
  t.is((await viva(['push', '-C', other, 'origin', 'no-such-rev'])).code, EXIT.NOT_FOUND);
});

test('cli sync: a blob of a damaged source repository on a local path fails clone and fetch with exit 17 naming the remote and the blob, not 15', async (t) => {
  const dir = tmpDir(t);
  const { lib } = await library(t, dir, 'main');
  const r = Repository.open(lib, 'write');
  const [blob] = [...r.index.list('blob')];
  lmdb(r).putStoredUnchecked('blob', blob!, encodeStored(encodeBlob({ form: 'inline', size: 4, data: Buffer.from('two\n') })));
  await r.close();
  const want = `error: ${lib}: blob '${blob}' content does not match its id (the remote repository is damaged)\n`;
  const c = await viva(['clone', lib, path.join(dir, 'work')]);
  t.is(c.code, EXIT.REMOTE, c.stderr);
  t.is(c.stderr, want);
  t.false(fs.existsSync(path.join(dir, 'work')));
  const mine = path.join(dir, 'mine');
  await vivaOk(t, ['init', mine]);
  const f = await viva(['fetch', '-C', mine, lib]);
  t.is(f.code, EXIT.REMOTE, f.stderr);
  t.is(f.stderr, want);
  await vivaOk(t, ['fsck', '-C', mine]);
});

test('cli sync: a failed or interrupted clone leaves nothing behind, so the same command can be run again', async (t) => {
  const dir = tmpDir(t);
  const { src, lib } = await library(t, dir, 'base');
  const work = path.join(dir, 'work');
  const missing = await viva(['clone', path.join(dir, 'nowhere'), work]);
  t.not(missing.code, 0);
  t.false(fs.existsSync(work));
  const nobranch = await viva(['clone', lib, work, '--branch', 'no/such']);
  t.is(nobranch.code, EXIT.NOT_FOUND);
  t.false(fs.existsSync(work));
  t.is((await viva(['clone', 'http://127.0.0.1:1/', work])).code, EXIT.REMOTE);
  t.false(fs.existsSync(work));
  // SIGINT while the objects are on their way (a server that answers the ref list, then stalls).
  let asked!: () => void;
  const objectsAsked = new Promise<void>((r) => { asked = r; });
  const stall = http.createServer((req, res) => {
    if (req.url === '/v1/refs') { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ refs: [{ ref: 'refs/heads/x', oid: 'ab'.repeat(32) }] })); return; }
    if (req.url === '/v1/has') { res.writeHead(200); res.end(Buffer.from([0])); return; }
    res.writeHead(200);
    asked();
  });
  await new Promise<void>((r) => stall.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => { stall.closeAllConnections(); return new Promise<void>((r) => stall.close(() => r())); });
  const child = spawnViva(['clone', `http://127.0.0.1:${(stall.address() as AddressInfo).port}/`, work]);
  const done = finished(child, 30_000);
  await objectsAsked;
  t.true(fs.existsSync(path.join(work, '.viva')), 'the clone was under way');
  child.kill('SIGINT');
  const r = await done;
  t.is(r.code, EXIT.INTERRUPTED, r.stderr);
  t.regex(r.stderr, /^error: operation aborted\n$/);
  t.false(fs.existsSync(work));
  t.regex((await vivaOk(t, ['clone', lib, work])).stdout, /; on branch base\n$/);
});

test('cli sync: fetch of a tag moved on the remote says "! [rejected] v1 -> v1 (would clobber existing tag)" and exits 1; --force moves it', async (t) => {
  const dir = tmpDir(t);
  const { src, lib } = await library(t, dir, 'base');
  await vivaOk(t, ['tag', '-C', lib, 'v1', 'base']);
  const work = path.join(dir, 'work');
  await vivaOk(t, ['clone', lib, work]);
  const tagLine = async () => (await vivaOk(t, ['ls-remote', work])).stdout.split('\n').find((l) => l.endsWith('\trefs/tags/v1'));
  const old = await tagLine();
  fs.writeFileSync(path.join(src, 'etc/hostname'), 'two\n');
  await vivaOk(t, ['commit', '-C', lib, src, '-b', 'base', '-m', 'two']);
  await vivaOk(t, ['tag', '-C', lib, '-f', 'v1', 'base']);
  for (const args of [['fetch', '-C', work], ['fetch', '-C', work, 'origin', 'v1']]) {
    const r = await viva(args);
    t.is(r.code, EXIT.FAILURE, r.stderr);
    t.regex(r.stderr, /^ ! \[rejected\] +v1 -> v1 +\(would clobber existing tag\)\n$/);
    t.notRegex(r.stdout, /up to date/);
  }
  const json = await viva(['fetch', '-C', work, '--json']);
  t.is(json.code, EXIT.FAILURE);
  t.is(JSON.parse(json.stdout).rejected[0].reason, 'would clobber existing tag');
  t.is(await tagLine(), old, 'the local tag did not move');
  await vivaOk(t, ['fetch', '-C', work, '--force']);
  t.not(await tagLine(), old);
  t.is((await vivaOk(t, ['fetch', '-C', work])).code, 0);
});

test('cli sync: SIGINT during a clone from a local path stops it: exit 130 and the new directory is gone', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  // 96 MiB of incompressible data: a local clone takes about a second, long enough to be interrupted in the middle.
  const fd = fs.openSync(path.join(src, 'big'), 'w');
  for (let i = 0; i < 96; i++) fs.writeSync(fd, crypto.randomBytes(1 << 20));
  fs.closeSync(fd);
  const lib = path.join(dir, 'library');
  await vivaOk(t, ['init', lib]);
  await vivaOk(t, ['commit', '-C', lib, src, '-m', 'big']);
  const work = path.join(dir, 'work');
  const child = spawnViva(['clone', lib, work]);
  const done = finished(child, 60_000);
  // Wait until objects are being stored (the data file holds some MB), then interrupt.
  const stored = () => { try { return fs.statSync(dataFile(work)).blocks * 512; } catch { return 0; } };
  let exited = false;
  void done.then(() => { exited = true; });
  while (!exited && stored() < 8 << 20) await delay(5);
  t.false(exited, 'the clone was still running when interrupted');
  child.kill('SIGINT');
  const r = await done;
  t.is(r.code, EXIT.INTERRUPTED, r.stderr);
  t.regex(r.stderr, /^error: operation aborted\n$/);
  t.false(fs.existsSync(work));
});

test('cli sync: stats of a disk commit in a partial clone does not report its absent region blobs as 0 B of disk metadata', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'disk.raw');
  makeMbrDisk(file, 4, [{ start: 2048, sectors: 4096, type: 0x0c }]);
  patchBytes(file, 2048 * SECTOR, crypto.randomBytes(200_000));
  const lib = path.join(dir, 'library');
  await vivaOk(t, ['init', lib]);
  await vivaOk(t, ['commit', '-C', lib, file, '-b', 'vm', '-m', 'disk']);
  const full = await vivaJson(t, ['stats', '-C', lib, 'vm']);
  t.true(full.diskExtraBytes > 200_000);
  const p = path.join(dir, 'p');
  await vivaOk(t, ['clone', '--filter', 'manifests', lib, p]);
  const s = await vivaJson(t, ['stats', '-C', p, 'vm']);
  t.true(s.diskExtraAbsentBlobs > 0, JSON.stringify(s));
  t.true(s.absent.blobs >= s.diskExtraAbsentBlobs);
  const human = (await vivaOk(t, ['stats', '-C', p, 'vm'])).stdout;
  t.notRegex(human, /disk metadata +0 B, 0 B stored/);
  t.regex(human, /disk metadata +size unknown here: \d+ region blobs? not in this partial clone/);
  t.regex(human, /absent .*at least .*the size of \d+ disk region blobs? is not known here/);
  t.regex((await vivaOk(t, ['stats', '-C', lib, 'vm'])).stdout, /disk metadata +[1-9][\d.]* KiB, /);
});

test('cli partial clone: commands that read content (checkout, cat, diff -p, grep) fetch it from the promisor remote on demand', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc/motd'), 'hello from the library\n');
  const big = crypto.randomBytes(3 << 20);
  fs.writeFileSync(path.join(src, 'big.bin'), big);
  const lib = path.join(dir, 'library');
  await vivaOk(t, ['init', lib]);
  await vivaOk(t, ['commit', '-C', lib, src, '-b', 'img', '-m', 'one']);
  fs.writeFileSync(path.join(src, 'etc/motd'), 'hello again\n');
  await vivaOk(t, ['commit', '-C', lib, src, '-b', 'img', '-m', 'two']);
  const p = path.join(dir, 'p');
  await vivaOk(t, ['clone', '--filter', 'manifests', lib, p]);
  // Each command in its own process: none may count on another having loaded the fetcher.
  t.is((await vivaOk(t, ['cat', '-C', p, 'img:etc/motd'])).stdout, 'hello again\n');
  t.regex((await vivaOk(t, ['diff', '-C', p, '-p', 'img~1', 'img'])).stdout, /-hello from the library\n\+hello again/);
  t.regex((await vivaOk(t, ['grep', '-C', p, 'again', 'img'])).stdout, /etc\/motd/);
  const out = path.join(dir, 'out');
  await vivaOk(t, ['checkout', '-C', p, 'img', out]);
  t.true(fs.readFileSync(path.join(out, 'big.bin')).equals(big));
  await vivaOk(t, ['fsck', '-C', p]);
});
