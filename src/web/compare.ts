/**
 * The compare page: two images (any revisions, `REV:path` too) side by side as `viva diff` sees them — each changed
 * entry with its status (A/D/M/T/R) and changed attributes, text hunks for the first few changed files, and the
 * package diff (added, removed, upgraded with versions). Without both sides it is the form that picks them.
 */
import { diff, patchFor, resolveDiffSides, type DiffEntry, type DiffResult } from '../ops/diff.js';
import { diffPackages, type PackageDiff } from '../ops/image-packages.js';
import { listBranches } from '../ops/branch.js';
import type { Repository } from '../store/repository.js';
import { html, type SafeHtml } from './html.js';
import { displayPath, formatBytes, page } from './layout.js';
import { compareUrl, pathBytes, treeUrl } from './url.js';
import { quotePath } from '../model/quote.js';

/** How many changed files get their text hunks on the compare page (the others link to a comparison of that path). */
export const MAX_INLINE_PATCHES = 10;
/** The largest file the compare page makes a patch for. */
export const MAX_PATCH_BYTES = 256 << 10;
/** Changed entries listed on the compare page (the JSON has them all). */
export const MAX_LISTED_ENTRIES = 5000;

/** The compare page's data: the diff (`diff A B --json`), the package diff (`diff --packages A B --json`), patches. */
export interface CompareData {
  a: string;
  b: string;
  path?: string;
  diff?: DiffResult;
  packages?: PackageDiff;
  patches: Record<string, string>;
  /** Branch names for the pickers. */
  names: string[];
}

/**
 * Compares `a` and `b` (both revisions; host paths are never read), limited to `path` when given; `a` alone is what
 * `viva diff A` compares (a range, or A's first parent with A). `packages`: the package diff too; `patches`: text hunks
 * of the first changed files. Throws RevisionNotFoundError, UsageError (a root commit alone).
 */
export async function compareData(repo: Repository, a: string, b: string, path: string | undefined, packages: boolean, patches: boolean): Promise<CompareData> {
  const names = patches ? listBranches(repo, 'branch').slice(0, 1000).map((r) => r.name) : [];
  const out: CompareData = { a, b, ...(path ? { path } : {}), patches: {}, names };
  if (!a) return out;
  // As `viva diff A`: A alone is a range (A..B, A...B) or a revision compared with its first parent.
  const sides = resolveDiffSides(repo, a, b || undefined);
  out.diff = diff(repo, { a: sides.a, b: sides.b, ...(path ? { paths: [path] } : {}) });
  if (packages && !path) out.packages = await diffPackages(repo, sides.a, sides.b);
  if (patches) {
    let n = 0;
    for (const e of out.diff.entries) {
      if (n >= MAX_INLINE_PATCHES) break;
      const size = Math.max(e.old?.size ?? 0, e.new?.size ?? 0);
      const file = (e.old?.type ?? e.new?.type) === 'file';
      if (!file || size > MAX_PATCH_BYTES || (e.status === 'M' && !e.changes?.includes('content'))) continue;
      const p = await patchFor(repo, e, { maxBytes: MAX_PATCH_BYTES });
      if (p) { out.patches[e.path] = p; n++; }
    }
  }
  return out;
}

function entryRow(d: CompareData, e: DiffEntry): SafeHtml {
  const bytes = pathBytes(e.path, e.pathHex);
  const side = e.status === 'D' ? d.diff!.a.rev : d.diff!.b.rev;
  const attrs = e.changes?.length ? html` <span class="attrs">[${e.changes.join(', ')}]</span>` : '';
  const from = e.from !== undefined ? html`<span class="muted">${displayPath(e.from, e.fromHex)} → </span>` : '';
  const size = e.old && e.new && e.old.size !== e.new.size ? html`${formatBytes(e.old.size)} → ${formatBytes(e.new.size)}` : e.new ? formatBytes(e.new.size) : e.old ? formatBytes(e.old.size) : '';
  return html`<tr class="st-${e.status}"><td class="status">${e.status}</td><td class="name">${from}<a href="${treeUrl(side, bytes)}">${displayPath(e.path, e.pathHex)}</a>${attrs}${e.xattrs?.length ? html` <span class="muted">xattrs: ${e.xattrs.join(', ')}</span>` : ''}</td>
<td class="num">${size}</td><td>${e.old && e.new && e.old.mode !== e.new.mode ? `${e.old.mode} → ${e.new.mode}` : ''}${e.old && e.new && (e.old.uid !== e.new.uid || e.old.gid !== e.new.gid) ? ` ${e.old.uid}:${e.old.gid} → ${e.new.uid}:${e.new.gid}` : ''}</td>
<td class="actions">${e.status === 'M' && e.changes?.includes('content') && !d.path ? html`<a href="${compareUrl(d.a, d.b, quotePath(bytes))}">hunks</a>` : ''}</td></tr>`;
}

function patchBlock(text: string): SafeHtml {
  const lines = text.split('\n').map((l) => {
    const cls = l.startsWith('@@') ? 'hunk' : l.startsWith('+') && !l.startsWith('+++') ? 'add' : l.startsWith('-') && !l.startsWith('---') ? 'del' : '';
    return html`<span class="${cls}">${l}</span>\n`;
  });
  return html`<pre class="patch">${lines}</pre>`;
}

/** The compare page. */
export function comparePage(d: CompareData): SafeHtml {
  const options = d.names.map((n) => html`<option value="${n}">`);
  const form = html`<form class="compare" action="/ui/compare" method="get">
<label>A <input name="a" list="names" value="${d.a}" required></label> <label>B <input name="b" list="names" value="${d.b}" placeholder="(A's parent → A)"></label>
<label>path <input name="path" value="${d.path ?? ''}" placeholder="(whole image)"></label> <button>compare</button>
<datalist id="names">${options}</datalist></form>`;
  if (!d.diff) return page('compare', 'compare', html`<h1>Compare</h1>${form}<p class="muted">Any revision: a branch, a tag, a commit id, HEAD~2, or REV:path for a directory or a disk partition (vm/web:p1).</p>`);
  const counts: Record<string, number> = {};
  for (const e of d.diff.entries) counts[e.status] = (counts[e.status] ?? 0) + 1;
  const summary = Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ') || 'no differences';
  const shown = d.diff.entries.slice(0, MAX_LISTED_ENTRIES);
  const pk = d.packages;
  const pkRows = (pk?.changes ?? []).map((c) => html`<tr class="pk-${c.change}"><td>${c.change}</td><td>${c.name}${c.arch ? html` <span class="muted">${c.arch}</span>` : ''}</td><td>${c.from ?? ''}</td><td>${c.to ?? ''}</td><td>${c.partition ?? ''}</td></tr>`);
  const [ra, rb] = [d.diff.a.rev, d.diff.b.rev];
  return page(`compare ${ra} … ${rb}`, 'compare', html`<h1>Compare <a href="${treeUrl(ra)}">${ra}</a> → <a href="${treeUrl(rb)}">${rb}</a></h1>${form}
<p class="summary">${summary}${d.path ? html` under <code>${d.path}</code>` : ''}</p>
<table class="list diff"><thead><tr><th></th><th>path</th><th>size</th><th>attributes</th><th></th></tr></thead><tbody>${shown.map((e) => entryRow(d, e))}</tbody></table>
${d.diff.entries.length > shown.length ? html`<p class="muted">${d.diff.entries.length - shown.length} more: see the JSON at <a href="${`/api${compareUrl(d.a, d.b, d.path).slice(3)}`}">/api/compare</a></p>` : ''}
${pk ? html`<h2>Packages</h2>${!pk.a && !pk.b ? html`<p class="muted">no package database in either image</p>` : pkRows.length ? html`<table class="list packages"><thead><tr><th>change</th><th>package</th><th>from</th><th>to</th><th>partition</th></tr></thead><tbody>${pkRows}</tbody></table>` : html`<p class="muted">the same packages</p>`}` : ''}
${Object.keys(d.patches).length ? html`<h2>Changes</h2>${Object.entries(d.patches).map(([p, text]) => html`<section class="file"><h3>${p}</h3>${patchBlock(text)}</section>`)}` : ''}`);
}
