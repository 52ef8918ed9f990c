/**
 * The storage page: logical vs unique vs stored bytes per image and for the repository, with the dedup and
 * compression ratios (`viva stats`), drawn as charts by the client bundle (uPlot) from data in the page.
 */
import { listBranches } from '../ops/branch.js';
import { imageStats, repositoryStats, type ImageStats, type RepositoryStats } from '../ops/stats.js';
import type { Oid } from '../model/oid.js';
import { resolveRevision } from '../ops/resolve.js';
import { partialConfig } from '../sync/partial.js';
import type { Repository } from '../store/repository.js';
import { html, type SafeHtml } from './html.js';
import { formatBytes, page, paginate, pager, shortOid } from './layout.js';
import { commitUrl, logUrl } from './url.js';

/** Images (branch heads) per storage page. */
export const STORAGE_PAGE_SIZE = 25;

/** One image's figures, named by the branch it is the head of. */
export interface ImageStorage extends ImageStats {
  name?: string;
}

/** The storage page: the repository's figures (`stats --json`) and a page of branch heads' (`stats REV --json`). */
export interface StorageData {
  repository?: RepositoryStats;
  images: ImageStorage[];
  page: number;
  pages: number;
  total: number;
}

/**
 * Image figures by commit id, per repository handle, for the server's life: a commit's figures do not change (except
 * in a partial clone as content arrives, where stats counts what is present: such repositories are not cached).
 */
const cache = new WeakMap<Repository, Map<Oid, ImageStats>>();

function statsCache(repo: Repository): Map<Oid, ImageStats> | undefined {
  if (partialConfig(repo)) return undefined;
  let m = cache.get(repo);
  if (!m) { m = new Map(); cache.set(repo, m); }
  return m;
}

function cachedImageStats(repo: Repository, rev: string): ImageStats {
  const oid = resolveRevision(repo, rev).oid;
  const m = statsCache(repo);
  let s = m?.get(oid);
  if (!s) { s = imageStats(repo, oid); m?.set(oid, s); }
  return s;
}

/** `stats REV`. Throws RevisionNotFoundError. */
export function imageStorageData(repo: Repository, rev: string): ImageStorage {
  return cachedImageStats(repo, rev);
}

/** The repository's figures, and (for the HTML page) those of page `n` of the branch heads. */
export function storageData(repo: Repository, n: number, repositoryOnly: boolean): StorageData {
  const repository = repositoryStats(repo, statsCache(repo));
  if (repositoryOnly) return { repository, images: [], page: 1, pages: 1, total: 0 };
  const p = paginate(listBranches(repo, 'branch'), n, STORAGE_PAGE_SIZE);
  const images = p.items.map((r) => ({ ...cachedImageStats(repo, r.oid), name: r.name }));
  return { repository, images, page: p.page, pages: p.pages, total: p.total };
}

const ratio = (x: number) => `${x.toFixed(2)}×`;

/** The storage page. */
export function storagePage(_repo: Repository, d: StorageData): SafeHtml {
  const r = d.repository;
  const chart = {
    names: d.images.map((i) => i.name ?? shortOid(i.commit)),
    series: [
      { label: 'logical', values: d.images.map((i) => i.logicalBytes) },
      { label: 'unique', values: d.images.map((i) => i.uniqueBytes) },
      { label: 'stored', values: d.images.map((i) => i.storedBytes) },
    ],
  };
  const kinds = r ? Object.keys(r.objects).sort() : [];
  const repoChart = r ? { names: kinds, series: [{ label: 'stored', values: kinds.map((k) => r.storedBytes[k] ?? 0) }] } : undefined;
  const rows = d.images.map((i) => html`<tr><td>${i.name ? html`<a href="${logUrl(i.name)}">${i.name}</a>` : html`<a class="oid" href="${commitUrl(i.commit)}">${shortOid(i.commit)}</a>`}</td>
<td class="num">${i.files}</td><td class="num">${formatBytes(i.logicalBytes)}</td><td class="num">${formatBytes(i.uniqueBytes)}</td><td class="num">${formatBytes(i.storedBytes)}</td>
<td class="num">${ratio(i.dedupRatio)}</td><td class="num">${ratio(i.compressionRatio)}</td></tr>`);
  return page('storage', 'storage', html`<h1>Storage</h1>
${r ? html`<section class="totals"><h2>Repository</h2>
<p>${r.refs} refs, ${r.commits} commits; stored ${formatBytes(r.totalStoredBytes)}; the images at the refs hold ${formatBytes(r.headsLogicalBytes)} (${ratio(r.overallRatio)} overall)</p>
<div class="chart" data-chart="${JSON.stringify(repoChart)}" data-title="stored bytes by object kind"></div>
<table class="list"><thead><tr><th>kind</th><th>objects</th><th>stored</th></tr></thead><tbody>${kinds.map((k) => html`<tr><td>${k}</td><td class="num">${r.objects[k]}</td><td class="num">${formatBytes(r.storedBytes[k] ?? 0)}</td></tr>`)}</tbody></table></section>` : ''}
<section class="images"><h2>Images</h2>
<p class="muted">Logical: every file's size (hardlinks once); unique: each distinct content once (dedup = logical / unique); stored: those contents' chunks after compression (compression = unique / stored).</p>
<div class="chart" data-chart="${JSON.stringify(chart)}" data-title="bytes per image"></div>
<table class="list"><thead><tr><th>image</th><th>files</th><th>logical</th><th>unique</th><th>stored</th><th>dedup</th><th>compression</th></tr></thead><tbody>${rows}</tbody></table>
${pager('/ui/storage', {}, d.page, d.pages)}</section>`);
}
