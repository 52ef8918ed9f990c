/**
 * The history page: one revision's log, paged, in topological order with the commit graph drawn at the left as an SVG
 * lane graph (one small SVG per row: lines of history, merges, and the edges to the images a commit was derived from,
 * dashed).
 */
import { log, type LogEntry } from '../ops/log.js';
import type { Repository } from '../store/repository.js';
import { html, type SafeHtml } from './html.js';
import { page, pager, shortDate, shortOid, subject } from './layout.js';
import { commitUrl, compareUrl, logUrl, treeUrl } from './url.js';

/** Commits per history page. */
export const HISTORY_PAGE_SIZE = 50;

/** One page of a revision's history (`log REV --graph -n 50 --json` for page 1), with the rows' lanes. */
export interface HistoryData {
  rev: string;
  /** The revisions the log starts from: `rev`, then the bases its commits were derived from. */
  revs: string[];
  /** The page's entries (the log's JSON shape). */
  entries: LogEntry[];
  lanes: LaneRow[];
  page: number;
  pages: number;
  total?: number;
}

/** How one row of the lane graph is drawn. */
export interface LaneRow {
  /** The commit's column. */
  column: number;
  /** Lines from the top of the row: [from column, to column (at the commit, or passing through to the bottom)]. */
  top: Array<[number, number]>;
  /** Lines from the commit to the bottom: [to column, dashed (a derivation edge)]. */
  down: Array<[number, boolean]>;
  width: number;
}

/** The lane graph of entries in topological order (graphParents), computed from the first entry on. */
export function laneRows(entries: LogEntry[]): LaneRow[] {
  let lanes: Array<string | null> = [];
  const rows: LaneRow[] = [];
  for (const e of entries) {
    let column = lanes.indexOf(e.id);
    // A commit no line leads to (a branch head) starts its lane at its dot.
    const before = lanes.slice();
    if (column < 0) {
      column = lanes.indexOf(null);
      if (column < 0) column = lanes.length;
      lanes[column] = e.id;
    }
    const after = lanes.map((l) => (l === e.id ? null : l));
    const parents = e.graphParents ?? e.parents;
    const down: Array<[number, boolean]> = [];
    parents.forEach((p, i) => {
      const dashed = !e.parents.includes(p);
      let at = after.indexOf(p);
      // A first parent another lane already waits for moves left into this one (the lines join, as git draws them).
      if (at > column && i === 0 && after[column] === null) {
        after[at] = null;
        at = column;
        after[at] = p;
      }
      if (at < 0) {
        at = i === 0 && after[column] === null ? column : after.indexOf(null);
        if (at < 0) at = after.length;
        after[at] = p;
      }
      down.push([at, dashed]);
    });
    while (after.length && after[after.length - 1] === null) after.pop();
    const top: Array<[number, number]> = [];
    before.forEach((l, j) => {
      if (l === null) return;
      top.push([j, l === e.id ? column : after.indexOf(l)]);
    });
    rows.push({ column, top, down, width: Math.max(before.length, after.length, column + 1) });
    lanes = after;
  }
  return rows;
}

const LANE = 14;
const ROW = 28;

function laneSvg(r: LaneRow, width: number): SafeHtml {
  const x = (c: number) => LANE / 2 + c * LANE;
  const mid = ROW / 2;
  const parts: SafeHtml[] = [];
  for (const [from, to] of r.top) {
    if (from === r.column && to === r.column) parts.push(html`<line x1="${x(from)}" y1="0" x2="${x(to)}" y2="${mid}"/>`);
    else if (to === r.column) parts.push(html`<path d="M${x(from)} 0 Q${x(from)} ${mid} ${x(to)} ${mid}"/>`);
    else parts.push(html`<path d="M${x(from)} 0 C${x(from)} ${mid} ${x(to)} ${mid} ${x(to)} ${ROW}"/>`);
  }
  for (const [to, dashed] of r.down) {
    parts.push(html`<path class="${dashed ? 'derived' : 'parent'}" d="M${x(r.column)} ${mid} Q${x(to)} ${mid} ${x(to)} ${ROW}"/>`);
  }
  parts.push(html`<circle cx="${x(r.column)}" cy="${mid}" r="4"/>`);
  return html`<svg class="lanes" width="${width * LANE}" height="${ROW}" viewBox="0 0 ${width * LANE} ${ROW}" aria-hidden="true">${parts}</svg>`;
}

/** How many rounds of derivation bases the history page adds (a base derived from another base, ...). */
const MAX_DERIVATION_ROUNDS = 8;

/**
 * Page `n` of the history of `rev`, with the images its commits were derived from and their history (as
 * `log --graph REV BASE...`: a derived branch starts with no parent, so this is where it came from). Throws
 * RevisionNotFoundError.
 */
export function historyData(repo: Repository, rev: string, n: number): HistoryData {
  const maxCount = n * HISTORY_PAGE_SIZE;
  const revs = [rev];
  let all = log(repo, { revs, graph: true, maxCount });
  for (let round = 0; round < MAX_DERIVATION_ROUNDS; round++) {
    const have = new Set(revs);
    const bases = [...new Set(all.flatMap((e) => e.derivedFrom ?? []))].filter((b) => !have.has(b));
    if (!bases.length) break;
    revs.push(...bases);
    all = log(repo, { revs, graph: true, maxCount });
  }
  const shown = new Set(all.map((e) => e.id));
  const more = all.some((e) => (e.graphParents ?? e.parents).some((p) => !shown.has(p)));
  const lanes = laneRows(all);
  const from = (n - 1) * HISTORY_PAGE_SIZE;
  const pages = more ? n + 1 : Math.max(1, Math.ceil(all.length / HISTORY_PAGE_SIZE));
  return { rev, revs, entries: all.slice(from), lanes: lanes.slice(from), page: n, pages, ...(more ? {} : { total: all.length }) };
}

/** The history page. */
export function historyPage(d: HistoryData): SafeHtml {
  const width = Math.max(1, ...d.lanes.map((l) => l.width));
  const rows = d.entries.map((e, i) => {
    const refs = (e.refs ?? []).map((r) => html`<span class="label">${r.replace(/^refs\/(heads|tags)\//, '')}</span>`);
    const derived = e.derivedFrom?.length ? html` <span class="label derived">derived</span>` : '';
    return html`<tr><td class="graph">${laneSvg(d.lanes[i]!, width)}</td>
<td><a class="oid" href="${commitUrl(e.id)}">${shortOid(e.id)}</a></td>
<td class="subject">${refs}${derived} <a href="${commitUrl(e.id)}">${subject(e.message)}</a></td>
<td class="author">${e.author.replace(/\s*<.*>$/, '')}</td><td>${shortDate(e.date)}</td>
<td class="actions"><a href="${treeUrl(e.id)}">browse</a>${e.parents[0] ?? e.derivedFrom?.[0] ? html` <a href="${compareUrl((e.parents[0] ?? e.derivedFrom?.[0])!, e.id)}">diff</a>` : ''}</td></tr>`;
  });
  return page(`history of ${d.rev}`, 'images', html`<h1>History of <a href="${treeUrl(d.rev)}">${d.rev}</a></h1>
<p class="muted">Newest first, in topological order; a dashed line leads to the image a commit was derived from.</p>
<table class="log"><tbody>${rows}</tbody></table>
${pager(logUrl(d.rev).split('?')[0]!, {}, d.page, d.pages, ['newer', 'older'])}`);
}
