/**
 * LMDB's close race (ITS#10095, still in lmdb-js 3.5.6): the last process to close an environment destroys the lock
 * file's mutexes while it holds the file alone, and a process that opened the lock file in that instant finds them
 * destroyed once it gets its shared lock. Every transaction it begins then fails with EINVAL, and so does every
 * process that opens the file while it still holds it. In CI this made `viva log` exit 70 ("Invalid argument").
 *
 * These tests make that state on purpose: the environment is closed by a process alone with it (its mutexes are
 * destroyed), then a helper holds a shared lock on the lock file, as the process that came in that instant would.
 * An open in that state must wait until the lock file is free and then open, not fail.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { Repository } from '../../src/store/repository.js';
import { tmpDir, writeTree } from '../helpers/repo.js';
import { dataFile, viva, vivaOk } from '../helpers/cli.js';

const hasPython = spawnSync('python3', ['-c', '0']).status === 0;
const maybe = hasPython ? test.serial : test.serial.skip;

/**
 * Holds a shared fcntl lock on byte 0 of `lockFile` (LMDB's exclusive-use byte); resolves once it is held. The lock
 * goes `ms` after release(ms), which signals through a file so that a caller about to block its thread can use it.
 */
async function holdSharedLock(t: ExecutionContext, lockFile: string): Promise<{ release(ms: number): void }> {
  const go = path.join(tmpDir(t), 'go');
  const script = 'import fcntl,os,sys,time\nfd=os.open(sys.argv[1],os.O_RDWR)\nfcntl.lockf(fd,fcntl.LOCK_SH,1,0,0)\n'
    + 'print("held",flush=True)\nend=time.time()+30\n'
    + 'while not os.path.exists(sys.argv[2]) and time.time()<end: time.sleep(0.005)\n'
    + 'time.sleep(float(open(sys.argv[2]).read())/1000)\n';
  const child = spawn('python3', ['-c', script, lockFile, go], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the lock holder exited with ${code} before it held the lock`)));
  });
  return { release: (ms) => fs.writeFileSync(go, String(ms)) };
}

/** Whether a plain lmdb open of `file` in another process fails now with EINVAL (the state these tests need). */
function plainOpenFails(file: string): boolean {
  const lmdb = createRequire(import.meta.url).resolve('lmdb');
  const script = `try { require(${JSON.stringify(lmdb)}).open({ path: process.argv[1], readOnly: true, maxDbs: 16 }); process.exit(0) }
    catch (e) { process.exit(e.code === 22 ? 22 : 1) }`;
  return spawnSync(process.execPath, ['-e', script, file]).status === 22;
}

/** A repository whose lock file's mutexes were destroyed by its last close, with a commit on main. */
async function closedRepository(t: ExecutionContext): Promise<{ root: string; file: string }> {
  const dir = tmpDir(t);
  const root = path.join(dir, 'repo');
  writeTree(path.join(dir, 'src'), { a: 'one\n' });
  await vivaOk(t, ['init', root]);
  await vivaOk(t, ['commit', path.join(dir, 'src'), '-m', 'first'], { cwd: root });
  return { root, file: dataFile(root) };
}

maybe('lmdb open race: an open that finds the lock file\'s mutexes destroyed waits until the file is free, then opens (read and write)', async (t) => {
  const { file } = await closedRepository(t);
  for (const readOnly of [true, false]) {
    // A close by the only process that has the environment open destroys the mutexes (a process that exits without
    // closing, as the plain open below does, leaves them be).
    await new LmdbStore(file, { readOnly: true }).close();
    const holder = await holdSharedLock(t, `${file}-lock`);
    t.true(plainOpenFails(file), 'the helper made the state of the race: a plain open fails with EINVAL');
    holder.release(400);
    const started = Date.now();
    const store = new LmdbStore(file, { readOnly });
    const waited = Date.now() - started;
    t.true(waited >= 300, `the open waited for the lock file (${waited} ms)`);
    t.truthy(store.refs.get('refs/heads/main'), 'main is read');
    if (!readOnly) store.writeTransaction(() => store.meta.putSync('probe', 1));
    await store.close();
    t.false(plainOpenFails(file), 'the lock file was set up afresh');
  }
});

maybe('lmdb open race: viva log and a commit run through it with exit 0 and nothing on stderr', async (t) => {
  const { root, file } = await closedRepository(t);
  const src = tmpDir(t);
  writeTree(src, { b: 'two\n' });
  const holder = await holdSharedLock(t, `${file}-lock`);
  t.true(plainOpenFails(file));
  const running = Promise.all([viva(['log', '--oneline'], { cwd: root }), viva(['commit', src, '-m', 'second'], { cwd: root })]);
  holder.release(1500);
  const [log, commit] = await running;
  t.is(log.code, 0, log.stderr);
  t.is(log.stderr, '');
  t.regex(log.stdout, /first/);
  t.is(commit.code, 0, commit.stderr);
  t.is(commit.stderr, '');
  const repo = Repository.open(root, 'read');
  t.teardown(() => repo.close());
  t.truthy(repo.refs.resolve('refs/heads/main')?.oid);
});
