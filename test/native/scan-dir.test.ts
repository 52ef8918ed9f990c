/** The native scanDir: a directory's entries sorted by name bytes with their lstat fields, as the tree cache hashes them. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { forEachSubdir, native, scanRecords } from '../../src/native/index.js';
import { tmpDir } from '../helpers/repo.js';

test('scanDir: the directory first, then entries in byte order with lstat fields; symlinks not followed; odd names kept', (t) => {
  const dir = tmpDir(t, 'viva-scan-');
  fs.writeFileSync(path.join(dir, 'b'), 'hello');
  fs.mkdirSync(path.join(dir, 'a'));
  fs.symlinkSync('/nonexistent', path.join(dir, 'ab'));
  fs.writeFileSync(Buffer.from(`${dir}/\xff\xfe`, 'latin1'), '');
  fs.linkSync(path.join(dir, 'b'), path.join(dir, 'B'));
  const records = [...scanRecords(native().scanDir(Buffer.from(dir)))];
  const self = fs.lstatSync(dir);
  t.is(records[0]!.name.length, 0);
  t.is(records[0]!.mode, self.mode);
  t.deepEqual(records.slice(1).map((r) => r.name.toString('latin1')), ['B', 'a', 'ab', 'b', '\xff\xfe']);
  for (const r of records.slice(1)) {
    const st = fs.lstatSync(Buffer.concat([Buffer.from(`${dir}/`), r.name]), { bigint: true });
    t.is(r.err, 0);
    t.is(r.mode, Number(st.mode));
    t.is(r.uid, Number(st.uid));
    t.is(r.gid, Number(st.gid));
    t.is(r.nlink, Number(st.nlink));
    t.is(BigInt(r.mtimeSec) * 1_000_000_000n + BigInt(r.mtimeNsec), st.mtimeNs);
    t.is(BigInt(r.ctimeSec) * 1_000_000_000n + BigInt(r.ctimeNsec), st.ctimeNs);
    t.is(r.bytes.readBigUInt64LE(24), st.ino);
    t.is(r.bytes.readBigUInt64LE(40), st.size);
    t.is(r.bytes.length % 8, 0);
  }
  t.is(records.find((r) => r.name.toString() === 'b')!.nlink, 2);
});

test('scanDir: a file, a symlink to a directory and a missing path are errors naming the path', (t) => {
  const dir = tmpDir(t, 'viva-scan-');
  fs.writeFileSync(path.join(dir, 'f'), '');
  fs.symlinkSync('.', path.join(dir, 'link'));
  t.throws(() => native().scanDir(path.join(dir, 'f')), { code: 'ENOTDIR', message: /scandir '.*\/f'/ });
  const e = t.throws(() => native().scanDir(path.join(dir, 'link'))) as NodeJS.ErrnoException;
  t.true(e.code === 'ELOOP' || e.code === 'ENOTDIR', e.code);
  t.throws(() => native().scanDir(path.join(dir, 'missing')), { code: 'ENOENT' });
});

test('scanDirs: each result is what scanDir gives, or the errno scanDir throws with; in order, on several threads', (t) => {
  const dir = tmpDir(t, 'viva-scan-');
  const paths: Array<Buffer | string> = [];
  // Enough directories for the call to use every thread it may (at least 16 for each).
  for (let i = 0; i < 100; i++) {
    const d = path.join(dir, `d${i}`);
    fs.mkdirSync(d);
    for (let j = 0; j <= i % 7; j++) fs.writeFileSync(path.join(d, `f${j}`), 'x'.repeat(j));
    paths.push(i % 2 ? d : Buffer.from(d));
  }
  fs.writeFileSync(path.join(dir, 'file'), '');
  fs.symlinkSync('.', path.join(dir, 'link'));
  paths.splice(10, 0, path.join(dir, 'file'));
  paths.splice(50, 0, path.join(dir, 'missing'));
  paths.splice(70, 0, path.join(dir, 'link'));
  const results = native().scanDirs(paths);
  t.is(results.length, paths.length);
  const codes: Record<string, number> = { ENOTDIR: 20, ENOENT: 2, ELOOP: 40 };
  for (let i = 0; i < paths.length; i++) {
    let expected: Buffer | number;
    try {
      expected = native().scanDir(paths[i]!);
    } catch (e) {
      expected = codes[(e as NodeJS.ErrnoException).code!] ?? -1;
    }
    t.deepEqual(results[i], expected, String(paths[i]));
  }
  t.is(results[10], 20);
  t.is(results[50], 2);
  // A budget: once the records reach it, no directory is started (null); at most one a thread was scanning is done.
  const limited = native().scanDirs(paths, 1);
  const done = limited.filter((r) => r !== null).length;
  t.true(done >= 1 && done <= 4, `${done} scanned`);
  for (let i = 0; i < paths.length; i++) if (limited[i] !== null) t.deepEqual(limited[i], results[i]);
  t.deepEqual(native().scanDirs(paths, 1e12), results);
  t.deepEqual(native().scanDirs([]), []);
  t.throws(() => native().scanDirs('x' as unknown as string[]), { message: /expected an array/ });
  t.throws(() => native().scanDirs([1 as unknown as string]), { message: /expected a string or Buffer/ });
});

test('forEachSubdir: the directories a scanDir result lists, in its order; not symlinks to directories, nor files', (t) => {
  const dir = tmpDir(t, 'viva-scan-');
  for (const d of ['b', 'a', 'c d']) fs.mkdirSync(path.join(dir, d));
  fs.mkdirSync(Buffer.from(`${dir}/\xff`, 'latin1'));
  fs.writeFileSync(path.join(dir, 'aa'), 'file');
  fs.symlinkSync('a', path.join(dir, 'ab'));
  const names: string[] = [];
  const buf = native().scanDir(dir);
  forEachSubdir(buf, (name) => names.push(name.toString('latin1')));
  t.deepEqual(names, ['a', 'b', 'c d', '\xff']);
  const fromRecords = [...scanRecords(buf)].slice(1).filter((r) => r.err === 0 && (r.mode & 0o170000) === 0o040000).map((r) => r.name.toString('latin1'));
  t.deepEqual(names, fromRecords);
  const none: Buffer[] = [];
  forEachSubdir(native().scanDir(path.join(dir, 'a')), (name) => none.push(name));
  t.deepEqual(none, []);
});
