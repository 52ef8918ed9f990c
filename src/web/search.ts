/**
 * Search and find: keyword search over images (ref names, messages, labels, packages, file names), and find by
 * sha256 (one or many pasted, as `sha256sum` prints them), by package with a version constraint, or by name or path
 * glob — the same ops and the same answers as `viva search` and `viva find`.
 */
import { UsageError } from '../errors.js';
import { find, type FindHit, type FindOptions, type FindScope } from '../ops/find.js';
import { search, type SearchHit } from '../ops/search.js';
import type { Repository } from '../store/repository.js';
import { html, type SafeHtml } from './html.js';
import { displayPath, formatBytes, page, shortOid } from './layout.js';
import { commitUrl, logUrl, packagesUrl, pathBytes, treeUrl } from './url.js';

/** Hits a find answer holds at most (the CLI streams them all; a page stops here and says so). */
export const MAX_FIND_HITS = 10_000;
/** Hits of a keyword search by default (as `viva search`). */
export const DEFAULT_SEARCH_LIMIT = 20;

/** The scope parameter: `heads`, `ref` (with `ref=PREFIX`) or `all` (the default), as find's and search's flags. */
export function scopeParam(q: URLSearchParams): FindScope {
  const s = q.get('scope');
  if (s === 'heads') return { kind: 'heads' };
  const ref = q.get('ref');
  if (s === 'ref' || (ref && s !== 'all')) return { kind: 'ref', prefix: ref ?? '' };
  return { kind: 'all' };
}

function scopeFields(q: URLSearchParams): SafeHtml {
  const s = q.get('scope') ?? (q.get('ref') ? 'ref' : 'all');
  const opt = (v: string, label: string) => html`<option value="${v}"${s === v ? html` selected` : ''}>${label}</option>`;
  return html`<label>in <select name="scope">${opt('all', 'every commit')}${opt('heads', 'branch heads')}${opt('ref', 'refs under prefix')}</select></label>
<label>prefix <input name="ref" value="${q.get('ref') ?? ''}" placeholder="customers/acme"></label>`;
}

/** A keyword search: `q` (words), scope, `n` (limit). */
export interface SearchData {
  words: string;
  q: URLSearchParams;
  hits: SearchHit[];
}

/** Runs `search` for the page's words (no words: no hits, the form only). */
export async function searchData(repo: Repository, q: URLSearchParams): Promise<SearchData> {
  const words = (q.get('q') ?? '').trim();
  const n = Number(q.get('n') ?? DEFAULT_SEARCH_LIMIT);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`n '${q.get('n')}' is not a positive integer`);
  const hits = words ? await search(repo, words.split(/\s+/), { scope: scopeParam(q), limit: n }) : [];
  return { words, q, hits };
}

/** The search page. */
export function searchPage(d: SearchData): SafeHtml {
  const rows = d.hits.map((h) => html`<tr><td class="num">${h.score}</td><td><a href="${logUrl(h.ref.replace(/^refs\/(heads|tags)\//, ''))}">${h.ref}</a></td>
<td><a class="oid" href="${commitUrl(h.commit)}">${shortOid(h.commit)}</a></td><td>${h.message.split('\n', 1)[0]}</td><td class="muted">${h.matches.join('; ')}</td></tr>`);
  return page('search', 'find', html`<h1>Search</h1>
<form class="search" action="/ui/search" method="get"><input type="search" name="q" value="${d.words}" placeholder="words" aria-label="words" required> ${scopeFields(d.q)} <button>search</button></form>
<p class="muted">Every word must match (case-insensitive) a ref name, message, label, installed package or file name. <a href="/ui/find">Find</a> looks up checksums, packages with versions, and path patterns.</p>
${d.words ? (rows.length ? html`<table class="list hits"><thead><tr><th>score</th><th>ref</th><th>commit</th><th>message</th><th>matched</th></tr></thead><tbody>${rows}</tbody></table>` : html`<p>no images match</p>`) : ''}`);
}

/** A find: the predicates of the query, the hits, and whether they were cut at {@link MAX_FIND_HITS}. */
export interface FindData {
  q: URLSearchParams;
  options?: FindOptions;
  hits: FindHit[];
  truncated: boolean;
}

/** Checksums pasted as text: the first word of each line (`sha256sum` output works), and each `sha256` parameter. */
export function pastedChecksums(q: URLSearchParams): string[] {
  const out: string[] = [];
  for (const v of q.getAll('sha256')) {
    for (const line of v.split(/\r?\n/)) {
      const first = line.trim().split(/\s+/)[0];
      if (first) out.push(first);
    }
  }
  return out;
}

/** Runs `find` with the page's predicates (none: the form only). */
export async function findData(repo: Repository, q: URLSearchParams): Promise<FindData> {
  const sums = pastedChecksums(q);
  const get = (k: string) => { const v = q.get(k)?.trim(); return v ? v : undefined; };
  const options: FindOptions = {
    ...(sums.length ? { sha256: sums } : {}), ...(get('name') ? { name: get('name')! } : {}), ...(get('path') ? { path: get('path')! } : {}),
    ...(get('package') ? { package: get('package')! } : {}), ...(get('version') ? { version: get('version')! } : {}),
    ...(get('type') ? { type: get('type')! } : {}), ...(get('size') ? { size: get('size')! } : {}),
  };
  if (Object.keys(options).length === 0) return { q, hits: [], truncated: false };
  options.scope = scopeParam(q);
  const hits: FindHit[] = [];
  let truncated = false;
  for await (const h of find(repo, options)) {
    if (hits.length >= MAX_FIND_HITS) { truncated = true; break; }
    hits.push(h);
  }
  return { q, options, hits, truncated };
}

/** The find page. */
export function findPage(d: FindData): SafeHtml {
  const v = (k: string) => d.q.get(k) ?? '';
  const rows = d.hits.map((h) => {
    const name = h.ref.replace(/^refs\/(heads|tags)\//, '');
    const what = h.package
      ? html`<a href="${packagesUrl(h.commit)}">${h.package.name} ${h.package.version}</a>${h.package.arch ? html` <span class="muted">${h.package.arch}</span>` : ''}${h.partition ? html` <span class="muted">${h.partition}</span>` : ''}`
      : html`<a href="${treeUrl(h.commit, pathBytes(h.path, h.pathHex))}">${displayPath(h.path, h.pathHex)}</a>`;
    return html`<tr><td><a href="${logUrl(name)}">${name}</a></td><td><a class="oid" href="${commitUrl(h.commit)}">${shortOid(h.commit)}</a></td><td>${what}</td>
<td class="num">${h.size !== undefined ? formatBytes(h.size) : ''}</td><td class="muted"><code>${h.sha256 ? shortOid(h.sha256) : ''}</code></td></tr>`;
  });
  return page('find', 'find', html`<h1>Find</h1>
<form class="find" action="/ui/find" method="get">
<label class="wide">sha256 (one or many: paste sha256sum output)<textarea name="sha256" rows="3" placeholder="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  file">${v('sha256')}</textarea></label>
<label>package <input name="package" value="${v('package')}" placeholder="openssl"></label> <label>version <input name="version" value="${v('version')}" placeholder="&lt;3.0.13"></label>
<label>name <input name="name" value="${v('name')}" placeholder="*.pem"></label> <label>path <input name="path" value="${v('path')}" placeholder="etc/ssh/**"></label>
${scopeFields(d.q)} <button>find</button></form>
<p class="muted"><a href="/ui/search">Keyword search</a> matches words anywhere in an image.</p>
${d.options ? (rows.length ? html`<p>${d.hits.length} hit${d.hits.length === 1 ? '' : 's'}${d.truncated ? ` (the first ${MAX_FIND_HITS})` : ''}</p><table class="list hits"><thead><tr><th>ref</th><th>commit</th><th>what</th><th>size</th><th>sha256</th></tr></thead><tbody>${rows}</tbody></table>` : html`<p>nothing found</p>`) : ''}`);
}
