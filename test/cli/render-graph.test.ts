/** The commit graph renderer alone, on hand-made histories, against what git log --graph --oneline prints for them. */
import test from 'ava';
import { renderLogGraph } from '../../src/cli/render.js';
import type { LogEntry } from '../../src/ops/log.js';

/** Entries named by their message; `edges` are the graph parents, `derived` the derivation bases among them. */
function entries(spec: Array<[string, string[], string[]?]>): LogEntry[] {
  return spec.map(([id, edges, derived]) => ({
    id, parents: edges.filter((e) => !derived?.includes(e)), graphParents: edges, ...(derived ? { derivedFrom: derived } : {}),
    author: 'a', date: '', time: 0, message: id, labels: {}, root: '', rootKind: 'tree', source: { format: 'dir' },
  }));
}

const draw = (e: LogEntry[]) => renderLogGraph(e, (x) => [x.message]);

test('graph: a merge, a branch off its first parent crossing the merged line, as git draws it', (t) => {
  // git log --graph --oneline --all of: base; topic t1 t2; main m1; other o1 off m1; main merges topic (--no-ff).
  const g = entries([['merge', ['m1', 't2']], ['t2', ['t1']], ['t1', ['base']], ['o1', ['m1']], ['m1', ['base']], ['base', []]]);
  t.deepEqual(draw(g), ['*   merge', '|\\', '| * t2', '| * t1', '| | * o1', '| |/', '|/|', '* | m1', '|/', '* base']);
});

test('graph: a derived commit\'s edge to its base runs down as : and joins the base\'s line', (t) => {
  const g = entries([['clone', ['t1'], ['t1']], ['main', ['t1']], ['t1', []]]);
  t.deepEqual(draw(g), ['* clone', ':', ': * main', ':/', '* t1']);
});

test('graph: a derive that advanced a branch from another base: the second edge is the derivation, drawn with :', (t) => {
  // derive main -b web with web existing: parent web's head, base main's.
  const g = entries([['web2', ['web', 'main2'], ['main2']], ['main2', ['m']], ['web', ['m']], ['m', []]]);
  t.deepEqual(draw(g), ['*   web2', '|\\', '| :', '| * main2', '* | web', '|/', '* m']);
});

test('graph: unrelated roots and a root above other lines close their columns', (t) => {
  const g = entries([['a', []], ['b', ['c']], ['x', []], ['c', []]]);
  t.deepEqual(draw(g), ['* a', '* b', '| * x', '* c']);
  // A line ending left of another: the one to its right moves over.
  const h = entries([['b', ['c']], ['x', ['y']], ['c', []], ['y', []]]);
  t.deepEqual(draw(h), ['* b', '| * x', '* | c', ' /', '* y']);
});

test('graph: text lines after the first run beside the merge row, then beside plain columns', (t) => {
  const g = entries([['m', ['a', 'b']], ['b', ['a']], ['a', []]]);
  // As git log --graph: `|/  Author: …` (the joining row beside the text), the text indented as wide as its commit's row.
  t.deepEqual(renderLogGraph(g, (x) => [`commit ${x.id}`, 'Author: a', '']), [
    '*   commit m', '|\\  Author: a', '| |', '| * commit b', '|/  Author: a', '|', '* commit a', '  Author: a', '',
  ]);
});
