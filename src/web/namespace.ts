/**
 * The namespace page: branches as a collapsible tree of their hierarchical names (each head's date, subject, size and
 * labels), a filter, the tags, and a form to pick two images to compare. Paged: only the branches of one page are
 * read beyond their ref.
 */
import { listBranches, type RefInfo } from '../ops/branch.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { isoDate } from '../ops/log-entry.js';
import { html, type SafeHtml } from './html.js';
import { formatBytes, page, paginate, pager, shortDate, subject } from './layout.js';
import { imageSize } from './sizes.js';
import { commitUrl, logUrl, treeUrl } from './url.js';

/** Branches per namespace page. */
export const NAMESPACE_PAGE_SIZE = 100;
/** Tags shown on the namespace page (all of them at /api/tags). */
const TAGS_SHOWN = 200;

/** What the namespace page shows: one page of branches (the `branch --json` shape), and the tags. */
export interface NamespaceData {
  branches: RefInfo[];
  tags: RefInfo[];
  total: number;
  page: number;
  pages: number;
  filter: string;
  /** How many of the matching branches lie below each folder (`debian/12/`), over all pages. */
  folders: Map<string, number>;
}

/** The branches matching `filter` (a case-insensitive substring of the name), page `n`. */
export function namespaceData(repo: Repository, filter: string, n: number): NamespaceData {
  const f = filter.toLowerCase();
  const match = (r: RefInfo) => !f || r.name.toLowerCase().includes(f);
  const all = listBranches(repo, 'branch').filter(match);
  const p = paginate(all, n, NAMESPACE_PAGE_SIZE);
  const folders = new Map<string, number>();
  for (const r of all) {
    for (let i = r.name.indexOf('/'); i >= 0; i = r.name.indexOf('/', i + 1)) {
      const f = r.name.slice(0, i + 1);
      folders.set(f, (folders.get(f) ?? 0) + 1);
    }
  }
  return { branches: p.items, tags: listBranches(repo, 'tag').filter(match), total: p.total, page: p.page, pages: p.pages, filter, folders };
}

interface Node {
  children: Map<string, Node>;
  refs: RefInfo[];
}

function row(repo: Repository, r: RefInfo, leaf: string): SafeHtml {
  const c = readCommit(repo.objects, r.oid);
  const labels = c.labels.map(([k, v]) => html`<span class="label">${k}=${v}</span>`);
  return html`<li class="ref" data-name="${r.name}"><span class="pick"><input type="radio" name="a" value="${r.name}" aria-label="compare from ${r.name}"><input type="radio" name="b" value="${r.name}" aria-label="compare to ${r.name}"></span>
<a class="name" href="${logUrl(r.name)}">${leaf}</a>${r.head ? html` <span class="label head">HEAD</span>` : ''}
<span class="date">${shortDate(isoDate(c.time, c.tzOffset))}</span><a class="subject" href="${commitUrl(r.name)}">${subject(c.message)}</a>
<span class="size">${formatBytes(imageSize(repo, c))}</span>${labels}<a class="browse" href="${treeUrl(r.name)}">browse</a></li>`;
}

function renderNode(repo: Repository, node: Node, prefix: string, folders: Map<string, number>): SafeHtml {
  const dirs = [...node.children.entries()].map(([name, child]) => html`<li class="dir"><details open><summary>${name}/ <span class="count" title="branches below">${folders.get(`${prefix}${name}/`) ?? 0}</span></summary>
<ul>${renderNode(repo, child, `${prefix}${name}/`, folders)}</ul></details></li>`);
  return html`${node.refs.map((r) => row(repo, r, r.name.slice(prefix.length)))}${dirs}`;
}

/** The namespace page. */
export function namespacePage(repo: Repository, d: NamespaceData): SafeHtml {
  const root: Node = { children: new Map(), refs: [] };
  for (const r of d.branches) {
    let node = root;
    for (const part of r.name.split('/').slice(0, -1)) {
      let next = node.children.get(part);
      if (!next) { next = { children: new Map(), refs: [] }; node.children.set(part, next); }
      node = next;
    }
    node.refs.push(r);
  }
  const tags = d.tags.slice(0, TAGS_SHOWN).map((t) => html`<li><a href="${logUrl(t.name)}">${t.name}</a> <a class="browse" href="${treeUrl(t.name)}">browse</a></li>`);
  return page('images', 'images', html`<h1>Images</h1>
<form class="filter" action="/ui/" method="get" role="search"><input type="search" name="q" value="${d.filter}" placeholder="filter branches" aria-label="filter branches" id="filter"><button>filter</button>
<span class="muted">${d.total} branch${d.total === 1 ? '' : 'es'}</span></form>
<form class="namespace" action="/ui/compare" method="get">
<p class="muted">Pick A and B (the two radio buttons of a row) to compare two images. <button>compare A → B</button></p>
<ul class="tree" id="branches">${renderNode(repo, root, '', d.folders)}</ul>
</form>
${pager('/ui/', { q: d.filter || undefined }, d.page, d.pages)}
<h2>Tags</h2>
${d.tags.length ? html`<ul class="tags">${tags}</ul>${d.tags.length > TAGS_SHOWN ? html`<p class="muted">${d.tags.length - TAGS_SHOWN} more at <a href="/api/tags">/api/tags</a></p>` : ''}` : html`<p class="muted">no tags</p>`}`);
}
