/**
 * Index segments (`index/<sha256>.vix`, bucket format 1): which object lies where in which pack, which packs are
 * retired and which copies are tombstoned. Encoding, validating decoding, and their storage in a bucket.
 */
import { RemoteError, RepositoryCorruptError } from '../../errors.js';
import { hashBytes } from '../../model/oid.js';
import type { PackId } from '../interfaces.js';
import { KIND_BY_CODE } from '../object-store.js';
import type { Backend } from './backend.js';
import { getNamed } from './concurrency.js';

/** The key prefix of index segments in the bucket. */
export const INDEX_PREFIX = 'index/';
/** The 8 bytes every segment starts with: "vixseg", then the version as a big-endian u16. */
export const SEGMENT_MAGIC = Buffer.from('vixseg', 'latin1');
/** The segment version this code writes and reads. */
export const SEGMENT_VERSION = 1;

const HEADER = 8;
const SHA = 32;
const KEY = 33;
const PACK_RECORD = SHA + 4 + 1;
const ENTRY_RECORD = KEY + 12;
const TOMBSTONE_RECORD = KEY + 4;
const U32_MAX = 0xffffffff;
const PACK_ID = /^[0-9a-f]{64}$/;
const SEGMENT_KEY = /^index\/([0-9a-f]{64})\.vix$/;

/** A pack's class: content (chunks, blob records) or metadata (trees, commits, disks), as the pack writer cut it. */
export type PackClass = 'data' | 'meta';
const CLASS_CODES: Record<PackClass, number> = { data: 0, meta: 1 };

/** A pack a segment's entries and tombstones name. */
export interface SegmentPack { id: PackId; size: number; class: PackClass }
/** One copy of an object: its key (kind byte + 32-byte id) and the range of its stored value in pack `pack`. */
export interface SegmentEntry { key: Buffer; pack: PackId; offset: number; length: number }
/** A copy of an object that gc has marked (the object in that one pack). */
export interface SegmentTombstone { key: Buffer; pack: PackId }

/**
 * The content of an index segment. Entries and tombstones name packs by id; every pack they name must be in `packs`
 * (the encoding refers to packs by their position there).
 */
export interface Segment {
  packs: SegmentPack[];
  entries: SegmentEntry[];
  /** Packs repacked or deleted by gc: their copies are dropped when the segment is ingested. */
  retired: PackId[];
  tombstones: SegmentTombstone[];
}

/** The bucket key of segment `sha`: `index/<sha256>.vix`. */
export function segmentKey(sha: string): string {
  if (!PACK_ID.test(sha)) throw new RangeError(`'${sha}' is not a segment name (64 lowercase hex digits)`);
  return `${INDEX_PREFIX}${sha}.vix`;
}

/**
 * Encodes a segment (layout in docs/format.md, *Index segments*). The bytes are canonical: entries and tombstones
 * are sorted by object key, then by pack position, and retired packs by id, so equal segments have one name.
 * Throws RangeError for a segment that cannot be encoded: a pack named twice or not listed, a key that is not 33
 * bytes, a value outside u32, a copy that does not fit its pack, the same copy twice.
 */
export function encodeSegment(seg: Segment): Buffer {
  const index = new Map<PackId, number>();
  seg.packs.forEach((p, i) => {
    if (!PACK_ID.test(p.id)) throw new RangeError(`'${p.id}' is not a pack id`);
    if (index.has(p.id)) throw new RangeError(`pack ${p.id} is listed twice`);
    checkU32(p.size, 'pack size');
    if (!(p.class in CLASS_CODES)) throw new RangeError(`'${p.class}' is not a pack class`);
    index.set(p.id, i);
  });
  const packOf = (id: PackId): number => {
    const i = index.get(id);
    if (i === undefined) throw new RangeError(`pack ${id} is not in the segment's packs`);
    return i;
  };
  const entries = seg.entries.map((e) => {
    checkKey(e.key);
    checkU32(e.offset, 'offset');
    checkU32(e.length, 'length');
    const pack = packOf(e.pack);
    if (e.offset + e.length > seg.packs[pack]!.size) throw new RangeError(`object ${e.key.toString('hex')} does not fit in pack ${e.pack}`);
    return { key: e.key, pack, offset: e.offset, length: e.length };
  }).sort(byCopy);
  const tombstones = seg.tombstones.map((t) => {
    checkKey(t.key);
    return { key: t.key, pack: packOf(t.pack) };
  }).sort(byCopy);
  for (const list of [entries, tombstones]) {
    for (let i = 1; i < list.length; i++) {
      if (byCopy(list[i - 1]!, list[i]!) === 0) throw new RangeError(`object ${list[i]!.key.toString('hex')} is listed twice in pack ${seg.packs[list[i]!.pack]!.id}`);
    }
  }
  const retired = [...new Set(seg.retired)].sort();
  for (const id of retired) if (!PACK_ID.test(id)) throw new RangeError(`'${id}' is not a pack id`);

  const out = Buffer.alloc(HEADER + 16 + seg.packs.length * PACK_RECORD + entries.length * ENTRY_RECORD
    + retired.length * SHA + tombstones.length * TOMBSTONE_RECORD);
  SEGMENT_MAGIC.copy(out, 0);
  out.writeUInt16BE(SEGMENT_VERSION, 6);
  let at = HEADER;
  at = out.writeUInt32BE(seg.packs.length, at);
  for (const p of seg.packs) {
    at += out.write(p.id, at, 'hex');
    at = out.writeUInt32BE(p.size, at);
    at = out.writeUInt8(CLASS_CODES[p.class], at);
  }
  at = out.writeUInt32BE(entries.length, at);
  for (const e of entries) {
    at += e.key.copy(out, at);
    at = out.writeUInt32BE(e.pack, at);
    at = out.writeUInt32BE(e.offset, at);
    at = out.writeUInt32BE(e.length, at);
  }
  at = out.writeUInt32BE(retired.length, at);
  for (const id of retired) at += out.write(id, at, 'hex');
  at = out.writeUInt32BE(tombstones.length, at);
  for (const t of tombstones) {
    at += t.key.copy(out, at);
    at = out.writeUInt32BE(t.pack, at);
  }
  return out;
}

/**
 * Decodes and validates a segment: magic and version, every count against the bytes left, pack classes, packs named
 * once, object kinds, pack positions in range, each copy inside its pack, entries and tombstones strictly sorted by
 * (key, pack position), retired packs strictly sorted, nothing after the tombstones. Any fault is a
 * RepositoryCorruptError naming `key` (the segment's bucket key) and the byte offset of the fault (`data.offset`);
 * no input makes it throw anything else.
 */
export function decodeSegment(bytes: Buffer, key: string): Segment {
  const fault = (offset: number, why: string) =>
    new RepositoryCorruptError(key, `at offset ${offset}: ${why}`, `index segment '${key}' is damaged at offset ${offset}: ${why}`, { key, offset });
  const need = (at: number, n: number, what: string) => {
    if (at + n > bytes.length) throw fault(at, `truncated: ${what} needs ${n} bytes, ${bytes.length - at} left`);
  };
  const count = (at: number, record: number, what: string): number => {
    need(at, 4, `the count of ${what}`);
    const n = bytes.readUInt32BE(at);
    if (n * record > bytes.length - at - 4) throw fault(at, `${n} ${what} need ${n * record} bytes, ${bytes.length - at - 4} left`);
    return n;
  };
  need(0, HEADER, 'the header');
  if (!bytes.subarray(0, 6).equals(SEGMENT_MAGIC)) throw fault(0, 'not an index segment (bad magic)');
  const version = bytes.readUInt16BE(6);
  if (version !== SEGMENT_VERSION) throw fault(6, `unsupported segment version ${version}`);
  let at = HEADER;

  const nPacks = count(at, PACK_RECORD, 'packs');
  at += 4;
  const packs: SegmentPack[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < nPacks; i++, at += PACK_RECORD) {
    const id = bytes.toString('hex', at, at + SHA);
    if (seen.has(id)) throw fault(at, `pack ${id} is listed twice`);
    seen.add(id);
    const code = bytes[at + SHA + 4]!;
    const cls = code === 0 ? 'data' : code === 1 ? 'meta' : undefined;
    if (!cls) throw fault(at + SHA + 4, `pack ${i} has unknown class ${code}`);
    packs.push({ id, size: bytes.readUInt32BE(at + SHA), class: cls });
  }

  const nEntries = count(at, ENTRY_RECORD, 'entries');
  at += 4;
  const entries: SegmentEntry[] = [];
  let prev: { key: Buffer; pack: number } | undefined;
  for (let i = 0; i < nEntries; i++, at += ENTRY_RECORD) {
    const copy = readCopy(bytes, at, nPacks, `entry ${i}`, fault);
    const offset = bytes.readUInt32BE(at + KEY + 4);
    const length = bytes.readUInt32BE(at + KEY + 8);
    const pack = packs[copy.pack]!;
    if (offset + length > pack.size) throw fault(at + KEY + 4, `entry ${i} (${offset}+${length}) lies outside pack ${copy.pack} (${pack.size} bytes)`);
    if (prev && byCopy(prev, copy) >= 0) throw fault(at, `entry ${i} is not sorted after entry ${i - 1}`);
    prev = copy;
    entries.push({ key: copy.key, pack: pack.id, offset, length });
  }

  const nRetired = count(at, SHA, 'retired packs');
  at += 4;
  const retired: PackId[] = [];
  for (let i = 0; i < nRetired; i++, at += SHA) {
    const id = bytes.toString('hex', at, at + SHA);
    if (i > 0 && id <= retired[i - 1]!) throw fault(at, `retired pack ${i} is not sorted after retired pack ${i - 1}`);
    retired.push(id);
  }

  const nTombstones = count(at, TOMBSTONE_RECORD, 'tombstones');
  at += 4;
  const tombstones: SegmentTombstone[] = [];
  prev = undefined;
  for (let i = 0; i < nTombstones; i++, at += TOMBSTONE_RECORD) {
    const copy = readCopy(bytes, at, nPacks, `tombstone ${i}`, fault);
    if (prev && byCopy(prev, copy) >= 0) throw fault(at, `tombstone ${i} is not sorted after tombstone ${i - 1}`);
    prev = copy;
    tombstones.push({ key: copy.key, pack: packs[copy.pack]!.id });
  }
  if (at !== bytes.length) throw fault(at, `${bytes.length - at} bytes follow the tombstones`);
  return { packs, entries, retired, tombstones };
}

/** The object key and pack position at `at` (an entry or a tombstone), checked: a known object kind, a listed pack. */
function readCopy(bytes: Buffer, at: number, nPacks: number, what: string, fault: (offset: number, why: string) => Error): { key: Buffer; pack: number } {
  const kind = bytes[at]!;
  if (!(kind in KIND_BY_CODE)) throw fault(at, `${what} has unknown object kind ${kind}`);
  const pack = bytes.readUInt32BE(at + KEY);
  if (pack >= nPacks) throw fault(at + KEY, `${what} names pack ${pack}, but the segment lists ${nPacks}`);
  return { key: Buffer.from(bytes.subarray(at, at + KEY)), pack };
}

function byCopy(a: { key: Buffer; pack: number }, b: { key: Buffer; pack: number }): number {
  return Buffer.compare(a.key, b.key) || a.pack - b.pack;
}

function checkKey(key: Buffer): void {
  if (key.length !== KEY) throw new RangeError(`an object key has ${KEY} bytes, not ${key.length}`);
  if (!(key[0]! in KIND_BY_CODE)) throw new RangeError(`unknown object kind ${key[0]}`);
}

function checkU32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > U32_MAX) throw new RangeError(`${what} ${n} does not fit in a u32`);
}

/**
 * Index segments in a bucket, each under `index/<sha256 of its bytes>.vix`: written once (a plain PUT; the same
 * content always has the same name), read back checked against the name, listed.
 *
 * Throws: RemoteError (exit 17) when the bucket fails; RepositoryCorruptError (exit 15) naming the key when a
 * segment's bytes do not match its name or do not decode.
 *
 * @example
 * const segments = new SegmentStore(backend);
 * const sha = await segments.putSegment({ packs, entries, retired: [], tombstones: [] });
 * for await (const s of segments.listSegments()) console.log(s.sha, s.size);
 */
export class SegmentStore {
  constructor(readonly backend: Backend) {}

  /** Encodes and uploads `seg`; returns its name (the sha256 of its bytes). */
  async putSegment(seg: Segment): Promise<string> {
    const bytes = encodeSegment(seg);
    const sha = hashBytes(bytes);
    const key = segmentKey(sha);
    const r = await this.backend.put(key, bytes);
    if (!r.ok) throw new RemoteError(this.backend.url, `upload of '${key}' failed (${r.why})`);
    return sha;
  }

  /** The segment named `sha`, checked against its name and decoded; undefined when there is none. */
  async getSegment(sha: string): Promise<Segment | undefined> {
    const key = segmentKey(sha);
    const body = await getNamed(this.backend, key, sha, 'index segment');
    return body && decodeSegment(body, key);
  }

  /** Every segment below `index/` (other keys there are ignored): name, size and the server's LastModified in ms. */
  async *listSegments(): AsyncIterable<{ sha: string; size: number; mtime: number }> {
    for await (const o of this.backend.list(INDEX_PREFIX)) {
      const m = SEGMENT_KEY.exec(o.key);
      if (m) yield { sha: m[1]!, size: o.size, mtime: o.mtime };
    }
  }
}
