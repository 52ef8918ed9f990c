/** Tests of the LMDB header check that runs before a data file is mapped (no false alarms on healthy files). */
import test from 'ava';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { open } from 'lmdb';
import { checkLmdbFile } from '../../src/store/lmdb-header.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { RepositoryDamagedError } from '../../src/errors.js';
import { tmpDir } from '../helpers/repo.js';

test('lmdb-header: a fresh environment passes, with its page size and a txnid that grows with each commit', async (t) => {
  const file = path.join(tmpDir(t), 'data.mdb');
  const env = open({ path: file, maxDbs: 4 });
  const db = env.openDB({ name: 'x', encoding: 'binary' });
  await db.put('a', Buffer.alloc(10));
  const one = checkLmdbFile(file);
  if (!one.ok) return t.fail(one.reason);
  t.is(one.meta.pageSize, 4096);
  await db.put('b', Buffer.alloc(100_000));
  const two = checkLmdbFile(file);
  if (!two.ok) return t.fail(two.reason);
  t.true(two.meta.txnid > one.meta.txnid);
  t.true(two.meta.lastPage > one.meta.lastPage);
  t.is(BigInt(fs.statSync(file).size), (two.meta.lastPage + 1n) * 4096n);
  await env.close();
});

test('lmdb-header: puts and deletes of large and small values never leave a file the check calls truncated', async (t) => {
  const file = path.join(tmpDir(t), 'data.mdb');
  const env = open({ path: file, maxDbs: 4 });
  const db = env.openDB<Buffer, number>({ name: 'x', encoding: 'binary' });
  for (let i = 0; i < 300; i++) {
    env.transactionSync(() => {
      for (let j = 0; j < 20; j++) {
        const k = (i * 7 + j * 13) % 500;
        if ((i + j) % 3 === 0) db.removeSync(k);
        else db.putSync(k, crypto.randomBytes((k % 5 === 0 ? 50_000 : 300) + j));
      }
    });
    const c = checkLmdbFile(file);
    if (!c.ok) { t.fail(`after transaction ${i}: ${c.reason}`); break; }
  }
  await env.close();
  t.true(checkLmdbFile(file).ok);
});

test('lmdb-header: a file that ends before its last page is healthy when only free pages are missing, damaged when a page in use is', async (t) => {
  const file = path.join(tmpDir(t), 'data.mdb');
  const env = open({ path: file, maxDbs: 4 });
  const db = env.openDB<Buffer, number>({ name: 'x', encoding: 'binary' });
  db.putSync(-1, Buffer.alloc(100, 9));
  let short = 0;
  for (let round = 0; round < 10; round++) {
    // Pages a transaction allocates at the end and frees again are never written: the file ends before mm_last_pg.
    env.transactionSync(() => {
      for (let i = 0; i < 300; i++) db.putSync(round * 1000 + i, Buffer.alloc(5000, 1));
      for (let i = 0; i < 300; i++) db.removeSync(round * 1000 + i);
    });
    const c = checkLmdbFile(file);
    if (!c.ok) return t.fail(`round ${round}: ${c.reason}`);
    if (BigInt(fs.statSync(file).size) < (c.meta.lastPage + 1n) * 4096n) short++;
  }
  t.true(short > 0, 'the precondition: LMDB left the file shorter than its last page');
  t.deepEqual(db.get(-1), Buffer.alloc(100, 9));
  await env.close();
  // Cut into the pages in use: now it is damage.
  fs.truncateSync(file, 3 * 4096);
  const c = checkLmdbFile(file);
  t.false(c.ok);
  if (!c.ok) t.regex(c.reason, /^truncated to 12288 bytes of the \d+ its pages need \((overflow )?page \d+.* in use lies? past the end\)$/);
});

test('lmdb-header: checks made while another process commits never see damage', async (t) => {
  const file = path.join(tmpDir(t), 'data.mdb');
  const env = open({ path: file, maxDbs: 4 });
  env.openDB({ name: 'x' });
  await env.close();
  const lmdb = createRequire(import.meta.url).resolve('lmdb');
  const script = `const { open } = require(${JSON.stringify(lmdb)}); const env = open({ path: ${JSON.stringify(file)}, maxDbs: 4 });
    const db = env.openDB({ name: 'x', encoding: 'binary' }); const end = Date.now() + 3000; let i = 0;
    while (Date.now() < end) db.putSync(i++ % 200, Buffer.alloc(1000 + (i % 7) * 20000, i));
    env.close().then(() => process.exit(0));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let checks = 0;
  let running = true;
  void exited.then(() => { running = false; });
  while (running) {
    const c = checkLmdbFile(file);
    if (!c.ok) { t.fail(`check ${checks}: ${c.reason}`); break; }
    checks++;
    if (checks % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  t.is(await exited, 0);
  t.true(checks > 10, `${checks} checks`);
});

test('lmdb-header: LmdbStore refuses a damaged file before mapping it, and a missing one in read-only mode', (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'data.mdb');
  fs.writeFileSync(file, crypto.randomBytes(8192));
  t.throws(() => new LmdbStore(file), { instanceOf: RepositoryDamagedError, message: /damaged or missing: not an LMDB file \(meta page 0: not a meta page|bad magic/ });
  t.throws(() => new LmdbStore(path.join(dir, 'none.mdb'), { readOnly: true }), { instanceOf: RepositoryDamagedError, message: /: the file is missing/ });
  t.false(fs.existsSync(path.join(dir, 'none.mdb')));
});
