/**
 * The repository the web view's tests browse, built with the CLI: two Debian-like images (base, base2) with a package
 * database, a derived branch, a tag, hostile file names (`<script>`, an HTML attribute injection, bytes that are not
 * UTF-8) and a directory of 600 entries; and the web view served in-process on 127.0.0.1.
 */
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { serve, webHandler, Repository, type Server } from '../../src/index.js';
import { sha256 } from '../helpers/repo.js';
import { tmpDir, vivaOk } from '../helpers/cli.js';

/** Where chromium is (Debian's package); browser tests are skipped without it. */
export const CHROMIUM = '/usr/bin/chromium';
export const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
/** setfattr (Debian's attr) sets the fixture's xattr; without it the file has none. */
export const HAVE_SETFATTR = fs.existsSync('/usr/bin/setfattr');
/** Screenshots of every page (gitignored). */
export const ARTIFACTS = path.resolve(import.meta.dirname, '../artifacts/web');

/** A hostile name: markup that would run script if it reached the page unescaped. */
export const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2';
/** A name whose bytes are not UTF-8 (`caf\377`). */
export const NON_UTF8 = Buffer.from([0x63, 0x61, 0x66, 0xff]);

function dpkgStatus(pkgs: Array<[string, string]>): string {
  return pkgs.map(([n, v]) => `Package: ${n}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nVersion: ${v}\nDescription: ${n}\n`).join('\n');
}

/** The fixture's repository and what the tests check against. */
export interface Fixture {
  dir: string;
  lib: string;
  /** sha256 of files only base2 has, and of one both have. */
  motdSum: string;
  sharedSum: string;
}

/** Builds the repository (about 10 CLI runs). */
export async function buildFixture(t: ExecutionContext): Promise<Fixture> {
  const dir = tmpDir(undefined, 'viva-web-');
  const src = path.join(dir, 'src');
  const w = (p: string, data: string | Buffer) => { fs.mkdirSync(path.dirname(path.join(src, p)), { recursive: true }); fs.writeFileSync(path.join(src, p), data); };
  w('etc/hostname', 'base\n');
  w('etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n');
  w('etc/shared.conf', 'shared = yes\n');
  w('bin/tool', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3, 0, 0, 0xff]));
  w('var/lib/dpkg/status', dpkgStatus([['bash', '5.2.15-2'], ['openssl', '3.0.11-1~deb12u2'], ['zlib1g', '1:1.2.13.dfsg-1']]));
  w(HOSTILE, 'hostile\n');
  // A Buffer path is taken as bytes.
  fs.writeFileSync(Buffer.concat([Buffer.from(path.join(src, 'etc') + '/'), NON_UTF8]), 'non-utf8\n');
  for (let i = 0; i < 600; i++) w(`usr/share/many/f${String(i).padStart(4, '0')}`, `${i}\n`);
  fs.linkSync(path.join(src, 'etc/hostname'), path.join(src, 'etc/hostname.link'));
  // A sparse file (a hole of 1 MiB before its last byte) and an xattr, for the browser's columns.
  const fd = fs.openSync(path.join(src, 'var/sparse.img'), 'w');
  fs.writeSync(fd, 'x', 1 << 20);
  fs.closeSync(fd);
  if (HAVE_SETFATTR) execFileSync('setfattr', ['-n', 'user.viva', '-v', 'label', path.join(src, 'etc/os-release')]);
  const lib = path.join(dir, 'lib');
  await vivaOk(t, ['init', lib]);
  await vivaOk(t, ['commit', '-C', lib, src, '-b', 'debian/12/base', '-m', 'base image', '--label', 'env=test']);
  await vivaOk(t, ['tag', '-C', lib, 'v1', 'debian/12/base']);
  w('etc/hostname', 'base2\n');
  w('etc/motd', 'welcome to base2\n');
  fs.rmSync(path.join(src, 'bin/tool'));
  w('var/lib/dpkg/status', dpkgStatus([['bash', '5.2.15-2'], ['curl', '7.88.1-10'], ['openssl', '3.0.13-1~deb12u1'], ['zlib1g', '1:1.2.13.dfsg-1']]));
  await vivaOk(t, ['commit', '-C', lib, src, '-b', 'debian/12/base2', '-m', 'base2: motd, curl, openssl upgrade']);
  await vivaOk(t, ['derive', '-C', lib, 'debian/12/base', '-b', 'customers/acme/web', '--set', 'etc/hostname=acme-web', '-m', 'acme web']);
  await vivaOk(t, ['derive', '-C', lib, 'customers/acme/web', '-b', 'customers/acme/web-prod', '--set', 'etc/motd=prod', '-m', 'acme web prod']);
  // Two teams' layers on base, merged: a merge in the history's graph and in the derivation graph.
  await vivaOk(t, ['branch', '-C', lib, 'team/a', 'debian/12/base']);
  await vivaOk(t, ['branch', '-C', lib, 'team/b', 'debian/12/base']);
  await vivaOk(t, ['derive', '-C', lib, 'team/a', '-b', 'team/a', '--set', 'etc/a=one', '-m', 'team a: etc/a']);
  await vivaOk(t, ['derive', '-C', lib, 'team/b', '-b', 'team/b', '--set', 'etc/b=two', '-m', 'team b: etc/b']);
  await vivaOk(t, ['merge', '-C', lib, 'team/a', 'team/b', '-b', 'team/both']);
  return { dir, lib, motdSum: sha256('welcome to base2\n'), sharedSum: sha256('shared = yes\n') };
}

/**
 * Serves `lib` (or an open repository: one LMDB environment per path and process, so a second server on the same
 * repository shares the handle) with the web view in this process; `tokenFile` makes the server need a token.
 */
export async function startWeb(lib: string | Repository, tokenFile?: string): Promise<{ repo: Repository; server: Server; url: string; close: () => Promise<void> }> {
  const repo = typeof lib === 'string' ? Repository.open(lib, 'read') : lib;
  const server = await serve(repo, { listen: '127.0.0.1:0', handler: webHandler(repo, (l) => process.stderr.write(`${l}\n`)), log: () => undefined, ...(tokenFile ? { tokenFile } : {}) });
  return { repo, server, url: server.url.replace(/\/$/, ''), close: async () => { await server.close(); if (typeof lib === 'string') await repo.close(); } };
}
