/**
 * LVM2 physical volumes, read offline: the label (`LABELONE` in one of the first four sectors), the PV header with its
 * data and metadata areas, the metadata area header (`mda_header`) and the current text metadata it points at, every
 * structure checked (label and metadata-area-header CRCs, the metadata text's CRC, bounds of every offset), then the
 * volume group's logical volumes laid out as byte ranges of this physical volume. Layout as in lvm2's
 * `lib/label/label.h` and `lib/format_text/layout.h`; all integers little-endian.
 *
 * The metadata text format (lvm2 `lib/config`: `name { ... }` sections, `key = value` with integers, quoted strings
 * and `[ ... ]` lists, `#` comments) is parsed here by a small parser rather than an npm package: no maintained
 * package reads it (the few on the registry target `lvs --reportformat json` output, not on-disk metadata), and the
 * subset LVM writes is a few dozen lines to parse with the bounds (depth, size) an untrusted disk needs.
 *
 * Readable here: logical volumes all of whose segments are linear (`type = "striped"` with one stripe, or
 * `"linear"`) on this physical volume. Anything else (several stripes, segments on another PV, thin, snapshot,
 * raid, mirror, cache, vdo) is reported as unreadable with the reason, and its bytes stay raw.
 */
import { CorruptInputError } from '../errors.js';
import type { BlockSource } from './ext4.js';

const SECTOR = 512;
const LABEL_SCAN_SECTORS = 4;
const LABEL_ID = 'LABELONE';
const LABEL_TYPE = 'LVM2 001';
/** lvm2's `INITIAL_CRC`: its CRC-32 (reflected, polynomial 0xEDB88320) starts here and has no final inversion. */
const INITIAL_CRC = 0xf597a6cf;
const MDA_HEADER_SIZE = 512;
const FMTT_MAGIC = Buffer.from(' LVM2 x[5A%r0N*>', 'latin1');
const FMTT_VERSION = 1;
const ID_LEN = 32;
/** Metadata text longer than this is refused (lvm2's own default metadata area is 1 MiB). */
const MAX_METADATA_TEXT = 64 << 20;
/** Bounds of the text parser and of the layout: nesting depth, LVs, segments per LV. */
const MAX_DEPTH = 32;
const MAX_VOLUMES = 10_000;
const MAX_SEGMENTS = 100_000;

/** One byte range of the physical volume: `length` bytes at PV offset `at`. */
export interface PvExtent {
  at: number;
  length: number;
}

/** A logical volume of the volume group, as this physical volume sees it. */
export interface LvmVolume {
  name: string;
  /** Bytes (extents × extent size). */
  size: number;
  /** Segment types in order ('striped', 'linear', 'thin', 'snapshot', 'raid1', ...). */
  types: string[];
  /** Whether LVM shows it (hidden LVs are the parts of a thin pool, a raid, a snapshot's store). */
  visible: boolean;
  /** Where its bytes lie on this PV, in LV order (adjacent ranges merged); absent when it cannot be read here. */
  extents?: PvExtent[];
  /** Why it cannot be read here (a segment type viva does not read, segments on this and another PV, several stripes). */
  unsupported?: string;
  /** All its segments lie on these other physical volumes of the group (it is read, or not, with them). */
  elsewhere?: string[];
}

/** A physical volume and the volume group its metadata describes. */
export interface LvmPhysicalVolume {
  /** The PV's uuid as LVM prints it (6-4-4-4-4-4-6). */
  pvUuid: string;
  /** The PV's name in the metadata ('pv0', ...). */
  pvName: string;
  vg: string;
  vgUuid: string;
  seqno: number;
  /** Bytes. */
  extentSize: number;
  /** Byte offset of the first physical extent. */
  peStart: number;
  peCount: number;
  /** Physical volumes of the volume group (this one included). */
  pvCount: number;
  /** The PV offset of the metadata text read, and its length. */
  metadata: PvExtent;
  volumes: LvmVolume[];
}

let crcTable: Uint32Array | undefined;

/** lvm2's `calc_crc`: CRC-32 (reflected, 0xEDB88320) from `crc`, without the final inversion zlib applies. */
export function lvmCrc(buf: Uint8Array, crc = INITIAL_CRC): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let c = crc >>> 0;
  for (let i = 0; i < buf.length; i++) c = (crcTable[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  return c >>> 0;
}

function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/**
 * The sector (0–3) holding a valid LVM2 label of the volume at `offset` of `src`: `LABELONE`, its own sector number,
 * type `LVM2 001` and a matching CRC. `'bad'` when a `LABELONE` is there but fails those checks; undefined when none.
 */
export async function findLvmLabel(src: BlockSource, offset = 0, size = src.size): Promise<number | 'bad' | undefined> {
  let seen = false;
  for (let s = 0; s < LABEL_SCAN_SECTORS && (s + 1) * SECTOR <= size; s++) {
    const b = await src.read(offset + s * SECTOR, SECTOR);
    if (b.toString('latin1', 0, 8) !== LABEL_ID) continue;
    seen = true;
    if (u64(b, 8) === s && b.toString('latin1', 24, 32) === LABEL_TYPE && b.readUInt32LE(16) === lvmCrc(b.subarray(20))) return s;
  }
  return seen ? 'bad' : undefined;
}

function formatUuid(raw: string): string {
  return [raw.slice(0, 6), raw.slice(6, 10), raw.slice(10, 14), raw.slice(14, 18), raw.slice(18, 22), raw.slice(22, 26), raw.slice(26)].join('-');
}

// ---------------------------------------------------------------------------------------------------------------
// The metadata text format

/** A value of LVM's metadata text: an integer, a string, a list of those, or a section. */
export type LvmValue = number | string | Array<number | string> | LvmSection;
/** A `name { ... }` section: its assignments and subsections in order. */
export type LvmSection = Map<string, LvmValue>;

/**
 * Parses LVM metadata text (`key = value`, `name { ... }`, values integer / "string" / [list], `#` comments to the end
 * of the line). Throws CorruptInputError (naming `file`, `where` and the line) on anything else.
 */
export function parseLvmMetadata(text: string, file: string, where: string): LvmSection {
  let pos = 0;
  let line = 1;
  const fail = (reason: string): never => { throw new CorruptInputError(file, where, `metadata text line ${line}: ${reason}`); };
  const skip = () => {
    for (;;) {
      const c = text[pos];
      if (c === '\n') { line++; pos++; } else if (c === ' ' || c === '\t' || c === '\r' || c === '\0') pos++;
      else if (c === '#') { while (pos < text.length && text[pos] !== '\n') pos++; } else return;
    }
  };
  const ident = (): string => {
    const m = /^[A-Za-z0-9_.+\-/]+/.exec(text.slice(pos, pos + 256));
    if (!m) return fail(`expected a name, found ${pos < text.length ? `'${text[pos]}'` : 'the end'}`);
    pos += m[0].length;
    return m[0];
  };
  const scalar = (): number | string => {
    if (text[pos] === '"') {
      let s = '';
      pos++;
      for (;;) {
        if (pos >= text.length) return fail('unterminated string');
        const c = text[pos++]!;
        if (c === '"') return s;
        if (c === '\\') {
          if (pos >= text.length) return fail('unterminated string');
          s += text[pos++];
        } else {
          if (c === '\n') line++;
          s += c;
        }
      }
    }
    const m = /^-?[0-9]+(\.[0-9]+)?/.exec(text.slice(pos, pos + 32));
    if (!m) return fail(`expected a value, found ${pos < text.length ? `'${text[pos]}'` : 'the end'}`);
    pos += m[0].length;
    const n = Number(m[0]);
    if (!Number.isSafeInteger(n) && !m[1]) return fail(`number '${m[0]}' out of range`);
    return n;
  };
  const section = (depth: number, top: boolean): LvmSection => {
    if (depth > MAX_DEPTH) fail('sections nested too deeply');
    const out: LvmSection = new Map();
    for (;;) {
      skip();
      if (pos >= text.length) {
        if (top) return out;
        return fail('unterminated section (missing \'}\')');
      }
      if (text[pos] === '}') {
        if (top) fail("unexpected '}'");
        pos++;
        return out;
      }
      const key = ident();
      skip();
      if (text[pos] === '{') {
        pos++;
        out.set(key, section(depth + 1, false));
      } else if (text[pos] === '=') {
        pos++;
        skip();
        if (text[pos] === '[') {
          pos++;
          const list: Array<number | string> = [];
          for (;;) {
            skip();
            if (text[pos] === ']') { pos++; break; }
            list.push(scalar());
            skip();
            if (text[pos] === ',') pos++;
            else if (text[pos] !== ']') fail("expected ',' or ']' in a list");
          }
          out.set(key, list);
        } else {
          out.set(key, scalar());
        }
      } else {
        fail(`expected '=' or '{' after '${key}'`);
      }
    }
  };
  return section(0, true);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a physical volume

/**
 * Reads the LVM2 physical volume at bytes [offset, offset + size) of `src` (`file` names it in errors): label, PV
 * header, metadata area and the current metadata text, and lays out the volume group's logical volumes on it.
 * Throws CorruptInputError naming the structure for a bad CRC, magic, offset, a metadata text it cannot parse, a
 * segment outside the PV, segments that overlap or do not follow each other.
 */
export async function readLvmPv(src: BlockSource, file: string, offset = 0, size = src.size): Promise<LvmPhysicalVolume> {
  const read = (at: number, n: number, what: string): Promise<Buffer> => {
    if (at < 0 || n < 0 || at + n > size) throw new CorruptInputError(file, what, `${n} bytes at ${at} lie outside the ${size}-byte physical volume`);
    return src.read(offset + at, n);
  };
  const sector = await findLvmLabel(src, offset, size);
  if (sector === undefined) throw new CorruptInputError(file, 'LVM label', "no 'LABELONE' label in the first four sectors");
  if (sector === 'bad') throw new CorruptInputError(file, 'LVM label', 'label checksum, sector number or type does not match');
  const label = await read(sector * SECTOR, SECTOR, 'LVM label');
  const hdrAt = label.readUInt32LE(20);
  if (hdrAt < 32 || hdrAt + ID_LEN + 8 + 16 > SECTOR) throw new CorruptInputError(file, 'LVM label', `PV header offset ${hdrAt} outside the label sector`);
  const pvUuidRaw = label.toString('latin1', hdrAt, hdrAt + ID_LEN);
  // Two zero-terminated lists of {offset, size}: data areas, then metadata areas.
  const lists: PvExtent[][] = [[], []];
  let at = hdrAt + ID_LEN + 8;
  for (const list of lists) {
    for (;;) {
      if (at + 16 > SECTOR) throw new CorruptInputError(file, 'PV header', 'area list runs past the label sector');
      const o = u64(label, at);
      const n = u64(label, at + 8);
      at += 16;
      if (o === 0) break;
      list.push({ at: o, length: n });
    }
  }
  // The data area list is not needed: the metadata's pe_start is what LVM itself uses.
  const mdas = lists[1]!;
  if (mdas.length === 0) throw new CorruptInputError(file, 'PV header', 'no metadata area on this physical volume (its volume group metadata lives on another)');
  let firstError: unknown;
  for (const mda of mdas) {
    try {
      const { text, where } = await readMetadataText(read, file, mda);
      return layout(parseLvmMetadata(text, file, 'LVM metadata'), file, formatUuid(pvUuidRaw), where, size);
    } catch (e) {
      if (!(e instanceof CorruptInputError)) throw e;
      firstError ??= e;
    }
  }
  throw firstError;
}

async function readMetadataText(read: (at: number, n: number, what: string) => Promise<Buffer>, file: string, mda: PvExtent): Promise<{ text: string; where: PvExtent }> {
  const where = `metadata area at byte ${mda.at}`;
  if (mda.length < MDA_HEADER_SIZE * 2) throw new CorruptInputError(file, where, `area of ${mda.length} bytes is too small`);
  const h = await read(mda.at, MDA_HEADER_SIZE, where);
  if (h.readUInt32LE(0) !== lvmCrc(h.subarray(4))) throw new CorruptInputError(file, where, 'metadata area header checksum does not match');
  if (!h.subarray(4, 20).equals(FMTT_MAGIC)) throw new CorruptInputError(file, where, 'bad metadata area header magic');
  if (h.readUInt32LE(20) !== FMTT_VERSION) throw new CorruptInputError(file, where, `metadata area header version ${h.readUInt32LE(20)} (viva reads 1)`);
  if (u64(h, 24) !== mda.at) throw new CorruptInputError(file, where, `header says it starts at byte ${u64(h, 24)}`);
  const areaSize = u64(h, 32);
  if (areaSize !== mda.length) throw new CorruptInputError(file, where, `header says the area is ${areaSize} bytes, the PV header ${mda.length}`);
  // The first raw_locn is the current metadata: {offset from the area's start, size, checksum, flags}.
  const off = u64(h, 40);
  const len = u64(h, 48);
  const crc = h.readUInt32LE(56);
  // RAW_LOCN_IGNORED: the area holds no current metadata (it lives in another PV's area).
  if (h.readUInt32LE(60) & 1) throw new CorruptInputError(file, where, 'metadata area marked ignored (the volume group metadata lives on another physical volume)');
  if (off === 0 || len === 0) throw new CorruptInputError(file, where, 'no metadata text (empty location)');
  if (off < MDA_HEADER_SIZE || off >= areaSize || len > areaSize - MDA_HEADER_SIZE || len > MAX_METADATA_TEXT) {
    throw new CorruptInputError(file, where, `metadata text location ${off}+${len} lies outside the ${areaSize}-byte area`);
  }
  // The area after its header is a ring: text running past its end continues right after the header.
  const first = Math.min(len, areaSize - off);
  const parts = [await read(mda.at + off, first, where)];
  if (first < len) parts.push(await read(mda.at + MDA_HEADER_SIZE, len - first, where));
  const buf = Buffer.concat(parts);
  if (lvmCrc(buf) !== crc) throw new CorruptInputError(file, where, 'metadata text checksum does not match');
  return { text: buf.toString('utf8'), where: { at: mda.at + off, length: len } };
}

function sectionOf(s: LvmSection, key: string, file: string, where: string): LvmSection {
  const v = s.get(key);
  if (!(v instanceof Map)) throw new CorruptInputError(file, where, `missing section '${key}'`);
  return v;
}

function intOf(s: LvmSection, key: string, file: string, where: string): number {
  const v = s.get(key);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new CorruptInputError(file, where, `'${key}' missing or not a non-negative integer`);
  return v;
}

function strOf(s: LvmSection, key: string): string {
  const v = s.get(key);
  return typeof v === 'string' ? v : '';
}

/** The volume group in `top` laid out on the PV whose uuid is `pvUuid`. */
function layout(top: LvmSection, file: string, pvUuid: string, metadata: PvExtent, size: number): LvmPhysicalVolume {
  const vgs = [...top].filter((e): e is [string, LvmSection] => e[1] instanceof Map);
  if (vgs.length !== 1) throw new CorruptInputError(file, 'LVM metadata', `${vgs.length} volume groups in the metadata text, expected 1`);
  const [vg, s] = vgs[0]!;
  const where = `volume group '${vg}'`;
  const extentSize = intOf(s, 'extent_size', file, where) * SECTOR;
  if (extentSize === 0) throw new CorruptInputError(file, where, 'extent size 0');
  const pvs = sectionOf(s, 'physical_volumes', file, where);
  const strip = (u: string) => u.replace(/-/g, '');
  let pvName: string | undefined;
  let pv: LvmSection | undefined;
  for (const [name, v] of pvs) {
    if (v instanceof Map && strip(strOf(v, 'id')) === strip(pvUuid)) { pvName = name; pv = v; }
  }
  if (!pv || !pvName) throw new CorruptInputError(file, where, `this physical volume (${pvUuid}) is not in its volume group's metadata`);
  const pw = `${where}: physical volume '${pvName}'`;
  const peStart = intOf(pv, 'pe_start', file, pw) * SECTOR;
  const peCount = intOf(pv, 'pe_count', file, pw);
  if (peStart + peCount * extentSize > size) {
    throw new CorruptInputError(file, pw, `${peCount} extents of ${extentSize} bytes from byte ${peStart} run past the ${size}-byte volume`);
  }
  const lvs = s.get('logical_volumes');
  const volumes: LvmVolume[] = [];
  if (lvs instanceof Map) {
    if (lvs.size > MAX_VOLUMES) throw new CorruptInputError(file, where, `${lvs.size} logical volumes`);
    for (const [name, lv] of lvs) {
      if (!(lv instanceof Map)) continue;
      volumes.push(volumeOf(name, lv, file, `${where}: logical volume '${name}'`, pvName, extentSize, peStart, peCount));
    }
  }
  // Extents two readable LVs both claim: the metadata is damaged.
  const claims = volumes.flatMap((v) => (v.extents ?? []).map((x) => ({ ...x, name: v.name }))).sort((a, b) => a.at - b.at);
  for (let i = 1; i < claims.length; i++) {
    const a = claims[i - 1]!;
    const b = claims[i]!;
    if (a.at + a.length > b.at) {
      throw new CorruptInputError(file, where, `logical volumes '${a.name}' and '${b.name}' overlap at physical extent ${Math.floor((b.at - peStart) / extentSize)}`);
    }
  }
  return {
    pvUuid: formatUuid(strip(pvUuid)), pvName, vg, vgUuid: strOf(s, 'id'), seqno: typeof s.get('seqno') === 'number' ? s.get('seqno') as number : 0,
    extentSize, peStart, peCount, pvCount: [...pvs.values()].filter((v) => v instanceof Map).length, metadata, volumes,
  };
}

function volumeOf(name: string, lv: LvmSection, file: string, where: string, pvName: string, extentSize: number, peStart: number, peCount: number): LvmVolume {
  const status = lv.get('status');
  const visible = Array.isArray(status) && status.includes('VISIBLE');
  const count = intOf(lv, 'segment_count', file, where);
  if (count === 0 || count > MAX_SEGMENTS) throw new CorruptInputError(file, where, `segment_count ${count}`);
  const segs: Array<{ start: number; count: number; type: string; seg: LvmSection; name: string }> = [];
  for (let i = 1; i <= count; i++) {
    const sn = `segment${i}`;
    const seg = sectionOf(lv, sn, file, where);
    segs.push({ start: intOf(seg, 'start_extent', file, `${where}: ${sn}`), count: intOf(seg, 'extent_count', file, `${where}: ${sn}`), type: strOf(seg, 'type'), seg, name: sn });
  }
  segs.sort((a, b) => a.start - b.start);
  // Segments tile the LV: each starts where the previous ends (no gap, no overlap, no segment listed twice).
  let next = 0;
  for (const g of segs) {
    if (g.start !== next || g.count === 0) {
      throw new CorruptInputError(file, `${where}: ${g.name}`, `starts at extent ${g.start} with ${g.count} extents, expected a non-empty segment at extent ${next}`);
    }
    next += g.count;
  }
  const types = segs.map((g) => g.type);
  const out: LvmVolume = { name, size: next * extentSize, types, visible };
  const extents: PvExtent[] = [];
  const others = new Set<string>();
  for (const g of segs) {
    const sw = `${where}: ${g.name}`;
    if (g.type !== 'striped' && g.type !== 'linear') {
      out.unsupported = `segment type '${g.type || '?'}'`;
      return out;
    }
    const stripes = g.seg.get('stripes');
    const stripeCount = g.type === 'linear' ? 1 : intOf(g.seg, 'stripe_count', file, sw);
    if (!Array.isArray(stripes) || stripes.length !== 2 * stripeCount || stripeCount === 0) {
      throw new CorruptInputError(file, sw, `'stripes' does not list ${stripeCount} physical volume(s) and extents`);
    }
    if (stripeCount > 1) {
      out.unsupported = `${stripeCount} stripes`;
      return out;
    }
    const [pv, pe] = stripes as [unknown, unknown];
    if (typeof pv !== 'string' || typeof pe !== 'number' || !Number.isSafeInteger(pe) || pe < 0) throw new CorruptInputError(file, sw, `bad 'stripes' entry`);
    if (pv !== pvName) {
      others.add(pv);
      continue;
    }
    if (pe + g.count > peCount) {
      throw new CorruptInputError(file, sw, `extents ${pe}..${pe + g.count - 1} lie past the physical volume's ${peCount} extents`);
    }
    const at = peStart + pe * extentSize;
    const length = g.count * extentSize;
    const last = extents[extents.length - 1];
    if (last && last.at + last.length === at) last.length += length;
    else extents.push({ at, length });
  }
  if (others.size && !extents.length) {
    out.elsewhere = [...others];
    return out;
  }
  if (others.size) {
    out.unsupported = `segments on another physical volume (${[...others].map((x) => `'${x}'`).join(', ')})`;
    return out;
  }
  out.extents = extents;
  return out;
}

/** A BlockSource of a logical volume: its PV ranges (`extents`, offsets into `src` from `offset`) one after another. */
export function volumeSource(src: BlockSource, offset: number, extents: readonly PvExtent[]): BlockSource {
  const starts: number[] = [];
  let size = 0;
  for (const x of extents) { starts.push(size); size += x.length; }
  return {
    size,
    async read(at: number, n: number): Promise<Buffer> {
      if (at < 0 || n < 0 || at + n > size) throw new RangeError(`read of ${n} bytes at ${at} lies outside the ${size}-byte logical volume`);
      const parts: Buffer[] = [];
      let i = 0;
      while (i + 1 < starts.length && starts[i + 1]! <= at) i++;
      let pos = at;
      while (pos < at + n) {
        const x = extents[i]!;
        const from = pos - starts[i]!;
        const k = Math.min(x.length - from, at + n - pos);
        parts.push(await src.read(offset + x.at + from, k));
        pos += k;
        i++;
      }
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    },
  };
}
