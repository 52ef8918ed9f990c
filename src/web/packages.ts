/** The packages page: the packages installed in an image, read from its own package database(s) (`viva packages`). */
import { inventoriesOf } from '../ops/image-packages.js';
import type { Inventory } from '../packages/types.js';
import type { Repository } from '../store/repository.js';
import { html, type SafeHtml } from './html.js';
import { page } from './layout.js';
import { commitUrl } from './url.js';

/** The inventories of an image, and the JSON `packages REV --json` prints for them. */
export interface PackagesData {
  rev: string;
  inventories: Inventory[];
  json: Inventory | { inventories: Inventory[] } | { format: null; packages: [] };
}

/** The package inventories of `rev` (every file system of a disk). Throws RevisionNotFoundError. */
export async function packagesData(repo: Repository, rev: string): Promise<PackagesData> {
  const inventories = await inventoriesOf(repo, rev);
  const json = inventories.length === 0 ? { format: null, packages: [] as [] } : inventories.length === 1 ? inventories[0]! : { inventories };
  return { rev, inventories, json };
}

/** The packages page. */
export function packagesPage(d: PackagesData): SafeHtml {
  const blocks = d.inventories.map((inv) => html`<section><h2>${inv.partition ? `${inv.partition}: ` : ''}${inv.file} <span class="muted">(${inv.format}, ${inv.packages.length} packages)</span></h2>
<table class="list packages"><thead><tr><th>package</th><th>version</th><th>arch</th></tr></thead><tbody>${inv.packages.map((p) => html`<tr><td><a href="/ui/find?package=${encodeURIComponent(p.name)}">${p.name}</a></td><td>${p.version}</td><td>${p.arch ?? ''}</td></tr>`)}</tbody></table></section>`);
  return page(`packages of ${d.rev}`, 'images', html`<h1>Packages of <a href="${commitUrl(d.rev)}">${d.rev}</a></h1>
${blocks.length ? blocks : html`<p class="muted">no package database (var/lib/dpkg/status, lib/apk/db/installed, var/lib/rpm/rpmdb.sqlite)</p>`}`);
}
