/** RPM: header blobs in an rpmdb.sqlite made at test time with sql.js, rpmvercmp ordering, and rpm images in find/diff. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { compareRpmVersions, parseRpmHeader, parseRpmSqlite, rpmvercmp } from '../../src/packages/rpm.js';
import { diffPackages } from '../../src/ops/image-packages.js';
import { find } from '../../src/ops/find.js';
import { commitAt, tmpDir, tmpRepo, writeTree } from '../helpers/repo.js';

/** An RPM header blob (as rpmdb.sqlite stores it) with string tags and an optional INT32 epoch. */
function header(fields: Record<number, string | number>): Buffer {
  const entries: Buffer[] = [];
  const data: Buffer[] = [];
  let off = 0;
  for (const [tag, v] of Object.entries(fields)) {
    const e = Buffer.alloc(16);
    e.writeUInt32BE(Number(tag), 0);
    let d: Buffer;
    if (typeof v === 'number') {
      while (off % 4) { data.push(Buffer.alloc(1)); off++; }
      d = Buffer.alloc(4); d.writeUInt32BE(v); e.writeUInt32BE(4, 4);
    } else { d = Buffer.from(`${v}\0`); e.writeUInt32BE(6, 4); }
    e.writeUInt32BE(off, 8);
    e.writeUInt32BE(1, 12);
    entries.push(e);
    data.push(d);
    off += d.length;
  }
  const head = Buffer.alloc(8);
  head.writeUInt32BE(entries.length, 0);
  head.writeUInt32BE(off, 4);
  return Buffer.concat([head, ...entries, ...data]);
}

async function rpmdb(rows: Buffer[]): Promise<Buffer> {
  const init = createRequire(import.meta.url)('sql.js') as () => Promise<{ Database: new () => { run(sql: string, params?: unknown[]): void; export(): Uint8Array; close(): void } }>;
  const SQL = await init();
  const db = new SQL.Database();
  db.run('CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)');
  for (const r of rows) db.run('INSERT INTO Packages (blob) VALUES (?)', [r]);
  const out = Buffer.from(db.export());
  db.close();
  return out;
}

test('rpm: rpmvercmp orders as rpm does', (t) => {
  const cases: Array<[string, string, number]> = [
    ['1.0', '1.0', 0], ['1.0', '2.0', -1], ['2.0.1', '2.0', 1], ['2.0.1a', '2.0.1', 1], ['5.5p1', '5.5p10', -1], ['5.5p10', '5.5p1', 1],
    ['10xyz', '10.1xyz', -1], ['xyz10', 'xyz10.1', -1], ['xyz.4', '8', -1], ['1.0~rc1', '1.0', -1], ['1.0^git1', '1.0', 1],
    ['1.0^git1', '1.0.1', -1], ['1_0', '1.0', 0], ['a', '1', -1], ['001', '1', 0], ['1.0~rc1', '1.0~rc2', -1], ['2a', '2.0', -1],
  ];
  for (const [a, b, want] of cases) t.is(rpmvercmp(a, b), want, `${a} vs ${b}`);
  t.is(compareRpmVersions('1:1.0-1', '2.0-1'), 1);
  t.is(compareRpmVersions('3.0.7-24.el9', '3.0.7-25.el9'), -1);
});

test('rpm: header blobs and an rpmdb.sqlite; damaged rows and files are problems, not crashes', async (t) => {
  t.deepEqual(parseRpmHeader(header({ 1000: 'openssl', 1001: '3.0.7', 1002: '24.el9', 1003: 1, 1022: 'x86_64', 1044: 'openssl-3.0.7-24.el9.src.rpm' })),
    { name: 'openssl', version: '1:3.0.7-24.el9', arch: 'x86_64' });
  t.regex(String(parseRpmHeader(Buffer.from([0, 0, 0, 9, 0, 0, 1, 0]))), /exceed/);
  const db = await rpmdb([header({ 1000: 'bash', 1001: '5.1.8', 1002: '6.el9', 1022: 'x86_64' }), Buffer.from('junk')]);
  const inv = await parseRpmSqlite(db);
  t.deepEqual(inv.packages, [{ name: 'bash', version: '5.1.8-6.el9', arch: 'x86_64' }]);
  t.is(inv.problems.length, 1);
  const bad = await parseRpmSqlite(Buffer.from('not sqlite at all, just text'));
  t.regex(bad.problems[0]!.message, /not a readable rpm sqlite database/);
});

test('rpm: images with an rpm database in diff --packages and find --package --version', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  writeTree(src, { var: { lib: { rpm: { 'rpmdb.sqlite': await rpmdb([header({ 1000: 'openssl', 1001: '3.0.7', 1002: '24.el9', 1022: 'x86_64' })]) } } } });
  const { repo } = tmpRepo(t);
  await commitAt(repo, src, { branch: 'el9' });
  fs.writeFileSync(path.join(src, 'var/lib/rpm/rpmdb.sqlite'), await rpmdb([header({ 1000: 'openssl', 1001: '3.0.7', 1002: '27.el9', 1022: 'x86_64' })]));
  await commitAt(repo, src, { branch: 'el9', tick: 1 });
  const d = await diffPackages(repo, 'el9~1', 'el9');
  t.deepEqual(d.changes, [{ name: 'openssl', arch: 'x86_64', change: 'upgraded', from: '3.0.7-24.el9', to: '3.0.7-27.el9' }]);
  const hits: string[] = [];
  for await (const h of find(repo, { package: 'openssl', version: '<3.0.7-25.el9' })) hits.push(`${h.commit.slice(0, 6)} ${h.package!.version}`);
  t.is(hits.length, 1);
  t.regex(hits[0]!, /24\.el9$/);
});
