/**
 * Debian binary packages (.deb): the `ar` container, the control paragraph and its relation fields, the other
 * control files, and the data archive as an ImageReader that commit's ingest turns into a tree.
 *
 * Layout (deb(5)): an `ar` archive whose first member is `debian-binary` ("2.0\n"), then `control.tar[.gz|.xz|.zst]`,
 * then `data.tar[.gz|.xz|.zst|.bz2|.lzma]`; members whose name starts with '_' are extensions and skipped, and
 * dpkg stops reading after the data member. The two tar members are read in place by the tar reader
 * (formats/tar.ts, with a byte range), so its checks apply to them: no absolute names, no '..', nothing written
 * through a symlink of the archive, hardlinks only to earlier members.
 *
 * The `ar` parsing is written here: it is 60-byte fixed headers and nothing else, and the npm `ar` readers are
 * unmaintained and read whole members into memory, while the data member must stay a byte range of the file.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { CorruptInputError, RelationSyntaxError, SourceReadError, UnsupportedInputError, systemText } from '../errors.js';
import { openTar, type TarReadCompression } from '../formats/tar.js';
import type { ImageReader } from '../formats/types.js';
import { parseDebVersion } from './debversion.js';
import { type RelationGroup, formatRelation, formatRelationGroup, parseRelations } from './deb822.js';

/** `!<arch>\n`: the global header of an ar archive. */
const AR_MAGIC = Buffer.from('!<arch>\n', 'latin1');
/** An ar member header: name 16, mtime 12, uid 6, gid 6, mode 8 (octal), size 10 (decimal), then "`\n". */
const AR_HEADER = 60;
/** The end of an ar member header. */
const AR_FMAG = '`\n';
/** debian-binary holds a short version line; anything longer is not a .deb. */
const MAX_DEBIAN_BINARY = 64;
/** control.tar holds the control paragraph, scripts and checksum lists: more than this in all is refused as corrupt. */
export const MAX_CONTROL_SIZE = 64 << 20;

/**
 * Member suffixes dpkg-deb (1.21) reads, by compression. control.tar may be plain, gzip, xz or zstd; data.tar also
 * bzip2 and lzma (both deprecated, still accepted by dpkg).
 */
const CONTROL_COMPRESSIONS: Record<string, TarReadCompression> = { '': 'none', '.gz': 'gzip', '.xz': 'xz', '.zst': 'zstd' };
const DATA_COMPRESSIONS: Record<string, TarReadCompression> = { ...CONTROL_COMPRESSIONS, '.bz2': 'bzip2', '.lzma': 'lzma' };

/** One member of the ar container. */
export interface DebMember {
  name: string;
  /** Offset of the member's data in the .deb. */
  offset: number;
  size: number;
}

/** A file of control.tar other than `control` (md5sums, conffiles, maintainer scripts, triggers, shlibs, …). */
export interface ControlFile {
  data: Buffer;
  /** The 12 permission bits: maintainer scripts are executable. */
  mode: number;
  /** Owner and mtime from control.tar: dpkg keeps them when it moves the file into `var/lib/dpkg/info`. */
  uid: number;
  gid: number;
  mtimeNs: bigint;
}

/** A control field, as written: its name's spelling and its value (continuation lines joined by '\n', each keeping its leading blank). */
export interface ControlField {
  name: string;
  value: string;
}

/** A relation field: AND of ORs (`a | b, c` → [[a, b], [c]]), as deb822.ts parses it. */
export type Relations = RelationGroup[];

/** The control paragraph: every field in order, and a typed view of the ones dependency resolution needs. */
export interface DebControl {
  fields: ControlField[];
  package: string;
  version: string;
  architecture: string;
  /** The Source field's name and version (when it names a different version: `src (1.2-3)`). */
  source?: { name: string; version?: string };
  essential: boolean;
  multiArch?: 'same' | 'foreign' | 'allowed' | 'no';
  /** KiB, as the field says. */
  installedSize?: number;
  preDepends: Relations;
  depends: Relations;
  recommends: Relations;
  suggests: Relations;
  provides: Relations;
  conflicts: Relations;
  breaks: Relations;
  replaces: Relations;
}

/** A .deb file read by {@link readDeb}: its members, its control paragraph and its other control files. */
export interface DebPackage {
  file: string;
  /** The content of debian-binary without its newline ('2.0'). */
  formatVersion: string;
  members: DebMember[];
  control: DebControl;
  /** Files of control.tar other than `control`, by name, in archive order. */
  controlFiles: Map<string, ControlFile>;
  /** The data archive: its entries are image paths (`usr/bin/x`), the root `./` is the empty path. */
  data: ImageReader;
}

// ---------------------------------------------------------------------------------------------------------------
// Control paragraphs (deb822).

/** dpkg's field-name rule: printable ASCII but ':', not starting with '#' or '-' (a comment or a PGP armour line). */
const FIELD_NAME = /^[!-9;-~]+$/;

/**
 * Parses one binary control paragraph as dpkg does for a package's `control` file: `Name: value` lines,
 * continuation lines starting with a space or tab, no comments, one paragraph (blank lines only around it), field
 * names unique regardless of case. Values keep continuation lines (with their leading blank) and lose the blanks
 * around the first line and at the end. Throws CorruptInputError naming `source` and the line (after `context`,
 * e.g. `control.tar.xz member 'control' `).
 */
export function parseDebControl(text: string, source: string, context = ''): ControlField[] {
  const fields: ControlField[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let ended = false;
  const fail = (i: number, reason: string): never => { throw new CorruptInputError(source, `${context}line ${i + 1}`, reason); };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (/^[ \t]*$/.test(line)) {
      if (fields.length) ended = true;
      continue;
    }
    if (ended) fail(i, 'more than one paragraph (a binary control file has one)');
    if (line[0] === ' ' || line[0] === '\t') {
      if (!fields.length) fail(i, 'continuation line before the first field');
      fields[fields.length - 1]!.value += `\n${line.trimEnd()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) fail(i, line[0] === '#' ? 'comments are not allowed in a binary control file' : `line without a field name and ':'`);
    const name = line.slice(0, colon);
    if (name[0] === '#') fail(i, 'comments are not allowed in a binary control file');
    if (name[0] === '-' || !FIELD_NAME.test(name)) fail(i, `invalid field name '${name}'`);
    if (seen.has(name.toLowerCase())) fail(i, `duplicate field '${name}'`);
    seen.add(name.toLowerCase());
    fields.push({ name, value: line.slice(colon + 1).trim() });
  }
  // A value whose continuation lines are all blank-only ends with its last non-blank line (dpkg trims them too).
  for (const f of fields) f.value = f.value.replace(/\s+$/, '');
  return fields;
}

/** The value of a field (names compare without regard to case, as in deb822), or undefined. */
export function controlField(fields: ControlField[], name: string): string | undefined {
  const n = name.toLowerCase();
  return fields.find((f) => f.name.toLowerCase() === n)?.value;
}

/** dpkg's pkg_name_is_illegal(): starts with a letter or digit, then letters, digits and `-+._`. */
const PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._-]*$/;
/** dpkg's dpkg_arch_name_is_illegal(): letters, digits and '-', starting with a letter or digit. */
const ARCH_NAME = /^[A-Za-z0-9][A-Za-z0-9-]*$/;

/** Fields where dpkg allows alternatives ('|'); elsewhere (Conflicts, Breaks, Replaces, Provides) it refuses them. */
const ALTERNATIVE_FIELDS = new Set(['pre-depends', 'depends', 'recommends', 'suggests', 'enhances']);

/** Relations as dpkg writes them (`a (>= 1) | b:any, c`): the canonical form of a parsed field. */
export function formatRelations(rel: Relations): string {
  return rel.map(formatRelationGroup).join(', ');
}

/** The typed view of a binary package's control paragraph. Throws CorruptInputError naming `source` and the field. */
export function debControlFromFields(fields: ControlField[], source: string): DebControl {
  const bad = (name: string, reason: string): never => { throw new CorruptInputError(source, `control field '${name}'`, reason); };
  const required = (name: string): string => {
    const v = controlField(fields, name);
    if (v === undefined || v === '') bad(name, 'missing or empty');
    return v!;
  };
  const pkg = required('Package');
  if (!PACKAGE_NAME.test(pkg)) bad('Package', `invalid package name '${pkg}'`);
  const version = required('Version');
  const pv = parseDebVersion(version);
  if (typeof pv === 'string') bad('Version', `'${version}': ${pv}`);
  const architecture = required('Architecture');
  if (!ARCH_NAME.test(architecture)) bad('Architecture', `invalid architecture '${architecture}'`);
  const relations = (name: string): Relations => {
    const v = controlField(fields, name);
    if (v === undefined) return [];
    let r: Relations = [];
    try {
      r = parseRelations(v, name);
    } catch (e) {
      if (e instanceof RelationSyntaxError) bad(name, String(e.data.reason));
      throw e;
    }
    // A binary package's control data, as dpkg checks it: no alternatives outside the dependency fields, only '='
    // in Provides, no architecture lists or build profiles (those are source-package syntax).
    for (const g of r) {
      if (g.length > 1 && !ALTERNATIVE_FIELDS.has(name.toLowerCase())) bad(name, `alternatives ('|') are not allowed in ${name}`);
      for (const t of g) {
        if (name.toLowerCase() === 'provides' && t.op && t.op !== '=') bad(name, `only exact versions ('=') may be provided, not '${t.op}'`);
        if (t.arches || t.profiles) bad(name, `architecture lists and build profiles belong to source packages ('${formatRelation(t)}')`);
      }
    }
    return r;
  };
  const control: DebControl = {
    fields, package: pkg, version, architecture, essential: false,
    preDepends: relations('Pre-Depends'), depends: relations('Depends'), recommends: relations('Recommends'),
    suggests: relations('Suggests'), provides: relations('Provides'), conflicts: relations('Conflicts'),
    breaks: relations('Breaks'), replaces: relations('Replaces'),
  };
  const src = controlField(fields, 'Source');
  if (src !== undefined) {
    const m = /^(\S+)(?:\s*\(\s*(\S+)\s*\))?$/.exec(src);
    if (!m || !PACKAGE_NAME.test(m[1]!)) bad('Source', `'${src}' is not 'NAME' or 'NAME (VERSION)'`);
    const sv = m![2];
    if (sv !== undefined && typeof parseDebVersion(sv) === 'string') bad('Source', `invalid version '${sv}'`);
    control.source = { name: m![1]!, ...(sv !== undefined ? { version: sv } : {}) };
  }
  const ess = controlField(fields, 'Essential');
  if (ess !== undefined) {
    if (ess !== 'yes' && ess !== 'no') bad('Essential', `'${ess}' is not 'yes' or 'no'`);
    control.essential = ess === 'yes';
  }
  const ma = controlField(fields, 'Multi-Arch');
  if (ma !== undefined) {
    if (ma !== 'same' && ma !== 'foreign' && ma !== 'allowed' && ma !== 'no') bad('Multi-Arch', `'${ma}' is not one of same, foreign, allowed, no`);
    control.multiArch = ma as DebControl['multiArch'];
  }
  const size = controlField(fields, 'Installed-Size');
  if (size !== undefined) {
    if (!/^\d{1,15}$/.test(size)) bad('Installed-Size', `'${size}' is not a number of KiB`);
    control.installedSize = Number(size);
  }
  return control;
}

// ---------------------------------------------------------------------------------------------------------------
// The ar container.

function readAt(fd: number, file: string, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  try {
    while (done < length) {
      const n = fs.readSync(fd, buf, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
  } catch (e) {
    throw new SourceReadError(file, systemText(e), { cause: e });
  }
  return buf.subarray(0, done);
}

/** Human form of an ar name field for messages: printable ASCII, anything else escaped. */
function showName(b: Buffer): string {
  // eslint-disable-next-line no-control-regex
  return b.toString('latin1').replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Lists the members of the .deb's ar container up to and including `data.tar*` (dpkg reads no further), checking
 * each header and that it lies inside the file. Throws CorruptInputError naming the file and the byte offset.
 */
function readArMembers(fd: number, file: string, size: number): DebMember[] {
  const head = readAt(fd, file, AR_MAGIC.length, 0);
  if (!head.equals(AR_MAGIC)) {
    if (head.toString('latin1').startsWith('0.93')) throw new UnsupportedInputError(file, 'old-style .deb (format 0.939) is not supported');
    throw new CorruptInputError(file, 'offset 0', 'not a .deb (bad ar magic)');
  }
  const members: DebMember[] = [];
  let off = AR_MAGIC.length;
  while (off < size) {
    const at = `offset ${off}`;
    const h = readAt(fd, file, AR_HEADER, off);
    if (h.length < AR_HEADER) throw new CorruptInputError(file, at, `truncated ar member header (${h.length} of ${AR_HEADER} bytes)`);
    if (h.toString('latin1', 58, 60) !== AR_FMAG) throw new CorruptInputError(file, at, 'malformed ar member header (bad end marker)');
    // GNU ar ends names with '/', BSD and dpkg pad them with blanks.
    const name = h.toString('latin1', 0, 16).replace(/ +$/, '').replace(/\/$/, '');
    if (!/^[!-~]+$/.test(name)) throw new CorruptInputError(file, at, `malformed ar member name '${showName(h.subarray(0, 16))}'`);
    const sizeField = h.toString('latin1', 48, 58);
    if (!/^\d+ *$/.test(sizeField)) throw new CorruptInputError(file, at, `malformed size '${showName(h.subarray(48, 58)).trim()}' in the header of ar member '${name}'`);
    const msize = Number(sizeField.trim());
    const data = off + AR_HEADER;
    if (data + msize > size) {
      throw new CorruptInputError(file, at, `ar member '${name}' (${msize} bytes at offset ${data}) runs past the end of the file (${size} bytes): truncated`);
    }
    members.push({ name, offset: data, size: msize });
    if (name.startsWith('data.tar')) break;
    off = data + msize + (msize & 1);
  }
  return members;
}

/** The compression of a `control.tar…` / `data.tar…` member by its suffix; UnsupportedInputError for any other. */
function memberCompression(file: string, m: DebMember, prefix: string, table: Record<string, TarReadCompression>): TarReadCompression {
  const c = table[m.name.slice(prefix.length)];
  if (c === undefined) throw new UnsupportedInputError(file, `ar member '${m.name}': unsupported compression (dpkg reads ${Object.keys(table).map((k) => prefix + k).join(', ')})`);
  return c;
}

/**
 * Reads a .deb: checks its container, parses the control paragraph and reads the other control files; the data
 * archive is returned unread, as an ImageReader over its byte range of the file (read it once per `entries()`).
 *
 * Throws SourceReadError when the file cannot be read; CorruptInputError (file, offset or member) for a bad ar
 * magic, a malformed or truncated member header, a missing or misplaced debian-binary / control.tar / data.tar,
 * a malformed control.tar or control paragraph; UnsupportedInputError for a debian-binary other than 2.x or an
 * unknown member compression. Errors of the data archive (truncated, '..' or absolute names, writes through a
 * symlink, hardlinks to anything but an earlier member) come from `data.entries()`: CorruptInputError or
 * UnsafeInputError naming the file and `data.tar.xz member '…'` or the offset in the data archive. All map to
 * exit code 13 in the CLI.
 *
 * @example
 * const deb = await readDeb('hello_2.10-3_amd64.deb');
 * console.log(deb.control.package, deb.control.version, formatRelations(deb.control.depends));
 */
export async function readDeb(file: string): Promise<DebPackage> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new SourceReadError(file, systemText(e), { cause: e });
  }
  let members: DebMember[];
  let formatVersion: string;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new SourceReadError(file, 'not a regular file');
    members = readArMembers(fd, file, st.size);
    const first = members[0];
    if (!first) throw new CorruptInputError(file, 'offset 8', 'empty ar archive: no debian-binary member');
    if (first.name !== 'debian-binary') throw new CorruptInputError(file, `ar member '${first.name}'`, "the first member must be 'debian-binary'");
    if (first.size > MAX_DEBIAN_BINARY) throw new CorruptInputError(file, "ar member 'debian-binary'", `${first.size} bytes is too long for a format version`);
    const text = readAt(fd, file, first.size, first.offset).toString('latin1');
    const m = /^(\d+)\.(\d+)\n/.exec(text);
    if (!m) throw new CorruptInputError(file, "ar member 'debian-binary'", `malformed format version '${showName(Buffer.from(text, 'latin1'))}'`);
    if (m[1] !== '2') throw new UnsupportedInputError(file, `.deb format version ${m[1]}.${m[2]} is not supported (dpkg reads 2.x)`);
    formatVersion = `${m[1]}.${m[2]}`;
  } finally {
    fs.closeSync(fd);
  }

  let control: DebMember | undefined;
  let data: DebMember | undefined;
  for (const m of members.slice(1)) {
    if (m.name.startsWith('_')) continue; // extension members: dpkg skips them
    if (m.name.startsWith('control.tar')) {
      if (control) throw new CorruptInputError(file, `ar member '${m.name}'`, 'second control.tar member');
      control = m;
    } else if (m.name.startsWith('data.tar')) {
      if (!control) throw new CorruptInputError(file, `ar member '${m.name}'`, 'data.tar comes before control.tar');
      data = m;
    } else {
      throw new CorruptInputError(file, `ar member '${m.name}'`, `unexpected member before ${control ? 'data.tar' : 'control.tar'}`);
    }
  }
  if (!control) throw new CorruptInputError(file, 'ar archive', 'no control.tar member');
  if (!data) throw new CorruptInputError(file, 'ar archive', 'no data.tar member');

  const { fields, controlFiles } = await readControlTar(file, control, memberCompression(file, control, 'control.tar', CONTROL_COMPRESSIONS));
  const dataReader = openTar(file, {
    range: { offset: data.offset, length: data.size },
    compression: memberCompression(file, data, 'data.tar', DATA_COMPRESSIONS),
    member: data.name,
  });
  return { file, formatVersion, members, control: debControlFromFields(fields, file), controlFiles, data: dataReader };
}

/** Reads control.tar whole: the `control` paragraph and the other files, which must be regular files at its top. */
async function readControlTar(file: string, m: DebMember, compression: TarReadCompression): Promise<{ fields: ControlField[]; controlFiles: Map<string, ControlFile> }> {
  const files = new Map<string, ControlFile>();
  let total = 0;
  for await (const e of openTar(file, { range: { offset: m.offset, length: m.size }, compression, member: m.name }).entries()) {
    const name = e.path.toString('utf8');
    const where = `${m.name} member '${name}'`;
    if (e.path.length === 0 && e.type === 'dir') continue;
    if (name.includes('/') || e.type === 'dir') throw new CorruptInputError(file, where, 'control.tar holds only files, at its top');
    if (e.type === 'hardlink') {
      const target = files.get(e.linkTarget!.toString('utf8'));
      if (!target) throw new CorruptInputError(file, where, 'hardlink to a file outside control.tar');
      files.set(name, { ...target });
      continue;
    }
    if (e.type !== 'file') throw new UnsupportedInputError(file, `${where}: a ${e.type} in control.tar is not supported`);
    const size = e.content?.size ?? 0;
    total += size;
    if (total > MAX_CONTROL_SIZE) throw new CorruptInputError(file, where, `control.tar holds more than ${MAX_CONTROL_SIZE} bytes`);
    const data = Buffer.alloc(size);
    if (e.content) for await (const p of e.content.read()) data.set(p.data, p.offset);
    files.set(name, { data, mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs });
  }
  const controlFile = files.get('control');
  if (!controlFile) throw new CorruptInputError(file, m.name, "no 'control' file");
  files.delete('control');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(controlFile.data);
  } catch {
    throw new CorruptInputError(file, `${m.name} member 'control'`, 'not valid UTF-8');
  }
  return { fields: parseDebControl(text, file, `${m.name} member 'control' `), controlFiles: files };
}

/** The sha256 of a file (hex): the memo key of its `debTree`, computed before the work. Throws SourceReadError. */
export async function hashDeb(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  try {
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  } catch (e) {
    throw new SourceReadError(file, systemText(e), { cause: e });
  }
  return hash.digest('hex');
}
