/**
 * Merges of image files that a line merge would get wrong, used by `viva merge` for paths both sides changed
 * (docs/architecture.md, "Merge"):
 *
 * - `var/lib/dpkg/status` and `var/lib/apt/extended_states`: per package stanza (key: package and architecture);
 *   two sides installing different packages merge, the same package changed differently is a conflict naming it;
 *   the result is in dpkg's order (by name, then architecture), every stanza byte for byte;
 * - `var/lib/dpkg/info/*`: a package's own files (list, md5sums, conffiles, scripts) are never merged line by line:
 *   both sides must agree (a package at two versions is a conflict of its status stanza first);
 * - `var/lib/dpkg/triggers/File`: interest lines as a set (base order, then the two sides' additions);
 * - `etc/passwd`, `group`, `shadow`, `gshadow`, `subuid`, `subgid`: per record by name; the same uid (gid) given to
 *   two names is a conflict; a group's member list merges as a set;
 * - `etc/hosts` per address, `etc/fstab` per mount point: two sides adding different entries merge (a line merge
 *   would see two additions at the end as overlapping); one entry changed differently is a conflict;
 * - append-only logs (`var/log/dpkg.log`, `alternatives.log`, `apt/history.log`, `apt/term.log`): base, then the
 *   two sides' appended blocks, the earlier first (by their first timestamp);
 * - backups the tools write for themselves (`var/lib/dpkg/status-old`, `etc/passwd-`, …): merged as the file they
 *   back up; where that is a conflict, ours (a backup never stops a merge).
 *
 * Each merger is pure: bytes in, bytes (or a conflict description) out.
 */
import { type StatusStanza, sortStanzas, splitStatus } from './dpkg-db.js';

/** A merge of one file's content that understands its format; chosen by path (the shape tree/merge.ts takes). */
export interface FileMerger {
  name: string;
  matches(path: Buffer): boolean;
  merge(input: { path: Buffer; base?: Buffer; ours: Buffer; theirs: Buffer }): { data: Buffer } | { conflict: string };
}

type Outcome<T> = { value: T | undefined } | { conflict: string };

/**
 * The three-way rule for one keyed record: unchanged on a side → the other side's; the same on both → it; else a
 * conflict (described by `describe`). `undefined` is "absent".
 */
function pick<T>(base: T | undefined, ours: T | undefined, theirs: T | undefined, same: (a: T | undefined, b: T | undefined) => boolean, describe: () => string): Outcome<T> {
  if (same(ours, theirs)) return { value: ours };
  if (same(base, ours)) return { value: theirs };
  if (same(base, theirs)) return { value: ours };
  return { conflict: describe() };
}

/**
 * Keys in merge order: base's, then each side's additions as a block in that side's order, the blocks ordered by
 * their keys (not by side, so that merging A into B and B into A give the same order).
 */
function orderedKeys(base: string[], ours: string[], theirs: string[]): string[] {
  const inBase = new Set(base);
  const blocks = [ours.filter((k) => !inBase.has(k)), theirs.filter((k) => !inBase.has(k))];
  const key = (b: string[]) => b.join('\n');
  blocks.sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0));
  const seen = new Set<string>();
  const out: string[] = [];
  for (const k of [...base, ...blocks[0]!, ...blocks[1]!]) if (!seen.has(k)) { seen.add(k); out.push(k); }
  return out;
}

function text(b: Buffer | undefined): string {
  return b ? b.toString('latin1') : '';
}

// ---------------------------------------------------------------------------------------------------------------
// dpkg and apt databases

function stanzaKey(s: StatusStanza): string {
  return `${s.package}:${s.architecture}`;
}

function describeStanza(s: StatusStanza | undefined): string {
  if (!s) return 'removed';
  const v = s.fields.find((f) => f.name.toLowerCase() === 'version')?.value;
  const st = s.fields.find((f) => f.name.toLowerCase() === 'status')?.value;
  return [v, st].filter(Boolean).join(', ') || 'changed';
}

/** Stanza files (dpkg status, apt extended_states) merged per package; `sorted`: the result in dpkg's order. */
function mergeStanzas(input: { base?: Buffer; ours: Buffer; theirs: Buffer }, sorted: boolean): { data: Buffer } | { conflict: string } {
  const maps = [input.base, input.ours, input.theirs].map((b) => new Map(splitStatus(text(b)).map((s) => [stanzaKey(s), s])));
  const [base, ours, theirs] = maps as [Map<string, StatusStanza>, Map<string, StatusStanza>, Map<string, StatusStanza>];
  const out: StatusStanza[] = [];
  const conflicts: string[] = [];
  for (const k of orderedKeys([...base.keys()], [...ours.keys()], [...theirs.keys()])) {
    const o = ours.get(k);
    const t = theirs.get(k);
    const r = pick(base.get(k), o, t, (a, b) => a?.text === b?.text, () => `package ${k.replace(/:$/, '')}: ours ${describeStanza(o)}, theirs ${describeStanza(t)}`);
    if ('conflict' in r) conflicts.push(r.conflict);
    else if (r.value) out.push(r.value);
  }
  if (conflicts.length) return { conflict: conflicts.join('; ') };
  const list = sorted ? sortStanzas(out) : out;
  return { data: Buffer.from(list.map((s) => `${s.text}\n`).join(''), 'latin1') };
}

/** Lines of a file as a set: base's order, the two sides' additions after (orderedKeys), each side's removals applied. */
function mergeLineSet(input: { base?: Buffer; ours: Buffer; theirs: Buffer }): { data: Buffer } {
  const lines = (b?: Buffer) => text(b).split('\n').filter((l) => l !== '');
  const base = lines(input.base);
  const ours = lines(input.ours);
  const theirs = lines(input.theirs);
  const removed = new Set([...base.filter((l) => !ours.includes(l)), ...base.filter((l) => !theirs.includes(l))]);
  const keep = orderedKeys(base, ours, theirs).filter((l) => !removed.has(l));
  return { data: Buffer.from(keep.map((l) => `${l}\n`).join(''), 'latin1') };
}

/**
 * A log both sides only appended to: base, then the two sides' appended blocks, the one that starts earlier first
 * (the logs start their lines with a timestamp; equal starts are ordered by their bytes), so that merging A into B
 * and B into A write the same log. Anything else is a conflict.
 */
function mergeAppended(input: { base?: Buffer; ours: Buffer; theirs: Buffer }): { data: Buffer } | { conflict: string } {
  const base = input.base ?? Buffer.alloc(0);
  if (!input.ours.subarray(0, base.length).equals(base) || !input.theirs.subarray(0, base.length).equals(base)) {
    return { conflict: 'not only appended to on both sides' };
  }
  const blocks = [input.ours.subarray(base.length), input.theirs.subarray(base.length)].sort(Buffer.compare);
  return { data: Buffer.concat([base, ...blocks]) };
}

// ---------------------------------------------------------------------------------------------------------------
// account databases

interface AccountFile {
  /** Field index of the numeric id that must be unique (passwd: uid, group: gid), if any. */
  id?: number;
  /** Field index of a comma-separated member list merged as a set (group: 3, gshadow: 3 admins and members). */
  sets: number[];
}

const ACCOUNT_FILES: Record<string, AccountFile> = {
  'etc/passwd': { id: 2, sets: [] },
  'etc/group': { id: 2, sets: [3] },
  'etc/shadow': { sets: [] },
  'etc/gshadow': { sets: [2, 3] },
  'etc/subuid': { sets: [] },
  'etc/subgid': { sets: [] },
};

/** A comma-separated set merged three-way: base's members, without what a side removed, with what a side added. */
function mergeMembers(base: string, ours: string, theirs: string): string {
  const split = (s: string) => s.split(',').filter((x) => x !== '');
  const b = split(base);
  const o = split(ours);
  const t = split(theirs);
  const gone = new Set([...b.filter((x) => !o.includes(x)), ...b.filter((x) => !t.includes(x))]);
  return orderedKeys(b, o, t).filter((x) => !gone.has(x)).join(',');
}

/** One account record (line) merged field by field where the file has member sets, else as a whole. */
function mergeRecord(kind: AccountFile, name: string, base: string | undefined, ours: string | undefined, theirs: string | undefined): Outcome<string> {
  const whole = pick(base, ours, theirs, (a, b) => a === b, () => `'${name}': ours ${ours === undefined ? 'removed' : `'${ours}'`}, theirs ${theirs === undefined ? 'removed' : `'${theirs}'`}`);
  if (!('conflict' in whole) || kind.sets.length === 0 || base === undefined || ours === undefined || theirs === undefined) return whole;
  // Both changed the record: the member lists merge as sets, every other field by the three-way rule.
  const [b, o, t] = [base.split(':'), ours.split(':'), theirs.split(':')];
  if (b.length !== o.length || b.length !== t.length) return whole;
  const fields: string[] = [];
  for (let i = 0; i < b.length; i++) {
    if (kind.sets.includes(i)) { fields.push(mergeMembers(b[i]!, o[i]!, t[i]!)); continue; }
    const f = pick(b[i], o[i], t[i], (x, y) => x === y, () => '');
    if ('conflict' in f) return whole;
    fields.push(f.value!);
  }
  return { value: fields.join(':') };
}

function mergeAccounts(kind: AccountFile, input: { base?: Buffer; ours: Buffer; theirs: Buffer }): { data: Buffer } | { conflict: string } {
  const records = (b?: Buffer) => {
    const lines = text(b).split('\n').filter((l) => l !== '');
    return { order: lines.map((l) => l.split(':')[0]!), byName: new Map(lines.map((l) => [l.split(':')[0]!, l])) };
  };
  const [base, ours, theirs] = [records(input.base), records(input.ours), records(input.theirs)];
  const out: string[] = [];
  const conflicts: string[] = [];
  for (const name of orderedKeys(base.order, ours.order, theirs.order)) {
    const r = mergeRecord(kind, name, base.byName.get(name), ours.byName.get(name), theirs.byName.get(name));
    if ('conflict' in r) conflicts.push(r.conflict);
    else if (r.value !== undefined) out.push(r.value);
  }
  if (kind.id !== undefined) {
    const byId = new Map<string, string>();
    for (const l of out) {
      const f = l.split(':');
      const other = byId.get(f[kind.id] ?? '');
      if (other !== undefined && other !== f[0]) conflicts.push(`id ${f[kind.id]} given to both '${other}' and '${f[0]}'`);
      byId.set(f[kind.id] ?? '', f[0]!);
    }
  }
  if (conflicts.length) return { conflict: conflicts.join('; ') };
  return { data: Buffer.from(out.map((l) => `${l}\n`).join(''), 'latin1') };
}

// ---------------------------------------------------------------------------------------------------------------
// tables keyed by a field (etc/hosts by address, etc/fstab by mount point)

/**
 * A table file's lines keyed by `field` (its n-th whitespace-separated field; comments and blank lines by their
 * text), the n-th line of a key as `key#n`, so that repeated keys (two lines for ::1, two swap lines) stay apart.
 */
function tableLines(b: Buffer | undefined, field: number): { order: string[]; byKey: Map<string, string> } {
  const lines = text(b).split('\n');
  if (lines.at(-1) === '') lines.pop();
  const seen = new Map<string, number>();
  const order: string[] = [];
  const byKey = new Map<string, string>();
  for (const l of lines) {
    const t = l.trim();
    const k0 = t === '' || t.startsWith('#') ? `#${l}` : (t.split(/\s+/)[field] ?? t);
    const n = seen.get(k0) ?? 0;
    seen.set(k0, n + 1);
    const k = `${k0}#${n}`;
    order.push(k);
    byKey.set(k, l);
  }
  return { order, byKey };
}

/**
 * A table merged per key (`etc/hosts`: the address; `etc/fstab`: the mount point): a line one side added, changed
 * or removed is taken; the same key changed differently on both sides is a conflict naming it.
 */
function mergeTable(what: string, field: number, input: { base?: Buffer; ours: Buffer; theirs: Buffer }): { data: Buffer } | { conflict: string } {
  const [base, ours, theirs] = [tableLines(input.base, field), tableLines(input.ours, field), tableLines(input.theirs, field)];
  const out: string[] = [];
  const conflicts: string[] = [];
  for (const k of orderedKeys(base.order, ours.order, theirs.order)) {
    const [o, t] = [ours.byKey.get(k), theirs.byKey.get(k)];
    const show = (l: string | undefined) => (l === undefined ? 'removed' : `'${l}'`);
    const r = pick(base.byKey.get(k), o, t, (a, b) => a === b, () => `${what} ${k.slice(0, k.lastIndexOf('#'))}: ours ${show(o)}, theirs ${show(t)}`);
    if ('conflict' in r) conflicts.push(r.conflict);
    else if (r.value !== undefined) out.push(r.value);
  }
  if (conflicts.length) return { conflict: conflicts.join('; ') };
  return { data: Buffer.from(out.map((l) => `${l}\n`).join(''), 'latin1') };
}

// ---------------------------------------------------------------------------------------------------------------
// the mergers

const LOGS = new Set(['var/log/dpkg.log', 'var/log/alternatives.log', 'var/log/apt/history.log', 'var/log/apt/term.log']);
const DPKG_INFO = /^var\/lib\/dpkg\/info\/[^/]+$/;

function byPath(name: string, test: (p: string) => boolean, merge: FileMerger['merge']): FileMerger {
  return { name, matches: (p) => test(p.toString('latin1')), merge };
}

/** A tool's backup of a file: merged as the file is; where that conflicts, ours. */
function backupOf(merge: FileMerger['merge']): FileMerger['merge'] {
  return (i) => {
    const r = merge(i);
    return 'conflict' in r ? { data: i.ours } : r;
  };
}

/**
 * The semantic mergers of image files, in the order tree/merge.ts tries them (the first that matches a path).
 *
 * @example
 * const r = IMAGE_MERGERS.find((m) => m.matches(Buffer.from('etc/passwd')))!.merge({ path, base, ours, theirs });
 */
export const IMAGE_MERGERS: readonly FileMerger[] = [
  byPath('dpkg status', (p) => p === 'var/lib/dpkg/status', (i) => mergeStanzas(i, true)),
  byPath('apt extended_states', (p) => p === 'var/lib/apt/extended_states', (i) => mergeStanzas(i, false)),
  byPath('dpkg package files', (p) => DPKG_INFO.test(p) && p !== 'var/lib/dpkg/info/format',
    (i) => (i.ours.equals(i.theirs) ? { data: i.ours } : { conflict: `${i.path.toString('latin1').slice('var/lib/dpkg/info/'.length)} differs: the package differs on the two sides` })),
  byPath('dpkg file triggers', (p) => p === 'var/lib/dpkg/triggers/File', mergeLineSet),
  ...Object.entries(ACCOUNT_FILES).map(([file, kind]) => byPath(`accounts ${file}`, (p) => p === file, (i) => mergeAccounts(kind, i))),
  byPath('hosts', (p) => p === 'etc/hosts', (i) => mergeTable('address', 0, i)),
  byPath('fstab', (p) => p === 'etc/fstab', (i) => mergeTable('mount point', 1, i)),
  byPath('append-only log', (p) => LOGS.has(p), mergeAppended),
  byPath('dpkg status backup', (p) => p === 'var/lib/dpkg/status-old', backupOf((i) => mergeStanzas(i, true))),
  ...Object.entries(ACCOUNT_FILES).map(([file, kind]) => byPath(`accounts backup ${file}-`, (p) => p === `${file}-`, backupOf((i) => mergeAccounts(kind, i)))),
];
