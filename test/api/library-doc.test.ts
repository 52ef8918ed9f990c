/** docs/library.md says what the library is: its tables of ops and errors are checked against the exports. */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as viva from '../../src/index.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { ROOT } from '../helpers/cli.js';

const DOC = fs.readFileSync(path.join(ROOT, 'docs/library.md'), 'utf8');
const exported = viva as unknown as Record<string, unknown>;

/** The rows of the Markdown table whose header row starts with `| header |`, as cells. */
function table(header: string): string[][] {
  const lines = DOC.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`| ${header} |`));
  if (start < 0) return [];
  const rows: string[][] = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith('|')) break;
    rows.push(l.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

test('library doc: the errors table lists every error class with its code and exit code', (t) => {
  const classes = Object.entries(exported)
    .filter(([, v]) => typeof v === 'function' && (v === viva.VivaError || (v as { prototype: unknown }).prototype instanceof viva.VivaError))
    .map(([name, v]) => [`\`${name}\``, `\`${(v as { code: string }).code}\``, String(exitCodeFor((v as { code: string }).code))])
    .sort((a, b) => a[0]!.localeCompare(b[0]!));
  t.true(classes.length > 30);
  t.deepEqual(table('class'), classes);
});

test('library doc: every op in the ops table is an exported function', (t) => {
  const rows = table('what');
  const names = rows.flatMap((r) => [...r[1]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!));
  t.true(names.length > 40);
  t.deepEqual(names.filter((n) => typeof exported[n] !== 'function'), []);
  for (const op of ['commit', 'checkout', 'diff', 'log', 'merge', 'mergeBase', 'derive', 'deriveBatch', 'rebuild', 'install', 'status', 'exportGit', 'importGit', 'push', 'fetch', 'clone', 'pull', 'gc', 'fsck', 'find', 'search', 'grep']) {
    t.true(names.includes(op), `${op} missing from the table`);
  }
});

test('library doc: linked from the README, which still starts with its set-up commands', (t) => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  t.regex(readme, /\]\(docs\/library\.md\)/);
  const firstBlock = /```sh\n([^]*?)```/.exec(readme)?.[1] ?? '';
  t.regex(firstBlock, /^npm ci && npm run demo/m);
  t.regex(firstBlock, /^npm ci && npm test/m);
  t.regex(DOC, /\]\(api\/README\.md\)/);
  t.true(fs.existsSync(path.join(ROOT, 'docs/api/README.md')));
});
