/**
 * The store's boundary, checked on the source (the rule a linter's `no-restricted-syntax` would state): outside
 * src/store only the interfaces are reached — `repo.objects`, `repo.index`, `repo.refs`, ... — never the LMDB
 * environment (`repo.store` is gone, and nothing outside src/store imports or names `LmdbStore`). Tests that damage a
 * repository on purpose reach LMDB through test/helpers/lmdb.ts.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { ROOT } from '../helpers/cli.js';

/** Every .ts file under `dir` (relative to the repository root), except declaration files. */
function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, d), { withFileTypes: true })) {
      const rel = path.join(d, e.name);
      if (e.isDirectory()) { if (e.name !== 'node_modules' && e.name !== 'build') walk(rel); } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
    }
  };
  walk(dir);
  return out;
}

/** `file:line: text` of each node in `file` that `bad` flags. */
function offences(file: string, bad: (n: ts.Node) => string | undefined): string[] {
  const src = ts.createSourceFile(file, fs.readFileSync(path.resolve(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    const why = bad(n);
    if (why) out.push(`${file}:${src.getLineAndCharacterOfPosition(n.getStart(src)).line + 1}: ${why}`);
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

/** An expression that names a repository: `repo`, `this.repo`, `s.repo`, ... */
function isRepoExpression(e: ts.Expression): boolean {
  return (ts.isIdentifier(e) && e.text === 'repo') || (ts.isPropertyAccessExpression(e) && e.name.text === 'repo');
}

test('boundaries: outside src/store nothing reaches a repository\'s LMDB environment as `repo.store`', (t) => {
  const files = [...sources('src'), ...sources('commands'), ...sources('test')].filter((f) => !f.startsWith('src/store/') && !f.startsWith('test/store/'));
  t.true(files.length > 100);
  const found = files.flatMap((f) => offences(f, (n) => {
    if (ts.isPropertyAccessExpression(n) && n.name.text === 'store' && isRepoExpression(n.expression)) return `${n.getText()}: use repo.objects, repo.index, repo.contentIndex, ...`;
    if (ts.isIndexedAccessTypeNode(n) && ts.isTypeReferenceNode(n.objectType) && n.objectType.getText() === 'Repository' && n.indexType.getText() === `'store'`) return `${n.getText()}: use Repository['objects']`;
    return undefined;
  }));
  t.deepEqual(found, []);
});

test('boundaries: outside src/store the code neither imports nor names LmdbStore (only the interfaces)', (t) => {
  const files = [...sources('src'), ...sources('commands')].filter((f) => !f.startsWith('src/store/') && !f.startsWith('src/web/client/'));
  const found = files.flatMap((f) => offences(f, (n) => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier) && /(^lmdb$|\/lmdb-store\.js$|\/lmdb-indexes\.js$)/.test(n.moduleSpecifier.text)) return `imports ${n.moduleSpecifier.text}`;
    if (ts.isIdentifier(n) && (n.text === 'LmdbStore' || n.text === 'lmdbOf')) return `names ${n.text}`;
    return undefined;
  }));
  t.deepEqual(found, []);
});

test('boundaries: the check finds a reach-in (it can fail)', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-boundary-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'probe.ts');
  fs.writeFileSync(file, "import { LmdbStore } from '../../src/store/lmdb-store.js';\nexport const n = (repo: any, self: any) => [repo.store.index, self.repo.store];\n");
  const hits = offences(file, (n) => (ts.isPropertyAccessExpression(n) && n.name.text === 'store' && isRepoExpression(n.expression)) || (ts.isIdentifier(n) && n.text === 'LmdbStore') ? n.getText() : undefined);
  t.deepEqual(hits.map((h) => h.replace(/^.*?: /, '')), ['LmdbStore', 'repo.store', 'self.repo.store']);
});
