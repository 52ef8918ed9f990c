/**
 * Commit objects: an image version. Encoding (docs/format.md §commit): header `commit\0` + version, root kind + id,
 * parents, author, time, tz, message, labels (sorted by key), source, derivation (empty until derived images exist).
 */
import { Decoder, DecodeError, Encoder, decodeCode, decodeHeader, encodeHeader, decodeXattrs, encodeXattrs, sortXattrs } from './codec.js';
import { type Oid, OID_BYTES, bytesToOid, hashBytes, oidToBytes } from './oid.js';
import { InvalidTimeError } from '../errors.js';
import { quotePath } from './quote.js';

export const COMMIT_VERSION = 1;

/** Tag of the optional trailing section listing source paths left out as unreadable (frozen). */
const OMITTED_TAG = 1;

/** Frozen root kinds. */
export const ROOT_KIND_CODES = { tree: 1, disk: 2 } as const;
export type RootKind = keyof typeof ROOT_KIND_CODES;

export interface SourceInfo {
  format: string;
  size?: number;
  name?: string;
  /** qcow2 sources: the backing files read along the chain, nearest first. */
  backing?: string[];
  /** Paths of the source that could not be read and were left out of the image (commit without --strict). */
  omitted?: Buffer[];
}

/** SourceInfo as plain data for JSON output: omitted paths as viva quotes paths (C-quoted when not UTF-8). */
export type SourceJson = Omit<SourceInfo, 'omitted'> & { omitted?: string[] };

/** A commit's source as plain data for `--json` (log, show, commit). */
export function sourceJson(s: SourceInfo): SourceJson {
  const { omitted, ...rest } = s;
  return omitted?.length ? { ...rest, omitted: omitted.map((p) => quotePath(p)) } : rest;
}

export interface RootMeta {
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  xattrs: Array<{ name: string; value: Uint8Array }>;
}

/**
 * A commit object as stored: the image root (a tree, or a disk), parents, author, time, message, labels and derivations.
 */
export interface Commit {
  rootKind: RootKind;
  root: Oid;
  parents: Oid[];
  /** "Name <email>" */
  author: string;
  /** Seconds since the epoch. */
  time: number;
  /** Minutes east of UTC. */
  tzOffset: number;
  message: string;
  /** Sorted by key, unique keys. */
  labels: Array<[string, string]>;
  source: SourceInfo;
  /** Metadata of the image's root directory itself (a tree lists only its children). */
  rootMeta?: RootMeta;
  /** Opaque canonical derivation record (later issues); empty for plain commits. */
  derivation?: Buffer;
}

/**
 * Commit times lie in 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z: four-digit years keep dates ISO 8601
 * (`toISOString` switches to `+010000-…` beyond), and every such time is exact in a double and far inside JS Date's
 * ±8.64e15 ms, so whatever is encoded decodes and displays again.
 */
export const MIN_COMMIT_TIME = -62_135_596_800;
export const MAX_COMMIT_TIME = 253_402_300_799;
/** Time-zone offsets in minutes east of UTC: real ones lie within ±14 h; allow up to ±24 h as git does. */
export const MAX_TZ_OFFSET = 24 * 60;

const TIME_RANGE = `outside ${MIN_COMMIT_TIME} .. ${MAX_COMMIT_TIME} (years 1 to 9999)`;

/** Throws InvalidTimeError unless `time` is whole seconds in [MIN_COMMIT_TIME, MAX_COMMIT_TIME]. */
export function checkCommitTime(time: number, what = 'commit time'): void {
  if (!Number.isInteger(time)) throw new InvalidTimeError(what, String(time), 'not a whole number of seconds');
  if (time < MIN_COMMIT_TIME || time > MAX_COMMIT_TIME) throw new InvalidTimeError(what, String(time), TIME_RANGE);
}

/**
 * Parses a commit time given as text (VIVA_DATE): decimal whole seconds since the epoch (`1700000000`, `-86400`),
 * nothing else (`1.5`, `1e9`, `abc` are refused, not rounded). Throws InvalidTimeError naming `what`.
 */
export function parseCommitTime(text: string, what = 'time'): number {
  if (!/^-?\d+$/.test(text)) throw new InvalidTimeError(what, text, 'expected whole seconds since the epoch (e.g. 1700000000)');
  if (text.replace(/^-?0*/, '').length > 15) throw new InvalidTimeError(what, text, TIME_RANGE);
  const t = Number(text);
  checkCommitTime(t, what);
  return t === 0 ? 0 : t; // no -0
}

/** Label key order (the encoder sorts by it, the decoder insists on it). */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A root directory's metadata: uint mode (≤ 0o7777), uint uid, uint gid, sint mtime ns, xattrs (commit and disk objects). */
export function encodeRootMeta(e: Encoder, m: RootMeta): Encoder {
  e.uint(m.mode & 0o7777).uint(m.uid).uint(m.gid).sbig(m.mtimeNs);
  encodeXattrs(e, sortXattrs(m.xattrs));
  return e;
}

export function decodeRootMeta(d: Decoder): RootMeta {
  const mode = d.uint();
  if (mode > 0o7777) throw new DecodeError('mode out of range', d.pos);
  const uid = d.uint();
  const gid = d.uint();
  const mtimeNs = d.sbig();
  const xattrs = decodeXattrs(d);
  return { mode, uid, gid, mtimeNs, xattrs };
}

/** Throws InvalidTimeError for a time or tz offset that could not be decoded and shown again (see MAX_COMMIT_TIME). */
export function encodeCommit(c: Commit): Buffer {
  checkCommitTime(c.time);
  if (!Number.isInteger(c.tzOffset) || Math.abs(c.tzOffset) > MAX_TZ_OFFSET) throw new InvalidTimeError('time-zone offset', String(c.tzOffset), `not whole minutes within ±${MAX_TZ_OFFSET}`);
  const e = encodeHeader(new Encoder(), 'commit', COMMIT_VERSION);
  e.u8(ROOT_KIND_CODES[c.rootKind]).raw(oidToBytes(c.root));
  e.uint(c.parents.length);
  for (const p of c.parents) e.raw(oidToBytes(p));
  e.str(c.author).sbig(BigInt(c.time)).sbig(BigInt(c.tzOffset)).str(c.message);
  const labels = [...c.labels].sort((a, b) => compareKeys(a[0], b[0]));
  for (let i = 1; i < labels.length; i++) if (labels[i]![0] === labels[i - 1]![0]) throw new Error(`duplicate label '${labels[i]![0]}'`);
  e.uint(labels.length);
  for (const [k, v] of labels) e.str(k).str(v);
  e.str(c.source.format).uint(c.source.size ?? 0).str(c.source.name ?? '');
  const backing = c.source.backing ?? [];
  e.uint(backing.length);
  for (const b of backing) e.str(b);
  if (c.rootMeta) encodeRootMeta(e.u8(1), c.rootMeta);
  else e.u8(0);
  e.bytes(c.derivation ?? Buffer.alloc(0));
  // Optional trailing sections (absent in most commits, so their encoding and id are as before): tag, then data.
  const omitted = c.source.omitted ?? [];
  if (omitted.length) {
    e.u8(OMITTED_TAG).uint(omitted.length);
    for (const p of omitted) e.bytes(p);
  }
  return e.finish();
}

export function decodeCommit(buf: Uint8Array): Commit {
  const d = new Decoder(buf);
  decodeHeader(d, 'commit', COMMIT_VERSION);
  const rootKind = decodeCode(d, ROOT_KIND_CODES, 'root kind');
  const root = bytesToOid(d.raw(OID_BYTES));
  const np = d.uint();
  if (np > 1024) throw new DecodeError('too many parents', d.pos);
  const parents: Oid[] = [];
  for (let i = 0; i < np; i++) parents.push(bytesToOid(d.raw(OID_BYTES)));
  const author = d.str();
  const time = Number(d.sbig());
  const tzOffset = Number(d.sbig());
  const message = d.str();
  const nl = d.uint();
  const labels: Array<[string, string]> = [];
  for (let i = 0; i < nl; i++) {
    const at = d.pos;
    const label: [string, string] = [d.str(), d.str()];
    if (i > 0 && compareKeys(labels[i - 1]![0], label[0]) >= 0) throw new DecodeError('labels not sorted or duplicated', at);
    labels.push(label);
  }
  const format = d.str();
  const size = d.uint();
  const name = d.str();
  const nb = d.uint();
  if (nb > 1024) throw new DecodeError('backing chain too long', d.pos);
  const backing: string[] = [];
  for (let i = 0; i < nb; i++) backing.push(d.str());
  let rootMeta: RootMeta | undefined;
  const hasMeta = d.u8();
  if (hasMeta === 1) {
    rootMeta = decodeRootMeta(d);
  } else if (hasMeta !== 0) {
    throw new DecodeError('bad root metadata flag', d.pos - 1);
  }
  const deriv = d.bytes();
  const omitted: Buffer[] = [];
  if (!d.done) {
    const at = d.pos;
    if (d.u8() !== OMITTED_TAG) throw new DecodeError('unknown trailing section', at);
    const n = d.uint();
    if (n === 0) throw new DecodeError('empty omitted list', d.pos);
    for (let i = 0; i < n; i++) omitted.push(Buffer.from(d.bytes()));
  }
  d.expectEnd();
  const c: Commit = { rootKind, root, parents, author, time, tzOffset, message, labels, source: { format, ...(size ? { size } : {}), ...(name ? { name } : {}), ...(backing.length ? { backing } : {}), ...(omitted.length ? { omitted } : {}) } };
  if (rootMeta) c.rootMeta = rootMeta;
  if (deriv.length) c.derivation = Buffer.from(deriv);
  return c;
}

export function hashCommit(encoded: Uint8Array): Oid {
  return hashBytes(encoded);
}

/** Parses "Name <email>"; returns undefined when malformed. */
export function parseAuthor(s: string): { name: string; email: string } | undefined {
  const m = /^([^<>\n]*?)\s*<([^<>\n]*)>$/.exec(s.trim());
  return m ? { name: m[1]!, email: m[2]! } : undefined;
}
