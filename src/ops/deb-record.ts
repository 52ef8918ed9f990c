/**
 * Stored package records: what installing a .deb needs from it, kept in the repository as one tree per package so
 * that it is read and unpacked once (memoized by the .deb's sha256) and a derivation can name it for a replay
 * (`rebuild`) without the .deb file. The record tree holds:
 *
 * - `control/`: every file of control.tar (`control`, `md5sums`, `conffiles`, maintainer scripts, `triggers`, …)
 *   with its mode, owner and mtime;
 * - `data/`: the data archive's tree (debTree), its own metadata that of the archive's `./`;
 * - `files`: the archive's members in archive order (what `PKG.list` lists), one per line as
 *   `TYPE PATH` with TYPE one of `d f l h c b p s` and PATH the member's bytes (newlines cannot occur: tar names
 *   hold none that debTree accepts).
 *
 * `ix-deriv` keeps sha256 → record under DERIV_DEB: a cache (a record gc removed is made again).
 */
import { CorruptInputError } from '../errors.js';
import type { EntryType } from '../formats/types.js';
import type { Oid } from '../model/oid.js';
import { type ControlFile, debControlFromFields, parseDebControl } from '../packages/deb.js';
import { DERIV_DEB, derivKey } from '../store/content-index.js';
import type { ObjectWriter } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { readBlobBytes, readTree } from '../store/typed.js';
import { MutableTree } from '../tree/mutable-tree.js';
import { type DebFileEntry, debTree } from './deb-tree.js';
import type { UnpackDeb } from './unpack-debs.js';
import { storeBytes } from '../store/store-content.js';

const TYPE_CHARS: Record<EntryType | 'hardlink', string> = { dir: 'd', file: 'f', symlink: 'l', hardlink: 'h', chr: 'c', blk: 'b', fifo: 'p', socket: 's' };
const CHAR_TYPES = new Map(Object.entries(TYPE_CHARS).map(([k, v]) => [v, k as EntryType | 'hardlink']));

/** A package record: its tree id, and what unpacking needs. */
export interface DebRecord {
  record: Oid;
  sha256: Oid;
  unpack: UnpackDeb;
  /** True when the record was already in the repository (nothing was read from the .deb's data archive). */
  reused: boolean;
}

function encodeFiles(files: DebFileEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) parts.push(Buffer.from(`${TYPE_CHARS[f.type]} `), f.path, Buffer.from('\n'));
  return Buffer.concat(parts);
}

function decodeFiles(buf: Buffer, where: string): DebFileEntry[] {
  const out: DebFileEntry[] = [];
  let at = 0;
  while (at < buf.length) {
    const nl = buf.indexOf(0x0a, at);
    const end = nl < 0 ? buf.length : nl;
    const type = CHAR_TYPES.get(String.fromCharCode(buf[at]!));
    if (!type || buf[at + 1] !== 0x20) throw new CorruptInputError(where, `offset ${at}`, 'bad line in the package record\'s file list');
    out.push({ path: Buffer.from(buf.subarray(at + 2, end)), type });
    at = end + 1;
  }
  return out;
}

/**
 * The stored record of the .deb `file` whose sha256 is `sha256`: the one made before if the repository has it, else
 * read from the file now (control and data archive) and written through `writer`. Throws what readDeb and debTree
 * throw, naming the file.
 *
 * Locking: none; a new record's objects are unreferenced until a commit's derivation names it, so the caller holds a
 * session, and calls `rememberDebRecords` once they are durable.
 */
export async function debRecord(repo: Repository, writer: ObjectWriter, file: string, sha256: Oid, signal?: AbortSignal): Promise<DebRecord> {
  const known = await findDebRecord(repo, sha256, file);
  if (known) return known;
  const d = await debTree(repo, writer, file, signal ? { signal } : {});
  const t = new MutableTree(repo.objects, { sourceName: file });
  const meta = (cf: ControlFile) => ({ mode: cf.mode, uid: cf.uid, gid: cf.gid, mtimeNs: cf.mtimeNs, xattrs: [] });
  const controlText = Buffer.from(d.deb.control.fields.map((f) => `${f.name}: ${f.value}\n`).join(''), 'utf8');
  const dirMeta = { mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [] };
  t.mkdir(Buffer.from('control'), dirMeta);
  t.writeFile(Buffer.from('control/control'), await storeBytes(writer, controlText), { newMeta: { ...dirMeta, mode: 0o644 } });
  for (const [name, cf] of d.deb.controlFiles) {
    t.writeFile(Buffer.from(`control/${name}`, 'latin1'), await storeBytes(writer, cf.data), { newMeta: meta(cf), meta: meta(cf) });
  }
  t.graft(Buffer.from('data'), d.tree, { ...d.rootMeta, xattrs: d.rootMeta.xattrs.map((x) => ({ name: x.name, value: Buffer.from(x.value) })) });
  t.writeFile(Buffer.from('files'), await storeBytes(writer, encodeFiles(d.files)), { newMeta: { ...dirMeta, mode: 0o644 } });
  const record = t.write(writer).oid;
  return { record, sha256, unpack: { file, deb: d.deb, debTree: d.tree, files: d.files }, reused: false };
}

/** Whether the repository has a record of the .deb with this sha256 (without reading it). */
export function hasDebRecord(repo: Repository, sha256: Oid): boolean {
  return repo.contentIndex.derived(DERIV_DEB, sha256).some((v) => repo.objects.hasObject('tree', v));
}

/** The record of the .deb with this sha256 if the repository has it (`name` names it in messages). */
export async function findDebRecord(repo: Repository, sha256: Oid, name: string): Promise<DebRecord | undefined> {
  for (const v of repo.contentIndex.derived(DERIV_DEB, sha256)) {
    if (!repo.objects.hasObject('tree', v)) continue;
    return { record: v, sha256, unpack: await loadDebRecord(repo, v, name), reused: true };
  }
  return undefined;
}

/** Reads a stored record back as unpackDebs takes it; `file` names the package in messages. Throws RepositoryCorruptError / CorruptInputError. */
export async function loadDebRecord(repo: Repository, record: Oid, file: string): Promise<UnpackDeb> {
  const objects = repo.objects;
  const top = new Map(readTree(objects, record, `package record ${record}`).entries.map((e) => [e.name.toString('latin1'), e]));
  const control = top.get('control');
  const data = top.get('data');
  const files = top.get('files');
  if (control?.type !== 'dir' || data?.type !== 'dir' || files?.type !== 'file') throw new CorruptInputError(`package record ${record}`, 'tree', 'not a package record (control/, data/, files)');
  const controlFiles = new Map<string, ControlFile>();
  let controlText = '';
  for (const e of readTree(objects, control.oid!, 'control').entries) {
    const name = e.name.toString('latin1');
    const data = await readBlobBytes(objects, e.oid!, e.size, `control/${name}`);
    if (name === 'control') controlText = data.toString('utf8');
    else controlFiles.set(name, { data, mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs });
  }
  const fields = parseDebControl(controlText, file, 'package record control ');
  const deb: UnpackDeb['deb'] = { control: debControlFromFields(fields, file), controlFiles };
  return { file, deb, debTree: data.oid!, files: decodeFiles(await readBlobBytes(objects, files.oid!, files.size, 'files'), `package record ${record}`) };
}

/** Remembers sha256 → record for records now durable (after the commit that names them was written). */
export function rememberDebRecords(repo: Repository, records: Array<{ sha256: Oid; record: Oid }>): void {
  const fresh = records.filter((r) => !repo.contentIndex.derived(DERIV_DEB, r.sha256).includes(r.record));
  if (fresh.length === 0) return;
  repo.contentIndex.put(fresh.map((r) => ['ix-deriv', derivKey(DERIV_DEB, r.sha256), Buffer.from(r.record, 'hex')]));
}
