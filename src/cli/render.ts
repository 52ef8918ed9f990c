/** Human renderers for op results, kept apart from the ops (which never print). */
import type { PackageOpResult } from '../ops/install.js';
import type { MergeOpResult } from '../ops/merge.js';
import type { CommitResult } from '../ops/commit.js';
import type { LogEntry } from '../ops/log.js';
import type { LsEntry } from '../ops/ls.js';
import type { DiskInfo } from '../ops/disk-info.js';
import type { DiffEntry } from '../ops/diff.js';
import type { PackageDiff } from '../ops/image-packages.js';
import type { DeriveResult } from '../ops/derive.js';
import type { BatchResult } from '../ops/derive-batch.js';
import type { DerivationGraph, DerivationInfo } from '../ops/derivations.js';
import type { RebuildResult } from '../ops/rebuild.js';
import type { ShowResult } from '../ops/show.js';
import type { FsckResult } from '../ops/fsck.js';
import type { RefInfo } from '../ops/branch.js';
import type { ReflogResult } from '../ops/reflog.js';
import type { ExportGitResult } from '../ops/export-git.js';
import type { ImportGitResult } from '../ops/import-git.js';
import type { NbdSessionEntry } from '../ops/nbd-sessions.js';
import { shortOid } from '../model/oid.js';
import { quotePath, quoteResultPath } from '../model/quote.js';
import { decorationName, shortRefName } from '../model/ref.js';
import { createRequire } from 'node:module';
import { formatBytes, plural } from './format.js';
import { paint, paintPatch } from './color.js';
import type { RunVmResult } from '../nbd/run.js';

let stringWidth: ((s: string) => number) | undefined;

/**
 * Columns `s` takes on a terminal: CJK ideographs, fullwidth forms and emoji take two, combining marks none.
 * Printable ASCII is its length; anything else asks string-width, loaded then (it costs 20 ms of start-up).
 */
export function displayWidth(s: string): number {
  if (/^[\x20-\x7e]*$/.test(s)) return s.length;
  stringWidth ??= (createRequire(import.meta.url)('string-width') as { default: (s: string) => number }).default;
  return stringWidth(s);
}

/** `s` padded with spaces to `width` terminal columns (String.padEnd counts UTF-16 units, which misaligns wide characters). */
export function padDisplay(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - displayWidth(s)));
}

/** The widest of `values` in terminal columns (0 for none). */
function columnWidth(values: string[]): number {
  return values.reduce((w, v) => Math.max(w, displayWidth(v)), 0);
}

export function renderCommit(r: CommitResult): string {
  const head = `[${shortRefName(r.branch)}${r.parent ? '' : ' (root-commit)'} ${shortOid(r.commit)}]`;
  const cached = r.cachedFiles ? `, ${r.cachedFiles} unchanged (stat cache${r.cachedDirs ? `; ${plural(r.cachedDirs, 'directory', 'directories')} whole from the tree cache` : ''})` : '';
  const disk = r.rootKind === 'disk' ? `${r.source.format} disk ${r.source.name ?? ''}: ` : '';
  return `${head} ${disk}${plural(r.files, 'file')}, ${plural(r.dirs, 'directory', 'directories')}, ${formatBytes(r.bytes)}; ${formatBytes(r.storedBytes)} new in the repository${cached}`;
}

export function renderDerive(r: DeriveResult): string {
  const head = `[${shortRefName(r.branch)}${r.parent ? '' : ' (root-commit)'} ${shortOid(r.id)}]`;
  const how = r.reused ? 'same recipe on the same base made before: its tree reused' : `${plural(r.treesWritten, 'directory', 'directories')} written`;
  return `${head} derived from ${r.base.rev} (${shortOid(r.base.commit)}): ${plural(r.edits, 'edit')}, ${how}; recipe ${shortOid(r.recipe)}`;
}

function indent(msg: string): string {
  return msg.split('\n').map((l) => `    ${l}`).join('\n');
}

/** One decoration in git's colours: tags bold yellow, remote-tracking branches bold red, branches bold green. */
function paintRef(ref: string): string {
  const name = decorationName(ref);
  if (ref === 'HEAD') return paint.head(name);
  if (ref.startsWith('refs/tags/')) return paint.tag(name);
  if (ref.startsWith('refs/remotes/')) return paint.remoteBranch(name);
  return paint.branch(name);
}

/** Decorations as git prints them, ` (HEAD -> main, tag: v1, origin/main)`, in git's colours; '' for none. */
export function renderDecorations(refs: string[], head?: string): string {
  const parts = head ? [`${paint.head('HEAD ->')} ${paint.branch(shortRefName(head))}`, ...refs.filter((r) => r !== head).map(paintRef)] : refs.map(paintRef);
  return parts.length ? ` ${paint.decoration('(')}${parts.join(paint.decoration(', '))}${paint.decoration(')')}` : '';
}

/**
 * One commit as `git log` prints it (or one line with `oneline`); `refs` and `head` are the decorations to show
 * (pass none for --no-decorate). A derived commit names its base on a `Derived:` line, as a merge names its parents.
 */
export function renderLogEntry(e: LogEntry, oneline = false, refs: string[] = [], head?: string): string {
  const deco = renderDecorations(refs, head);
  if (oneline) return `${paint.commitId(shortOid(e.id))}${deco} ${e.message.split('\n')[0]}`;
  const lines = [`${paint.commitId(`commit ${e.id}`)}${deco}`];
  if (e.parents.length > 1) lines.push(`Merge: ${e.parents.map(shortOid).join(' ')}`);
  if (e.derivedFrom?.length) lines.push(`Derived: ${e.derivedFrom.map(shortOid).join(' ')}`);
  lines.push(`Author: ${e.author}`, `Date:   ${e.date}`);
  const labels = Object.entries(e.labels);
  if (labels.length) lines.push(`Labels: ${labels.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  lines.push('', indent(e.message), '');
  return lines.join('\n');
}

/** How `viva log` prints each entry: --oneline, decorations, and what each commit changed. */
export interface LogRenderOptions {
  oneline?: boolean;
  decorate?: boolean;
  /** Draw the commit graph at the left (entries must carry graphParents). */
  graph?: boolean;
  /** After each commit: `--stat` lines, the `--name-status` lines, or with patches (`-p`) both as `diff -p` shows them. */
  stat?: boolean;
  nameStatus?: boolean;
  patch?: boolean;
}

/** The text lines of one log entry: its header and message, then its --stat and --name-status / -p lines. */
function logEntryLines(e: LogEntry, o: LogRenderOptions): string[] {
  const lines = renderLogEntry(e, o.oneline, o.decorate ? e.refs : [], o.decorate ? e.head : undefined).split('\n');
  const changes = e.changes;
  if (!changes || (!o.stat && !o.patch && !o.nameStatus)) return o.oneline ? lines : lines.slice(0, -1).concat(['']);
  const body: string[] = [];
  if (o.stat && changes.length) body.push(...renderDiffStat(changes).split('\n'));
  if (o.stat && (o.patch || o.nameStatus) && changes.length) body.push('');
  if ((o.patch || o.nameStatus) && changes.length) body.push(...renderDiff(changes, o.patch ? e.patches : undefined).split('\n'));
  if (o.oneline) return [...lines, ...body];
  // Full format: the header ends with a blank line; the changes follow it, and one blank line ends the commit.
  return body.length ? [...lines, ...body, ''] : lines;
}

/** `viva log` text: each entry as git log prints it, or with the commit graph drawn at the left (renderLogGraph). */
export function renderLog(entries: LogEntry[], o: LogRenderOptions): string[] {
  if (o.graph) return renderLogGraph(entries, (e) => logEntryLines(e, o));
  const out: string[] = [];
  for (const e of entries) {
    const lines = logEntryLines(e, o);
    // The last line of a full entry is the blank line that ends it (renderLogEntry's trailing newline).
    out.push((o.oneline ? lines : lines.slice(0, -1)).join('\n') + (o.oneline ? '' : '\n'));
  }
  return out;
}

/** `whatchanged`: per commit, one line per change: `id date STATUS path  subject` (`from -> to` for a rename). */
export function renderWhatchanged(entries: LogEntry[]): string {
  const lines: string[] = [];
  for (const e of entries) {
    const head = `${shortOid(e.id)} ${e.date.slice(0, 10)}`;
    const subject = e.message.split('\n')[0];
    const changes = e.changes ?? [];
    if (changes.length === 0) lines.push(`${head} - ${e.path ?? ''}  ${subject}`);
    for (const c of changes) {
      const details = (c.status === 'M' || c.status === 'R') && c.changes?.length ? ` [${diffDetails(c)}]` : c.status === 'T' ? ` [${c.old!.type} -> ${c.new!.type}]` : '';
      lines.push(`${head} ${c.status} ${diffName(c)}${details}  ${subject}`);
    }
  }
  return lines.join('\n');
}

/** One column of the graph: the commit it leads to, and whether it is a derivation edge (drawn dotted). */
interface GraphColumn {
  oid: string | null;
  derived: boolean;
}

/** A row of the graph: characters at their positions (column j at 2j, lines moving between columns at odd ones). */
function graphRow(width: number): string[] {
  return new Array<string>(width).fill(' ');
}

/** The character of a column that runs straight down. */
function vertical(c: GraphColumn): string {
  return c.oid === null ? ' ' : c.derived ? ':' : '|';
}

/**
 * The commit graph as git log --graph draws it (`*` the commit, `|` a line of history, `\` a merge's other parent
 * branching off, `/` a line joining another), one commit after another in the order given (topological: entries
 * from log's graph mode). Derivation edges — a derived commit to the base it was made from — run down as `:` instead
 * of `|`. `linesOf` gives each entry's text lines; the first goes beside the `*`, the others beside the lines below it.
 */
export function renderLogGraph(entries: LogEntry[], linesOf: (e: LogEntry) => string[]): string[] {
  let cols: GraphColumn[] = [];
  const out: string[] = [];
  for (const e of entries) {
    let i = cols.findIndex((c) => c.oid === e.id);
    if (i < 0) { cols.push({ oid: e.id, derived: false }); i = cols.length - 1; }
    const edges = e.graphParents ?? [];
    const derived = new Set(e.derivedFrom ?? []);
    const next: GraphColumn[] = edges.map((p) => ({ oid: p, derived: derived.has(p) && !e.parents.includes(p) }));
    // The commit's row, then one row per further parent: `|\` there, and the columns to the right moving over.
    const rows: string[][] = [];
    const fresh = next.slice(1).filter((p) => !cols.some((c, j) => j !== i && c.oid === p.oid)).length;
    const width = 2 * (cols.length + fresh);
    const commitRow = graphRow(width);
    cols.forEach((c, j) => { commitRow[2 * j] = j === i ? '*' : vertical(c); });
    rows.push(commitRow);
    let state: GraphColumn[] = [...cols.slice(0, i), next[0] ?? { oid: null, derived: false }, ...cols.slice(i + 1)];
    let inserted = 0;
    for (let k = 1; k < next.length; k++) {
      const row = graphRow(width);
      // A parent some other line already leads to: an edge over to that line (`/`, `\`, `_` across others).
      const t = state.findIndex((c, j) => j !== i && c.oid === next[k]!.oid);
      if (t >= 0) {
        state.forEach((c, j) => { row[2 * j] = vertical(c); });
        if (t < i) for (let x = 2 * t + 1; x < 2 * i - 1; x += 2) row[x] = '_';
        else for (let x = 2 * i + 3; x < 2 * t; x += 2) row[x] = '_';
        row[t < i ? 2 * i - 1 : 2 * i + 1] = t < i ? '/' : '\\';
        rows.push(row);
        if (next[k]!.derived === false) state[t] = { ...state[t]!, derived: false };
        continue;
      }
      const at = i + inserted++;
      state.forEach((c, j) => {
        if (j <= at) row[2 * j] = vertical(c);
        else row[2 * j + 1] = '\\';
      });
      row[2 * at + 1] = '\\';
      state = [...state.slice(0, at + 1), next[k]!, ...state.slice(at + 1)];
      rows.push(row);
    }
    // A derivation edge shows even where the next commit follows at once (--oneline): a row with its `:` below.
    if (state.some((c) => c.derived && next.includes(c))) {
      const r = graphRow(width);
      state.forEach((c, j) => { r[2 * j] = vertical(c); });
      rows.push(r);
    }
    // Lines that end here (a root commit's column) or meet another (two columns leading to the same commit) close up.
    cols = collapse(state, (row) => rows.push(row), width);
    // The text: the first line beside the `*`, the next ones beside the rows below it (as git: `|/  Author: …`),
    // then beside the columns as they go on; rows left over stand alone.
    const text = linesOf(e);
    const pad = (row: string[]) => row.join('').padEnd(width);
    text.forEach((line, n) => {
      const row = n < rows.length ? rows[n]! : (() => { const r = graphRow(width); cols.forEach((c, j) => { r[2 * j] = vertical(c); }); return r; })();
      out.push(`${pad(row)}${line}`.trimEnd());
    });
    for (let n = text.length; n < rows.length; n++) out.push(rows[n]!.join('').trimEnd());
  }
  return out;
}

/**
 * Removes empty columns and joins columns that lead to the same commit into the leftmost of them, one row per step
 * as git draws it: `|/` (and `|/|` when a line crosses another on its way left), the columns to the right moving in.
 */
function collapse(state: GraphColumn[], emit: (row: string[]) => void, width: number): GraphColumn[] {
  let cols = state;
  for (;;) {
    let k = -1;
    let f = -1;
    for (let j = cols.length - 1; j >= 0 && k < 0; j--) {
      if (cols[j]!.oid === null) { k = j; f = j; break; }
      const first = cols.findIndex((c) => c.oid === cols[j]!.oid);
      if (first < j) { k = j; f = first; }
    }
    if (k < 0) return cols;
    const moving = cols[k]!;
    if (moving.oid === null) {
      // An ended line: the columns to its right move one place left (nothing to draw when there are none).
      if (k < cols.length - 1) {
        const row = graphRow(width);
        cols.forEach((c, j) => { if (j < k) row[2 * j] = vertical(c); else if (j > k) row[2 * j - 1] = '/'; });
        emit(row);
      }
      cols = cols.filter((_c, j) => j !== k);
      continue;
    }
    for (let r = 0; r < k - f; r++) {
      const row = graphRow(width);
      cols.forEach((c, j) => {
        if (j < k) row[2 * j] = vertical(c);
        else if (j > k) { if (r === 0) row[2 * j - 1] = '/'; else row[2 * (j - 1)] = vertical(c); }
      });
      row[2 * k - 1 - 2 * r] = '/';
      emit(row);
    }
    const target = cols[f]!;
    cols = cols.filter((_c, j) => j !== k).map((c, j) => (j === f ? { oid: target.oid, derived: target.derived && moving.derived } : c));
  }
}

export function renderShow(s: ShowResult): string {
  const lines = [renderLogEntry(s, false, s.refs, s.head).trimEnd(), ''];
  lines.push(`Tree:   ${s.tree} (${plural(s.rootEntries, 'entry', 'entries')} at the root)`);
  lines.push(`Source: ${s.source.format}${s.source.name ? ` ${s.source.name}` : ''}${s.source.size ? ` (${formatBytes(s.source.size)})` : ''}`);
  if (s.source.backing?.length) lines.push(`Backing: ${s.source.backing.join(' <- ')}`);
  if (s.source.omitted?.length) lines.push(`Omitted: ${s.source.omitted.length} unreadable path${s.source.omitted.length === 1 ? '' : 's'} of the source (${s.source.omitted.slice(0, 3).join(', ')}${s.source.omitted.length > 3 ? ', …' : ''})`);
  if (s.disk) lines.push('', ...renderDisk(s.disk));
  if (s.derivation) {
    const d = s.derivation;
    const base = d.bases.map((b) => `${shortOid(b.commit)}${b.refs.length ? ` (${b.refs.map(decorationName).join(', ')})` : ''}`).join(', ');
    lines.push(`Derived: from ${base}, ${d.kind === 'derive' ? '' : `${d.kind} `}${d.recipe.summary}, recipe ${shortOid(d.recipe.id)}`);
  }
  return lines.join('\n');
}

/** `derive --batch`: one line per variant, then the count. */
export function renderDeriveBatch(r: BatchResult): string {
  const lines = r.variants.map((v) => `[${shortRefName(v.branch)}${v.parent ? '' : ' (root-commit)'} ${shortOid(v.id)}] from ${shortOid(v.base)}, recipe ${shortOid(v.recipe)}`);
  lines.push(`${plural(r.variants.length, 'variant')} derived`);
  return lines.join('\n');
}

/** `show --derivation`: the whole record, one edit per line. */
export function renderDerivation(id: string, d: DerivationInfo | undefined): string {
  if (!d) return `commit ${id} has no derivation record (it was not made by derive)`;
  const lines = [`commit ${id}`, `kind:   ${d.kind}`, `tool:   ${d.tool}`];
  for (const b of d.bases) lines.push(`base:   ${b.commit}${b.refs.length ? ` (${b.refs.map(decorationName).join(', ')})` : ''}`, `        ${b.rootKind} ${b.root}`);
  if (d.recipe.edits) {
    lines.push(`recipe: ${d.recipe.id} (time ${d.recipe.time}, ${plural(d.recipe.edits.length, 'edit')})`);
    d.recipe.edits.forEach((e, i) => lines.push(`  ${String(i + 1).padStart(3)}  ${e.text}`));
  } else if (d.recipe.packages) {
    const p = d.recipe.packages;
    lines.push(`recipe: ${d.recipe.id} (${d.recipe.summary})`);
    lines.push(`scripts: ${p.scripts ? 'run' : 'not run (packages left unpacked)'}`);
    p.debs.forEach((x, i) => lines.push(`  ${String(i + 1).padStart(3)}  ${x.name} ${x.version} ${x.arch}  sha256 ${x.sha256}`));
    for (const n of p.removed) lines.push(`       removed ${n}`);
  }
  return lines.join('\n');
}

/** A disk's layout as `ls` and `show` print it: one line per region, in disk order. */
export function renderDisk(d: DiskInfo): string[] {
  const lines = [`Disk: ${formatBytes(d.size)} (${d.size} bytes), ${d.table ? `${d.table.kind.toUpperCase()} ${d.table.id}` : 'no partition table'}, sector ${d.sectorSize}`];
  for (const r of d.regions) {
    const name = r.partition ? `p${r.partition.index}` : r.kind === 'fs' ? '(fs)' : r.kind === 'lvm' ? '(pv)' : '(gap)';
    const where = `${String(r.offset).padStart(12)} ${formatBytes(r.size).padStart(10)}`;
    let what: string;
    if (r.fs) {
      what = `${r.fs.type}${r.fs.label ? ` label=${r.fs.label}` : ''} uuid=${r.fs.uuid} block=${r.fs.blockSize} -> ${r.path ? `${r.path}/` : '/'}`;
    } else if (r.lvm) {
      what = `LVM2 PV vg=${r.lvm.vg} extent=${formatBytes(r.lvm.extentSize)} uuid=${r.lvm.pvUuid}`;
    } else {
      what = 'raw';
    }
    const p = r.partition;
    const extra = p ? ` type=${p.type}${p.name ? ` name="${p.name}"` : ''}${p.bootable ? ' boot' : ''}` : '';
    lines.push(`  ${name.padEnd(6)} ${where}  ${what}${extra}`);
    // One line per logical volume, under its physical volume: name, size, and where its files are (or 'raw').
    for (const v of r.lvm?.volumes ?? []) {
      if (!v.visible) continue;
      const lvWhat = v.fs ? `${v.fs.type}${v.fs.label ? ` label=${v.fs.label}` : ''} uuid=${v.fs.uuid} block=${v.fs.blockSize} -> ${v.path}/` : `raw (${v.types.join(', ')})`;
      lines.push(`    ${`${r.lvm!.vg}/${v.name}`.padEnd(18)} ${formatBytes(v.size).padStart(10)}  ${lvWhat}${v.segments && v.segments.length > 1 ? ` (${v.segments.length} segments)` : ''}`);
    }
  }
  return lines;
}

const TYPE_CHAR: Record<string, string> = { file: '-', dir: 'd', symlink: 'l', chr: 'c', blk: 'b', fifo: 'p', socket: 's' };

export function modeString(type: string, mode: string): string {
  const m = parseInt(mode, 8);
  const rwx = (bits: number, special: boolean, ch: string) =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return (TYPE_CHAR[type] ?? '?') + rwx((m >> 6) & 7, (m & 0o4000) !== 0, 's') + rwx((m >> 3) & 7, (m & 0o2000) !== 0, 's') + rwx(m & 7, (m & 0o1000) !== 0, 't');
}

const NS = 1_000_000_000n;
/** The furthest second from the epoch a JS Date can show (±100,000,000 days). */
const DATE_MAX_S = 8_640_000_000_000n;

/**
 * `2024-01-31 12:00:00.123456789` (UTC), a file time to the nanosecond. Years outside 0–9999 are shown as
 * toISOString writes them (`-001199-02-15 14:13:20.000000000`, `+010000-…`), and a time no Date can hold (an archive
 * may say `mtime=1e15`) as `@SECONDS.NANOS`, so that `ls -l` of such a tree still works.
 */
export function mtimeString(ns: string): string {
  const n = BigInt(ns);
  // Floor division: a time before the epoch is the second before it plus a non-negative fraction.
  let sec = n / NS;
  let frac = n % NS;
  if (frac < 0n) {
    frac += NS;
    sec -= 1n;
  }
  if (sec < -DATE_MAX_S || sec > DATE_MAX_S) {
    const a = n < 0n ? -n : n;
    return `@${n < 0n ? '-' : ''}${a / NS}.${(a % NS).toString().padStart(9, '0')}`;
  }
  // Whole seconds: drop the '.000Z' toISOString ends with, whatever the width of its year.
  const iso = new Date(Number(sec) * 1000).toISOString();
  return `${iso.slice(0, -5).replace('T', ' ')}.${frac.toString().padStart(9, '0')}`;
}

export function renderLs(entries: LsEntry[], long: boolean): string {
  return entries.map((e) => {
    // A directory's '/' goes inside the quotes, so that the quoted name pastes back as one argument.
    const dir = e.type === 'dir' && !long;
    const name = quoteResultPath(dir ? `${e.path}/` : e.path, e.pathHex !== undefined && dir ? `${e.pathHex}2f` : e.pathHex);
    if (!long) return name;
    const size = e.type === 'chr' || e.type === 'blk' ? `${e.rdev?.major}, ${e.rdev?.minor}` : String(e.size);
    const extra = e.type === 'symlink' ? ` -> ${quotePath(e.linkTarget ?? '')}` : e.hardlink && e.hardlink !== e.path ? ` => ${quotePath(e.hardlink)}` : '';
    const x = e.xattrs ? '+' : ' ';
    return `${modeString(e.type, e.mode)}${x} ${String(e.uid).padStart(5)} ${String(e.gid).padStart(5)} ${size.padStart(10)} ${mtimeString(e.mtimeNs)} ${name}${extra}`;
  }).join('\n');
}

/** One `grep` hit, `path:line:text`, coloured as git grep's (file magenta, line number green, separators cyan). */
export function renderGrepHit(name: string, line: number, text: string): string {
  const sep = paint.separator(':');
  return `${paint.file(name)}${sep}${paint.lineNumber(String(line))}${sep}${text}`;
}

/** `* name  oid` per ref, names padded to one column so that the ids line up. */
/**
 * Branch and tag lists: `* name  id` per ref; `verbosity` 1 (`-v`) adds git's `[ahead 1, behind 2]` and the subject,
 * 2 (`-vv`) names the upstream too: `[origin/x: ahead 1]`, `[origin/x]`, `[origin/x: gone]`.
 */
export function renderRefs(refs: RefInfo[], verbosity = 0): string {
  const w = columnWidth(refs.map((r) => r.name));
  return refs.map((r) => {
    const line = `${r.head ? '*' : ' '} ${r.head ? paint.current(r.name) + padDisplay('', w - displayWidth(r.name)) : padDisplay(r.name, w)}  ${shortOid(r.oid)}`;
    if (!verbosity) return line;
    const counts = [...(r.ahead ? [`ahead ${r.ahead}`] : []), ...(r.behind ? [`behind ${r.behind}`] : []), ...(r.gone ? ['gone'] : [])].join(', ');
    const track = r.upstream === undefined ? '' : verbosity > 1 ? `[${r.upstream}${counts ? `: ${counts}` : ''}] ` : counts ? `[${counts}] ` : '';
    return `${line} ${track}${r.subject ?? ''}`.trimEnd();
  }).join('\n');
}

export function renderReflog(r: ReflogResult): string {
  return r.entries.map((e) => `${e.new ? paint.commitId(shortOid(e.new)) : '(deleted)'} ${e.selector}: ${e.message}`).join('\n');
}

export function renderFsck(r: FsckResult): string {
  const lines = r.problems.map((p) => `${p.kind} ${p.oid}: ${p.problem}`);
  const garbage = r.garbageBytes ? `, ${formatBytes(r.garbageBytes)} of packs unused ('viva gc' reclaims them)` : '';
  lines.push(`${plural(r.objects, 'object')} checked, ${r.reachable} reachable, ${r.unreachable} unreachable${garbage}: ${r.ok ? 'ok' : plural(r.problems.length, 'problem')}`);
  return lines.join('\n');
}

/** Most warnings of a checkout listed one by one; beyond this, grouped by kind with a few examples each. */
export const MAX_LISTED_WARNINGS = 10;

/**
 * Checkout warnings as lines: each one when there are few; otherwise one line per kind ("cannot set owner", "cannot
 * create character device", ...) with its count and up to three paths, so a non-root checkout does not print a line
 * per file.
 */
export function renderWarnings(warnings: Array<{ path: string; pathHex?: string; message: string; count?: number }>): string[] {
  if (warnings.length <= MAX_LISTED_WARNINGS) return warnings.map((w) => `${quoteResultPath(w.path, w.pathHex)}: ${w.message}`);
  const groups = new Map<string, { paths: string[]; count: number }>();
  for (const w of warnings) {
    const kind = w.message.replace(/, nor the owners? of \d+ more entr(y|ies)$/, '')
      .replace(/\s*\([A-Z]+\)$/, '').replace(/\s+('[^']*'|[\d:]+)$/, '').replace(/ [\d:]+$/, '');
    const g = groups.get(kind) ?? { paths: [], count: 0 };
    g.paths.push(quoteResultPath(w.path, w.pathHex));
    g.count += w.count ?? 1;
    groups.set(kind, g);
  }
  return [...groups].map(([kind, { paths, count }]) => `${kind}: ${count} entr${count === 1 ? 'y' : 'ies'} (${paths.slice(0, 3).join(', ')}${count > paths.slice(0, 3).length ? ', …' : ''})`);
}

function diffPath(p: string, hex?: string): string {
  return p === '' ? '/' : quoteResultPath(p, hex);
}

/** An entry's name in diff output: quoted as needed, `from -> to` for a rename. */
function diffName(e: DiffEntry): string {
  return e.status === 'R' ? `${diffPath(e.from ?? '', e.fromHex)} -> ${diffPath(e.path, e.pathHex)}` : diffPath(e.path, e.pathHex);
}

/** What changed in an M (or R) entry, e.g. `mode 0644 -> 0600, owner 0:0 -> 1000:1000, xattrs user.a`. */
function diffDetails(e: DiffEntry): string {
  const o = e.old!;
  const n = e.new!;
  return (e.changes ?? []).map((c) => {
    switch (c) {
      case 'mode': return `mode ${o.mode} -> ${n.mode}`;
      case 'owner': return `owner ${o.uid}:${o.gid} -> ${n.uid}:${n.gid}`;
      case 'xattrs': return `xattrs ${(e.xattrs ?? []).join(' ')}`;
      case 'target': return `target ${o.linkTarget ?? ''} -> ${n.linkTarget ?? ''}`;
      case 'content': return o.size !== n.size ? `content ${o.size} -> ${n.size} bytes` : 'content';
      default: return c;
    }
  }).join(', ');
}

/** `git diff --name-status`-like lines, with changed attributes in brackets; patches after their line. */
export function renderDiff(entries: DiffEntry[], patches?: Record<string, string>): string {
  const lines: string[] = [];
  for (const e of entries) {
    let line: string;
    if (e.status === 'T') line = `T\t${diffName(e)}\t[${e.old!.type} -> ${e.new!.type}]`;
    else line = `${e.status === 'A' ? paint.added('A') : e.status === 'D' ? paint.removed('D') : e.status}\t${diffName(e)}`;
    if ((e.status === 'M' || e.status === 'R') && e.changes?.length) line += `\t[${diffDetails(e)}]`;
    lines.push(line);
    const p = patches?.[e.path];
    if (p) lines.push(paintPatch(p.replace(/\n$/, '')));
  }
  return lines.join('\n');
}

/** `--stat`: one line per entry with sizes, then a summary. */
export function renderDiffStat(entries: DiffEntry[]): string {
  if (entries.length === 0) return '';
  const w = Math.min(60, columnWidth(entries.map(diffName)));
  let added = 0;
  let removed = 0;
  const lines = entries.map((e) => {
    const before = e.old?.type === 'file' ? e.old.size : 0;
    const after = e.new?.type === 'file' ? e.new.size : 0;
    const delta = after - before;
    if (delta > 0) added += delta; else removed -= delta;
    const name = padDisplay(diffName(e), w);
    const sizes = e.status === 'A' ? `${after}` : e.status === 'D' ? `${before} -> 0` : `${before} -> ${after}`;
    return ` ${e.status} ${name} | ${sizes}${delta ? ` (${delta > 0 ? paint.added(`+${delta}`) : paint.removed(String(delta))})` : ''}`;
  });
  const count = (s: string) => entries.filter((e) => e.status === s).length;
  lines.push(` ${plural(entries.length, 'entry', 'entries')} changed (${count('A')} added, ${count('D')} deleted, ${count('M')} modified, ${plural(count('T'), 'type change')}, ${count('R')} renamed); ${paint.added(`+${formatBytes(added)}`)} ${paint.removed(`-${formatBytes(removed)}`)}`);
  return lines.join('\n');
}

export function renderPackageDiff(p: PackageDiff): string {
  const w = columnWidth(p.changes.map((c) => c.name));
  return p.changes.map((c) => {
    const arch = c.arch ? ` (${c.arch})` : '';
    const what = c.change === 'added' ? c.to : c.change === 'removed' ? c.from : `${c.from} -> ${c.to}`;
    return `${c.change.padEnd(10)} ${padDisplay(c.name, w)} ${what}${arch}${c.partition ? ` [${c.partition}]` : ''}`;
  }).join('\n');
}

/** `viva derivations`: one line per derived branch: `web/01 <- debian/12/base (up to date), 3 edits`. */
export function renderDerivationGraph(g: DerivationGraph): string {
  if (g.edges.length === 0 && g.stale.length === 0) return 'no derived branches';
  const width = columnWidth(g.edges.map((e) => shortRefName(e.ref)));
  return g.edges.map((e) => {
    const base = e.baseRefs.length
      ? e.baseRefs.map((b) => `${shortRefName(b.ref)} (${b.behind === 0 ? 'up to date' : `${b.behind} behind`})`).join(', ')
      : `${shortOid(e.base)} (on no branch)`;
    return `${padDisplay(shortRefName(e.ref), width)} <- ${base}, ${e.summary}${e.chain.length > 1 ? ` (top of ${e.chain.length} layers)` : ''}, recipe ${shortOid(e.recipe)}`;
  }).concat(g.stale.map((x) => `${shortRefName(x.ref)}: ${plural(x.commitsOnTop, 'commit')} of its own on top of derived commit ${shortOid(x.derived)} (not rebuilt by rebuild --derived-from)`)).join('\n');
}

/** `viva derivations --dot`: branches as nodes, derived-from as edges (labelled when the base moved on). */
export function renderDerivationDot(g: DerivationGraph): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = ['digraph derivations {', '  rankdir=LR;', '  node [shape=box];'];
  const named = new Set<string>();
  for (const e of g.edges) {
    named.add(e.ref);
    if (e.baseRefs.length === 0) {
      lines.push(`  ${q(shortOid(e.base))} [shape=ellipse];`, `  ${q(shortOid(e.base))} -> ${q(shortRefName(e.ref))};`);
      continue;
    }
    const b = e.baseRefs[0]!;
    named.add(b.ref);
    lines.push(`  ${q(shortRefName(b.ref))} -> ${q(shortRefName(e.ref))}${b.behind ? ` [label=${q(`${b.behind} behind`)}, style=dashed]` : ''};`);
  }
  for (const r of g.refs) if (!named.has(r)) lines.push(`  ${q(shortRefName(r))};`);
  lines.push('}');
  return lines.join('\n');
}

/** `viva rebuild`: one line per branch (rebuilt / unchanged / failed / skipped, and why), then the counts. */
export function renderRebuild(r: RebuildResult): string {
  const lines = r.items.map((i) => {
    const what = i.status === 'rebuilt'
      ? `${i.commit ? shortOid(i.commit) : '(dry run)'} on ${i.base ? shortOid(i.base) : '?'}${i.reused ? ' (result reused)' : ''}`
      : i.reason ?? '';
    return `${i.status.padEnd(9)} ${shortRefName(i.branch)}${what ? `: ${what}` : ''}`;
  });
  lines.push(`${r.rebuilt} rebuilt, ${r.unchanged} unchanged, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}`);
  return lines.join('\n');
}

/** A package inventory as aligned rows: name, version, architecture. */
export function renderPackages(packages: Array<{ name: string; version: string; arch?: string }>): string[] {
  const w = columnWidth(packages.map((p) => p.name));
  const v = columnWidth(packages.map((p) => p.version));
  return packages.map((p) => `${padDisplay(p.name, w)}  ${padDisplay(p.version, v)}  ${p.arch ?? ''}`.trimEnd());
}

/** install / upgrade / remove: per image a git-style head line, then what changed. */
export function renderPackageOp(r: PackageOpResult): string {
  const lines: string[] = [];
  for (const i of r.items) {
    if (i.status === 'failed') {
      lines.push(`${shortRefName(i.branch)}: failed`);
      continue;
    }
    if (i.status === 'unchanged') {
      lines.push(`${shortRefName(i.branch)}: nothing to do on ${i.base.rev} (${shortOid(i.base.commit)}): ${i.reason}; no commit`);
      continue;
    }
    const how = i.reused ? 'reused an earlier result' : r.op === 'remove' ? 'scripts run in the sandbox' : `${plural(i.unpacked ?? 0, 'package')} read from .deb files`;
    lines.push(`[${shortRefName(i.branch)}${i.parent ? '' : ' (root-commit)'} ${shortOid(i.commit!)}] ${r.op} on ${i.base.rev} (${shortOid(i.base.commit)}), ${how}`);
    for (const p of i.installed) lines.push(`  ${p.from ? 'upgraded' : 'installed'} ${p.name} ${p.from ? `${p.from} -> ` : ''}${p.version}`);
    for (const p of i.removed) lines.push(`  removed ${p.name} ${p.from}`);
  }
  if (r.items.length > 1) lines.push(`${plural(r.done, 'image')} done${r.unchanged ? `, ${r.unchanged} unchanged` : ''}${r.failed ? `, ${r.failed} failed` : ''}`);
  return lines.join('\n');
}

/** merge: git's words — the new head, a fast-forward, already up to date, or the conflicts and what to do. */
export function renderMerge(m: MergeOpResult): string {
  // Revisions given as full ref names (pull gives them so) are shown short, as git shows them.
  const r = { ...m, ours: { ...m.ours, rev: shortRefName(m.ours.rev) }, theirs: { ...m.theirs, rev: shortRefName(m.theirs.rev) } };
  const b = shortRefName(r.branch);
  switch (r.status) {
    case 'up-to-date': return `Already up to date (${r.ours.rev} holds ${r.theirs.rev}).`;
    case 'fast-forward': return `Fast-forward ${b} to ${shortOid(r.id!)} (${r.theirs.rev}).`;
    case 'merged': return `[${b} ${shortOid(r.id!)}] merged ${r.theirs.rev} into ${r.ours.rev}${r.base ? ` (base ${shortOid(r.base)}${r.via === 'derivation' ? ', through derivations' : ''})` : r.base === null ? ' (no common base)' : ''}${r.merged ? `, ${plural(r.merged, 'file')} merged by content` : ''}`;
    default: {
      const lines = r.conflicts.map((c) => paint.conflict(`CONFLICT (${c.kind}): ${quoteResultPath(c.path, c.pathHex)}${c.detail ? `: ${c.detail}` : ''}`));
      lines.push(r.checkout
        ? `Automatic merge failed; the merged tree with conflict markers is in ${r.checkout}: resolve there, then 'viva merge --continue ${r.checkout}'.`
        : 'Automatic merge failed; nothing moved. Resolve with --resolve PATH=ours|theirs|base|@FILE, or --checkout DIR and then merge --continue DIR.');
      return lines.join('\n');
    }
  }
}

/** `exported 3 commits to 'out.git' (bare): …` and one line per ref, as push lists them. */
export function renderExportGit(r: ExportGitResult): string {
  const what = r.commits === 0 ? 'everything up to date' : `${plural(r.commits, 'commit')}, ${plural(r.trees, 'tree')}, ${plural(r.blobs, 'blob')} (${formatBytes(r.bytes)})`;
  const lines = [`${r.created ? 'created' : 'updated'} git repository '${r.dir}'${r.bare ? ' (bare)' : ''}${r.manifestsOnly ? ', manifests only' : ''}: ${what}${r.upToDate ? `; ${plural(r.upToDate, 'commit')} exported before` : ''}`];
  for (const ref of r.refs) lines.push(`  ${ref.gitCommit.slice(0, 12)} ${ref.ref} (${shortOid(ref.commit)})`);
  if (r.head) lines.push(`  HEAD -> ${r.head}`);
  return lines.join('\n');
}

/** `[main 3f2a…] imported 4 commits (all identical to the exported ones), 60 file contents stored; tree …`. */
export function renderImportGit(r: ImportGitResult): string {
  const same = r.identical === r.commits ? 'all identical to the exported ones' : `${r.identical} identical to the exported ones`;
  return `[${shortRefName(r.branch)} ${shortOid(r.id)}] imported ${plural(r.commits, 'commit')} (${same}), ${plural(r.files, "file content", "file contents")} stored; tree ${shortOid(r.tree)}`;
}

/** `viva nbd --list`: one line per session: name, live or not, bytes changed, base revision and commit, created. */
export function renderNbdSessions(sessions: NbdSessionEntry[]): string {
  const width = Math.max(0, ...sessions.map((s) => displayWidth(s.name)));
  return sessions.map((s) => `${padDisplay(s.name, width)}  ${s.live ? `live (pid ${s.pid})` : 'stopped'}  ${formatBytes(s.changedBytes)} changed  over '${s.rev}' (${shortOid(s.commit)})  created ${s.created}`).join('\n');
}

/** `viva run`'s line on stderr when qemu has exited: how it ended and what the guest read (and fetched). */
export function renderRunSummary(r: RunVmResult, repoFlag?: string): string {
  const how = r.signal ? `killed by ${r.signal}` : `exited with status ${r.exitCode}`;
  const fetched = r.stats.bytesFetched ? `, ${r.stats.bytesFetched} bytes fetched in ${r.stats.fetchRequests} requests` : '';
  const line = `viva run: qemu (${r.accel}) ${how}; the guest read ${r.stats.bytesRead} bytes of ${r.export.rev}${fetched}`;
  if (!r.session) return line;
  const s = r.session;
  if (!s.changedBytes) return `${line}\nnbd session '${s.name}' holds no changes (drop it with 'viva nbd --drop ${s.name}')`;
  // The one command that records what the guest changed, ready to paste (BRANCH when REV named no branch).
  const cmd = ['viva', 'commit', `nbd:${s.name}`, ...(repoFlag !== undefined ? ['--repo', repoFlag] : []), '-b', s.branch ?? 'BRANCH', '-m', `changes made in viva run of ${r.export.rev}`];
  return `${line}\nnbd session '${s.name}' holds ${s.changedBytes} changed bytes; to commit them:\n  ${cmd.map(shellWord).join(' ')}`;
}

/** `w` as one word for a POSIX shell: bare when it is made of safe characters, else in single quotes. */
export function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}
