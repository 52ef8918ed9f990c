/**
 * RPM package databases in the sqlite format rpm ≥ 4.16 uses (`var/lib/rpm/rpmdb.sqlite`, table `Packages(hnum,
 * blob)`, one RPM header per row), read with sql.js (SQLite compiled to WebAssembly: no native build, works on every
 * Node), and RPM version ordering (rpm's rpmvercmp()).
 *
 * Header blob layout (rpm's lib/header.c, headerImport): u32 BE index count, u32 BE data length, that many 16-byte
 * index entries (tag, type, offset, count, all u32 BE), then the data store. Strings are NUL-terminated.
 */
import { createRequire } from 'node:module';
import type { Inventory, InventoryProblem, Package } from './types.js';

interface SqlJsDatabase {
  exec(sql: string): Array<{ columns: string[]; values: unknown[][] }>;
  close(): void;
}
interface SqlJs {
  Database: new (data?: Uint8Array) => SqlJsDatabase;
}

let sqlJs: Promise<SqlJs> | undefined;
function loadSqlJs(): Promise<SqlJs> {
  if (!sqlJs) {
    const require = createRequire(import.meta.url);
    const init = require('sql.js') as (config?: object) => Promise<SqlJs>;
    sqlJs = init();
  }
  return sqlJs;
}

export const RPM_DATABASE = 'var/lib/rpm/rpmdb.sqlite';

const TAG_NAME = 1000;
const TAG_VERSION = 1001;
const TAG_RELEASE = 1002;
const TAG_EPOCH = 1003;
const TAG_ARCH = 1022;
const TAG_SOURCERPM = 1044;
const TYPE_INT32 = 4;
const TYPE_STRING = 6;
const TYPE_I18NSTRING = 9;

/** The fields viva lists from one header blob; a string naming what is wrong otherwise. */
export function parseRpmHeader(blob: Uint8Array): Package | string {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (b.length < 8) return 'header shorter than 8 bytes';
  const il = b.readUInt32BE(0);
  const dl = b.readUInt32BE(4);
  const dataStart = 8 + il * 16;
  if (il > 100_000 || dl > 256 << 20 || dataStart + dl > b.length) return `header sizes (${il} entries, ${dl} data bytes) exceed the blob`;
  const fields = new Map<number, string | number>();
  for (let i = 0; i < il; i++) {
    const o = 8 + i * 16;
    const tag = b.readUInt32BE(o);
    const type = b.readUInt32BE(o + 4);
    const off = b.readUInt32BE(o + 8);
    if (off >= dl) continue;
    const at = dataStart + off;
    if (type === TYPE_STRING || type === TYPE_I18NSTRING) {
      const end = b.indexOf(0, at);
      if (end < 0 || end > dataStart + dl) return `tag ${tag}: string runs past the data`;
      fields.set(tag, b.toString('utf8', at, end));
    } else if (type === TYPE_INT32 && at + 4 <= dataStart + dl) {
      fields.set(tag, b.readUInt32BE(at));
    }
  }
  const name = fields.get(TAG_NAME);
  const version = fields.get(TAG_VERSION);
  const release = fields.get(TAG_RELEASE);
  if (typeof name !== 'string' || typeof version !== 'string') return 'header without NAME or VERSION';
  const epoch = fields.get(TAG_EPOCH);
  const arch = fields.get(TAG_ARCH);
  const srpm = fields.get(TAG_SOURCERPM);
  const full = `${typeof epoch === 'number' ? `${epoch}:` : ''}${version}${typeof release === 'string' ? `-${release}` : ''}`;
  const source = typeof srpm === 'string' ? srpm.replace(/-[^-]+-[^-]+\.src\.rpm$/, '') : undefined;
  return { name, version: full, ...(typeof arch === 'string' ? { arch } : {}), ...(source && source !== name ? { source } : {}) };
}

/** Reads an rpmdb.sqlite file's packages. Malformed rows are problems; an unreadable database is one problem. */
export async function parseRpmSqlite(data: Uint8Array, file = RPM_DATABASE): Promise<Inventory> {
  const packages: Package[] = [];
  const problems: InventoryProblem[] = [];
  const SQL = await loadSqlJs();
  let db: SqlJsDatabase | undefined;
  try {
    db = new SQL.Database(data);
    const rows = db.exec('SELECT hnum, blob FROM Packages ORDER BY hnum')[0]?.values ?? [];
    for (const [hnum, blob] of rows) {
      if (!(blob instanceof Uint8Array)) { problems.push({ file, line: Number(hnum), message: 'row without a header blob' }); continue; }
      const p = parseRpmHeader(blob);
      if (typeof p === 'string') problems.push({ file, line: Number(hnum), message: `package row ${hnum}: ${p}` });
      else packages.push(p);
    }
  } catch (e) {
    problems.push({ file, line: 0, message: `not a readable rpm sqlite database: ${(e as Error).message}` });
  } finally {
    db?.close();
  }
  packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : (a.arch ?? '') < (b.arch ?? '') ? -1 : 1));
  return { format: 'rpm', file, packages, problems };
}

/** rpm's rpmvercmp(): alphanumeric segments, numbers numerically, '~' before anything, '^' after the end. */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const isAlnum = (c: string | undefined) => !!c && /[A-Za-z0-9]/.test(c);
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++; j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++; j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = /[0-9]/.test(a[i]!);
    const re = numeric ? /[0-9]/ : /[A-Za-z]/;
    let ei = i;
    let ej = j;
    while (ei < a.length && re.test(a[ei]!)) ei++;
    while (ej < b.length && re.test(b[ej]!)) ej++;
    const sa = a.slice(i, ei);
    const sb = b.slice(j, ej);
    if (sb.length === 0) return numeric ? 1 : -1;
    if (numeric) {
      const na = sa.replace(/^0+/, '');
      const nb = sb.replace(/^0+/, '');
      if (na.length !== nb.length) return na.length > nb.length ? 1 : -1;
      if (na !== nb) return na > nb ? 1 : -1;
    } else if (sa !== sb) {
      return sa > sb ? 1 : -1;
    }
    i = ei;
    j = ej;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

/** Compares RPM [epoch:]version[-release] strings. */
export function compareRpmVersions(a: string, b: string): number {
  const split = (v: string) => {
    const m = /^(?:(\d+):)?(.*?)(?:-([^-]*))?$/.exec(v)!;
    return { epoch: Number(m[1] ?? 0), version: m[2] ?? '', release: m[3] };
  };
  const x = split(a);
  const y = split(b);
  if (x.epoch !== y.epoch) return x.epoch > y.epoch ? 1 : -1;
  const v = rpmvercmp(x.version, y.version);
  if (v) return v;
  if (x.release === undefined || y.release === undefined) return 0;
  return rpmvercmp(x.release, y.release);
}
