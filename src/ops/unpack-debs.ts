/**
 * `dpkg --unpack` on a tree: each package's files merged into the image and the dpkg database updated (status
 * stanza, `info/PKG.*`), as dpkg 1.21 leaves a root after `dpkg --root=DIR --unpack` — without running maintainer
 * scripts or triggers, and without configuring (conffiles wait as `PATH.dpkg-new`, the status says `unpacked`).
 */
import crypto from 'node:crypto';
import { AbortedError, FileConflictError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import type { TreeEntry } from '../model/tree.js';
import type { DebPackage } from '../packages/deb.js';
import { versionSatisfies } from '../packages/source.js';
import {
  type Conffile, DPKG_DIVERSIONS, DPKG_INFO_DIR, DPKG_INFO_FORMAT, DPKG_INFO_FORMAT_TEXT, DPKG_STATUS, NEW_CONFFILE_HASH,
  type StatusStanza, bytes, formatList, formatMd5sums, formatStatus, formatStatusStanza, hasFiles, infoName, latin1,
  parseConffilesControl, parseConffilesField, parseDiversions, parseList, sortStanzas, splitStatus, stanzaField,
  stanzaInfoName, stanzaStatus,
} from '../packages/dpkg-db.js';
import type { ObjectReader, ObjectWriter } from '../store/object-store.js';
import { readBlobBytes, readTree } from '../store/typed.js';
import type { MutableTree, NodeMeta } from '../tree/mutable-tree.js';
import type { DebFileEntry } from './deb-tree.js';
import { storeBytes } from '../store/store-content.js';

/** Symlinks followed while resolving a directory of a package path (the kernel's limit, as dpkg meets it). */
const MAX_SYMLINK_HOPS = 40;

/** One package to unpack: the .deb as `readDeb` read it and its data archive as `debTree` stored it. */
export interface UnpackDeb {
  /** The .deb's path, named in errors. */
  file: string;
  /** Its control paragraph and control files (a DebPackage from readDeb, or a stored record's). */
  deb: Pick<DebPackage, 'control' | 'controlFiles'>;
  /** The data archive's tree (`debTree(…).tree`); its objects must be readable through `objects`. */
  debTree: Oid;
  /**
   * The archive's members in archive order (`debTree(…).files`): the order of `PKG.list`. Without it the tree's
   * order is used with symlinks last, which is the order `dpkg-deb --build` writes.
   */
  files?: DebFileEntry[];
}

/** The options of {@link unpackDebs}. */
export interface UnpackDebsOptions {
  /** The mtime (ns since the epoch) of the database files written: status, `.list`, generated `.md5sums`, `info/format`. */
  mtimeNs: bigint;
  signal?: AbortSignal;
}

/** One package {@link unpackDebs} unpacked: its name, architecture, version and what it replaced. */
export interface UnpackedDeb {
  package: string;
  architecture: string;
  version: string;
  /** The version it was unpacked over, when one was installed. */
  previousVersion?: string;
  /** Conffiles written beside the live path as `PATH.dpkg-new` (absolute paths, without the suffix). */
  conffiles: string[];
  /** Files and empty directories of the previous version that the new one does not ship, removed (absolute paths). */
  removed: string[];
  /** Files taken over from other packages that the new one `Replaces` (they leave the other package's `.list`). */
  takenOver: Array<{ path: string; from: string }>;
  /** Files written to a diversion's target instead of their own path. */
  diverted: Array<{ path: string; to: string }>;
}

/** What {@link unpackDebs} unpacked, in order. */
export interface UnpackDebsResult {
  packages: UnpackedDeb[];
}

const DB_FILE_MODE = 0o644;

/**
 * Unpacks `debs`, in order, into `tree` as `dpkg --unpack` does to a root:
 *
 * - the package's files are merged in: directories that exist keep their mode, owner and mtime (dpkg leaves them
 *   alone; a directory that is a symlink on the image, as `/lib` on merged-/usr systems, is followed), new ones get
 *   the archive's metadata; files, symlinks and devices replace what is there with the archive's metadata; a
 *   conffile is written as `PATH.dpkg-new` (dpkg moves it into place when configuring); a path with a diversion
 *   (`var/lib/dpkg/diversions`) not held by this package is written to the diversion's target;
 * - over an installed version: the files of its `.list` the new one does not ship are removed, directories only
 *   when empty, nothing another package also lists; conffiles it no longer ships stay, marked `obsolete`;
 * - a file another installed package lists is refused (FileConflictError) unless this package `Replaces` that
 *   package (at its installed version): then the path leaves the other package's `.list`;
 * - `var/lib/dpkg/info/PKG.*` (`PKG:ARCH.*` for Multi-Arch: same) is replaced by the package's control files
 *   (their modes, owners and mtimes from control.tar), `PKG.list` (archive order, `/.` first, obsolete conffiles
 *   last) and `PKG.md5sums` (generated, as dpkg does, when the package has none); `info/format` is made if missing;
 * - its `var/lib/dpkg/status` stanza is written as dpkg writes it (`install ok unpacked`, dpkg's field order,
 *   `Config-Version` from a configured previous version, `Conffiles` with the hashes of the configured versions or
 *   `newconffile`), replacing the old one; the file is sorted by package name then architecture, other stanzas
 *   kept byte for byte.
 *
 * Database files written get mode 0644, root, and `options.mtimeNs`. Dependencies, Conflicts, Breaks and
 * Pre-Depends are not checked (the resolver did), scripts and triggers not run, `status-old`, `available`,
 * `triggers/` and lock files not written.
 *
 * Locking: none; blobs are written unreferenced through `writer`, the caller writes the tree and commits it.
 * Throws FileConflictError (nothing of that package was changed, earlier packages were), InvalidEditError when a
 * path of the package meets a non-directory or a directory on the image where the other kind must go, and
 * AbortedError when `signal` fires; on an error the tree is partly edited: discard it.
 *
 * @example
 * const t = MutableTree.open(repo.objects, { tree: base });
 * const d = await debTree(repo, repo.objects, 'hello.deb');
 * await unpackDebs(repo.objects, repo.objects, t, [{ file: 'hello.deb', deb: d.deb, debTree: d.tree, files: d.files }], { mtimeNs: 0n });
 * const { oid } = t.write(repo.objects);
 */
export async function unpackDebs(objects: ObjectReader, writer: ObjectWriter, tree: MutableTree, debs: UnpackDeb[], options: UnpackDebsOptions): Promise<UnpackDebsResult> {
  const db = new DpkgDb(objects, writer, tree, options.mtimeNs);
  const packages: UnpackedDeb[] = [];
  for (const d of debs) {
    if (options.signal?.aborted) throw new AbortedError();
    packages.push(await unpackOne(db, d));
  }
  return { packages };
}

/** Who lists a path: info names by image path, and each installed package's list. */
interface Installed {
  stanza: StatusStanza;
  list: string[];
}

/** The dpkg database of the tree being edited, read once and kept current as packages are unpacked. */
class DpkgDb {
  /** Database files written in this run (the writer may not make them readable before a flush). */
  private readonly written = new Map<string, Buffer>();
  installed?: Map<string, Installed>;
  owners = new Map<string, Set<string>>();

  constructor(readonly objects: ObjectReader, readonly writer: ObjectWriter, readonly tree: MutableTree, readonly mtimeNs: bigint) {}

  get dbMeta(): NodeMeta {
    return { mode: DB_FILE_MODE, uid: 0, gid: 0, mtimeNs: this.mtimeNs, xattrs: [] };
  }

  async read(path: string): Promise<Buffer | undefined> {
    const mine = this.written.get(path);
    if (mine) return mine;
    const node = this.tree.lookup(bytes(path));
    if (node?.type !== 'file' || !node.oid) return undefined;
    return readBlobBytes(this.objects, node.oid, node.size, path);
  }

  async readText(path: string): Promise<string> {
    const b = await this.read(path);
    return b ? latin1(b) : '';
  }

  async write(path: string, data: Buffer, meta: NodeMeta = this.dbMeta): Promise<void> {
    const content = await storeBytes(this.writer, data);
    const p = bytes(path);
    const old = this.tree.lookup(p);
    if (old && old.type !== 'file') this.tree.remove(p);
    this.tree.writeFile(p, content, { newMeta: meta, meta });
    this.written.set(path, data);
  }

  remove(path: string): void {
    if (this.tree.lookup(bytes(path))) this.tree.remove(bytes(path));
    this.written.delete(path);
  }

  /** Reads every installed package's `.list` once. */
  async loadInstalled(stanzas: StatusStanza[]): Promise<Map<string, Installed>> {
    if (this.installed) return this.installed;
    this.installed = new Map();
    for (const s of stanzas) {
      if (!hasFiles(s)) continue;
      const name = stanzaInfoName(s);
      this.setList(name, s, parseList(await this.readText(`${DPKG_INFO_DIR}/${name}.list`)));
    }
    return this.installed;
  }

  setList(name: string, stanza: StatusStanza, list: string[]): void {
    this.dropList(name);
    this.installed!.set(name, { stanza, list });
    for (const p of list) {
      let o = this.owners.get(p);
      if (!o) this.owners.set(p, (o = new Set()));
      o.add(name);
    }
  }

  dropList(name: string): void {
    const old = this.installed!.get(name);
    if (!old) return;
    for (const p of old.list) this.owners.get(p)?.delete(name);
    this.installed!.delete(name);
  }

  /** Other packages (info names) than `self` that list `path`. */
  otherOwners(path: string, self?: string): string[] {
    return [...(this.owners.get(path) ?? [])].filter((n) => n !== self);
  }
}

/** The archive's entries by image path (byte strings), and the paths in the order of the `.list`. */
interface DebContents {
  entries: Map<string, TreeEntry>;
  order: string[];
}

function readDebContents(objects: ObjectReader, oid: Oid, files: DebFileEntry[] | undefined): DebContents {
  const entries = new Map<string, TreeEntry>();
  const walked: string[] = [];
  const links: string[] = [];
  const visit = (tree: Oid, at: string) => {
    for (const e of readTree(objects, tree, at || '/').entries) {
      const p = at ? `${at}/${latin1(e.name)}` : latin1(e.name);
      entries.set(p, e);
      if (e.type === 'symlink') links.push(p);
      else walked.push(p);
      if (e.type === 'dir') visit(e.oid!, p);
    }
  };
  visit(oid, '');
  // dpkg-deb --build writes the tree sorted, directories before their contents, symlinks at the end.
  const order = files ? files.map((f) => latin1(f.path)) : ['', ...walked, ...links];
  return { entries, order };
}


/** The path an image path `p` has on the image: directories that are symlinks followed (the last one too with `followLast`). */
function physical(tree: MutableTree, p: string, followLast: boolean): string {
  const queue = p.split('/').filter((x) => x !== '');
  const cur: string[] = [];
  let hops = 0;
  while (queue.length) {
    const c = queue.shift()!;
    if (c === '.') continue;
    if (c === '..') { cur.pop(); continue; }
    if (!queue.length && !followLast) { cur.push(c); break; }
    const node = tree.lookup(bytes([...cur, c].join('/')));
    if (node?.type === 'symlink' && node.linkTarget && hops++ < MAX_SYMLINK_HOPS) {
      const target = latin1(node.linkTarget);
      if (target.startsWith('/')) cur.length = 0;
      queue.unshift(...target.split('/').filter((x) => x !== ''));
      continue;
    }
    cur.push(c);
  }
  return cur.join('/');
}

function show(p: string): string {
  return `/${bytes(p).toString('utf8')}`;
}

function md5(data: Buffer): string {
  return crypto.createHash('md5').update(data).digest('hex');
}

const DPKG_TRIGGERS_DIR = 'var/lib/dpkg/triggers';

/** The `interest` directives of a package's `triggers` control file (deb-triggers(5)). */
export function parseInterests(text: string): Array<{ name: string; noawait: boolean }> {
  const out: Array<{ name: string; noawait: boolean }> = [];
  for (const raw of text.split('\n')) {
    const m = /^\s*interest(-await|-noawait)?\s+(\S+)/.exec(raw.replace(/#.*/, ''));
    if (m) out.push({ name: m[2]!, noawait: m[1] === '-noawait' });
  }
  return out;
}

/**
 * Registers a package's trigger interests as dpkg does when it unpacks it: file triggers as `PATH OWNER[/noawait]`
 * lines of `triggers/File`, explicit ones as `OWNER[/noawait]` lines of `triggers/NAME`. Lines of the previous
 * version that still hold stay where they are, dropped ones go, new ones are appended; an explicit trigger file left
 * with no interested package is removed.
 */
async function updateInterests(db: DpkgDb, owner: string, oldText: string, newText: string): Promise<void> {
  const before = parseInterests(oldText);
  const after = parseInterests(newText);
  if (before.length === 0 && after.length === 0) return;
  const line = (i: { noawait: boolean }) => `${owner}${i.noawait ? '/noawait' : ''}`;
  const ownerOf = (l: string) => l.replace(/\/noawait$/, '');
  const rewrite = async (file: string, wanted: string[], mine: (l: string) => boolean, removeEmpty: boolean) => {
    const had = (await db.readText(file)).split('\n').filter((l) => l !== '');
    const keep = had.filter((l) => !mine(l) || wanted.includes(l));
    for (const w of wanted) if (!keep.includes(w)) keep.push(w);
    if (keep.length === had.length && keep.every((l, i) => l === had[i])) return;
    if (keep.length === 0 && removeEmpty) db.remove(file);
    else await db.write(file, bytes(keep.map((l) => `${l}\n`).join('')));
  };
  const files = after.filter((i) => i.name.startsWith('/'));
  if (files.length || before.some((i) => i.name.startsWith('/'))) {
    await rewrite(`${DPKG_TRIGGERS_DIR}/File`, files.map((i) => `${i.name} ${line(i)}`), (l) => ownerOf(l.slice(l.indexOf(' ') + 1)) === owner, false);
  }
  const names = new Set([...before, ...after].filter((i) => !i.name.startsWith('/')).map((i) => i.name));
  for (const n of names) {
    await rewrite(`${DPKG_TRIGGERS_DIR}/${n}`, after.filter((i) => i.name === n).map(line), (l) => ownerOf(l) === owner, true);
  }
}

async function unpackOne(db: DpkgDb, d: UnpackDeb): Promise<UnpackedDeb> {
  const { tree, objects } = db;
  const c = d.deb.control;
  const name = infoName(c.package, c.architecture, c.multiArch);
  let stanzas = splitStatus(await db.readText(DPKG_STATUS));
  const installed = await db.loadInstalled(stanzas);
  const same = c.multiArch === 'same';
  const old = stanzas.find((s) => s.package === c.package && ((!same && stanzaField(s, 'Multi-Arch') !== 'same') || s.architecture === c.architecture));
  const oldName = old ? stanzaInfoName(old) : undefined;
  const oldList = oldName ? installed.get(oldName)?.list ?? [] : [];
  const oldConffiles = old ? parseConffilesField(stanzaField(old, 'Conffiles')) : [];
  const diversions = parseDiversions(await db.readText(DPKG_DIVERSIONS));
  const contents = readDebContents(objects, d.debTree, d.files);
  const conffilesFile = d.deb.controlFiles.get('conffiles');
  const conffiles = conffilesFile
    ? parseConffilesControl(latin1(conffilesFile.data)).filter((x) => !x.removeOnUpgrade).map((x) => x.path.replace(/^\/+/, ''))
    : [];
  const conffileSet = new Set(conffiles);
  const result: UnpackedDeb = { package: c.package, architecture: c.architecture, version: c.version, conffiles: [], removed: [], takenOver: [], diverted: [] };
  const oldVersion = old && hasFiles(old) ? stanzaField(old, 'Version') : undefined;
  if (oldVersion) result.previousVersion = oldVersion;

  // Files another package lists: refused, or taken over when this package Replaces it. Checked before any edit.
  const takeOver = new Map<string, string[]>();
  for (const [p, e] of contents.entries) {
    if (e.type === 'dir') continue;
    for (const owner of db.otherOwners(p, oldName)) {
      const o = installed.get(owner)!;
      // Multi-Arch: same instances of one package share their common files (dpkg also requires equal content).
      if (same && o.stanza.package === c.package && stanzaField(o.stanza, 'Multi-Arch') === 'same') continue;
      const ov = stanzaField(o.stanza, 'Version') ?? '';
      const replaces = c.replaces.some((g) => g.some((r) => r.name === o.stanza.package && versionSatisfies(ov, r.op, r.version)));
      if (!replaces) throw new FileConflictError(d.file, c.package, show(p), o.stanza.package, ov || undefined);
      const list = takeOver.get(owner) ?? [];
      list.push(p);
      takeOver.set(owner, list);
      result.takenOver.push({ path: show(p), from: o.stanza.package });
    }
  }

  // The files. Directories first in archive order (a parent before its children), then everything else; members
  // of a hardlink group after the group's first member is in place.
  const divert = (p: string): string => {
    const dv = diversions.get(p);
    if (dv && dv.package !== c.package) {
      result.diverted.push({ path: show(p), to: show(dv.to) });
      return dv.to;
    }
    return p;
  };
  const placedAt = new Map<string, string>();
  const members: Array<[string, TreeEntry]> = [];
  for (const p of contents.order) {
    const e = contents.entries.get(p);
    if (!e || p === '') continue;
    if (e.type === 'dir') {
      const at = physical(tree, divert(p), true);
      const there = tree.lookup(bytes(at));
      if (there?.type !== 'dir') tree.mkdir(bytes(at), { mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs, xattrs: e.xattrs });
      continue;
    }
    if (e.hardlink && latin1(e.hardlink) !== p) {
      members.push([p, e]);
      continue;
    }
    let at = physical(tree, divert(p), false);
    if (conffileSet.has(p)) {
      at += '.dpkg-new';
      result.conffiles.push(show(p));
    }
    const { hardlink: _, ...plain } = e;
    tree.putEntry(bytes(at), plain);
    placedAt.set(p, at);
  }
  for (const [p, e] of members) {
    const at = physical(tree, divert(p), false);
    const target = placedAt.get(latin1(e.hardlink!)) ?? physical(tree, divert(latin1(e.hardlink!)), false);
    const there = tree.lookup(bytes(at));
    if (there) tree.remove(bytes(at));
    tree.add({ path: bytes(at), type: 'hardlink', linkTarget: bytes(target), mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs, xattrs: e.xattrs });
    placedAt.set(p, at);
  }

  // The previous version's files that this one does not ship (conffiles stay: dpkg marks them obsolete).
  const obsolete: Conffile[] = oldConffiles
    .filter((o) => !o.removeOnUpgrade && !conffileSet.has(o.path.replace(/^\/+/, '')))
    .map((o) => ({ ...o, obsolete: true }));
  const keep = new Set([...contents.order, ...obsolete.map((o) => o.path.replace(/^\/+/, ''))]);
  for (const p of [...oldList].reverse()) {
    if (p === '' || keep.has(p) || db.otherOwners(p, oldName).length) continue;
    const at = physical(tree, divert(p), false);
    const node = tree.lookup(bytes(at));
    if (!node) continue;
    if (node.type === 'dir' && tree.listDir(bytes(at))!.length) continue;
    tree.remove(bytes(at));
    result.removed.push(show(p));
  }
  result.diverted = result.diverted.filter((x, i, a) => a.findIndex((y) => y.path === x.path) === i);

  // Taken-over paths leave the other packages' lists.
  for (const [owner, paths] of takeOver) {
    const o = installed.get(owner)!;
    const gone = new Set(paths);
    const list = o.list.filter((p) => !gone.has(p));
    await db.write(`${DPKG_INFO_DIR}/${owner}.list`, bytes(formatList(list)));
    db.setList(owner, o.stanza, list);
  }

  // The triggers the old version was interested in, before its info files go.
  const oldTriggers = oldName ? await db.readText(`${DPKG_INFO_DIR}/${oldName}.triggers`) : '';

  // info/: the old version's files go, the new control files, list and md5sums come.
  for (const n of new Set([name, ...(oldName ? [oldName] : [])])) {
    for (const f of tree.listDir(bytes(DPKG_INFO_DIR)) ?? []) {
      const s = latin1(f);
      if (s.startsWith(`${n}.`) && !s.slice(n.length + 1).includes('.')) db.remove(`${DPKG_INFO_DIR}/${s}`);
    }
  }
  for (const [file, cf] of d.deb.controlFiles) {
    await db.write(`${DPKG_INFO_DIR}/${name}.${file}`, cf.data, { mode: cf.mode, uid: cf.uid, gid: cf.gid, mtimeNs: cf.mtimeNs, xattrs: [] });
  }
  const list = [...contents.order.filter((p) => contents.entries.has(p) || p === ''), ...obsolete.map((o) => o.path.replace(/^\/+/, ''))];
  await db.write(`${DPKG_INFO_DIR}/${name}.list`, bytes(formatList(list)));
  if (!d.deb.controlFiles.has('md5sums')) {
    const sums: Array<{ path: string; md5: string }> = [];
    for (const p of contents.order) {
      const e = contents.entries.get(p);
      if (e?.type === 'file') sums.push({ path: p, md5: md5(await readBlobBytes(objects, e.oid!, e.size, show(p))) });
    }
    await db.write(`${DPKG_INFO_DIR}/${name}.md5sums`, bytes(formatMd5sums(sums)));
  }
  if (!tree.lookup(bytes(DPKG_INFO_FORMAT))) await db.write(DPKG_INFO_FORMAT, Buffer.from(DPKG_INFO_FORMAT_TEXT));
  const newTriggers = d.deb.controlFiles.get('triggers');
  await updateInterests(db, name, oldTriggers, newTriggers ? latin1(newTriggers.data) : '');

  // The status stanza.
  const conffileField: Conffile[] = conffiles.map((p) => {
    const o = oldConffiles.find((x) => x.path === `/${p}`);
    return { path: `/${p}`, hash: o ? o.hash : NEW_CONFFILE_HASH };
  });
  conffileField.push(...obsolete);
  let configVersion: string | undefined;
  if (old) {
    const [, , state] = stanzaStatus(old);
    configVersion = stanzaField(old, 'Config-Version') ?? (['installed', 'triggers-pending', 'triggers-awaited'].includes(state) ? stanzaField(old, 'Version') : undefined);
  }
  const want = old && stanzaStatus(old)[0] === 'hold' ? 'hold' : 'install';
  const text = formatStatusStanza(c.fields, { status: `${want} ok unpacked`, ...(configVersion ? { configVersion } : {}), conffiles: conffileField });
  const stanza = splitStatus(text)[0]!;
  stanza.text = text;
  stanzas = sortStanzas([...stanzas.filter((s) => s !== old), stanza]);
  await db.write(DPKG_STATUS, bytes(formatStatus(stanzas)));
  if (oldName) db.dropList(oldName);
  db.setList(name, stanza, list);
  return result;
}
