/** The commit page: one image version as `viva show` describes it (metadata, labels, source, disk, derivation). */
import { show, type ShowResult } from '../ops/show.js';
import type { DiskInfo } from '../ops/disk-info.js';
import type { Repository } from '../store/repository.js';
import { html, type SafeHtml } from './html.js';
import { formatBytes, page, shortDate, shortOid, subject } from './layout.js';
import { commitUrl, compareUrl, logUrl, packagesUrl, treeUrl } from './url.js';

/** The commit page's data: `show REV --json`. */
export interface CommitData {
  rev: string;
  show: ShowResult;
}

/** `show` of `rev`. Throws RevisionNotFoundError. */
export function commitData(repo: Repository, rev: string): CommitData {
  return { rev, show: show(repo, rev) };
}

/** The partition table and file systems of a disk commit, each linking to its tree in the browser. */
export function diskTable(rev: string, d: DiskInfo): SafeHtml {
  const rows = d.regions.map((r) => {
    const fs = r.fs ? html`${r.fs.type}${r.fs.label ? html` “${r.fs.label}”` : ''}${r.fs.uuid ? html` <span class="muted">${r.fs.uuid}</span>` : ''}` : r.lvm ? html`LVM ${r.lvm.vg}: ${r.lvm.volumes.map((v) => v.path ? html`<a href="${treeUrl(rev, Buffer.from(v.path))}">${v.name}</a> ` : html`${v.name} `)}` : html`raw`;
    const where = r.path !== undefined ? html`<a href="${treeUrl(rev, Buffer.from(r.path))}">${r.path || '/'}</a>` : html`–`;
    return html`<tr><td>${where}</td><td>${r.partition ? html`${r.partition.index} ${r.partition.type}${r.partition.name ? html` (${r.partition.name})` : ''}${r.partition.bootable ? ' boot' : ''}` : '–'}</td>
<td class="num">${r.offset}</td><td class="num">${formatBytes(r.size)}</td><td>${r.kind}</td><td>${fs}</td></tr>`;
  });
  return html`<section class="disk"><h2>Disk</h2><p>${formatBytes(d.size)}, ${d.sectorSize}-byte sectors${d.table ? html`, ${d.table.kind.toUpperCase()} ${d.table.id}` : ', no partition table'}</p>
<table class="list"><thead><tr><th>files at</th><th>partition</th><th>offset</th><th>size</th><th>kind</th><th>file system</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

/** The commit page. */
export function commitPage(d: CommitData): SafeHtml {
  const s = d.show;
  const labels = Object.entries(s.labels).map(([k, v]) => html`<span class="label">${k}=${v}</span>`);
  const dv = s.derivation;
  return page(`${subject(s.message)} · ${shortOid(s.id)}`, 'images', html`<h1>${subject(s.message)}</h1>
<dl class="meta">
<dt>commit</dt><dd><code>${s.id}</code></dd>
<dt>author</dt><dd>${s.author}</dd><dt>date</dt><dd>${shortDate(s.date)}</dd>
${s.parents.length ? html`<dt>parents</dt><dd>${s.parents.map((p) => html`<a class="oid" href="${commitUrl(p)}">${shortOid(p)}</a> `)}</dd>` : ''}
${s.refs.length ? html`<dt>refs</dt><dd>${s.refs.map((r) => { const n = r.replace(/^refs\/(heads|tags)\//, ''); return html`<a class="label" href="${logUrl(n)}">${n}</a> `; })}</dd>` : ''}
${labels.length ? html`<dt>labels</dt><dd>${labels}</dd>` : ''}
<dt>source</dt><dd>${s.source.format}${s.source.name ? html` ${s.source.name}` : ''}${s.source.size ? html`, ${formatBytes(s.source.size)}` : ''}</dd>
<dt>root</dt><dd>${s.rootKind} <code>${shortOid(s.root)}</code>, ${s.rootEntries} entries</dd>
</dl>
<pre class="message">${s.message}</pre>
<p class="actions"><a href="${treeUrl(s.id)}">browse files</a> · <a href="${logUrl(s.id)}">history</a> · <a href="${packagesUrl(s.id)}">packages</a> · <a href="/ui/storage/${encodeURIComponent(s.id)}">storage</a>${s.parents[0] ? html` · <a href="${compareUrl(s.parents[0], s.id)}">changes against the first parent</a>` : ''}</p>
${s.disk ? diskTable(s.id, s.disk) : ''}
${dv ? html`<section class="derivation"><h2>Derivation</h2><p>${dv.kind}: ${dv.recipe.summary} <span class="muted">(recipe <code>${shortOid(dv.recipe.id)}</code>, ${dv.tool})</span></p>
<ul>${dv.bases.map((b) => html`<li>from <a class="oid" href="${commitUrl(b.commit)}">${shortOid(b.commit)}</a> ${b.refs.map((r) => html`<span class="label">${r.replace(/^refs\/(heads|tags)\//, '')}</span> `)} <a href="${compareUrl(b.commit, s.id)}">compare</a></li>`)}</ul>
${dv.recipe.edits?.length ? html`<ul class="edits">${dv.recipe.edits.map((e) => html`<li><code>${e.text}</code></li>`)}</ul>` : ''}</section>` : ''}`);
}
