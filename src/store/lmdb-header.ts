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
 * The meta with the larger txnid is the current one. A file that ends before its mm_last_pg is walked page by page:
 * every page in use must lie inside the file (a page past the end is what raises SIGBUS); free pages may not.
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
  /** Root pages of the free and the main database (P_INVALID when empty). */
  roots: bigint[];
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
  const roots = [META.freeDb, META.mainDb].map((db) => buf.readBigUInt64LE(m + db + DB_ROOT));
  for (const root of roots) {
    if (root !== P_INVALID && root > lastPage) return `root page ${root} lies past the last page ${lastPage}`;
  }
  return { pageSize: size, lastPage, txnid: buf.readBigUInt64LE(m + META.txnid), roots };
}

const P_BRANCH = 0x01;
const P_LEAF = 0x02;
const P_LEAF2 = 0x20;
const F_BIGDATA = 0x01;
const F_SUBDATA = 0x02;
const NODE_HEADER = 8;
const DB_RECORD = 48;

/**
 * Walks every B-tree of the environment (free db, main db, each named db and each dupsort sub-db) from its root,
 * reading branch and leaf pages and the headers of overflow pages, and returns why a page in use lies at or past
 * `filePages` (or is not the page it should be), or undefined when every page in use is inside the file.
 * Node layout: u16 lo, u16 hi, u16 flags, u16 key size, key, data; a branch node's child is lo | hi << 16 | flags << 32,
 * a leaf's data size lo | hi << 16; F_BIGDATA data is the u64 first overflow page (its header's u32 at +20 counts
 * the pages), F_SUBDATA data is an MDB_db record (root at +40).
 */
function findPageOutside(fd: number, meta: LmdbMeta, filePages: number): string | undefined {
  const size = meta.pageSize;
  const page = Buffer.alloc(size);
  const seen = new Set<bigint>();
  const stack = meta.roots.filter((r) => r !== P_INVALID);
  const inside = (pgno: bigint, count = 1n) => pgno + count <= BigInt(filePages);
  while (stack.length) {
    const pgno = stack.pop()!;
    if (seen.has(pgno)) continue;
    seen.add(pgno);
    if (!inside(pgno)) return `page ${pgno} in use lies past the end`;
    if (fs.readSync(fd, page, 0, size, Number(pgno) * size) !== size) return `page ${pgno} cannot be read`;
    if (page.readBigUInt64LE(0) !== pgno) return `page ${pgno} is not what its parent points at`;
    const flags = page.readUInt16LE(18);
    if (flags & P_LEAF2) continue;
    if (!(flags & (P_BRANCH | P_LEAF))) return `page ${pgno} is neither a branch nor a leaf (flags ${flags})`;
    const count = page.readUInt16LE(20) >> 1;
    for (let i = 0; i < count; i++) {
      const at = PAGE_HEADER + page.readUInt16LE(PAGE_HEADER + 2 * i);
      if (at + NODE_HEADER > size) return `page ${pgno} has a node outside it`;
      const lo = page.readUInt16LE(at);
      const hi = page.readUInt16LE(at + 2);
      const nflags = page.readUInt16LE(at + 4);
      const data = at + NODE_HEADER + page.readUInt16LE(at + 6);
      if (flags & P_BRANCH) {
        stack.push(BigInt(lo) | (BigInt(hi) << 16n) | (BigInt(nflags) << 32n));
      } else if (nflags & F_BIGDATA) {
        if (data + 8 > size) return `page ${pgno} has a node outside it`;
        const first = page.readBigUInt64LE(data);
        if (!inside(first)) return `overflow page ${first} in use lies past the end`;
        const head = Buffer.alloc(PAGE_HEADER);
        fs.readSync(fd, head, 0, PAGE_HEADER, Number(first) * size);
        const pages = BigInt(head.readUInt32LE(20));
        if (!inside(first, pages > 0n ? pages : 1n)) return `overflow pages ${first}+${pages} in use lie past the end`;
      } else if (nflags & F_SUBDATA) {
        if (data + DB_RECORD > size) return `page ${pgno} has a node outside it`;
        const root = page.readBigUInt64LE(data + DB_ROOT);
        if (root !== P_INVALID) stack.push(root);
      }
    }
  }
  return undefined;
}

/**
 * Whether the regular file at `file` starts with an LMDB meta page (page flag P_META and LMDB's magic), intact or
 * not: any repository's `data.mdb`, however it is reached (a hard link or a copy elsewhere). False for anything that
 * cannot be opened or read.
 */
export function isLmdbDataFile(file: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return false;
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return false;
    const head = Buffer.alloc(PAGE_HEADER + 4);
    if (fs.readSync(fd, head, 0, head.length, 0) !== head.length) return false;
    return (head.readUInt16LE(18) & P_META) !== 0 && head.readUInt32LE(PAGE_HEADER + META.magic) === MDB_MAGIC;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
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
    if (BigInt(now) < need) {
      // A healthy file can end early: pages a transaction allocated at the end and freed again before committing are
      // never written (mdb.c: "the file may be shorter if the freeDB lists the final pages"). Only a page in use past
      // the end is damage: walk the trees.
      const problem = findPageOutside(fd, meta, Math.floor(now / pageSize));
      if (problem) return { ok: false, reason: `truncated to ${now} bytes of the ${need} its pages need (${problem})` };
    }
    return { ok: true, meta };
  } finally {
    fs.closeSync(fd);
  }
}
