/**
 * viva used as a dependency of another package: a project whose node_modules/viva is this checkout (as `npm install
 * ../viva` or a `file:` dependency leaves it) imports the library by name from JavaScript, and type-checks TypeScript
 * against the built declarations.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, cleanEnv, tmpDir } from '../helpers/cli.js';

const run = promisify(execFile);
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/** The ops the library promises by name (docs/library.md lists them). */
const OPS = [
  'commit', 'checkout', 'diff', 'log', 'show', 'merge', 'mergeContinue', 'mergeBase', 'derive', 'deriveBatch', 'rebuild',
  'install', 'upgrade', 'remove', 'packageOp', 'status', 'readHostSide', 'exportGit', 'importGit', 'push', 'fetch',
  'clone', 'pull', 'gc', 'fsck', 'find', 'search', 'grep', 'imageStats', 'repositoryStats', 'ls', 'cat', 'listBranches',
  'createRef', 'deleteRef', 'renameBranch', 'switchBranch', 'init',
];

/** A consumer project in a temporary directory: package.json depending on viva, node_modules/viva → this checkout. */
function consumer(t: Parameters<typeof tmpDir>[0]): string {
  const dir = tmpDir(t, 'viva-consumer-');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { viva: `file:${ROOT}` } }));
  fs.mkdirSync(path.join(dir, 'node_modules/@types'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules/viva'));
  fs.symlinkSync(path.join(ROOT, 'node_modules/@types/node'), path.join(dir, 'node_modules/@types/node'));
  return dir;
}

async function node(dir: string, script: string): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, [script], { cwd: dir, env: cleanEnv(), timeout: 100_000 });
    return { ...r, code: 0 };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { stdout: x.stdout ?? '', stderr: x.stderr ?? '', code: x.code ?? -1 };
  }
}

test('package: another project imports the ops from \'viva\' and uses them', async (t) => {
  const dir = consumer(t);
  fs.writeFileSync(path.join(dir, 'main.mjs'), `
import fs from 'node:fs';
import * as viva from 'viva';
const { Repository, commit, log, VivaError, RevisionNotFoundError } = viva;
const missing = ${JSON.stringify(OPS)}.filter((name) => typeof viva[name] !== 'function');
if (missing.length) throw new Error('not exported: ' + missing.join(', '));
fs.mkdirSync('rootfs/etc', { recursive: true });
fs.writeFileSync('rootfs/etc/hostname', 'consumer\\n');
const repo = Repository.init('repo');
try {
  const r = await commit(repo, { source: 'rootfs', message: 'from a consumer' });
  console.log('log', log(repo).map((e) => e.message).join(','), r.id === log(repo)[0].id);
  try { log(repo, { rev: 'nope' }); } catch (e) { console.log('error', e instanceof VivaError && e instanceof RevisionNotFoundError, e.code); }
} finally {
  await repo.close();
}
`);
  const r = await node(dir, 'main.mjs');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^log from a consumer true$/m);
  t.regex(r.stdout, /^error true ERR_REVISION_NOT_FOUND$/m);
});

test('package: only the entry point is exported (internals are not importable by path)', async (t) => {
  const dir = consumer(t);
  fs.writeFileSync(path.join(dir, 'deep.mjs'), `
try { await import('viva/dist/src/store/lmdb-store.js'); console.log('imported'); } catch (e) { console.log(e.code); }
const pkg = (await import('viva/package.json', { with: { type: 'json' } })).default;
console.log(pkg.name);
`);
  const r = await node(dir, 'deep.mjs');
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'ERR_PACKAGE_PATH_NOT_EXPORTED\nviva\n');
});

test('package: TypeScript type-checks against the built declarations (not any)', async (t) => {
  const dir = consumer(t);
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
    files: ['check.ts'],
  }));
  fs.writeFileSync(path.join(dir, 'check.ts'), `
import { Repository, commit, derive, diff, merge, install, checkout, log, VivaError, AbortedError, type CommitResult, type DiffEntry, type MergeOpResult, type PackageOpResult, type ProgressEvent } from 'viva';

export async function demo(dir: string): Promise<void> {
  const repo = Repository.open(dir, 'write');
  try {
    const events: ProgressEvent[] = [];
    const c: CommitResult = await commit(repo, { source: '/srv/rootfs', branch: 'web/base', message: 'base', onProgress: (e) => events.push(e), signal: AbortSignal.timeout(60_000) });
    const d = await derive(repo, { base: c.id, branch: 'web/main', edits: [{ op: 'set', path: 'etc/hostname', data: Buffer.from('web') }] });
    const entries: DiffEntry[] = diff(repo, { a: 'web/base', b: d.id }).entries;
    const m: MergeOpResult = await merge(repo, { a: 'web/main', b: 'web/base' });
    const p: PackageOpResult = await install(repo, { base: 'web/main', branch: 'web/tools', packages: ['htop'], from: ['/srv/debs'] });
    await checkout(repo, { rev: 'web/main', dest: '/tmp/out' });
    const messages: string[] = log(repo, { rev: 'web/main' }).map((e) => e.message);
    // The declarations are precise: each of these lines must be an error.
    // @ts-expect-error status is a union of string literals
    const n: number = m.status;
    // @ts-expect-error unknown option
    await commit(repo, { source: '/srv', message: 'x', nosuchoption: true });
    // @ts-expect-error message is required
    await commit(repo, { source: '/srv' });
    console.log(entries.length, p.done, messages, n, events.length);
  } catch (e) {
    if (e instanceof AbortedError) return;
    if (e instanceof VivaError) console.log(e.code, e.data);
    throw e;
  } finally {
    await repo.close();
  }
}
`);
  let out = '';
  try {
    await run(process.execPath, [TSC, '-p', dir], { cwd: dir, env: cleanEnv(), timeout: 100_000 });
  } catch (e) {
    out = `${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}` || String(e);
  }
  t.is(out, '');
  // A user's mistake is caught: the same file with a wrong option name fails to type-check.
  fs.writeFileSync(path.join(dir, 'check.ts'), `import { derive, Repository } from 'viva';\nawait derive(Repository.open('.'), { base: 'a', branch: 'b', edit: [] });\nexport {};\n`);
  const failed = await run(process.execPath, [TSC, '-p', dir], { cwd: dir, env: cleanEnv(), timeout: 100_000 }).then(() => '', (e: { stdout?: string }) => e.stdout ?? '');
  t.regex(failed, /check\.ts\(2,.*'edit' does not exist in type 'DeriveOptions'/);
});

test('package: the TypeScript examples of docs/library.md type-check against the built declarations', async (t) => {
  const dir = consumer(t);
  const names = Object.keys(await import('../../src/index.js'));
  const doc = fs.readFileSync(path.join(ROOT, 'docs/library.md'), 'utf8');
  const blocks = [...doc.matchAll(/```ts\n([^]*?)```/g)].map((m) => m[1]!);
  t.true(blocks.length >= 4);
  const files = blocks.map((code, i) => {
    // Each block as a module of its own, with what it uses from 'viva' imported and `repo` declared unless it does so.
    const imported = new Set([...code.matchAll(/import (?:type )?\{([^}]*)\} from 'viva'/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim().replace(/^type /, ''))));
    const used = names.filter((n) => !imported.has(n) && new RegExp(`\\b${n}\\b`).test(code));
    const preamble = [
      used.length ? `import { ${used.join(', ')} } from 'viva';` : '',
      /\bconst repo\b/.test(code) ? '' : `import type { Repository as Repo } from 'viva';\ndeclare const repo: Repo;`,
    ].join('\n');
    const file = `doc-${i}.ts`;
    fs.writeFileSync(path.join(dir, file), `${preamble}\n${code}\nexport {};\n`);
    return file;
  });
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
    files,
  }));
  const out = await run(process.execPath, [TSC, '-p', dir], { cwd: dir, env: cleanEnv(), timeout: 100_000 }).then(() => '', (e: { stdout?: string }) => e.stdout ?? String(e));
  t.is(out, '');
});
