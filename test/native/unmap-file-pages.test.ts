/** The native unmapFilePages: MADV_DONTNEED over this process's read-only shared mappings of one file (LMDB's map). */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { native } from '../../src/native/index.js';
import { hashBytes } from '../../src/model/oid.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { randomBytes, tmpDir } from '../helpers/repo.js';

/** Resident kB of this process's mappings of `file`, by its permissions ('r--s', 'rw-s', …), from /proc/self/smaps. */
function residentKb(file: string): Map<string, number> {
  const { ino } = fs.statSync(file);
  const out = new Map<string, number>();
  let perms: string | undefined;
  for (const line of fs.readFileSync('/proc/self/smaps', 'latin1').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ (\d+)/.exec(line);
    if (head) { perms = Number(head[2]) === ino ? head[1] : undefined; continue; }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && perms) out.set(perms, (out.get(perms) ?? 0) + Number(rss[1]));
  }
  return out;
}

test('unmapFilePages: the pages of LMDB\'s read-only map leave this process, and every object reads back the same', async (t) => {
  const file = path.join(tmpDir(t), 'data.mdb');
  const store = new LmdbStore(file);
  t.teardown(() => store.close());
  const objects = Array.from({ length: 160 }, (_, i) => randomBytes(64 * 1024, `unmap ${i}`));
  for (const o of objects) store.writeObject('chunk', hashBytes(o), o);
  store.flushSync();
  for (const o of objects) t.deepEqual(store.readObject('chunk', hashBytes(o)), o);
  const before = residentKb(file).get('r--s') ?? 0;
  t.true(before > 1024, `${before} kB of the map resident after reading 10 MB through it`);

  const advised = native().unmapFilePages(file);
  t.true(advised > 0);
  t.is(residentKb(file).get('r--s') ?? 0, 0);
  // The pages come back from the page cache, the same bytes (readObject checks each against its id).
  let same = 0;
  for (const o of objects) if (store.readObject('chunk', hashBytes(o)).equals(o)) same++;
  t.is(same, objects.length);
});

test('unmapFilePages: a writable shared mapping (LMDB\'s lock file) is left alone; a missing file is an error naming it', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'data.mdb');
  const store = new LmdbStore(file);
  t.teardown(() => store.close());
  const lock = `${file}-lock`;
  const before = residentKb(lock).get('rw-s');
  t.truthy(before, 'the lock file is mapped writable');
  t.is(native().unmapFilePages(lock), 0);
  t.is(residentKb(lock).get('rw-s'), before);
  t.throws(() => native().unmapFilePages(path.join(dir, 'nothing-here')), { code: 'ENOENT', message: /stat '.*nothing-here'/ });
});
