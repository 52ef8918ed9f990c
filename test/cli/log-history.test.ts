/**
 * viva log as a git user types it: several revisions and --all, path limiting (with a merge simplified away), --follow
 * across a rename and whatchanged, --grep/--author/--since/--until, --graph of a merge (--no-ff) and of a derivation,
 * decorations, -p/--stat/--name-status, --diff-filter, and the --json fields that carry the new data.
 *
 * The fixture (times fixed by VIVA_DATE):
 *   main:  base ── m1 ──────── merge (main, --no-ff, by Alice)
 *            └─ topic: t1 ── t2 ┘ ── rename (etc/t → etc/renamed) ── edit
 *   other: m1 ── o1                 clone: derived from t2 (no parent), then clone2
 */
import test, { type ExecutionContext } from 'ava';
import path from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { type RunOptions, tmpDir, viva, vivaJson, vivaOk } from '../helpers/cli.js';
import { writeTree } from '../helpers/repo.js';

interface LogJson {
  id: string;
  parents: string[];
  message: string;
  author: string;
  time: number;
  refs: string[];
  head?: string;
  derivedFrom?: string[];
  graphParents?: string[];
  path?: string;
  changes?: Array<{ status: string; path: string; from?: string }>;
  patches?: Record<string, string>;
}

const ALICE = 'Alice <alice@example.com>';
let repo = '';
/** Commit id → its message (names stand for ids in expected output). */
const names = new Map<string, string>();
const ids = new Map<string, string>();

test.before(async () => {
  const dir = tmpDir(undefined, 'viva-log-');
  repo = path.join(dir, 'repo');
  writeTree(path.join(dir, 'base'), { etc: { hostname: 'base\n', motd: 'hello\n' } });
  let time = 1_700_000_000;
  const run = async (args: string[], author?: string) => {
    time += 100;
    const r = await viva([...args, '-C', repo], { env: { VIVA_DATE: String(time), ...(author ? { VIVA_AUTHOR: author } : {}) } });
    if (r.code !== 0) throw new Error(`viva ${args.join(' ')}: ${r.stderr}`);
  };
  await run(['init', repo]);
  await run(['commit', path.join(dir, 'base'), '-b', 'main', '-m', 'base']);
  await run(['branch', 'topic']);
  await run(['derive', 'topic', '-b', 'topic', '--set', 'etc/t=1\n', '-m', 't1']);
  await run(['derive', 'topic', '-b', 'topic', '--set', 'etc/t=2\n', '-m', 't2\n\nsecond line of t2']);
  await run(['derive', 'main', '-b', 'main', '--set', 'etc/m=1\n', '-m', 'm1']);
  await run(['branch', 'other']);
  await run(['derive', 'other', '-b', 'other', '--set', 'etc/o=1\n', '-m', 'o1']);
  await run(['merge', 'main', 'topic', '--no-ff', '-m', 'merge'], ALICE);
  await run(['derive', 'topic', '-b', 'clone', '--set', 'etc/x=1\n', '-m', 'clone']);
  await run(['derive', 'clone', '-b', 'clone', '--set', 'etc/x=2\n', '-m', 'clone2']);
  await run(['derive', 'topic', '-b', 'topic', '--rename', 'etc/t=etc/renamed', '-m', 'rename']);
  await run(['derive', 'topic', '-b', 'topic', '--set', 'etc/renamed=3\n', '-m', 'edit']);
  await run(['tag', 'v1', 'main~1']);
  const r = await viva(['log', '--all', '--json', '-C', repo]);
  for (const e of JSON.parse(r.stdout) as LogJson[]) {
    const name = e.message.split('\n')[0]!;
    names.set(e.id, name);
    ids.set(name, e.id);
  }
});

const opts = (): RunOptions => ({ cwd: repo });
/** Messages (first lines) of `log ARGS --json`. */
const messages = async (t: ExecutionContext, args: string[]) => (await logJson(t, args)).map((e) => e.message.split('\n')[0]);
/** `log ARGS --json`, with --json before any `--` (after it, it would be a path). */
async function logJson(t: ExecutionContext, args: string[]): Promise<LogJson[]> {
  const dd = args.indexOf('--');
  const r = await viva(['log', ...(dd < 0 ? [...args, '--json'] : [...args.slice(0, dd), '--json', ...args.slice(dd)])], opts());
  if (r.code !== 0) t.fail(`viva log ${args.join(' ')} --json exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as LogJson[];
}
/** Text output with each 12-digit short id replaced by the commit's name. */
const named = (s: string) => s.replace(/\b[0-9a-f]{12}\b/g, (h) => [...names].find(([id]) => id.startsWith(h))?.[1] ?? h);

test('log: several revisions are the union of their histories, newest first; --all starts from every ref', async (t) => {
  t.deepEqual(await messages(t, ['other', 'clone']), ['clone2', 'clone', 'o1', 'm1', 'base']);
  t.deepEqual(await messages(t, ['--all']), ['edit', 'rename', 'clone2', 'clone', 'merge', 'o1', 'm1', 't2', 't1', 'base']);
  t.deepEqual(await messages(t, ['--all', '-n', '3']), ['edit', 'rename', 'clone2']);
  t.is((await viva(['log', 'main', 'nosuch'], opts())).code, EXIT.NOT_FOUND);
  // A path given as a revision: git's hint that paths go after --.
  const p = await viva(['log', 'etc/hostname'], opts());
  t.is(p.code, EXIT.NOT_FOUND);
  t.is(p.stderr, "error: unknown revision 'etc/hostname': it is a path in HEAD's image; paths go after '--' (viva log -- etc/hostname)\n");
});

test('log: -- PATH keeps the commits that changed it; a merge that kept a side\'s entry is simplified away, as git does', async (t) => {
  t.deepEqual(await messages(t, ['main', '--', 'etc/t']), ['t2', 't1']);
  t.deepEqual(await messages(t, ['main', '--', 'etc/m']), ['m1']);
  // Changed from both sides (neither parent has both paths as the merge has): shown.
  t.deepEqual(await messages(t, ['main', '--', 'etc/m', 'etc/t']), ['merge', 'm1', 't2', 't1']);
  // A directory: anything below it; the root: everything.
  t.deepEqual(await messages(t, ['main', '--', '/etc/']), ['merge', 'm1', 't2', 't1', 'base']);
  t.deepEqual(await messages(t, ['main', '--', 'etc/hostname']), ['base']);
  t.deepEqual(await messages(t, ['main', '--', 'nowhere']), []);
  // First parents only: the merge itself brought etc/t onto main.
  t.deepEqual(await messages(t, ['main', '--first-parent', '--', 'etc/t']), ['merge']);
  // A derived branch's first commit is compared with its base: it changed etc/x, not etc/t.
  t.deepEqual(await messages(t, ['clone', '--', 'etc/x']), ['clone2', 'clone']);
  t.deepEqual(await messages(t, ['clone', '--', 'etc/t']), []);
});

test('log: --follow goes on under the old name across a rename; whatchanged says which commit added and which last changed a path', async (t) => {
  t.deepEqual(await messages(t, ['topic', '--', 'etc/renamed']), ['edit', 'rename']);
  const f = await logJson(t, ['topic', '--follow', '--', 'etc/renamed']);
  t.deepEqual(f.map((e) => [e.message.split('\n')[0], e.path]), [['edit', 'etc/renamed'], ['rename', 'etc/renamed'], ['t2', 'etc/t'], ['t1', 'etc/t']]);
  const ns = await vivaOk(t, ['log', 'topic', '--follow', '--oneline', '--name-status', '--', 'etc/renamed'], opts());
  t.deepEqual(named(ns.stdout).split('\n'), [
    'edit edit', 'M\tetc/renamed\t[content, mtime]', 'rename rename', 'R\tetc/t -> etc/renamed', 't2 t2', 'M\tetc/t\t[content, mtime]', 't1 t1', 'A\tetc/t', '',
  ]);
  t.is((await viva(['log', '--follow', '--', 'etc/a', 'etc/b'], opts())).code, EXIT.USAGE);
  const w = await vivaOk(t, ['whatchanged', 'etc/renamed', 'topic'], opts());
  t.deepEqual(named(w.stdout).replace(/ \d{4}-\d\d-\d\d /g, ' DATE ').split('\n'), [
    'edit DATE M etc/renamed [content, mtime]  edit',
    'rename DATE R etc/t -> etc/renamed  rename',
    't2 DATE M etc/t [content, mtime]  t2',
    't1 DATE A etc/t  t1',
    '',
  ]);
  t.deepEqual(named((await vivaOk(t, ['whatchanged', 'etc/renamed', 'topic', '--no-follow'], opts())).stdout).replace(/ \d{4}-\d\d-\d\d /g, ' ').split('\n'),
    ['edit M etc/renamed [content, mtime]  edit', 'rename A etc/renamed  rename', '']);
  // On main, the merge took etc/t as topic had it: the last change is t2's.
  const wj = await vivaJson<LogJson[]>(t, ['whatchanged', 'etc/t', 'main', '-n', '1'], opts());
  t.deepEqual(wj.map((e) => [e.message.split('\n')[0], e.changes?.map((c) => `${c.status} ${c.path}`)]), [['t2', ['M etc/t']]]);
});

test('log: --grep and --author match regular expressions per line (-i, -F, --all-match, --invert-grep)', async (t) => {
  t.deepEqual(await messages(t, ['--all', '--grep', '^t[0-9]$']), ['t2', 't1']);
  t.deepEqual(await messages(t, ['--all', '--grep', '^second line']), ['t2']);
  t.deepEqual(await messages(t, ['--all', '--grep', 'MERGE|O1', '-i']), ['merge', 'o1']);
  t.deepEqual(await messages(t, ['--all', '--grep', 't(1|2)$', '-E']), ['t2', 't1']);
  t.deepEqual(await messages(t, ['--all', '--grep', 'MERGE']), []);
  t.deepEqual(await messages(t, ['--all', '--grep', 't.', '-F']), []);
  t.deepEqual(await messages(t, ['--all', '--grep', 'e', '--grep', 'o1']), ['edit', 'rename', 'clone2', 'clone', 'merge', 'o1', 't2', 'base']);
  t.deepEqual(await messages(t, ['--all', '--grep', 'e', '--grep', 'n', '--all-match']), ['rename', 'clone2', 'clone', 't2']);
  t.deepEqual(await messages(t, ['main', '--grep', 'm', '--invert-grep']), ['t2', 't1', 'base']);
  t.deepEqual(await messages(t, ['--all', '--author', 'ALICE']), []);
  t.deepEqual(await messages(t, ['--all', '--author', 'ALICE', '-i']), ['merge']);
  t.deepEqual(await messages(t, ['--all', '--author', '<alice@']), ['merge']);
  t.deepEqual(await messages(t, ['main', '--author', 'Test', '--grep', 't1']), ['t1']);
  // A revision after a pattern is a revision, not a second pattern.
  t.deepEqual(await messages(t, ['--grep', '^o', 'other']), ['o1']);
  const bad = await viva(['log', '--grep', '(', '--all'], opts());
  t.is(bad.code, EXIT.USAGE);
  t.regex(bad.stderr, /^error: invalid regular expression '\('/);
});

test('log: --since/--after and --until/--before take ISO dates, @seconds and relative dates', async (t) => {
  const all = await vivaJson<LogJson[]>(t, ['log', '--all'], opts());
  const at = (m: string) => all.find((e) => e.message.split('\n')[0] === m)!.time;
  t.deepEqual(await messages(t, ['--all', '--since', `@${at('merge')}`]), ['edit', 'rename', 'clone2', 'clone', 'merge']);
  t.deepEqual(await messages(t, ['--all', '--after', `@${at('merge')}`, '--until', `@${at('clone')}`]), ['clone', 'merge']);
  const iso = new Date(at('t2') * 1000).toISOString().replace(/\.000Z$/, 'Z');
  t.deepEqual(await messages(t, ['--all', '--before', iso]), ['t2', 't1', 'base']);
  // The fixture is from 2023: nothing in the last two weeks, everything before yesterday.
  t.deepEqual(await messages(t, ['--all', '--since', '2.weeks.ago']), []);
  t.is((await messages(t, ['--all', '--until', 'yesterday'])).length, 10);
  t.is((await messages(t, ['--all', '--since', '2023-01-01', '--until', '2 days ago'])).length, 10);
  const bad = await viva(['log', '--since', 'last tuesday-ish'], opts());
  t.is(bad.code, EXIT.USAGE);
  t.regex(bad.stderr, /invalid date 'last tuesday-ish'/);
});

test('log: --graph draws a --no-ff merge as git does, and a derived branch\'s edge to its base as :', async (t) => {
  const r = await vivaOk(t, ['log', '--graph', '--oneline', '--all', '--no-decorate'], opts());
  // The merge's second parent (t2) is where the derivation edge from clone already leads: joined with '/'.
  t.deepEqual(named(r.stdout).split('\n'), [
    '* edit edit',
    '* rename rename',
    '| * clone2 clone2',
    '| * clone clone',
    '| :',
    '|/',
    '| * merge merge',
    '|/|',
    '* | t2 t2',
    '* | t1 t1',
    '| | * o1 o1',
    '| |/',
    '| * m1 m1',
    '|/',
    '* base base',
    '',
  ]);
  // The merge alone, as git log --graph --oneline main prints it.
  const m = await vivaOk(t, ['log', '--graph', '--oneline', 'main'], opts());
  t.deepEqual(named(m.stdout).split('\n'), ['*   merge merge', '|\\', '| * t2 t2', '| * t1 t1', '* | m1 m1', '|/', '* base base', '']);
  // A derivation: the derived branch's first commit has no parent; its base is shown below it, joined by ':'.
  const d = await vivaOk(t, ['log', '--graph', '--oneline', 'clone', 'topic~2'], opts());
  t.deepEqual(named(d.stdout).split('\n'), ['* clone2 clone2', '* clone clone', ':', '* t2 t2', '* t1 t1', '* base base', '']);
  // In full format the derived commit names its base, and the lines below it are ':'.
  const full = await vivaOk(t, ['log', '--graph', 'clone', 'topic~2', '-n', '3'], opts());
  const lines = full.stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`* commit ${ids.get('clone')}`));
  t.is(lines[at + 1], `: Derived: ${ids.get('t2')!.slice(0, 12)}`);
  t.is(lines[at + 2], ': Author: Test User <test@example.com>');
  // JSON: the edges drawn.
  const j = await vivaJson<LogJson[]>(t, ['log', '--graph', 'clone', 'topic~2'], opts());
  t.deepEqual(j.find((e) => e.id === ids.get('clone'))!.graphParents, [ids.get('t2')]);
  t.deepEqual(j.find((e) => e.id === ids.get('clone'))!.derivedFrom, [ids.get('t2')]);
  t.deepEqual(j.find((e) => e.id === ids.get('clone'))!.parents, []);
});

test('log: --graph with a path rewrites parents to the commits shown', async (t) => {
  const r = await vivaOk(t, ['log', '--graph', '--oneline', 'main', '--', 'etc/t', 'etc/m'], opts());
  t.deepEqual(named(r.stdout).split('\n'), ['*   merge merge', '|\\', '| * t2 t2', '| * t1 t1', '* m1 m1', '']);
  // edit (etc/renamed only) and the merge (etc/t as t2 had it) are hidden: rename and the derived clone lead to t2.
  const x = await vivaOk(t, ['log', '--graph', '--oneline', '--all', '--', 'etc/t', 'etc/x'], opts());
  t.deepEqual(named(x.stdout).split('\n'), ['* rename rename', '| * clone2 clone2', '| * clone clone', '| :', '|/', '* t2 t2', '* t1 t1', '']);
});

test('log: --decorate names HEAD\'s branch as git does; off a terminal only on request', async (t) => {
  const d = await vivaOk(t, ['log', '--all', '--oneline', '--decorate', '-n', '6'], opts());
  t.deepEqual(named(d.stdout).split('\n').slice(0, 6), ['edit (topic) edit', 'rename rename', 'clone2 (clone) clone2', 'clone clone', 'merge (HEAD -> main) merge', 'o1 (other) o1']);
  t.notRegex((await vivaOk(t, ['log', '--all', '--oneline'], opts())).stdout, /\(/);
  t.notRegex((await vivaOk(t, ['log', '--all', '--oneline', '--decorate', '--no-decorate'], opts())).stdout, /\(/);
  const j = await vivaJson<LogJson[]>(t, ['log', '-n', '1'], opts());
  t.is(j[0]!.head, 'refs/heads/main');
  t.deepEqual(j[0]!.refs, ['refs/heads/main']);
  t.regex((await vivaOk(t, ['log', 'main~1', '--decorate', '-n', '1'], opts())).stdout, /^commit [0-9a-f]{64} \(tag: v1\)\n/);
});

test('log: -p, --stat and --name-status show what each commit changed against its first parent (none for a merge)', async (t) => {
  const s = await vivaOk(t, ['log', 'main', '--oneline', '--stat', '-n', '3'], opts());
  t.deepEqual(named(s.stdout).split('\n'), [
    'merge merge',
    'm1 m1',
    ' A etc/m | 2 (+2)',
    ' 1 entry changed (1 added, 0 deleted, 0 modified, 0 type changes, 0 renamed); +2 B -0 B',
    't2 t2',
    ' M etc/t | 2 -> 2',
    ' 1 entry changed (0 added, 0 deleted, 1 modified, 0 type changes, 0 renamed); +0 B -0 B',
    '',
  ]);
  // --first-parent: the merge against its first parent.
  t.deepEqual(named((await vivaOk(t, ['log', 'main', '--first-parent', '--oneline', '--name-status', '-n', '1'], opts())).stdout).split('\n'), ['merge merge', 'A\tetc/t', '']);
  // A root commit: everything added.
  const root = await logJson(t, ['main', '--name-status', '--', 'etc/hostname']);
  t.deepEqual(root[0]!.changes!.map((c) => `${c.status} ${c.path}`), ['A etc/hostname']);
  // -p in full format: the header, the blank line, the entry and its patch, a blank line before the next commit.
  const p = await vivaOk(t, ['log', 'topic~2', '-p', '-n', '2'], opts());
  const text = p.stdout;
  t.regex(text, /^commit [0-9a-f]{64}\nAuthor: Test User <test@example.com>\nDate: {3}\S+\n\n {4}t2\n {4}\n {4}second line of t2\n\nM\tetc\/t\t\[content, mtime\]\n=+\n--- a\/etc\/t\n\+\+\+ b\/etc\/t\n@@ -1,1 \+1,1 @@\n-1\n\+2\n\ncommit /);
  const pj = await vivaJson<LogJson[]>(t, ['log', 'topic~2', '-p', '-n', '1'], opts());
  t.regex(pj[0]!.patches!['etc/t']!, /^-1$/m);
  const big = await vivaJson<LogJson[]>(t, ['log', 'topic~2', '-p', '-n', '1', '--max-patch-size', '1'], opts());
  t.regex(big[0]!.patches!['etc/t']!, /larger than 1 bytes \(2 -> 2\); no patch/);
  // A derived branch's first commit is diffed against its base.
  t.deepEqual((await vivaJson<LogJson[]>(t, ['log', 'clone~1', '--stat'], opts()))[0]!.changes!.map((c) => `${c.status} ${c.path}`), ['A etc/x']);
  // Without these flags, no changes are computed and the JSON is as before.
  const plain = await vivaJson<LogJson[]>(t, ['log', '-n', '1'], opts());
  t.deepEqual(Object.keys(plain[0]!).sort(), ['author', 'date', 'head', 'id', 'labels', 'message', 'parents', 'refs', 'root', 'rootKind', 'source', 'time']);
});

test('log: --diff-filter keeps the commits with changes of those kinds', async (t) => {
  t.deepEqual(await messages(t, ['--all', '--diff-filter=A', '--', 'etc/t']), ['t1']);
  t.deepEqual(await messages(t, ['--all', '--diff-filter=R']), ['rename']);
  t.deepEqual(await messages(t, ['--all', '--diff-filter=a', '--', 'etc/t']), ['rename', 't2']);
  t.deepEqual(await messages(t, ['topic', '--follow', '--diff-filter=AR', '--', 'etc/renamed']), ['rename', 't1']);
  t.is((await viva(['log', '--diff-filter=X'], opts())).code, EXIT.USAGE);
});
