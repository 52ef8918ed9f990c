/** The web view's pure parts: the escaping template, URL encoding of path bytes, and the history's lane graph. */
import test from 'ava';
import { html } from '../../src/web/html.js';
import { decodePathBytes, encodePathBytes, treeUrl } from '../../src/web/url.js';
import { laneRows } from '../../src/web/history.js';
import type { LogEntry } from '../../src/index.js';

test('html: interpolations are escaped, nested templates are not escaped twice, nothing renders as empty', (t) => {
  const name = `<script>alert("x")</script>&'`;
  t.is(html`<td title="${name}">${name}</td>`.value, '<td title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</td>');
  const inner = html`<b>${'<i>'}</b>`;
  t.is(html`<p>${inner}${[inner, 'a&b']}${undefined}${null}${false}${0}</p>`.value, '<p><b>&lt;i&gt;</b><b>&lt;i&gt;</b>a&amp;b0</p>');
});

test('url: every byte of a path round-trips through its percent-encoding; / separates segments', (t) => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i).filter((b) => b !== 0x2f && b !== 0));
  const p = Buffer.concat([Buffer.from('dir/'), all]);
  const enc = encodePathBytes(p);
  t.regex(enc, /^dir\/[A-Za-z0-9%\-._~]+$/);
  t.deepEqual(decodePathBytes(enc), p);
  t.is(treeUrl('debian/12/base', Buffer.from([0x63, 0x61, 0x66, 0xff])), '/ui/tree/debian%2F12%2Fbase/caf%FF');
  t.deepEqual(decodePathBytes('caf%C3%A9%zz'), Buffer.from('café%zz'));
});

const entry = (id: string, parents: string[], derivedFrom?: string[]): LogEntry => ({
  id, parents, author: 'a', date: '', time: 0, message: id, labels: {}, root: '', rootKind: 'tree', source: { format: 'dir' },
  graphParents: [...parents, ...(derivedFrom ?? [])], ...(derivedFrom ? { derivedFrom } : {}),
});

test('history: the lane graph of a merge opens a second lane and closes it at the fork; a derivation edge is dashed', (t) => {
  // m merges b into a; a and b both come from r; d was derived from r.
  const rows = laneRows([entry('d', [], ['m']), entry('m', ['a', 'b']), entry('b', ['r']), entry('a', ['r']), entry('r', [])]);
  t.deepEqual(rows.map((r) => r.column), [0, 0, 1, 0, 0]);
  t.deepEqual(rows[0]!.down, [[0, true]], 'd → m is a derivation: dashed');
  t.deepEqual(rows[1]!.down, [[0, false], [1, false]], 'the merge opens lane 1 for its second parent');
  t.deepEqual(rows[0]!.top, [], 'a head starts at its dot');
  t.deepEqual(rows[3]!.top, [[0, 0], [1, 0]], 'both lanes lead into r\'s lane');
  t.deepEqual(rows[4]!.down, []);
});
