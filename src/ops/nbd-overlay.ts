/**
 * The copy-on-write overlay of a writable NBD session: what a client wrote over a disk commit, kept beside the
 * repository (`.viva/nbd/SESSION/`), never in its objects, until `viva commit nbd:SESSION` reads base + overlay.
 *
 * Files of a session directory (format in docs/nbd.md, "Writable sessions"):
 * - `session.json`: name, base revision, commit, disk and size, creation time (written once, atomically).
 * - `data`: written blocks of {@link OVERLAY_BLOCK} bytes, appended; a block is rewritten in place only while no
 *   flush has made its slot part of the durable state.
 * - `journal`: fixed 32-byte records, each with a CRC-32: DATA (blocks → slots in `data`), ZERO (blocks read as
 *   zeros: write-zeroes, trim) and FLUSH (what came before is durable). A FLUSH is written after `data` is fsync'ed
 *   and is itself fsync'ed. Opening replays the records up to the last valid FLUSH: whatever happened after it (a
 *   torn record, a `kill -9`, a power cut) is what a disk's write cache loses.
 * - `lock`: the serving process's pid while a writer has the session open (one writer per session).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { NbdSessionBusyError, NbdSessionNotFoundError, UsageError, WriteError, systemReason } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { pushExtent, type DiskExtent } from './disk-reader.js';

/** Bytes of an overlay block: the unit of the journal, of `data` slots and of the changed-file test. */
export const OVERLAY_BLOCK = 4096;
/** Version of a session directory's format (session.json `version`). */
export const SESSION_VERSION = 1;
/** Where sessions live, inside the repository's data directory. */
export const SESSIONS_DIR = 'nbd';

const RECORD_BYTES = 32;
const RECORD_MAGIC = 0x564e4a31; // 'VNJ1'
const REC = { DATA: 1, ZERO: 2, FLUSH: 3 } as const;
/** Session names: a safe directory name. */
const SESSION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** What session.json records. */
export interface SessionInfo {
  version: number;
  name: string;
  /** The revision as given to `viva nbd`. */
  rev: string;
  commit: Oid;
  disk: Oid;
  size: number;
  /** ISO 8601. */
  created: string;
}

/** Something that reads the base disk's bytes (a DiskReader). */
export interface BaseReader {
  read(offset: number, length: number): Buffer;
  extents(offset: number, length: number): DiskExtent[];
}

/** The directory of session `name` in the repository data directory `dataDir` (the name checked). Throws UsageError. */
export function sessionDir(dataDir: string, name: string): string {
  if (!SESSION_NAME.test(name)) throw new UsageError(`'${name}' is not a valid session name (letters, digits, '.', '_', '-'; at most 64; not starting with a punctuation mark)`, { name });
  return path.join(dataDir, SESSIONS_DIR, name);
}

/** A fresh session name: the date and a few random letters (`20261207-015126-3fa9`). */
export function generateSessionName(now = new Date()): string {
  const d = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${d}-${Math.random().toString(16).slice(2, 6)}`;
}

/** The names of the sessions in `dataDir`, sorted. */
export function listSessionNames(dataDir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(dataDir, SESSIONS_DIR));
  } catch {
    return [];
  }
  return names.filter((n) => SESSION_NAME.test(n) && fs.existsSync(path.join(dataDir, SESSIONS_DIR, n, 'session.json'))).sort();
}

/** Reads session.json of the session in `dir`. Throws NbdSessionNotFoundError. */
export function readSessionInfo(dir: string): SessionInfo {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'session.json'), 'utf8');
  } catch {
    throw new NbdSessionNotFoundError(path.basename(dir));
  }
  return JSON.parse(text) as SessionInfo;
}

/** The pid holding the session's lock if that process is alive, else undefined. */
export function sessionHolder(dir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(dir, 'lock'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/** The durable state a journal replays to: block → slot + 1 in `data`, or 0 for a block of zeros. */
interface Replayed {
  map: Map<number, number>;
  /** Slots in `data` the last FLUSH covered. */
  slots: number;
  /** Journal bytes up to and including the last valid FLUSH. */
  length: number;
}

function replay(journal: Buffer): Replayed {
  const map = new Map<number, number>();
  let pending: Array<[number, number]> = [];
  let slots = 0;
  let length = 0;
  for (let at = 0; at + RECORD_BYTES <= journal.length; at += RECORD_BYTES) {
    const r = journal.subarray(at, at + RECORD_BYTES);
    if (r.readUInt32BE(0) !== RECORD_MAGIC || r.readUInt32BE(28) !== zlib.crc32(r.subarray(0, 28))) break;
    const type = r[4];
    const first = Number(r.readBigUInt64BE(8));
    const count = r.readUInt32BE(16);
    const slot = Number(r.readBigUInt64BE(20));
    if (type === REC.DATA) for (let i = 0; i < count; i++) pending.push([first + i, slot + i + 1]);
    else if (type === REC.ZERO) for (let i = 0; i < count; i++) pending.push([first + i, 0]);
    else if (type === REC.FLUSH) {
      for (const [b, s] of pending) map.set(b, s);
      pending = [];
      slots = first;
      length = at + RECORD_BYTES;
    } else break;
  }
  return { map, slots, length };
}

function record(type: number, first: number, count: number, slot: number): Buffer {
  const r = Buffer.alloc(RECORD_BYTES);
  r.writeUInt32BE(RECORD_MAGIC, 0);
  r[4] = type;
  r.writeBigUInt64BE(BigInt(first), 8);
  r.writeUInt32BE(count, 16);
  r.writeBigUInt64BE(BigInt(slot), 20);
  r.writeUInt32BE(zlib.crc32(r.subarray(0, 28)), 28);
  return r;
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/**
 * A session's overlay over its base disk: reads merge the overlay over the base; with a writer's handle, writes,
 * write-zeroes, trims and flushes (see the module comment for the files and what a flush makes durable).
 */
export class Overlay {
  /** Block → slot + 1, or 0 for zeros: the live state (the durable one plus writes since the last flush). */
  private readonly map: Map<number, number>;
  private sorted: number[] | undefined;
  private nextSlot: number;
  /** Slots below this are part of the durable state: never rewritten in place. */
  private durableSlots: number;
  private dirty = false;
  private closed = false;

  private constructor(
    readonly dir: string, readonly info: SessionInfo, private readonly base: BaseReader, state: Replayed,
    private readonly dataFd: number, private readonly journalFd: number | undefined,
  ) {
    this.map = state.map;
    this.nextSlot = this.durableSlots = state.slots;
  }

  /**
   * Creates session `info.name` in `dataDir` and opens it for writing (the lock taken).
   * Throws NbdSessionBusyError when a session of that name exists (use {@link Overlay.open}), WriteError.
   */
  static create(dataDir: string, info: Omit<SessionInfo, 'version' | 'created'>, base: BaseReader): Overlay {
    const dir = sessionDir(dataDir, info.name);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    try {
      fs.mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new NbdSessionBusyError(info.name, 'exists');
      throw new WriteError(dir, systemReason(e));
    }
    const full: SessionInfo = { version: SESSION_VERSION, ...info, created: new Date().toISOString() };
    const tmp = path.join(dir, 'session.json.tmp');
    fs.writeFileSync(tmp, `${JSON.stringify(full, null, 2)}\n`);
    const fd = fs.openSync(tmp, 'r+');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    fs.writeFileSync(path.join(dir, 'data'), '');
    fs.writeFileSync(path.join(dir, 'journal'), '');
    fs.renameSync(tmp, path.join(dir, 'session.json'));
    fsyncDir(dir);
    fsyncDir(path.dirname(dir));
    return Overlay.open(dir, base, 'write');
  }

  /**
   * Opens the session in `dir` at its last flushed state. `write`: takes the lock (NbdSessionBusyError when a live
   * process holds it), and cuts what lies after the last flush off the journal and `data`. `read`: no lock; a
   * live writer may go on meanwhile, this handle sees the state of its last flush when opened.
   * Throws NbdSessionNotFoundError, NbdSessionBusyError.
   */
  static open(dir: string, base: BaseReader, mode: 'read' | 'write'): Overlay {
    const info = readSessionInfo(dir);
    if (mode === 'write') lock(dir, info.name);
    try {
      const jpath = path.join(dir, 'journal');
      const state = replay(fs.readFileSync(jpath));
      const dataFd = fs.openSync(path.join(dir, 'data'), mode === 'write' ? 'r+' : 'r');
      let journalFd: number | undefined;
      if (mode === 'write') {
        fs.truncateSync(jpath, state.length);
        fs.ftruncateSync(dataFd, state.slots * OVERLAY_BLOCK);
        journalFd = fs.openSync(jpath, 'a');
      }
      return new Overlay(dir, info, base, state, dataFd, journalFd);
    } catch (e) {
      if (mode === 'write') fs.rmSync(path.join(dir, 'lock'), { force: true });
      throw e;
    }
  }

  get size(): number {
    return this.info.size;
  }

  /** Blocks the overlay holds (written or zeroed), whatever their content. */
  get blocks(): number {
    return this.map.size;
  }

  /** The overlay's blocks, sorted. */
  changedBlocks(): number[] {
    this.sorted ??= [...this.map.keys()].sort((a, b) => a - b);
    return this.sorted;
  }

  /** Whether any overlay block meets the disk bytes [offset, offset + length). */
  touches(offset: number, length: number): boolean {
    if (length <= 0) return false;
    const blocks = this.changedBlocks();
    const first = Math.floor(offset / OVERLAY_BLOCK);
    const last = Math.floor((offset + length - 1) / OVERLAY_BLOCK);
    let lo = 0;
    let hi = blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (blocks[mid]! < first) lo = mid + 1;
      else hi = mid;
    }
    return lo < blocks.length && blocks[lo]! <= last;
  }

  private check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`${length} bytes at ${offset} beyond the ${this.size}-byte disk`);
    }
  }

  /** Bytes [offset, offset + length) of base + overlay. Throws RangeError outside the disk. */
  read(offset: number, length: number): Buffer {
    this.check(offset, length);
    // Most reads (all of a commit's metadata reads but a few) meet no overlay block: the base's buffer as it is.
    if (!this.touches(offset, length)) return this.base.read(offset, length);
    const out = Buffer.alloc(length);
    const end = offset + length;
    let pos = offset;
    let baseFrom = -1;
    const flushBase = (to: number) => {
      if (baseFrom >= 0 && to > baseFrom) this.base.read(baseFrom, to - baseFrom).copy(out, baseFrom - offset);
      baseFrom = -1;
    };
    while (pos < end) {
      const b = Math.floor(pos / OVERLAY_BLOCK);
      const blockEnd = Math.min(end, (b + 1) * OVERLAY_BLOCK);
      const s = this.map.get(b);
      if (s === undefined) {
        if (baseFrom < 0) baseFrom = pos;
      } else {
        flushBase(pos);
        if (s > 0) fs.readSync(this.dataFd, out, pos - offset, blockEnd - pos, (s - 1) * OVERLAY_BLOCK + (pos - b * OVERLAY_BLOCK));
      }
      pos = blockEnd;
    }
    flushBase(end);
    return out;
  }

  /** Data and zero stretches of [offset, offset + length) as the base has them, with overlay blocks as data. */
  extents(offset: number, length: number): DiskExtent[] {
    this.check(offset, length);
    const end = offset + length;
    const over: Array<[number, number]> = [];
    const blocks = this.changedBlocks();
    let lo = 0;
    let hi = blocks.length;
    const first = Math.floor(offset / OVERLAY_BLOCK);
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (blocks[mid]! < first) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < blocks.length && blocks[i]! * OVERLAY_BLOCK < end; i++) {
      const a = Math.max(offset, blocks[i]! * OVERLAY_BLOCK);
      const b = Math.min(end, (blocks[i]! + 1) * OVERLAY_BLOCK);
      const last = over[over.length - 1];
      if (last && last[1] === a) last[1] = b;
      else over.push([a, b]);
    }
    if (!over.length) return this.base.extents(offset, length);
    const out: DiskExtent[] = [];
    const add = (o: number, n: number, zero: boolean) => pushExtent(out, o, n, zero);
    let oi = 0;
    for (const x of this.base.extents(offset, length)) {
      let pos = x.offset;
      const xe = x.offset + x.length;
      while (pos < xe) {
        while (oi < over.length && over[oi]![1] <= pos) oi++;
        const o = over[oi];
        if (o && o[0] <= pos) {
          const to = Math.min(xe, o[1]);
          add(pos, to - pos, false);
          pos = to;
        } else {
          const to = o ? Math.min(xe, o[0]) : xe;
          add(pos, to - pos, x.zero);
          pos = to;
        }
      }
    }
    return out;
  }

  private writable(): number {
    if (this.journalFd === undefined || this.closed) throw new Error('overlay opened read-only');
    return this.journalFd;
  }

  /** The slot a block's new content goes to: its own while unflushed, else a new one. */
  private slotFor(block: number): number {
    const s = this.map.get(block);
    if (s !== undefined && s > 0 && s - 1 >= this.durableSlots) return s - 1;
    return this.nextSlot++;
  }

  /**
   * Writes `data` at `offset` (a partial block is merged with what the disk holds there). Not durable until
   * {@link flush}. Throws RangeError outside the disk.
   */
  write(offset: number, data: Buffer): void {
    const jfd = this.writable();
    this.check(offset, data.length);
    const records: Buffer[] = [];
    const end = offset + data.length;
    let pos = offset;
    while (pos < end) {
      const b = Math.floor(pos / OVERLAY_BLOCK);
      const bStart = b * OVERLAY_BLOCK;
      const bEnd = Math.min(bStart + OVERLAY_BLOCK, this.size);
      const to = Math.min(end, bEnd);
      let block: Buffer;
      if (pos === bStart && to === bEnd) {
        block = data.subarray(pos - offset, to - offset);
      } else {
        block = this.read(bStart, bEnd - bStart);
        data.copy(block, pos - bStart, pos - offset, to - offset);
      }
      const slot = this.slotFor(b);
      fs.writeSync(this.dataFd, block, 0, block.length, slot * OVERLAY_BLOCK);
      if (this.map.get(b) !== slot + 1) {
        if (!this.map.has(b)) this.sorted = undefined;
        this.map.set(b, slot + 1);
        records.push(record(REC.DATA, b, 1, slot));
      }
      pos = to;
    }
    if (records.length) fs.writeSync(jfd, Buffer.concat(records));
    this.dirty = true;
  }

  /**
   * Makes [offset, offset + length) read as zeros: whole blocks become zero blocks, partial ones are written.
   * `trim`: partial blocks are left as they are (a trim's content is unspecified). Throws RangeError outside the disk.
   */
  zero(offset: number, length: number, trim = false): void {
    const jfd = this.writable();
    this.check(offset, length);
    const end = offset + length;
    const firstWhole = Math.ceil(offset / OVERLAY_BLOCK);
    // The disk's last block may be short: reaching the disk's end covers it whole.
    const wholeEnd = end === this.size ? Math.ceil(end / OVERLAY_BLOCK) : Math.floor(end / OVERLAY_BLOCK);
    const headEnd = Math.min(end, firstWhole * OVERLAY_BLOCK);
    const tailStart = Math.max(headEnd, wholeEnd * OVERLAY_BLOCK);
    if (!trim) {
      if (offset < headEnd) this.write(offset, Buffer.alloc(headEnd - offset));
      if (tailStart < end) this.write(tailStart, Buffer.alloc(end - tailStart));
    }
    if (wholeEnd > firstWhole) {
      for (let b = firstWhole; b < wholeEnd; b++) {
        if (!this.map.has(b)) this.sorted = undefined;
        this.map.set(b, 0);
      }
      fs.writeSync(jfd, record(REC.ZERO, firstWhole, wholeEnd - firstWhole, 0));
    }
    this.dirty = true;
  }

  /** Makes everything written so far durable: `data` fsync'ed, then a FLUSH record, fsync'ed. Throws WriteError. */
  flush(): void {
    const jfd = this.writable();
    if (!this.dirty) return;
    try {
      fs.fsyncSync(this.dataFd);
      fs.writeSync(jfd, record(REC.FLUSH, this.nextSlot, 0, 0));
      fs.fsyncSync(jfd);
    } catch (e) {
      throw new WriteError(path.join(this.dir, 'journal'), systemReason(e));
    }
    this.durableSlots = this.nextSlot;
    this.dirty = false;
  }

  /** Flushes (a writer) and closes; a writer's lock is released. */
  close(): void {
    if (this.closed) return;
    if (this.journalFd !== undefined) {
      try {
        this.flush();
      } finally {
        this.closed = true;
        fs.closeSync(this.journalFd);
        fs.closeSync(this.dataFd);
        fs.rmSync(path.join(this.dir, 'lock'), { force: true });
      }
      return;
    }
    this.closed = true;
    fs.closeSync(this.dataFd);
  }
}

/** Takes the session's lock (a file with the holder's pid); a lock of a dead process is taken over. */
function lock(dir: string, name: string): void {
  const file = path.join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n${os.hostname()}\n`, { flag: 'wx' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new WriteError(file, systemReason(e));
    }
    const holder = sessionHolder(dir);
    if (holder !== undefined) throw new NbdSessionBusyError(name, `in use by pid ${holder}`);
    fs.rmSync(file, { force: true });
  }
  throw new NbdSessionBusyError(name, 'its lock could not be taken');
}
