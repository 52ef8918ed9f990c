/**
 * The text formats of a git export (docs/git-interop.md): the per-directory sidecar `.viva-meta` that carries what a
 * git tree cannot (owners, all 12 mode bits, ns mtimes, xattrs, devices, fifos, sockets, hardlinks, holes, names git
 * refuses), the names entries get in git trees, and the one-file manifest of a `--manifests-only` export. Pure:
 * values in, text out, and back.
 */
import type { RootMeta } from './commit.js';
import { type Oid, isOid } from './oid.js';
import { hexIfNotUtf8, quotePath, unquotePath } from './quote.js';
import { type EntryType, type TreeEntry, type Xattr, ENTRY_TYPE_CODES, invalidHolesReason, invalidNameReason } from './tree.js';

/** The sidecar's file name in every exported git tree. */
export const SIDECAR_NAME = '.viva-meta';
/** Frozen: the first line of a sidecar is `viva-meta 1`; a later format gets a new number. */
export const SIDECAR_VERSION = 1;
/** The one file of a `--manifests-only` export's tree. */
export const MANIFEST_NAME = 'manifest.txt';
/** Frozen: the first line of a manifest is `# viva manifest 1`. */
export const MANIFEST_VERSION = 1;
/**
 * Prefix of the git name of an entry whose own name git cannot hold or would treat specially: the prefix and the
 * name's bytes in lower-case hex (`.viva-x-2e676974` for `.git`). Every name that starts with `.viva-` is escaped
 * too, so an escaped name never collides with a real one.
 */
export const ESCAPE_PREFIX = '.viva-x-';

/**
 * What a sidecar line says about one entry: a tree entry without what git holds (content and subtrees by id, symlink
 * targets). `size` is recorded for types other than file and symlink (whose size is their git blob's length), when
 * not 0.
 */
export type SidecarEntry = Omit<TreeEntry, 'oid' | 'linkTarget'>;

export interface Sidecar {
  /** Root sidecar only: the image root's own metadata (a commit's `rootMeta`). */
  root?: RootMeta;
  /** Root sidecar only: the image was a disk (this viva disk id); the git tree is its view tree. */
  disk?: Oid;
  /** In name-byte order. */
  entries: SidecarEntry[];
}

/** A sidecar that cannot be read: `line` is 1-based. */
export class SidecarSyntaxError extends Error {
  constructor(readonly line: number, readonly reason: string) { super(`line ${line}: ${reason}`); }
}

/** Code points HFS+ ignores in names: git's fsck treats `.g\u200cit` as `.git`, so such names are escaped. */
const HFS_IGNORED = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/u;

/**
 * The name an entry has in a git tree: its own name when that is valid UTF-8 and nothing git treats specially
 * (`.git…` in any case, NTFS short names `git~1` and `gi7eba~N`, HFS-ignorable code points, `.viva-…`), else
 * `ESCAPE_PREFIX` + hex of the name. isomorphic-git takes tree names as JS strings and writes them as UTF-8, so a
 * name that is not UTF-8 cannot be written as it is; `git fsck --strict` refuses the special ones.
 */
export function gitName(name: Uint8Array): string {
  const b = Buffer.from(name.buffer, name.byteOffset, name.byteLength);
  if (hexIfNotUtf8(b) !== undefined) return ESCAPE_PREFIX + b.toString('hex');
  const s = b.toString('utf8');
  const parts = s.split('\\').map((p) => p.toLowerCase().replace(/[ .]+$/, ''));
  const special = parts.some((p) => p.startsWith('.git') || /^git~\d+$/.test(p) || /^gi7eba~\d+$/.test(p) || /^gi250a~\d+$/.test(p) || /^gi7d29~\d+$/.test(p) || /^maba30~\d+$/.test(p))
    || s.toLowerCase().startsWith('.viva-') || HFS_IGNORED.test(s);
  return special ? ESCAPE_PREFIX + b.toString('hex') : s;
}

/** A name or path as one space-free field: viva's quoted form, in double quotes whenever it would not be one token. */
export function quoteField(b: Uint8Array): string {
  const q = quotePath(b);
  if (q.startsWith('"')) return q;
  if (q === '' || /[ =@#]/.test(q[0]!) || q.includes(' ')) return `"${q}"`;
  return q;
}

function encodeXattr(x: Xattr): string {
  return `xattr=${encodeURIComponent(x.name)}:${Buffer.from(x.value).toString('base64')}`;
}

function metaFields(type: string, mode: number, uid: number, gid: number, mtimeNs: bigint, xattrs: readonly Xattr[]): string {
  return `${type} ${mode.toString(8).padStart(4, '0')} ${uid}:${gid} ${mtimeNs}${xattrs.map((x) => ` ${encodeXattr(x)}`).join('')}`;
}

/** The sidecar line of one entry (without newline). */
export function sidecarLine(e: SidecarEntry | TreeEntry): string {
  let extra = '';
  if (e.type !== 'file' && e.type !== 'symlink' && e.size !== 0) extra += ` size=${e.size}`;
  if (e.rdev) extra += ` rdev=${e.rdev.major}:${e.rdev.minor}`;
  if (e.holes?.length) extra += ` holes=${e.holes.map((h) => `${h.offset}+${h.length}`).join(',')}`;
  if (e.hardlink?.length) extra += ` hardlink=${quoteField(e.hardlink)}`;
  const x = [...e.xattrs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const fields = metaFields(e.type, e.mode, e.uid, e.gid, e.mtimeNs, []);
  return `${quoteField(e.name)} ${fields}${extra}${x.map((v) => ` ${encodeXattr(v)}`).join('')}`;
}

/**
 * The sidecar text of one directory: `viva-meta 1`, in the root also `@root …` and `@disk OID`, then one line per
 * entry in name-byte order. Deterministic: the same tree gives the same bytes (and so the same git blob).
 */
export function encodeSidecar(s: Sidecar): string {
  const lines = [`viva-meta ${SIDECAR_VERSION}`];
  if (s.root) lines.push(`@root ${metaFields('dir', s.root.mode, s.root.uid, s.root.gid, s.root.mtimeNs, [...s.root.xattrs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))}`);
  if (s.disk) lines.push(`@disk ${s.disk}`);
  for (const e of s.entries) lines.push(sidecarLine(e));
  return `${lines.join('\n')}\n`;
}

/** Splits a line into space-separated tokens; a token may hold a double-quoted part (`"a b"`, `hardlink="x y"`). */
function tokens(line: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ') return undefined; // one space between fields, none at the ends
    let j = i;
    while (j < line.length && line[j] !== ' ') {
      if (line[j] === '"') {
        j++;
        while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
        if (j >= line.length) return undefined;
      }
      j++;
    }
    out.push(line.slice(i, j));
    i = j + 1;
    if (j < line.length && i === line.length) return undefined; // trailing space
  }
  return out;
}

function unquoteField(s: string, what: string, line: number): Buffer {
  const r = unquotePath(s);
  if ('error' in r) throw new SidecarSyntaxError(line, `${what} ${s}: ${r.error}`);
  return r.bytes;
}

function parseUint(s: string, what: string, line: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(s) || s.length > 16 || Number(s) > max) throw new SidecarSyntaxError(line, `bad ${what} '${s}'`);
  return Number(s);
}

interface Meta { type: EntryType; mode: number; uid: number; gid: number; mtimeNs: bigint }

function parseMeta(t: string[], line: number): Meta {
  const [type, mode, owner, mtime] = t;
  if (type === undefined || !(type in ENTRY_TYPE_CODES)) throw new SidecarSyntaxError(line, `unknown entry type '${type ?? ''}'`);
  if (mode === undefined || !/^[0-7]{4}$/.test(mode)) throw new SidecarSyntaxError(line, `bad mode '${mode ?? ''}'`);
  const m = /^(\d+):(\d+)$/.exec(owner ?? '');
  if (!m) throw new SidecarSyntaxError(line, `bad owner '${owner ?? ''}' (expected UID:GID)`);
  if (mtime === undefined || !/^-?\d{1,25}$/.test(mtime)) throw new SidecarSyntaxError(line, `bad mtime '${mtime ?? ''}'`);
  return {
    type: type as EntryType, mode: parseInt(mode, 8), uid: parseUint(m[1]!, 'uid', line, 0xffffffff), gid: parseUint(m[2]!, 'gid', line, 0xffffffff), mtimeNs: BigInt(mtime),
  };
}

function parseXattr(v: string, line: number): Xattr {
  const i = v.indexOf(':');
  if (i <= 0) throw new SidecarSyntaxError(line, `bad xattr '${v}' (expected NAME:BASE64)`);
  let name: string;
  try {
    name = decodeURIComponent(v.slice(0, i));
  } catch {
    throw new SidecarSyntaxError(line, `bad xattr name '${v.slice(0, i)}'`);
  }
  const b64 = v.slice(i + 1);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new SidecarSyntaxError(line, `bad xattr value of '${name}' (expected base64)`);
  return { name, value: Buffer.from(b64, 'base64') };
}

/** Parses a sidecar (see encodeSidecar); throws SidecarSyntaxError naming the line. `isRoot`: `@` lines allowed. */
export function decodeSidecar(text: string, isRoot: boolean): Sidecar {
  const lines = text.split('\n');
  if (lines[lines.length - 1] !== '') throw new SidecarSyntaxError(lines.length, 'no newline at the end');
  lines.pop();
  const head = /^viva-meta (\d+)$/.exec(lines[0] ?? '');
  if (!head) throw new SidecarSyntaxError(1, `expected 'viva-meta ${SIDECAR_VERSION}'`);
  if (Number(head[1]) !== SIDECAR_VERSION) throw new SidecarSyntaxError(1, `sidecar version ${head[1]} is not supported (this viva reads version ${SIDECAR_VERSION})`);
  const out: Sidecar = { entries: [] };
  let prev: Buffer | undefined;
  for (let i = 1; i < lines.length; i++) {
    const n = i + 1;
    const t = tokens(lines[i]!);
    if (!t || t.length === 0) throw new SidecarSyntaxError(n, 'malformed line (fields are separated by one space)');
    if (t[0] === '@root' || t[0] === '@disk') {
      if (!isRoot) throw new SidecarSyntaxError(n, `'${t[0]}' is allowed only at the image root`);
      if (prev || (t[0] === '@root' ? out.root || out.disk : out.disk)) throw new SidecarSyntaxError(n, `'${t[0]}' out of place`);
      if (t[0] === '@disk') {
        if (t.length !== 2 || !isOid(t[1]!)) throw new SidecarSyntaxError(n, 'bad @disk line (expected a disk id)');
        out.disk = t[1]!;
        continue;
      }
      const m = parseMeta(t.slice(1), n);
      if (m.type !== 'dir') throw new SidecarSyntaxError(n, '@root must be a dir');
      const xattrs = t.slice(5).map((v) => {
        if (!v.startsWith('xattr=')) throw new SidecarSyntaxError(n, `unknown field '${v}'`);
        return parseXattr(v.slice(6), n);
      });
      out.root = { mode: m.mode, uid: m.uid, gid: m.gid, mtimeNs: m.mtimeNs, xattrs };
      continue;
    }
    const name = unquoteField(t[0]!, 'name', n);
    const bad = invalidNameReason(name);
    if (bad) throw new SidecarSyntaxError(n, `invalid name ${quoteField(name)}: ${bad}`);
    if (prev && Buffer.compare(prev, name) >= 0) throw new SidecarSyntaxError(n, `${quoteField(name)}: entries not in name order or listed twice`);
    prev = name;
    const m = parseMeta(t.slice(1), n);
    const e: SidecarEntry = { name, ...m, size: 0, xattrs: [] };
    const seen = new Set<string>();
    for (const f of t.slice(5)) {
      if (!f.includes('=')) throw new SidecarSyntaxError(n, `unknown field '${f}'`);
      const k = f.slice(0, f.indexOf('='));
      const v = f.slice(k.length + 1);
      if (k !== 'xattr') {
        if (seen.has(k)) throw new SidecarSyntaxError(n, `field '${k}' given twice`);
        seen.add(k);
      }
      if (k === 'size' && e.type !== 'file' && e.type !== 'symlink') e.size = parseUint(v, 'size', n);
      else if (k === 'rdev' && (e.type === 'chr' || e.type === 'blk')) {
        const r = /^(\d+):(\d+)$/.exec(v);
        if (!r) throw new SidecarSyntaxError(n, `bad rdev '${v}' (expected MAJOR:MINOR)`);
        e.rdev = { major: parseUint(r[1]!, 'major', n, 0xffffffff), minor: parseUint(r[2]!, 'minor', n, 0xffffffff) };
      } else if (k === 'holes' && e.type === 'file') {
        e.holes = v.split(',').map((h) => {
          const r = /^(\d+)\+(\d+)$/.exec(h);
          if (!r) throw new SidecarSyntaxError(n, `bad hole '${h}' (expected OFFSET+LENGTH)`);
          return { offset: parseUint(r[1]!, 'hole offset', n), length: parseUint(r[2]!, 'hole length', n) };
        });
        if (invalidHolesReason(e.holes, Number.MAX_SAFE_INTEGER)) throw new SidecarSyntaxError(n, 'invalid hole list (holes must be increasing, non-empty, not adjacent)');
      } else if (k === 'hardlink' && e.type !== 'dir') {
        e.hardlink = unquoteField(v, 'hardlink path', n);
        if (e.hardlink.length === 0) throw new SidecarSyntaxError(n, 'empty hardlink path');
      } else if (k === 'xattr') {
        e.xattrs.push(parseXattr(v, n));
      } else {
        throw new SidecarSyntaxError(n, `unknown field '${f}' for a ${e.type}`);
      }
    }
    if ((e.type === 'chr' || e.type === 'blk') && !e.rdev) e.rdev = { major: 0, minor: 0 };
    const names = e.xattrs.map((x) => x.name);
    if (new Set(names).size !== names.length) throw new SidecarSyntaxError(n, 'an xattr listed twice');
    out.entries.push(e);
  }
  return out;
}

/** `2023-11-14T22:13:20.123456789Z`; `@NS` for a time JS dates cannot show. */
function isoNs(ns: bigint): string {
  const s = ns / 1_000_000_000n - (ns < 0n && ns % 1_000_000_000n !== 0n ? 1n : 0n);
  const frac = ns - s * 1_000_000_000n;
  if (s < -8_640_000_000_000n || s > 8_640_000_000_000n) return `@${ns}`;
  const d = new Date(Number(s) * 1000).toISOString();
  return `${d.slice(0, -5)}.${frac.toString().padStart(9, '0')}Z`;
}

/**
 * One manifest line: `PATH TYPE MODE UID:GID SIZE CONTENT MTIME xattrs=N[:HASH]` plus `holes=N` and `hardlink=PATH`
 * when present. CONTENT is a file's sha256 (its viva blob id), a symlink's quoted target, `MAJOR:MINOR` of a device,
 * `-` otherwise. HASH is the first 12 hex digits of the sha256 over the xattrs' names and values (`hashXattrs`).
 */
export function manifestLine(path: Uint8Array, e: TreeEntry | (RootMeta & { type: 'dir'; size: number }), xattrHash?: string): string {
  const t = e as TreeEntry;
  const content = t.type === 'file' ? t.oid! : t.type === 'symlink' ? quoteField(t.linkTarget ?? Buffer.alloc(0)) : t.rdev ? `${t.rdev.major}:${t.rdev.minor}` : '-';
  let line = `${quoteField(path)} ${e.type} ${e.mode.toString(8).padStart(4, '0')} ${e.uid}:${e.gid} ${e.size} ${content} ${isoNs(e.mtimeNs)} xattrs=${e.xattrs.length}`;
  if (e.xattrs.length && xattrHash) line += `:${xattrHash}`;
  if (t.holes?.length) line += ` holes=${t.holes.length}`;
  if (t.hardlink?.length) line += ` hardlink=${quoteField(t.hardlink)}`;
  return line;
}

/** The manifest's first lines: the format and what the image is. */
export function manifestHeader(info: { kind: 'tree' | 'disk'; root: Oid; tree: Oid }): string {
  return `# viva manifest ${MANIFEST_VERSION}\n# ${info.kind} ${info.root}${info.kind === 'disk' ? ` view ${info.tree}` : ''}\n`;
}
