/** The page shell of the web view (head, navigation, footer) and the small formatting helpers every page shares. */
import { quotePath } from '../model/quote.js';
import { html, type HtmlValue, type SafeHtml } from './html.js';
import { pathBytes, query } from './url.js';

/** The static assets every page loads (built by `npm run build` into dist/web/). */
export const ASSETS = { script: '/static/app.js', style: '/static/app.css' } as const;

/** A whole HTML page: title, the section of the navigation to highlight, and the main content. */
export function page(title: string, section: string, main: HtmlValue): SafeHtml {
  const nav = [
    ['images', '/ui/'], ['derivations', '/ui/derivations'], ['compare', '/ui/compare'], ['find', '/ui/find'], ['storage', '/ui/storage'],
  ].map(([name, href]) => html`<a href="${href}"${name === section ? html` aria-current="page"` : ''}>${name}</a>`);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · viva</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ASSETS.style}">
<script src="${ASSETS.script}" defer></script>
</head>
<body>
<header class="top"><a class="brand" href="/ui/">viva</a><nav>${nav}</nav>
<form class="quick" action="/ui/search" method="get" role="search"><input type="search" name="q" placeholder="search images" aria-label="search images"></form></header>
<main>
${main}
</main>
</body>
</html>
`;
}

/** An image path for display: as viva's CLI prints it (C-quoted when it has control characters or is not UTF-8). */
export function displayPath(path: string, pathHex?: string): string {
  return quotePath(pathBytes(path, pathHex));
}

/** Bytes in binary units, as the CLI prints them (1.5 MiB). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** An ISO date shortened for tables (`2024-01-31 12:00`), the full one in the title. */
export function shortDate(iso: string): SafeHtml {
  return html`<time datetime="${iso}" title="${iso}">${iso.slice(0, 16).replace('T', ' ')}</time>`;
}

/** The first line of a commit message. */
export function subject(message: string): string {
  return message.split('\n', 1)[0] ?? '';
}

/** Page `n` (1-based) of `items`, and how many pages there are. */
export function paginate<T>(items: T[], pageNumber: number, size: number): { items: T[]; page: number; pages: number; total: number } {
  const pages = Math.max(1, Math.ceil(items.length / size));
  const p = Math.min(Math.max(1, pageNumber), pages);
  return { items: items.slice((p - 1) * size, p * size), page: p, pages, total: items.length };
}

/** Previous / next links for a paged list; `params` are kept in the links; `labels` name the two directions. */
export function pager(base: string, params: Record<string, string | undefined>, pageNumber: number, pages: number, labels: [string, string] = ['previous', 'next']): SafeHtml {
  if (pages <= 1) return html``;
  const link = (p: number) => `${base}${query({ ...params, page: p > 1 ? p : undefined })}`;
  const [back, on] = [`← ${labels[0]}`, `${labels[1]} →`];
  return html`<nav class="pager" aria-label="pages">${pageNumber > 1 ? html`<a rel="prev" href="${link(pageNumber - 1)}">${back}</a>` : html`<span>${back}</span>`}
<span>page ${pageNumber} of ${pages}</span>${pageNumber < pages ? html`<a rel="next" href="${link(pageNumber + 1)}">${on}</a>` : html`<span>${on}</span>`}</nav>`;
}

/** A page number from a query parameter (1 when missing or not a positive integer). */
export function pageParam(value: string | null): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** A short commit id linking to the commit. */
export function shortOid(oid: string): string {
  return oid.slice(0, 12);
}
