/**
 * `--json` output checked against docs/schemas/<command>.schema.json: every command with a JSON result runs on a
 * small real repository (and a clone of it, a git export, packages built with dpkg-deb) and its output must validate
 * against its strict schema (no undocumented field). The committed schemas must equal freshly generated ones, so the
 * docs cannot drift from the result types they are generated from.
 */
import test from 'ava';
import { Ajv, type ValidateFunction } from 'ajv';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { viva, tmpDir } from '../helpers/cli.js';
import { isRoot, writeTree } from '../helpers/repo.js';
import { haveMke2fs, makeMbrDisk } from '../helpers/mbr-disk.js';
import { buildDeb, scanPackages } from '../helpers/debs.js';
import { debianRoot, debianRootAvailable } from '../helpers/debian-root.js';
import { SCHEMA_DIR, generateSchemas, jsonCommands, schemaText } from '../helpers/json-schemas.js';

const haveDpkgDeb = spawnSync('sh', ['-c', 'command -v dpkg-deb'], { stdio: 'ignore' }).status === 0;
const haveDebianRoot = debianRootAvailable && fs.readFileSync('/proc/filesystems', 'utf8').includes('overlay')
  && spawnSync('sh', ['-c', 'command -v setpriv && command -v unshare'], { stdio: 'ignore' }).status === 0;
const haveGit = spawnSync('git', ['--version'], { stdio: 'ignore' }).status === 0;

/** A dpkg database that knows dpkg itself (its architecture is the image's). */
const DPKG_STATUS = 'Package: dpkg\nStatus: install ok installed\nPriority: required\nSection: admin\nInstalled-Size: 6000\nMaintainer: Dpkg Developers <debian-dpkg@lists.debian.org>\nArchitecture: amd64\nVersion: 1.21.22\nDescription: Debian package management system\n\n';

/** One `viva … --json` run: the command's schema name, its arguments, and what it printed on stdout. */
interface JsonRun {
  name: string;
  args: string[];
  stdout: string;
}

/**
 * Runs the commands of a small session, each with --json, and keeps what they print. `expect` is the exit code a
 * run must end with (grep's 1 for no match, merge's 1 for conflicts: the document is printed all the same).
 */
async function session(dir: string): Promise<JsonRun[]> {
  const runs: JsonRun[] = [];
  const repo = path.join(dir, 'repo');
  const run = async (name: string, args: string[], options: { expect?: number } = {}): Promise<void> => {
    const dd = args.indexOf('--');
    // --json after `--` would be a path: it goes before it.
    const r = await viva(dd < 0 ? [...args, '--json'] : [...args.slice(0, dd), '--json', ...args.slice(dd)]);
    if (r.code !== (options.expect ?? 0)) throw new Error(`viva ${args.join(' ')} --json exited ${r.code}: ${r.stderr}`);
    runs.push({ name, args, stdout: r.stdout });
  };
  const C = ['-C', repo];

  const src = path.join(dir, 'src');
  writeTree(src, {
    etc: { hostname: 'one\n', 'os-release': 'ID=test\nVERSION_ID=1\n', ssh: { sshd_config: 'PermitRootLogin no\n' } },
    usr: { share: { doc: { 'README.txt': 'hello world\nsecond line\n' } } },
    var: { lib: { dpkg: { status: DPKG_STATUS, info: { 'dpkg.list': '/.\n/usr\n/usr/bin\n/usr/bin/dpkg\n' }, updates: {} } } },
  });
  fs.symlinkSync('../etc/hostname', path.join(src, 'usr/hostname-link'));
  // The optional fields of an entry: a hard link, a sparse file, a binary file, a FIFO, an xattr, a device node.
  fs.linkSync(path.join(src, 'etc/os-release'), path.join(src, 'usr/os-release-hardlink'));
  fs.writeFileSync(path.join(src, 'usr/sparse'), 'head');
  fs.truncateSync(path.join(src, 'usr/sparse'), 8 << 20);
  fs.writeFileSync(path.join(src, 'usr/binary'), Buffer.from([0, 1, 2, 255, 254]));
  spawnSync('mkfifo', [path.join(src, 'usr/fifo')]);
  spawnSync('setfattr', ['-n', 'user.viva', '-v', 'yes', path.join(src, 'etc/hostname')]);
  if (isRoot) spawnSync('mknod', [path.join(src, 'usr/null'), 'c', '1', '3']);
  const src2 = path.join(dir, 'src2');
  spawnSync('cp', ['-a', src, src2]);
  fs.writeFileSync(path.join(src2, 'etc/hostname'), 'two\n');
  fs.writeFileSync(path.join(src2, 'etc/motd'), 'welcome\n');

  await run('init', ['init', repo]);
  await run('commit', ['commit', src, '-b', 'main', '-m', 'first', ...C]);
  await run('commit', ['commit', src2, '-b', 'main', '-m', 'second', ...C]);
  await run('derive', ['derive', 'main', '-b', 'feature', '--set', 'etc/feature=on\n', '--chmod', '0600:etc/feature', ...C]);
  const batch = path.join(dir, 'batch.yaml');
  fs.writeFileSync(batch, 'base: main\nvariants:\n  - branch: fleet/web-{n}\n    count: 2\n    edits:\n      - generate: hostname\n');
  await run('derive', ['derive', '--batch', batch, ...C]);
  await run('derivations', ['derivations', ...C]);
  await run('rebuild', ['rebuild', 'feature', '--onto', 'main~1', '-n', ...C]);
  await run('switch', ['switch', 'main', ...C]);
  await run('switch', ['switch', '-c', 'topic', 'main~1', ...C]);
  await run('derive', ['derive', 'topic', '-b', 'topic', '--set', 'etc/topic=t\n', ...C]);
  await run('switch', ['switch', 'main', ...C]);
  await run('merge', ['merge', 'main', 'feature', ...C]);
  await run('merge', ['merge', 'main', 'topic', '-m', 'merge topic', ...C]);
  await run('merge-base', ['merge-base', 'main', 'topic', ...C]);
  await run('merge-base', ['merge-base', '--all', 'main', 'feature', ...C]);

  // Two branches that change one file differently: a merge with conflicts (exit 1, the conflicts as data).
  await run('derive', ['derive', 'main', '-b', 'left', '--set', 'etc/conflict=left\n', ...C]);
  await run('derive', ['derive', 'main', '-b', 'right', '--set', 'etc/conflict=right\n', ...C]);
  await run('merge', ['merge', 'left', 'right', ...C], { expect: 1 });
  await run('merge', ['merge', 'main', 'main~1', ...C]);

  await run('log', ['log', ...C]);
  await run('log', ['log', '--graph', '--all', ...C]);
  await run('log', ['log', '--stat', '-p', '-n', '3', ...C]);
  await run('log', ['log', '--all', ...C, '--', 'etc/hostname']);
  await run('whatchanged', ['whatchanged', 'etc/hostname', ...C]);
  await run('show', ['show', 'main', ...C]);
  await run('show', ['show', 'feature', ...C]);
  await run('diff', ['diff', 'main~1', 'main', ...C]);
  await run('diff', ['diff', '-p', 'main~1', 'main', ...C]);
  await run('diff', ['diff', 'main', src, ...C]);
  await run('diff', ['diff', '--stat', 'main~1', 'main', ...C]);
  await run('diff', ['diff', '--exit-code', 'main', 'main', ...C]);
  await run('ls', ['ls', 'main', ...C]);
  await run('ls', ['ls', '-r', '-l', 'main:etc', ...C]);
  await run('cat', ['cat', 'main:etc/hostname', ...C]);
  await run('cat', ['cat', 'main:usr/binary', ...C]);
  await run('cat', ['cat', 'main:usr/sparse', ...C]);
  await run('ls', ['ls', '-l', 'main:usr', ...C]);
  await run('find', ['find', '--name', 'host*', ...C]);
  await run('find', ['find', '--name', 'no-such-name', ...C]);
  await run('find', ['find', '--sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '--sha256', '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', ...C]);
  await run('search', ['search', 'hostname', ...C]);
  await run('grep', ['grep', 'world', 'main', ...C]);
  await run('grep', ['grep', '-l', '-i', 'ID', 'main', ...C]);
  await run('grep', ['grep', 'no such text', 'main', ...C], { expect: 1 });
  await run('stats', ['stats', ...C]);
  await run('stats', ['stats', 'main', ...C]);
  await run('du', ['du', 'main', ...C]);
  await run('packages', ['packages', 'main', ...C]);
  await run('packages', ['packages', 'main:etc', ...C]);

  await run('branch', ['branch', 'extra', 'main', ...C]);
  await run('branch', ['branch', ...C]);
  await run('branch', ['branch', '-v', ...C]);
  await run('tag', ['tag', 'v1', 'main', ...C]);
  await run('tag', ['tag', ...C]);
  await run('reflog', ['reflog', 'main', ...C]);
  await run('reflog', ['reflog', ...C]);
  await run('rev-parse', ['rev-parse', 'main', 'HEAD', '--abbrev-ref', ...C]);
  await run('rev-parse', ['rev-parse', 'main~1', ...C]);
  await run('rev-parse', ['rev-parse', '--symbolic-full-name', 'main', '^main~1', ...C]);
  await run('rev-parse', ['rev-parse', '--short', 'main..feature', ...C]);
  await run('switch', ['switch', '--detach', 'main~1', ...C]);
  await run('switch', ['switch', 'main', ...C]);
  await run('tag', ['tag', '-m', 'v1', 'v1.0', ...C]);
  await run('branch', ['branch', '-m', 'extra', 'extra2', ...C]);
  await run('branch', ['branch', '-d', 'extra2', ...C]);
  await run('show-ref', ['show-ref', ...C]);

  const out = path.join(dir, 'checkout');
  await run('checkout', ['checkout', 'main', out, ...C]);
  fs.writeFileSync(path.join(out, 'etc/hostname'), 'changed\n');
  fs.writeFileSync(path.join(out, 'etc/new'), 'new\n');
  await run('status', ['status', out, ...C]);
  await run('status', ['status', '--mtime', '--exit-code', out, ...C], { expect: 1 });
  await run('checkout', ['checkout', 'main:etc', path.join(dir, 'etc.tar'), '-f', 'tar', ...C]);
  await run('rebuild', ['rebuild', 'feature', '--onto', 'main~1', '-b', 'feature-rebuilt', ...C]);

  await run('fsck', ['fsck', ...C]);
  await run('gc', ['gc', '--dry-run', ...C]);
  await run('gc', ['gc', ...C]);
  await run('gc', ['gc', '--compact', ...C]);
  await run('index-rebuild', ['index', 'rebuild', ...C]);

  // A second repository: remotes, clone, push, fetch, pull.
  const clone = path.join(dir, 'clone');
  await run('ls-remote', ['ls-remote', repo]);
  await run('clone', ['clone', repo, clone]);
  const CC = ['-C', clone];
  await run('remote-add', ['remote', 'add', 'other', repo, ...CC]);
  await run('remote-list', ['remote', 'list', ...CC]);
  await run('remote-remove', ['remote', 'remove', 'other', ...CC]);
  await run('derive', ['derive', 'main', '-b', 'main', '--set', 'etc/cloned=yes\n', ...CC]);
  await run('push', ['push', 'origin', 'main', ...CC]);
  await run('derive', ['derive', 'main', '-b', 'main', '--set', 'etc/upstream=yes\n', ...C]);
  await run('fetch', ['fetch', ...CC]);
  await run('pull', ['pull', ...CC]);
  await run('branch', ['branch', '-a', '-v', ...CC]);
  await run('branch', ['branch', 'feature', 'origin/feature', ...CC]);
  await run('branch', ['branch', '-u', 'origin/feature', 'feature', ...CC]);
  await run('branch', ['branch', '--unset-upstream', 'feature', ...CC]);
  await run('switch', ['switch', 'topic', ...CC]);
  // Both sides move: pull merges.
  await run('derive', ['derive', 'main', '-b', 'main', '--set', 'etc/here=1\n', ...CC]);
  await run('derive', ['derive', 'main', '-b', 'main', '--set', 'etc/there=1\n', ...C]);
  await run('switch', ['switch', 'main', ...CC]);
  await run('pull', ['pull', 'origin', 'main', ...CC]);
  await run('push', ['push', '-u', 'origin', 'main', ...CC]);
  // A partial clone: manifests only, content absent until fetched.
  const partial = path.join(dir, 'partial');
  await run('clone', ['clone', '--filter', 'manifests', repo, partial]);
  await run('stats', ['stats', 'main', '-C', partial]);
  await run('fetch', ['fetch', '--content', 'main', '-C', partial]);

  // Git interop.
  if (haveGit) {
    const git = path.join(dir, 'git');
    await run('export-git', ['export-git', 'main', git, ...C]);
    await run('import-git', ['import-git', git, 'main', '-b', 'imported', ...C]);
    await run('export-git', ['export-git', 'main', git, ...C]);
    await run('export-git', ['export-git', '--manifests-only', 'main', 'feature', path.join(dir, 'manifests'), ...C]);
  }

  // Packages: a .deb built with dpkg-deb, unpacked without scripts into an image with an empty dpkg database.
  if (haveDpkgDeb) {
    const debs = path.join(dir, 'debs');
    fs.mkdirSync(debs);
    buildDeb(debs, { name: 'hello', version: '1.0-1', files: { '/usr/share/hello/greeting': 'hello\n' } });
    scanPackages(debs);
    const debs2 = path.join(dir, 'debs2');
    fs.mkdirSync(debs2);
    buildDeb(debs2, { name: 'hello', version: '2.0-1', files: { '/usr/share/hello/greeting': 'hello again\n' } });
    scanPackages(debs2);
    await run('install', ['install', 'main', 'hello', '-b', 'pkg', '--from', debs, '--no-scripts', ...C]);
    await run('upgrade', ['upgrade', 'pkg', 'hello', '-b', 'pkg', '--from', debs2, '--no-scripts', ...C]);
    await run('packages', ['packages', 'pkg', ...C]);
    await run('diff', ['diff', '--packages', 'main', 'pkg', ...C]);
    await run('find', ['find', '--package', 'hel*', '--heads', ...C]);
  }
  // remove runs dpkg in the image: that needs a real Debian root (the host's dpkg and its dependencies).
  if (haveDpkgDeb && haveDebianRoot) {
    const rootDir = path.join(dir, 'droot');
    fs.mkdirSync(rootDir);
    const { root } = debianRoot(rootDir);
    await run('commit', ['commit', root, '-b', 'droot', '-m', 'debian root', ...C]);
    await run('install', ['install', 'droot', 'hello', '-b', 'droot', '--from', path.join(dir, 'debs'), '--no-scripts', ...C]);
    await run('remove', ['remove', 'droot', 'hello', '-b', 'droot', ...C]);
  }
  if (haveDpkgDeb) await run('install', ['install', '--branches', 'fleet/*', 'hello', '--from', path.join(dir, 'debs'), '--no-scripts', ...C]);

  // A partitioned disk: an MBR with an ext4 file system that holds a dpkg database, and an unformatted partition.
  if (haveMke2fs()) {
    const fsTree = path.join(dir, 'disk-tree');
    writeTree(fsTree, { etc: { hostname: 'disk\n' }, var: { lib: { dpkg: { status: DPKG_STATUS } } } });
    const disk = path.join(dir, 'disk.raw');
    makeMbrDisk(disk, 24, [{ start: 2048, sectors: 32768, type: 0x83, ext4Tree: fsTree }, { start: 34816, sectors: 2048, type: 0x82 }]);
    await run('commit', ['commit', disk, '-b', 'disk', '-m', 'a disk', ...C]);
    await run('derive', ['derive', 'disk', '-b', 'disk', '--set', 'p1/etc/motd=on a disk\n', ...C]);
    await run('show', ['show', 'disk', ...C]);
    await run('ls', ['ls', 'disk', ...C]);
    await run('ls', ['ls', 'disk:p1/etc', ...C]);
    await run('stats', ['stats', 'disk', ...C]);
    await run('du', ['du', 'disk:p1', ...C]);
    await run('packages', ['packages', 'disk', ...C]);
    await run('diff', ['diff', 'disk~1', 'disk', ...C]);
    await run('find', ['find', '--package', 'dpkg', '--ref', 'disk', ...C]);
    await run('checkout', ['checkout', 'disk', path.join(dir, 'disk-out.raw'), '-f', 'raw', ...C]);
  }
  return runs;
}

const dir = tmpDir(undefined, 'viva-json-schema-');
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));
let sessionRuns: Promise<JsonRun[]> | undefined;
const runs = (): Promise<JsonRun[]> => (sessionRuns ??= session(dir));

const ajv = new Ajv({ strict: true, allErrors: true });
const validators = new Map<string, ValidateFunction>();
function validator(name: string): ValidateFunction {
  let v = validators.get(name);
  if (!v) {
    v = ajv.compile(JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, `${name}.schema.json`), 'utf8')));
    validators.set(name, v);
  }
  return v;
}

/** Commands the session cannot run here (a tool is missing): their schemas are still checked against the types. */
const skipped = new Set([...(haveGit ? [] : ['export-git', 'import-git']), ...(haveDpkgDeb ? [] : ['install', 'upgrade']), ...(haveDpkgDeb && haveDebianRoot ? [] : ['remove'])]);

for (const c of jsonCommands()) {
  (skipped.has(c.name) ? test.skip : test)(`json: viva ${c.id} --json matches docs/schemas/${c.name}.schema.json`, async (t) => {
    const mine = (await runs()).filter((r) => r.name === c.name);
    t.true(mine.length > 0, `the session runs no 'viva ${c.id}'`);
    const validate = validator(c.name);
    for (const r of mine) {
      let doc: unknown;
      try {
        doc = JSON.parse(r.stdout);
      } catch (e) {
        t.fail(`viva ${r.args.join(' ')} --json: stdout is not one JSON document (${(e as Error).message}): ${r.stdout.slice(0, 200)}`);
        continue;
      }
      t.true(validate(doc), `viva ${r.args.join(' ')} --json: ${ajv.errorsText(validate.errors, { separator: '\n' })}\n${JSON.stringify(doc, null, 2).slice(0, 3000)}`);
    }
  });
}

test('json: an error under --json is one document as docs/schemas/error.schema.json on stdout, the exit code unchanged', async (t) => {
  await runs();
  const repo = path.join(dir, 'repo');
  const validate = validator('error');
  const cases: Array<[string[], number, string]> = [
    [['log', 'no-such-ref', '-C', repo], 3, 'ERR_REVISION_NOT_FOUND'],
    [['log', '-C', path.join(dir, 'no-repository-here')], 10, 'ERR_NOT_A_REPOSITORY'],
    [['cat', 'main:etc', '-C', repo], 2, 'ERR_USAGE'],
    [['branch', 'main', 'main~1', '-C', repo], 12, 'ERR_REF_EXISTS'],
  ];
  for (const [args, code, errCode] of cases) {
    const plain = await viva(args);
    const r = await viva([...args, '--json']);
    t.not(r.code, 0, `viva ${args.join(' ')} --json`);
    t.is(r.code, plain.code, `viva ${args.join(' ')}: the same exit code with and without --json`);
    if (code) t.is(r.code, code, `viva ${args.join(' ')}`);
    t.regex(r.stderr, /^error: /m);
    const doc = JSON.parse(r.stdout) as { error: { code: string } };
    t.true(validate(doc), `viva ${args.join(' ')} --json: ${ajv.errorsText(validate.errors)}`);
    t.regex(doc.error.code, /^ERR_[A-Z_]+$/);
    if (errCode) t.is(doc.error.code, errCode);
  }
});

test('json: the committed schemas in docs/schemas equal the ones generated from the result types (npm run docs:schemas)', (t) => {
  const fresh = generateSchemas();
  const committed = fs.readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.schema.json')).sort();
  t.deepEqual(committed, [...fresh.keys()].map((n) => `${n}.schema.json`).sort());
  for (const [name, schema] of fresh) {
    t.is(fs.readFileSync(path.join(SCHEMA_DIR, `${name}.schema.json`), 'utf8'), schemaText(schema), `docs/schemas/${name}.schema.json is stale: run npm run docs:schemas`);
  }
});

test('json: the schemas are strict: every object schema forbids fields its type does not declare', (t) => {
  for (const f of fs.readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.schema.json'))) {
    const loose: string[] = [];
    const walk = (s: unknown, at: string): void => {
      if (Array.isArray(s)) { s.forEach((x, i) => walk(x, `${at}/${i}`)); return; }
      if (!s || typeof s !== 'object') return;
      const o = s as Record<string, unknown>;
      // An index signature in the type (`[field: string]: unknown`) gives a schema here: open by declaration.
      if (o.type === 'object' && o.properties && (o.additionalProperties === undefined || o.additionalProperties === true)) loose.push(at);
      for (const [k, v] of Object.entries(o)) walk(v, `${at}/${k}`);
    };
    walk(JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, f), 'utf8')), '#');
    t.deepEqual(loose, [], `${f}: objects without additionalProperties: false`);
  }
});

test('json: a field the type does not declare, or a missing required one, fails validation', async (t) => {
  const log = (await runs()).find((r) => r.name === 'log');
  t.truthy(log);
  const entries = JSON.parse(log!.stdout) as Array<Record<string, unknown>>;
  t.true(entries.length > 0);
  const validate = validator('log');
  t.true(validate(entries));
  t.false(validate([{ ...entries[0], undocumented: 1 }]));
  const { id: _id, ...withoutId } = entries[0]!;
  t.false(validate([withoutId]));
  t.false(validate([{ ...entries[0], time: String(entries[0]!.time) }]));
});
