/**
 * The web view in headless Chromium (Debian's chromium, driven by puppeteer-core; one browser for the file): every
 * page loads without a console error, links navigate, compare shows the right changes, find returns the right images,
 * hostile file names are shown as text and never run, the storage charts draw, the login form works; a screenshot of
 * every page is kept in test/artifacts/web/.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { quotePath } from '../../src/index.js';
import { tmpDir } from '../helpers/cli.js';
import { ARTIFACTS, CHROMIUM, HAVE_CHROMIUM, HOSTILE, buildFixture, startWeb, type Fixture } from './fixture.js';

const browserTest = HAVE_CHROMIUM ? test.serial : test.serial.skip;

let fx: Fixture;
let web: Awaited<ReturnType<typeof startWeb>>;
let browser: Browser;

test.before(async (t) => {
  if (!HAVE_CHROMIUM) return;
  fx = await buildFixture(t);
  web = await startWeb(fx.lib);
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});
test.after.always(async () => {
  await browser?.close();
  await web?.close();
  if (fx) fs.rmSync(fx.dir, { recursive: true, force: true });
});

/** A new page whose console errors, page errors, failed requests and dialogs are collected. */
async function open(): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${(e as Error).message}`));
  page.on('requestfailed', (r) => errors.push(`requestfailed: ${r.url()}`));
  page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); void d.dismiss(); });
  return { page, errors };
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: false });
}

const PAGES: Array<[string, string]> = [
  ['namespace', '/'],
  ['history', '/ui/log/customers%2Facme%2Fweb-prod'],
  ['history-merge', '/ui/log/team%2Fboth'],
  ['commit', '/ui/commit/customers%2Facme%2Fweb'],
  ['tree', '/ui/tree/debian%2F12%2Fbase/etc'],
  ['tree-root', '/ui/tree/debian%2F12%2Fbase'],
  ['file-text', '/ui/tree/debian%2F12%2Fbase/etc/os-release'],
  ['file-binary', '/ui/tree/debian%2F12%2Fbase/bin/tool'],
  ['compare', '/ui/compare?a=debian%2F12%2Fbase&b=debian%2F12%2Fbase2'],
  ['compare-form', '/ui/compare'],
  ['search', '/ui/search?q=acme'],
  ['find', '/ui/find?package=openssl&version=%3C3.0.13'],
  ['derivations', '/ui/derivations'],
  ['storage', '/ui/storage'],
  ['packages', '/ui/packages/debian%2F12%2Fbase2'],
];

browserTest('web in chromium: every page loads without console errors (screenshots kept)', async (t) => {
  const { page, errors } = await open();
  for (const [name, p] of PAGES) {
    const r = await page.goto(`${web.url}${p}`, { waitUntil: 'load' });
    t.is(r?.status(), 200, p);
    t.truthy(await page.$('link[rel=stylesheet]'), p);
    // The style sheet applied: the header bar is dark (CSS loaded under the CSP).
    t.is(await page.$eval('header.top', (e) => getComputedStyle(e).backgroundColor), 'rgb(36, 41, 47)', p);
    await shot(page, name);
  }
  t.deepEqual(errors, []);
  await page.close();
});

browserTest('web in chromium: links navigate from the namespace to history, commit, files and a file', async (t) => {
  const { page, errors } = await open();
  await page.goto(`${web.url}/`, { waitUntil: 'load' });
  const click = async (selector: string) => { await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]); };
  await click('a.name[href="/ui/log/debian%2F12%2Fbase2"]');
  t.is(new URL(page.url()).pathname, '/ui/log/debian%2F12%2Fbase2');
  t.regex(await page.$eval('table.log', (e) => e.textContent ?? ''), /base2: motd, curl, openssl upgrade/);
  await click('table.log td.subject a');
  t.regex(new URL(page.url()).pathname, /^\/ui\/commit\/[0-9a-f]{64}$/);
  await click('p.actions a[href^="/ui/tree/"]');
  t.regex(await page.$eval('table.files', (e) => e.textContent ?? ''), /etc\//);
  await click('table.files a[href$="/etc"]');
  await click('table.files a[href$="/etc/motd"]');
  t.is(await page.$eval('pre.text', (e) => e.textContent), 'welcome to base2\n');
  t.truthy(await page.$('a[download]'));
  // The filter box narrows the branch tree as one types (the client script).
  await page.goto(`${web.url}/`, { waitUntil: 'load' });
  await page.type('#filter', 'prod');
  const visible = await page.$$eval('li.ref', (els) => els.filter((e) => !(e as HTMLElement).hidden).map((e) => e.querySelector('a.name')!.getAttribute('href')));
  t.deepEqual(visible, ['/ui/log/customers%2Facme%2Fweb-prod']);
  // It matches the branch names, not the links around them ('ui' is in every link, in no name).
  await page.click('#filter', { count: 3 });
  await page.type('#filter', 'ui');
  t.is(await page.$$eval('li.ref', (els) => els.filter((e) => !(e as HTMLElement).hidden).length), 0);
  // Picking A and B in the namespace opens their comparison.
  await page.goto(`${web.url}/`, { waitUntil: 'load' });
  await page.click('input[name=a][value="debian/12/base"]');
  await page.click('input[name=b][value="debian/12/base2"]');
  await click('form.namespace button');
  t.is(new URL(page.url()).pathname, '/ui/compare');
  t.is(new URL(page.url()).searchParams.get('b'), 'debian/12/base2');
  t.deepEqual(errors, []);
  await page.close();
});

browserTest('web in chromium: compare shows the changed entries, their attributes, text hunks and the package diff', async (t) => {
  const { page, errors } = await open();
  await page.goto(`${web.url}/ui/compare?a=debian%2F12%2Fbase&b=debian%2F12%2Fbase2`, { waitUntil: 'load' });
  const rows = await page.$$eval('table.diff tbody tr', (trs) => trs.map((tr) => `${tr.querySelector('.status')!.textContent} ${tr.querySelector('.name')!.textContent!.trim()}`));
  t.true(rows.includes('A etc/motd'), rows.join('\n'));
  t.true(rows.includes('D bin/tool'), rows.join('\n'));
  t.true(rows.some((r) => /^M etc\/hostname \[content/.test(r)), rows.join('\n'));
  t.true(rows.some((r) => /^M var\/lib\/dpkg\/status/.test(r)));
  t.false(rows.some((r) => r.includes('os-release')), 'unchanged files are not listed');
  const packages = await page.$$eval('table.packages tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 4).map((td) => td.textContent!.trim()).join(' ').trim()));
  t.deepEqual(packages.sort(), ['added curl amd64  7.88.1-10', 'upgraded openssl amd64 3.0.11-1~deb12u2 3.0.13-1~deb12u1']);
  const hunks = await page.$$eval('pre.patch', (ps) => ps.map((p) => p.textContent ?? ''));
  t.true(hunks.some((h) => h.includes('-base\n') && h.includes('+base2\n')), hunks.join('\n---\n'));
  await shot(page, 'compare-full');
  t.deepEqual(errors, []);
  await page.close();
});

browserTest('web in chromium: find by pasted checksums and by package version returns the right images', async (t) => {
  const { page, errors } = await open();
  await page.goto(`${web.url}/ui/find`, { waitUntil: 'load' });
  await page.type('textarea[name=sha256]', `${fx.motdSum}  etc/motd\n`);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('form.find button')]);
  const refs = await page.$$eval('table.hits tbody tr td:first-child', (tds) => tds.map((td) => td.textContent));
  t.deepEqual(refs, ['debian/12/base2']);
  await page.goto(`${web.url}/ui/find?package=openssl&version=%3C3.0.13`, { waitUntil: 'load' });
  const old = await page.$$eval('table.hits tbody tr', (trs) => trs.map((tr) => `${tr.children[0]!.textContent} ${tr.children[2]!.textContent!.trim()}`));
  t.deepEqual(old.sort(), ['customers/acme/web', 'customers/acme/web-prod', 'debian/12/base', 'team/a', 'team/b', 'team/both'].map((r) => `${r} openssl 3.0.11-1~deb12u2 amd64`));
  await page.goto(`${web.url}/ui/search?q=acme+prod`, { waitUntil: 'load' });
  t.regex(await page.$eval('table.hits tbody tr td:nth-child(2)', (e) => e.textContent ?? ''), /customers\/acme\/web-prod/);
  t.deepEqual(errors, []);
  await page.close();
});

browserTest('web in chromium: hostile and non-UTF-8 file names are shown as text, never run, and their links round-trip', async (t) => {
  const { page, errors } = await open();
  await page.goto(`${web.url}/ui/tree/debian%2F12%2Fbase`, { waitUntil: 'load' });
  const names = await page.$$eval('table.files td.name a', (as) => as.map((a) => a.textContent));
  t.true(names.includes(quotePath(HOSTILE)), names.join('\n'));
  t.is(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
  t.is(await page.$$eval('img', (imgs) => imgs.length), 0, 'no element was made from the name');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('table.files td.name a[href*="%3Cimg"]')]);
  t.is(await page.$eval('pre.text', (e) => e.textContent), 'hostile\n');
  t.is(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
  await shot(page, 'hostile-file');
  await page.goto(`${web.url}/ui/tree/debian%2F12%2Fbase/etc`, { waitUntil: 'load' });
  const quoted = await page.$$eval('table.files td.name a', (as) => as.filter((a) => a.textContent === '"caf\\377"').map((a) => a.getAttribute('href')));
  t.deepEqual(quoted, ['/ui/tree/debian%2F12%2Fbase/etc/caf%FF']);
  await shot(page, 'tree-etc');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('table.files a[href$="caf%FF"]')]);
  t.is(await page.$eval('pre.text', (e) => e.textContent), 'non-utf8\n');
  t.regex(await page.$eval('dl.meta', (e) => e.textContent ?? ''), /etc\/"caf\\377"|"etc\/caf\\377"/);
  await shot(page, 'file-non-utf8');
  t.deepEqual(errors, []);
  await page.close();
});

browserTest('web in chromium: the derivation graph links each node, the history draws its lanes, storage draws its charts', async (t) => {
  const { page, errors } = await open();
  await page.goto(`${web.url}/ui/derivations`, { waitUntil: 'load' });
  const nodes = await page.$$eval('svg.derivations a.node', (as) => as.map((a) => a.getAttribute('href')).sort());
  t.deepEqual(nodes, ['customers%2Facme%2Fweb', 'customers%2Facme%2Fweb-prod', 'debian%2F12%2Fbase', 'team%2Fa', 'team%2Fb', 'team%2Fboth'].map((n) => `/ui/log/${n}`));
  // One arrow per derived branch, as `viva derivations` lists them, and a merge has one from each side.
  const graph = await (await fetch(`${web.url}/api/derivations`)).json() as { edges: unknown[] };
  t.is(graph.edges.length, 5);
  t.is(await page.$$eval('svg.derivations path.edge', (p) => p.length), graph.edges.length + 1);
  const labels = await page.$$eval('svg.derivations text.edge-label', (ts) => ts.map((x) => x.textContent).sort());
  t.deepEqual(labels, ['1 edit', '1 edit', '1 edit', '1 edit', 'merge', 'merge']);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('svg.derivations a.node[href="/ui/log/customers%2Facme%2Fweb-prod"]')]);
  t.is(new URL(page.url()).pathname, '/ui/log/customers%2Facme%2Fweb-prod');
  // web-prod was derived from web, which was derived from base: the dashed edges lead there.
  t.true(await page.$$eval('svg.lanes path.derived', (p) => p.length) >= 2);
  // A merge opens a second lane for its second parent, which joins again at the fork.
  await page.goto(`${web.url}/ui/log/team%2Fboth`, { waitUntil: 'load' });
  const widths = await page.$$eval('svg.lanes', (svgs) => svgs.map((s) => Number(s.getAttribute('width'))));
  t.true(widths.every((w) => w === 28), widths.join(' '));
  t.is(await page.$$eval('table.log tr', (trs) => trs.length), 4, 'the merge, both layers, and base');
  await shot(page, 'history-merge');
  await page.goto(`${web.url}/ui/storage`, { waitUntil: 'load' });
  t.is(await page.$$eval('.chart .uplot canvas', (c) => c.length), 2);
  await shot(page, 'storage-charts');
  t.deepEqual(errors, []);
  await page.close();
});

browserTest('web in chromium: a server with a token shows the login page, and the login cookie opens the pages', async (t) => {
  const dir = tmpDir(t);
  const token = path.join(dir, 'token');
  fs.writeFileSync(token, 'tok-browser\n');
  const w = await startWeb(web.repo, token);
  t.teardown(() => w.close());
  const { page, errors } = await open();
  const r = await page.goto(`${w.url}/ui/derivations`, { waitUntil: 'load' });
  t.is(r?.status(), 401);
  await shot(page, 'login');
  await page.type('input[name=token]', 'tok-browser');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('form.login button')]);
  t.is(new URL(page.url()).pathname, '/ui/derivations');
  t.truthy(await page.$('svg.derivations'));
  const cookies = await page.cookies();
  t.like(cookies.find((c) => c.name === 'viva_token'), { httpOnly: true, sameSite: 'Strict' });
  // The 401 of the first visit is the only "error" the console may show (Chromium logs failed loads).
  t.deepEqual(errors.filter((e) => !/401/.test(e)), []);
  await page.close();
});
