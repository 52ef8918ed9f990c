/**
 * dpkg's database files as dpkg 1.21 reads and writes them: the `status` file (stanzas sorted by package name, each
 * package's fields in dpkg's fixed order), `info/PKG.list`, `info/PKG.md5sums`, the `Conffiles` field and the
 * `diversions` file. Pure: text in, text out.
 *
 * Paths and texts are byte strings carried in `latin1` JS strings (one char per byte), so that names that are not
 * UTF-8 come back byte for byte; `bytes()` and `latin1()` convert.
 */
import type { ControlField } from './deb.js';
import { type Deb822Field, formatRelationGroup, parseDeb822, parseRelations } from './deb822.js';

/** Where dpkg keeps its database, relative to the image root. */
export const DPKG_ADMIN_DIR = 'var/lib/dpkg';
export const DPKG_STATUS = `${DPKG_ADMIN_DIR}/status`;
export const DPKG_INFO_DIR = `${DPKG_ADMIN_DIR}/info`;
export const DPKG_DIVERSIONS = `${DPKG_ADMIN_DIR}/diversions`;
/** `info/format`: the layout version of the info directory, written by dpkg ≥ 1.16.0 when missing. */
export const DPKG_INFO_FORMAT = `${DPKG_INFO_DIR}/format`;
export const DPKG_INFO_FORMAT_TEXT = '1\n';
/** The hash dpkg records for a conffile that was unpacked but never configured. */
export const NEW_CONFFILE_HASH = 'newconffile';

export function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

export function bytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** A JS (Unicode) string as a byte string: its UTF-8 bytes, one char each. */
export function utf8Bytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/**
 * The status fields dpkg knows, in the order it writes them (lib/dpkg/parse.c `fieldinfos`, dump.c); every other
 * field follows, in the order of the package's control file. `Revision` is read but never written.
 */
export const STATUS_FIELD_ORDER = [
  'Package', 'Essential', 'Protected', 'Status', 'Priority', 'Section', 'Installed-Size', 'Origin', 'Maintainer', 'Bugs',
  'Architecture', 'Multi-Arch', 'Source', 'Version', 'Revision', 'Config-Version', 'Replaces', 'Provides', 'Depends',
  'Pre-Depends', 'Recommends', 'Suggests', 'Breaks', 'Conflicts', 'Enhances', 'Conffiles', 'Filename', 'Size', 'MD5sum',
  'MSDOS-Filename', 'Description', 'Triggers-Pending', 'Triggers-Awaited',
] as const;

const KNOWN = new Map(STATUS_FIELD_ORDER.map((n) => [n.toLowerCase(), n]));
/** Relation fields: dpkg parses them and writes them back in canonical spacing. */
const RELATION_FIELDS = new Set(['replaces', 'provides', 'depends', 'pre-depends', 'recommends', 'suggests', 'breaks', 'conflicts', 'enhances']);
/** Fields of a control file that the status stanza takes from elsewhere (the database state), never from the .deb. */
const DATABASE_FIELDS = new Set(['status', 'config-version', 'conffiles', 'triggers-pending', 'triggers-awaited', 'revision']);

/** One stanza of the status file: its text as written (ending in '\n', no blank line) and its fields. */
export interface StatusStanza {
  text: string;
  fields: Deb822Field[];
  package: string;
  architecture: string;
}

/** The value of a stanza's field (case-insensitive), or undefined. */
export function stanzaField(s: Pick<StatusStanza, 'fields'>, name: string): string | undefined {
  const n = name.toLowerCase();
  return s.fields.find((f) => f.name.toLowerCase() === n)?.value;
}

/** Splits a status file into stanzas, keeping each one's text byte for byte. */
export function splitStatus(text: string): StatusStanza[] {
  const out: StatusStanza[] = [];
  let cur: string[] = [];
  const flush = () => {
    if (!cur.length) return;
    const t = `${cur.join('\n')}\n`;
    const fields = parseDeb822(t)[0]?.fields ?? [];
    const s = { text: t, fields, package: '', architecture: '' };
    s.package = stanzaField(s, 'Package') ?? '';
    s.architecture = stanzaField(s, 'Architecture') ?? '';
    out.push(s);
    cur = [];
  };
  for (const line of text.split('\n')) {
    if (/^[ \t]*$/.test(line)) flush();
    else cur.push(line);
  }
  flush();
  return out;
}

/** The words of a stanza's Status field: [want, error flag, state]. */
export function stanzaStatus(s: Pick<StatusStanza, 'fields'>): [string, string, string] {
  const w = (stanzaField(s, 'Status') ?? '').split(/\s+/);
  return [w[0] ?? 'unknown', w[1] ?? 'ok', w[2] ?? 'not-installed'];
}

/** States in which a package has files on disk and an `info/PKG.list` (dpkg: status > config-files). */
const STATES_WITH_FILES = new Set(['half-installed', 'unpacked', 'half-configured', 'triggers-awaited', 'triggers-pending', 'installed']);

export function hasFiles(s: Pick<StatusStanza, 'fields'>): boolean {
  return STATES_WITH_FILES.has(stanzaStatus(s)[2]);
}

/** The name of a package's files in `info/`: `PKG`, or `PKG:ARCH` for a `Multi-Arch: same` package. */
export function infoName(pkg: string, architecture: string, multiArch: string | undefined): string {
  return multiArch === 'same' ? `${pkg}:${architecture}` : pkg;
}

/** The info name of an installed package from its stanza. */
export function stanzaInfoName(s: StatusStanza): string {
  return infoName(s.package, s.architecture, stanzaField(s, 'Multi-Arch'));
}

/** dpkg's order of stanzas: by package name, then architecture, bytewise (pkg_sorter_by_nonambig_name_arch). */
export function sortStanzas(stanzas: StatusStanza[]): StatusStanza[] {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return stanzas.sort((a, b) => cmp(a.package, b.package) || cmp(a.architecture, b.architecture));
}

/** The status file's text: stanzas separated by one blank line, each ended by one (dpkg's writedb). */
export function formatStatus(stanzas: StatusStanza[]): string {
  return stanzas.map((s) => `${s.text}\n`).join('');
}

export interface Conffile {
  /** Absolute path as listed (`/etc/x`). */
  path: string;
  /** md5 in hex, or NEW_CONFFILE_HASH. */
  hash: string;
  obsolete?: boolean;
  removeOnUpgrade?: boolean;
}

/** Parses a Conffiles field (` /etc/x 0123… [obsolete] [remove-on-upgrade]` lines). */
export function parseConffilesField(value: string | undefined): Conffile[] {
  const out: Conffile[] = [];
  for (const line of (value ?? '').split('\n')) {
    const w = line.trim().split(/\s+/);
    if (!w[0] || !w[1]) continue;
    const c: Conffile = { path: w[0], hash: w[1] };
    if (w.includes('obsolete')) c.obsolete = true;
    if (w.includes('remove-on-upgrade')) c.removeOnUpgrade = true;
    out.push(c);
  }
  return out;
}

export function formatConffilesField(list: Conffile[]): string {
  return list.map((c) => `\n ${c.path} ${c.hash}${c.obsolete ? ' obsolete' : ''}${c.removeOnUpgrade ? ' remove-on-upgrade' : ''}`).join('');
}

/**
 * Parses a package's `conffiles` control file: one absolute path per line; `remove-on-upgrade /path` (dpkg ≥ 1.20.6)
 * names a conffile the package no longer ships.
 */
export function parseConffilesControl(text: string): Array<{ path: string; removeOnUpgrade: boolean }> {
  const out: Array<{ path: string; removeOnUpgrade: boolean }> = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '').replace(/^\s+/, '');
    if (!line) continue;
    const m = /^remove-on-upgrade\s+(\/.*)$/.exec(line);
    if (m) out.push({ path: m[1]!, removeOnUpgrade: true });
    else out.push({ path: line, removeOnUpgrade: false });
  }
  return out;
}

/**
 * The status stanza dpkg writes for a package whose control paragraph is `fields`: known fields in dpkg's order
 * (Essential and Protected only when `yes`, Multi-Arch not when `no`, relation fields re-spaced as dpkg writes
 * them), then the package's other fields in their order. `status`, `configVersion` and `conffiles` come from the
 * database, never from the control file. Values are JS strings; the result is a byte string (UTF-8).
 */
export function formatStatusStanza(fields: ControlField[], db: { status: string; configVersion?: string; conffiles: Conffile[] }): string {
  const known = new Map<string, string>();
  const other: Array<[string, string]> = [];
  for (const f of fields) {
    const lower = f.name.toLowerCase();
    if (DATABASE_FIELDS.has(lower)) continue;
    const canon = KNOWN.get(lower);
    if (canon) known.set(canon, f.value);
    else other.push([f.name, f.value]);
  }
  known.set('Status', db.status);
  if (db.configVersion) known.set('Config-Version', db.configVersion);
  const lines: string[] = [];
  const put = (name: string, value: string) => lines.push(`${name}:${value.startsWith('\n') ? '' : ' '}${utf8Bytes(value)}`);
  for (const name of STATUS_FIELD_ORDER) {
    if (name === 'Conffiles') {
      if (db.conffiles.length) lines.push(`Conffiles:${formatConffilesField(db.conffiles)}`);
      continue;
    }
    const v = known.get(name);
    if (v === undefined || name === 'Revision') continue;
    if ((name === 'Essential' || name === 'Protected') && v !== 'yes') continue;
    if (name === 'Multi-Arch' && v === 'no') continue;
    put(name, RELATION_FIELDS.has(name.toLowerCase()) ? parseRelations(v, name).map(formatRelationGroup).join(', ') : v);
  }
  for (const [name, value] of other) put(name, value);
  return `${lines.join('\n')}\n`;
}

/** The `info/PKG.list` text: one absolute path a line, the root as `/.`. Paths are image paths ('' is the root). */
export function formatList(paths: string[]): string {
  return paths.map((p) => (p === '' ? '/.\n' : `/${p}\n`)).join('');
}

/** Image paths ('' for `/.`) of a `.list` file. */
export function parseList(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    out.push(line === '/.' ? '' : line.replace(/^\/+/, '').replace(/\/+$/, ''));
  }
  return out;
}

/** `md5  path` lines, paths without the leading '/' (what dpkg generates when a package ships no md5sums). */
export function formatMd5sums(entries: Array<{ path: string; md5: string }>): string {
  return entries.map((e) => `${e.md5}  ${e.path}\n`).join('');
}

export interface Diversion {
  /** Image path the package's file is written to instead. */
  to: string;
  /** The package that may write the original path (':' for a local diversion, which no package may). */
  package: string;
}

/** Parses the `diversions` file: triples of lines (from, to, package), absolute paths. Keys are image paths. */
export function parseDiversions(text: string): Map<string, Diversion> {
  const out = new Map<string, Diversion>();
  const lines = text.split('\n');
  for (let i = 0; i + 2 < lines.length; i += 3) {
    const from = lines[i]!;
    if (!from) break;
    out.set(from.replace(/^\/+/, ''), { to: lines[i + 1]!.replace(/^\/+/, ''), package: lines[i + 2]! });
  }
  return out;
}
