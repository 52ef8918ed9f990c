/**
 * The web view over plain HTTP (no browser): its security headers, read-only methods, the token rules, paging, and
 * its JSON under /api/ compared with the CLI's --json for the same query.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { commit, createRef, derive, Repository } from '../../src/index.js';
import { vivaJson, tmpDir } from '../helpers/cli.js';
import { haveMke2fs, makeMbrDisk } from '../helpers/mbr-disk.js';
import { viva, vivaOk } from '../helpers/cli.js';
import { HAVE_SETFATTR, buildFixture, startWeb, type Fixture } from './fixture.js';

let fx: Fixture;
let web: Awaited<ReturnType<typeof startWeb>>;
/** A copy of the fixture for the paging test, made before any server opens it (an open LMDB's lock file is not copied). */
let fleet: string;

test.before(async (t) => {
  fx = await buildFixture(t);
  fleet = path.join(fx.dir, 'fleet');
  fs.cpSync(fx.lib, fleet, { recursive: true });
  web = await startWeb(fx.lib);
});
test.after.always(async () => {
  await web?.close();
  if (fx) fs.rmSync(fx.dir, { recursive: true, force: true });
});

const get = (p: string, init: RequestInit = {}) => fetch(`${web.url}${p}`, init);
const getJson = async (p: string) => { const r = await get(p); if (r.status !== 200) throw new Error(`${p}: ${r.status} ${await r.text()}`); return r.json(); };

test('web: every page is HTML with the CSP, nosniff and Server-Timing headers', async (t) => {
  for (const p of ['/', '/ui/', '/ui/log/debian%2F12%2Fbase', '/ui/commit/debian%2F12%2Fbase', '/ui/tree/debian%2F12%2Fbase/etc', '/ui/tree/debian%2F12%2Fbase/etc/hostname',
    '/ui/compare?a=debian/12/base&b=debian/12/base2', '/ui/search?q=base', `/ui/find?sha256=${fx.motdSum}`, '/ui/derivations', '/ui/storage', '/ui/packages/debian%2F12%2Fbase2']) {
    const r = await get(p, { headers: { accept: 'text/html' } });
    t.is(r.status, 200, p);
    t.regex(r.headers.get('content-type')!, /^text\/html/, p);
    t.is(r.headers.get('content-security-policy'), "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'", p);
    t.is(r.headers.get('x-content-type-options'), 'nosniff', p);
    t.regex(r.headers.get('server-timing') ?? '', /^app;dur=\d+(\.\d+)?$/, p);
    const body = await r.text();
    // No inline script or style: every <script> has a src, no style attribute or element.
    t.notRegex(body, /<script(?![^>]*\ssrc=)[^>]*>/, p);
    t.notRegex(body, /\sstyle=|<style/, p);
  }
  const js = await get('/static/app.js');
  t.is(js.status, 200);
  t.regex(js.headers.get('content-type')!, /^text\/javascript/);
  const css = await get('/static/app.css');
  t.regex(css.headers.get('content-type')!, /^text\/css/);
  t.regex(await css.text(), /\.uplot/, 'uPlot\'s style sheet is bundled');
});

test('web: read-only: POST, PUT and DELETE get 405 with Allow; HEAD works; the sync endpoints are unchanged', async (t) => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const r = await get('/ui/', { method, body: method === 'DELETE' ? undefined : 'x' });
    t.is(r.status, 405, method);
    t.is(r.headers.get('allow'), 'GET, HEAD');
  }
  t.is((await get('/api/log/debian%2F12%2Fbase', { method: 'POST' })).status, 405);
  const head = await get('/ui/', { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(await head.text(), '');
  const refs = await getJson('/v1/refs');
  t.truthy(refs);
  t.is((await get('/v1/nope')).status, 404);
});

test('web: a file downloads streamed with its bytes; the raw path of a non-UTF-8 name round-trips', async (t) => {
  const r = await get('/ui/raw/debian%2F12%2Fbase/etc/hostname');
  t.is(r.status, 200);
  t.is(r.headers.get('content-type'), 'application/octet-stream');
  t.regex(r.headers.get('content-disposition')!, /^attachment; filename\*=UTF-8''hostname$/);
  t.is(await r.text(), 'base\n');
  const n = await get('/ui/raw/debian%2F12%2Fbase/etc/caf%FF');
  t.is(n.status, 200);
  t.is(await n.text(), 'non-utf8\n');
  t.is((await get('/ui/raw/debian%2F12%2Fbase/etc')).status, 400, 'a directory is no download');
  t.is((await get('/ui/tree/debian%2F12%2Fbase/etc/nothing')).status, 404);
  t.is((await get('/ui/log/no-such-branch')).status, 404);
});

test('web: /api/ answers are the CLI\'s --json for the same query', async (t) => {
  const C = ['-C', fx.lib];
  const pairs: Array<[string, string[]]> = [
    ['/api/', ['branch', ...C]],
    ['/api/tags', ['tag', ...C]],
    ['/api/log/debian%2F12%2Fbase2', ['log', 'debian/12/base2', '--graph', '-n', '50', ...C]],
    // A derived branch's history includes the images it was derived from: log REV BASE… (here web, then base).
    ['/api/log/customers%2Facme%2Fweb-prod', ['log', 'customers/acme/web-prod', 'customers/acme/web', 'debian/12/base', '--graph', '-n', '50', ...C]],
    ['/api/commit/customers%2Facme%2Fweb', ['show', 'customers/acme/web', ...C]],
    ['/api/tree/debian%2F12%2Fbase/etc', ['ls', 'debian/12/base:etc', ...C]],
    ['/api/tree/debian%2F12%2Fbase/etc/hostname', ['ls', 'debian/12/base:etc/hostname', ...C]],
    ['/api/compare?a=debian/12/base&b=debian/12/base2', ['diff', 'debian/12/base', 'debian/12/base2', ...C]],
    ['/api/compare?a=debian/12/base&b=debian/12/base2&packages=1', ['diff', '--packages', 'debian/12/base', 'debian/12/base2', ...C]],
    ['/api/compare?a=team/a...team/b', ['diff', 'team/a...team/b', ...C]],
    ['/api/compare?a=team/both', ['diff', 'team/both', ...C]],
    ['/api/search?q=acme', ['search', 'acme', ...C]],
    [`/api/find?sha256=${fx.motdSum}`, ['find', '--sha256', fx.motdSum, ...C]],
    ['/api/find?package=openssl&version=%3C3.0.13', ['find', '--package', 'openssl', '--version', '<3.0.13', ...C]],
    ['/api/derivations', ['derivations', ...C]],
    ['/api/storage', ['stats', ...C]],
    ['/api/storage/debian%2F12%2Fbase', ['stats', 'debian/12/base', ...C]],
    ['/api/packages/debian%2F12%2Fbase2', ['packages', 'debian/12/base2', ...C]],
  ];
  // The CLI runs two at a time (each is a process).
  for (let i = 0; i < pairs.length; i += 2) {
    const batch = pairs.slice(i, i + 2);
    const cli = await Promise.all(batch.map(([, args]) => vivaJson(t, args)));
    for (const [k, [p]] of batch.entries()) t.deepEqual(await getJson(p), cli[k], p);
  }
  // Accept: application/json on a /ui/ path gives the same JSON.
  const r = await get('/ui/commit/debian%2F12%2Fbase', { headers: { accept: 'application/json' } });
  t.regex(r.headers.get('content-type')!, /^application\/json/);
  t.deepEqual(await r.json(), await getJson('/api/commit/debian%2F12%2Fbase'));
});

test('web: find answers a pasted list of checksums (sha256sum output) with the images that hold each', async (t) => {
  const pasted = `${fx.motdSum}  etc/motd\n${fx.sharedSum}  etc/shared.conf\n`;
  const hits = await getJson(`/api/find?sha256=${encodeURIComponent(pasted)}`) as Array<{ ref: string; path: string; sha256: string }>;
  const motd = hits.filter((h) => h.sha256 === fx.motdSum).map((h) => `${h.ref} ${h.path}`).sort();
  t.deepEqual(motd, ['debian/12/base2 etc/motd']);
  const shared = new Set(hits.filter((h) => h.sha256 === fx.sharedSum).map((h) => h.ref));
  t.deepEqual([...shared].sort(), ['customers/acme/web', 'customers/acme/web-prod', 'debian/12/base', 'debian/12/base2', 'team/a', 'team/b', 'team/both']);
});

test('web: a directory of 600 entries is paged (500 a page) with Link and X-Total-Count', async (t) => {
  const r = await get('/api/tree/debian%2F12%2Fbase/usr/share/many');
  t.is(r.headers.get('x-total-count'), '600');
  t.regex(r.headers.get('link')!, /page=2>; rel="next"/);
  t.is((await r.json() as unknown[]).length, 500);
  const p2 = await getJson('/api/tree/debian%2F12%2Fbase/usr/share/many?page=2') as Array<{ path: string }>;
  t.is(p2.length, 100);
  t.is(p2.at(-1)!.path, 'usr/share/many/f0599');
  const html = await (await get('/ui/tree/debian%2F12%2Fbase/usr/share/many?page=2')).text();
  t.regex(html, /page 2 of 2/);
});

test('web: 2,500 branches are paged (100 a page), the filter narrows them, and the namespace stays fast', async (t) => {
  const lib = fleet;
  const repo = Repository.open(lib, 'write');
  const head = (await createRef(repo, { kind: 'branch', name: 'fleet/seed', rev: 'debian/12/base' })).oid;
  await repo.refs.update(Array.from({ length: 2499 }, (_, i) => ({ ref: `refs/heads/fleet/${String(i % 50).padStart(2, '0')}/host${String(i).padStart(4, '0')}`, newOid: head, expectedOld: null, message: 'fleet' })), 'Test <t@example.org>');
  await repo.close();
  const w = await startWeb(lib);
  t.teardown(() => w.close());
  const r = await fetch(`${w.url}/api/`);
  const total = 2500 + 7;
  t.is(r.headers.get('x-total-count'), String(total));
  t.is((await r.json() as unknown[]).length, 100);
  const last = await fetch(`${w.url}/api/?page=26`);
  t.is((await last.json() as unknown[]).length, total - 2500);
  t.notRegex(last.headers.get('link') ?? '', /rel="next"/);
  const filtered = await fetch(`${w.url}/api/?q=host000`);
  t.is(filtered.headers.get('x-total-count'), '10');
  const page = await fetch(`${w.url}/ui/?page=3`);
  const body = await page.text();
  t.regex(body, /page 3 of 26/);
  // Folder counts cover every page: all 2,500 fleet branches are below fleet/, 50 below each fleet/NN/.
  t.regex(body, /<summary>fleet\/ <span class="count" title="branches below">2500<\/span><\/summary>/);
  t.regex(body, /<summary>04\/ <span class="count" title="branches below">50<\/span><\/summary>/);
  t.regex(body, /rel="next" href="\/ui\/\?page=4"/);
  const ms = Number(/dur=([\d.]+)/.exec(page.headers.get('server-timing')!)![1]);
  t.true(ms < 2000, `namespace page took ${ms} ms`);
});

test('web: with a token, pages and the API need it (Bearer or the login cookie); sync reads stay open as before', async (t) => {
  const dir = tmpDir(t);
  const token = path.join(dir, 'token');
  fs.writeFileSync(token, 'tok-web-1\n');
  const w = await startWeb(web.repo, token);
  t.teardown(() => w.close());
  const page = await fetch(`${w.url}/ui/`, { headers: { accept: 'text/html' } });
  t.is(page.status, 401);
  t.regex(await page.text(), /<form class="login" action="\/ui\/login" method="post">/);
  const api = await fetch(`${w.url}/api/`);
  t.is(api.status, 401);
  t.is(api.headers.get('www-authenticate'), 'Bearer realm="viva"');
  t.is((await fetch(`${w.url}/api/`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  t.is((await fetch(`${w.url}/api/`, { headers: { authorization: 'Bearer tok-web-1' } })).status, 200);
  t.is((await fetch(`${w.url}/ui/raw/debian%2F12%2Fbase/etc/hostname`)).status, 401, 'downloads too');
  // The login form: a wrong token is refused, the right one sets an HttpOnly SameSite=Strict cookie.
  const bad = await fetch(`${w.url}/ui/login`, { method: 'POST', body: new URLSearchParams({ token: 'nope', next: '/ui/derivations' }), redirect: 'manual' });
  t.is(bad.status, 401);
  t.is(bad.headers.get('set-cookie'), null);
  const ok = await fetch(`${w.url}/ui/login`, { method: 'POST', body: new URLSearchParams({ token: 'tok-web-1', next: '/ui/derivations' }), redirect: 'manual' });
  t.is(ok.status, 303);
  t.is(ok.headers.get('location'), '/ui/derivations');
  const cookie = ok.headers.get('set-cookie')!;
  t.regex(cookie, /^viva_token=tok-web-1; Path=\/; HttpOnly; SameSite=Strict$/);
  t.is((await fetch(`${w.url}/ui/derivations`, { headers: { cookie: cookie.split(';')[0]! } })).status, 200);
  t.is((await fetch(`${w.url}/ui/derivations`, { headers: { cookie: `other=%E0%A4%A; ${cookie.split(';')[0]!}` } })).status, 200, 'a malformed cookie beside it is ignored');
  t.is((await fetch(`${w.url}/ui/derivations`, { headers: { cookie: 'viva_token=wrong' } })).status, 401);
  // An open redirect is not possible: next must be a local page.
  const evil = await fetch(`${w.url}/ui/login`, { method: 'POST', body: new URLSearchParams({ token: 'tok-web-1', next: '//evil.example/' }), redirect: 'manual' });
  t.is(evil.headers.get('location'), '/ui/');
  // Static assets are public (the login page needs its style sheet); sync reads are open as they were.
  t.is((await fetch(`${w.url}/static/app.css`)).status, 200);
  t.is((await fetch(`${w.url}/v1/refs`)).status, 200);
});

test('web: without a token the web view is open (a read-only server, as clone and fetch)', async (t) => {
  t.is((await get('/ui/login')).status, 200);
  const r = await get('/ui/login', { method: 'POST', body: new URLSearchParams({ token: 'x' }), redirect: 'manual' });
  t.is(r.status, 303);
  t.is(r.headers.get('set-cookie'), null);
});

test('web: the file list shows hardlink groups, holes and xattrs', async (t) => {
  const etc = await (await get('/ui/tree/debian%2F12%2Fbase/etc')).text();
  t.regex(etc, /hostname\.link<\/a><\/td><td class="details"><span class="hardlink">hardlink: etc\/hostname<\/span>/);
  if (HAVE_SETFATTR) t.regex(etc, /os-release<\/a><\/td><td class="details"><span class="xattrs" title="user.viva">xattrs: user.viva<\/span>/);
  const v = await (await get('/ui/tree/debian%2F12%2Fbase/var')).text();
  t.regex(v, /sparse\.img<\/a><\/td><td class="details"><span class="holes">1 hole<\/span>/);
  const file = await (await get('/ui/tree/debian%2F12%2Fbase/etc/os-release')).text();
  if (HAVE_SETFATTR) t.regex(file, /<code>user\.viva<\/code> = <code>bGFiZWw=<\/code>/);
});

(haveMke2fs() ? test : test.skip)('web: a disk commit shows its partition layout first, each file system linking to its tree', async (t) => {
  const dir = tmpDir(t);
  const tree = path.join(dir, 'rootfs');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc/hostname'), 'disk\n');
  const disk = path.join(dir, 'disk.raw');
  makeMbrDisk(disk, 16, [{ start: 2048, sectors: 16384, type: 0x83, ext4Tree: tree }]);
  const lib = path.join(dir, 'lib');
  await vivaOk(t, ['init', lib]);
  await vivaOk(t, ['commit', '-C', lib, disk, '-b', 'vm/web', '-m', 'a disk']);
  const w = await startWeb(lib);
  t.teardown(() => w.close());
  const root = await (await fetch(`${w.url}/ui/tree/vm%2Fweb`)).text();
  const layout = root.indexOf('<section class="disk">');
  t.true(layout > 0 && layout < root.indexOf('<table class="list files">'), 'the layout comes before the file list');
  t.regex(root, /<a href="\/ui\/tree\/vm%2Fweb\/p1">p1<\/a>/);
  t.regex(root, /ext4/);
  t.deepEqual(await (await fetch(`${w.url}/api/tree/vm%2Fweb/p1/etc`)).json(), await vivaJson(t, ['ls', 'vm/web:p1/etc', '-C', lib]));
  const file = await (await fetch(`${w.url}/ui/tree/vm%2Fweb/p1/etc/hostname`)).text();
  t.regex(file, /<pre class="text">disk\n<\/pre>/);
});

test('web: viva serve --help points to the web view', async (t) => {
  const r = await viva(['serve', '--help']);
  t.is(r.code, 0);
  t.regex(r.stdout, /open http:\/\/HOST:PORT\/ in a browser/);
});

test('web: a history of 61 commits is paged, 50 a page, newest first, with an older link', async (t) => {
  const dir = tmpDir(t);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'n'), '0\n');
  const repo = Repository.init(path.join(dir, 'lib'));
  await commit(repo, { source: src, branch: 'long', message: 'commit 0', time: 1_700_000_000 });
  for (let i = 1; i <= 60; i++) await derive(repo, { base: 'long', branch: 'long', message: `commit ${i}`, edits: [{ op: 'set', path: 'n', data: Buffer.from(`${i}\n`) }], time: 1_700_000_000 + i });
  const w = await startWeb(repo);
  t.teardown(async () => { await w.close(); await repo.close(); });
  const p1 = await fetch(`${w.url}/api/log/long`);
  const e1 = await p1.json() as Array<{ message: string }>;
  t.is(e1.length, 50);
  t.is(e1[0]!.message, 'commit 60');
  t.regex(p1.headers.get('link')!, /<\/api\/log\/long\?page=2>; rel="next"/);
  const p2 = await fetch(`${w.url}/api/log/long?page=2`);
  t.deepEqual((await p2.json() as Array<{ message: string }>).map((e) => e.message), Array.from({ length: 11 }, (_, i) => `commit ${10 - i}`));
  t.is(p2.headers.get('x-total-count'), '61');
  t.notRegex(p2.headers.get('link')!, /rel="next"/);
  const html = await (await fetch(`${w.url}/ui/log/long`)).text();
  t.regex(html, /<a rel="next" href="\/ui\/log\/long\?page=2">older →<\/a>/);
  t.is((html.match(/<svg class="lanes"/g) ?? []).length, 50);
});
