/**
 * The image browser: a directory of an image as a file list (type, mode, owner, size, mtime, xattrs, hardlinks,
 * holes), paged; one file's metadata with its content (text up to a size limit, else a hex head); the download of
 * one file, streamed. A disk commit's root shows the partition layout first, each file system linking to its tree.
 */
import { UsageError } from '../errors.js';
import { quotePath } from '../model/quote.js';
import { isBinary } from '../ops/diff.js';
import type { DiskInfo } from '../ops/disk-info.js';
import { cat, describeEntry, diskLayout, ls, type LsEntry } from '../ops/ls.js';
import { readTree } from '../store/typed.js';
import { childPath } from '../tree/walk.js';
import { resolveSpec } from '../ops/resolve.js';
import type { Repository } from '../store/repository.js';
import { diskTable } from './commit.js';
import { html, type SafeHtml } from './html.js';
import { displayPath, formatBytes, page, paginate, pager, shortDate } from './layout.js';
import { commitUrl, logUrl, pathBytes, rawUrl, treeUrl } from './url.js';

/** Entries per directory page. */
export const TREE_PAGE_SIZE = 500;
/** The largest text shown in the file view (larger files show their head; download them for the rest). */
export const TEXT_VIEW_LIMIT = 1 << 20;
/** How much of a binary file the hex view shows. */
export const HEX_HEAD_BYTES = 4096;

/** What the image browser shows at one path: a page of a directory, or a file with its head. */
export interface TreeData {
  rev: string;
  /** The path's bytes ('' = the root). */
  path: Buffer;
  /** The page's entries (`ls REV:path --json` for a directory, `[entry]` for anything else). */
  entries: LsEntry[];
  dir: boolean;
  /** Directories: page `page` of `pages`, `total` entries in all (500 a page). */
  page: number;
  pages: number;
  total: number;
  disk?: DiskInfo;
  /** Files (HTML only): the first bytes of the content, and whether that is all of it. */
  head?: { bytes: Buffer; complete: boolean };
}

/** `REV:path` as the CLI takes it, with the path quoted when its bytes need it (so that any bytes round-trip). */
export function specOf(rev: string, path: Uint8Array): string {
  return path.length ? `${rev}:${quotePath(path)}` : rev;
}

async function readHead(repo: Repository, spec: string, limit: number): Promise<{ bytes: Buffer; complete: boolean }> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const p of cat(repo, spec)) {
    parts.push(Buffer.from(p));
    n += p.length;
    if (n >= limit) break;
  }
  const all = Buffer.concat(parts);
  return { bytes: all.subarray(0, limit), complete: all.length <= limit && n <= limit };
}

/** Page `n` of the directory (or the file) at `path` in `rev`; `content`: read the file's head (HTML view). */
export async function treeData(repo: Repository, rev: string, path: Buffer, n: number, content: boolean): Promise<TreeData> {
  const spec = specOf(rev, path);
  const r = resolveSpec(repo, spec);
  const disk = path.length === 0 && content ? diskLayout(repo, rev) : undefined;
  if (r.entry.type === 'dir' && r.entry.oid) {
    // ls's entries, described only for the page shown (a directory of 50,000 entries is one tree read).
    const all = readTree(repo.objects, r.entry.oid).entries;
    // Directories first, as file browsers list them (each group in name order); the JSON keeps ls's order.
    const sorted = content ? [...all.filter((e) => e.type === 'dir'), ...all.filter((e) => e.type !== 'dir')] : all;
    const p = paginate(sorted, n, TREE_PAGE_SIZE);
    const entries = p.items.map((e) => describeEntry(childPath(r.path, e.name), e));
    return { rev, path: r.path, entries, dir: true, page: p.page, pages: p.pages, total: p.total, ...(disk ? { disk } : {}) };
  }
  const entries = ls(repo, { spec });
  const head = content && (r.entry.type === 'file' || r.entry.type === 'symlink') ? await readHead(repo, spec, TEXT_VIEW_LIMIT) : undefined;
  return { rev, path: r.path, entries, dir: false, page: 1, pages: 1, total: 1, ...(head ? { head } : {}) };
}

/** The download of one file (or a symlink's target), streamed. Throws UsageError for directories and special files. */
export function rawFile(repo: Repository, rev: string, path: Buffer): { body: AsyncIterable<Uint8Array>; size: number; filename: string } {
  const spec = specOf(rev, path);
  const r = resolveSpec(repo, spec);
  if (r.entry.type !== 'file' && r.entry.type !== 'symlink') throw new UsageError(`'${spec}' is a ${r.entry.type}, not a file`);
  const size = r.entry.type === 'symlink' ? (r.entry.linkTarget?.length ?? 0) : r.entry.size;
  const base = r.path.subarray(r.path.lastIndexOf(0x2f) + 1).toString('utf8') || 'file';
  return { body: cat(repo, spec), size, filename: base };
}

const TYPE_CHAR: Record<string, string> = { file: '-', dir: 'd', symlink: 'l', chr: 'c', blk: 'b', fifo: 'p', socket: 's' };

/** `drwxr-xr-x` from a type and octal mode text (setuid, setgid, sticky as ls shows them). */
export function modeString(type: string, mode: string): string {
  const m = parseInt(mode, 8);
  const rwx = (shift: number, special: boolean, ch: string) => {
    const x = (m >> shift) & 1;
    return `${(m >> (shift + 2)) & 1 ? 'r' : '-'}${(m >> (shift + 1)) & 1 ? 'w' : '-'}${special ? (x ? ch : ch.toUpperCase()) : x ? 'x' : '-'}`;
  };
  return `${TYPE_CHAR[type] ?? '?'}${rwx(6, (m & 0o4000) !== 0, 's')}${rwx(3, (m & 0o2000) !== 0, 's')}${rwx(0, (m & 0o1000) !== 0, 't')}`;
}

/** An mtime in nanoseconds as an ISO date (UTC). */
export function mtimeIso(ns: string): string {
  const ms = Number(BigInt(ns) / 1_000_000n);
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `@${ns}` : d.toISOString().replace('.000Z', 'Z');
}

function breadcrumbs(rev: string, path: Buffer): SafeHtml {
  const parts = path.length ? path.toString('latin1').split('/').map((p) => Buffer.from(p, 'latin1')) : [];
  const crumbs = parts.map((p, i) => {
    const upto = Buffer.from(parts.slice(0, i + 1).map((x) => x.toString('latin1')).join('/'), 'latin1');
    return html` / <a href="${treeUrl(rev, upto)}">${quotePath(p)}</a>`;
  });
  return html`<nav class="crumbs" aria-label="path"><a href="${treeUrl(rev)}">${rev}</a>${crumbs}</nav>`;
}

function details(e: LsEntry): SafeHtml {
  const xattrs = e.xattrs ? Object.keys(e.xattrs) : [];
  return html`${e.linkTarget !== undefined ? html`<span class="target">→ ${e.linkTarget}</span> ` : ''}${e.rdev ? html`<span>${e.rdev.major}, ${e.rdev.minor}</span> ` : ''}${xattrs.length ? html`<span class="xattrs" title="${xattrs.join('\n')}">xattrs: ${xattrs.join(', ')}</span> ` : ''}${e.hardlink ? html`<span class="hardlink">hardlink: ${e.hardlink}</span> ` : ''}${e.holes ? html`<span class="holes">${e.holes} hole${e.holes === 1 ? '' : 's'}</span>` : ''}`;
}

function entryRow(rev: string, dir: Buffer, e: LsEntry): SafeHtml {
  const full = pathBytes(e.path, e.pathHex);
  const name = full.subarray(dir.length ? dir.length + 1 : 0);
  return html`<tr class="${e.type}"><td class="mode"><code>${modeString(e.type, e.mode)}</code></td><td class="owner">${e.uid}:${e.gid}</td>
<td class="num">${e.type === 'file' ? formatBytes(e.size) : ''}</td><td class="mtime">${mtimeIso(e.mtimeNs).slice(0, 19).replace('T', ' ')}</td>
<td class="name"><a href="${treeUrl(rev, full)}">${quotePath(name)}${e.type === 'dir' ? '/' : ''}</a></td><td class="details">${details(e)}</td></tr>`;
}

function hexDump(b: Buffer): string {
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    const row = b.subarray(i, i + 16);
    const hex = [...row].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    const text = [...row].map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${text}`);
  }
  return lines.join('\n');
}

/** The image browser page. */
export function treePage(d: TreeData): SafeHtml {
  const title = `${d.rev}:${d.path.length ? quotePath(d.path) : '/'}`;
  const top = html`<h1>${breadcrumbs(d.rev, d.path)}</h1>
<p class="actions"><a href="${commitUrl(d.rev)}">commit</a> · <a href="${logUrl(d.rev)}">history</a></p>`;
  if (d.dir) {
    return page(title, 'images', html`${top}${d.disk ? diskTable(d.rev, d.disk) : ''}
<p class="muted">${d.total} entr${d.total === 1 ? 'y' : 'ies'}</p>
<table class="list files"><thead><tr><th>mode</th><th>owner</th><th>size</th><th>mtime (UTC)</th><th>name</th><th></th></tr></thead>
<tbody>${d.entries.map((e) => entryRow(d.rev, d.path, e))}</tbody></table>
${pager(treeUrl(d.rev, d.path), {}, d.page, d.pages)}`);
  }
  const e = d.entries[0]!;
  let body: SafeHtml = html``;
  if (e.type === 'symlink') body = html`<p>symbolic link to <code>${e.linkTarget ?? ''}</code></p>`;
  else if (d.head && e.type === 'file') {
    const binary = isBinary(d.head.bytes) || !Buffer.from(d.head.bytes.toString('utf8'), 'utf8').equals(d.head.bytes) && d.head.complete;
    body = binary
      ? html`<p class="muted">binary file: the first ${Math.min(HEX_HEAD_BYTES, e.size)} bytes</p><pre class="hex">${hexDump(d.head.bytes.subarray(0, HEX_HEAD_BYTES))}</pre>`
      : html`${d.head.complete ? '' : html`<p class="muted">the first ${formatBytes(TEXT_VIEW_LIMIT)} of ${formatBytes(e.size)}: download the file for the rest</p>`}<pre class="text">${d.head.bytes.toString('utf8')}</pre>`;
  }
  return page(title, 'images', html`${top}
<dl class="meta"><dt>path</dt><dd>${displayPath(e.path, e.pathHex)}</dd><dt>type, mode</dt><dd><code>${modeString(e.type, e.mode)}</code> (${e.mode})</dd>
<dt>owner</dt><dd>${e.uid}:${e.gid}</dd><dt>size</dt><dd>${formatBytes(e.size)} <span class="muted">(${e.size} bytes)</span></dd>
${details(e).value ? html`<dt>also</dt><dd>${details(e)}</dd>` : ''}<dt>mtime</dt><dd>${shortDate(mtimeIso(e.mtimeNs))} <span class="muted">${e.mtimeNs} ns</span></dd>
${e.oid ? html`<dt>sha256</dt><dd><code>${e.oid}</code> <a href="/ui/find?sha256=${e.oid}">find in other images</a></dd>` : ''}
${e.xattrs ? html`<dt>xattrs</dt><dd><ul>${Object.entries(e.xattrs).map(([k, v]) => html`<li><code>${k}</code> = <code>${v}</code> <span class="muted">(base64)</span></li>`)}</ul></dd>` : ''}</dl>
${e.type === 'file' || e.type === 'symlink' ? html`<p><a class="button" href="${rawUrl(d.rev, d.path)}" download>download</a></p>` : ''}
${body}`);
}
