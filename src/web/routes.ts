/**
 * The router of the web view: a path under /ui/ (or the same under /api/) and its query to one page's data, rendered
 * as HTML or returned as JSON in the CLI's `--json` shape. Every page is a pure function of the repository's
 * manifests and indexes; only the file view and the download read content.
 */
import type { Repository } from '../store/repository.js';
import type { SafeHtml } from './html.js';
import { pageParam } from './layout.js';
import { namespaceData, namespacePage } from './namespace.js';
import { historyData, historyPage } from './history.js';
import { commitData, commitPage } from './commit.js';
import { treeData, treePage, rawFile } from './tree.js';
import { compareData, comparePage } from './compare.js';
import { findData, findPage, searchData, searchPage } from './search.js';
import { derivationsData, derivationsPage } from './derivations.js';
import { storageData, storagePage, imageStorageData } from './storage.js';
import { packagesData, packagesPage } from './packages.js';
import { decodePathBytes } from './url.js';

/** Paging of a JSON list answer (sent as X-Total-Count and Link headers; the body stays the CLI's shape). */
export interface Paging {
  /** Unknown for a history that goes on beyond the page. */
  total?: number;
  page: number;
  pages: number;
}

/** What a route produced. */
export type PageResult =
  | { kind: 'html'; html: SafeHtml }
  | { kind: 'json'; value: unknown; paging?: Paging }
  | { kind: 'stream'; body: AsyncIterable<Uint8Array>; size: number; filename: string }
  | { kind: 'redirect'; location: string }
  | { kind: 'not-found' };

function out<T>(json: boolean, data: T, toJson: (d: T) => unknown, toHtml: (d: T) => SafeHtml, paging?: Paging): PageResult {
  return json ? { kind: 'json', value: toJson(data), ...(paging ? { paging } : {}) } : { kind: 'html', html: toHtml(data) };
}

/** Routes one GET request (`pathname` under /, /ui/ or /api/) to its page. */
export async function routePage(repo: Repository, pathname: string, q: URLSearchParams, json: boolean): Promise<PageResult> {
  const rest = pathname === '/' ? '' : pathname.replace(/^\/(ui|api)(?=\/|$)/, '');
  if (rest === pathname && pathname !== '/') return { kind: 'not-found' };
  const parts = rest.split('/').filter((s, i) => i > 0 || s !== '');
  const [section = '', revSeg, ...pathSegs] = parts;
  const rev = revSeg === undefined ? undefined : decodePathBytes(revSeg).toString('utf8');
  const imagePath = decodePathBytes(pathSegs.join('/'));
  const n = pageParam(q.get('page'));
  switch (section) {
    case '': {
      if (parts.length > 1) return { kind: 'not-found' };
      const d = namespaceData(repo, q.get('q') ?? '', n);
      return out(json, d, (x) => x.branches, (x) => namespacePage(repo, x), d);
    }
    case 'tags': {
      const d = namespaceData(repo, q.get('q') ?? '', 1);
      return out(json, d, (x) => x.tags, (x) => namespacePage(repo, x));
    }
    case 'log': {
      if (!rev) return { kind: 'redirect', location: '/ui/' };
      const d = historyData(repo, rev, n);
      return out(json, d, (x) => x.entries, historyPage, d);
    }
    case 'commit': {
      if (!rev) return { kind: 'redirect', location: '/ui/' };
      return out(json, commitData(repo, rev), (x) => x.show, commitPage);
    }
    case 'tree': {
      if (!rev) return { kind: 'redirect', location: '/ui/' };
      const d = await treeData(repo, rev, imagePath, n, !json);
      return out(json, d, (x) => x.entries, treePage, d.dir ? d : undefined);
    }
    case 'raw': {
      if (!rev) return { kind: 'not-found' };
      return { kind: 'stream', ...rawFile(repo, rev, imagePath) };
    }
    case 'compare': {
      const d = await compareData(repo, q.get('a') ?? '', q.get('b') ?? '', q.get('path') ?? undefined, json ? q.get('packages') === '1' : true, !json);
      return out(json, d, (x) => (q.get('packages') === '1' ? x.packages ?? null : x.diff ?? null), comparePage);
    }
    case 'search': {
      const d = await searchData(repo, q);
      return out(json, d, (x) => x.hits, searchPage);
    }
    case 'find': {
      const d = await findData(repo, q);
      return out(json, d, (x) => x.hits, findPage);
    }
    case 'derivations':
      return out(json, derivationsData(repo), (x) => x.graph, derivationsPage);
    case 'storage': {
      if (rev) return out(json, imageStorageData(repo, rev), (x) => x, (x) => storagePage(repo, { repository: undefined, images: [x], page: 1, pages: 1, total: 1 }));
      const d = storageData(repo, n, json);
      return out(json, d, (x) => x.repository, (x) => storagePage(repo, x), d);
    }
    case 'packages': {
      if (!rev) return { kind: 'redirect', location: '/ui/' };
      const d = await packagesData(repo, rev);
      return out(json, d, (x) => x.json, packagesPage);
    }
    default:
      return { kind: 'not-found' };
  }
}
