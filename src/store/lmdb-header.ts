/**
 * Checks an LMDB data file before it is mapped: LMDB trusts the file it maps, so a truncated file kills the process
 * with SIGBUS on the first read past its end and a garbage file with SIGSEGV. Reading the two meta pages with pread
 * first turns both into an error that names the file.
 *
 * Layout (lmdb-js's liblmdb, mdb.c, 64-bit): every page starts with a 24-byte MDB_page_header (u64 pgno, u64 txnid,
 * u16 pad, u16 flags, u32 lower/upper). Pages 0 and 1 are meta pages (flag P_META) whose MDB_meta follows the header:
 *
 *   +0  u32 mm_magic 0xBEEFC0DE     +4 u32 mm_version (low 16 bits: 2)   +8 u64 mm_address   +16 u64 mm_mapsize
 *   +24 MDB_db free db (48 bytes; its first u32 md_pad is the page size)  +72 MDB_db main db (48 bytes, md_root at +40)
 *   +120 u64 mm_last_pg             +128 u64 mm_txnid
 *
 * The meta with the larger txnid is the current one; every page up to its mm_last_pg must lie inside the file
 * (a page past the end is what raises SIGBUS).
 */
import fs from 'node:fs';

const PAGE_HEADER = 24;
const P_META = 0x08;
const MDB_MAGIC = 0xbeefc0de;
const MDB_DATA_VERSION = 2;
const META = {
  magic: 0, version: 4, freeDb: 24, mainDb: 72, lastPage: 120, txnid: 128,
} as const;
const DB_ROOT = 40;
const MIN_PAGE = 512;
const MAX_PAGE = 65536;
/** No valid page is numbered this high: a root page number at P_INVALID (~0) means an empty tree. */
const P_INVALID = 0xffffffffffffffffn;

export interface LmdbMeta {
  pageSize: number;
  lastPage: bigint;
  txnid: bigint;
}

/** Why the file cannot be an intact LMDB environment, or the current meta when it can. */
export type LmdbHeaderCheck = { ok: true; meta: LmdbMeta } | { ok: false; reason: string };

function readMeta(buf: Buffer, at: number, pageSize?: number): LmdbMeta | string {
  const flags = buf.readUInt16LE(at + 18);
  const m = at + PAGE_HEADER;
  if (!(flags & P_META)) return 'not a meta page';
  if (buf.readUInt32LE(m + META.magic) !== MDB_MAGIC) return 'bad magic';
  const version = buf.readUInt32LE(m + META.version) & 0xffff;
  if (version !== MDB_DATA_VERSION) return `unsupported LMDB version ${version}`;
  const size = buf.readUInt32LE(m + META.freeDb);
  if (size < MIN_PAGE || size > MAX_PAGE || (size & (size - 1)) !== 0) return `bad page size ${size}`;
  if (pageSize !== undefined && size !== pageSize) return `page size ${size} differs from the first meta page's ${pageSize}`;
  const lastPage = buf.readBigUInt64LE(m + META.lastPage);
  for (const db of [META.freeDb, META.mainDb]) {
    const root = buf.readBigUInt64LE(m + db + DB_ROOT);
    if (root !== P_INVALID && root > lastPage) return `root page ${root} lies past the last page ${lastPage}`;
  }
  return { pageSize: size, lastPage, txnid: buf.readBigUInt64LE(m + META.txnid) };
}

/**
 * Checks the LMDB file at `file` without mapping it: it exists, is a regular file, holds two meta pages with LMDB's
 * magic and data version, and is long enough for every page the current meta counts. Throws the system error when
 * the file exists but cannot be opened (permissions).
 */
export function checkLmdbFile(file: string): LmdbHeaderCheck {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    // Permission problems are not damage: they keep their own error.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, reason: 'the file is missing' };
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { ok: false, reason: 'not a regular file' };
    const size = st.size;
    if (size === 0) return { ok: false, reason: 'the file is empty' };
    const head = Buffer.alloc(Math.min(size, PAGE_HEADER + 256));
    fs.readSync(fd, head, 0, head.length, 0);
    if (size < PAGE_HEADER + META.txnid + 8) return { ok: false, reason: `truncated to ${size} bytes, shorter than an LMDB meta page` };
    const first = readMeta(head, 0);
    if (typeof first === 'string') return { ok: false, reason: `not an LMDB file (meta page 0: ${first})` };
    const pageSize = first.pageSize;
    if (size < 2 * pageSize) return { ok: false, reason: `truncated to ${size} bytes, shorter than its two ${pageSize}-byte meta pages` };
    const second = Buffer.alloc(PAGE_HEADER + 256);
    fs.readSync(fd, second, 0, second.length, pageSize);
    const other = readMeta(second, 0, pageSize);
    if (typeof other === 'string') return { ok: false, reason: `meta page 1 is damaged (${other})` };
    const meta = other.txnid > first.txnid ? other : first;
    const need = (meta.lastPage + 1n) * BigInt(pageSize);
    // The size again, after the metas: a writer in another process writes its pages before its meta, so a meta
    // read now never counts pages past the end of the file as it is now (it might past the size read before).
    const now = fs.fstatSync(fd).size;
    if (BigInt(now) < need) return { ok: false, reason: `truncated to ${now} bytes of the ${need} its pages need` };
    return { ok: true, meta };
  } finally {
    fs.closeSync(fd);
  }
}
