/**
 * Derivation records: how a commit was made from others (Nix's derivations, osbuild's stage ids). A derived commit
 * carries one in its `derivation` field, so the image can be rebuilt when its base changes. Encoding
 * (docs/format.md §derivation): header `derivation\0` + version, kind, bases, the recipe (its own canonical
 * encoding, header `recipe\0`), tool. The recipe's id is the sha256 of its encoding: results are memoized by
 * (base tree id, recipe id).
 *
 * A recipe holds everything a replay needs and nothing secret in clear: added content by blob or tree id (the bytes
 * are objects of the repository), generated values (ssh host keys, machine ids) by the ids of what they produced.
 */
import { Decoder, DecodeError, Encoder, decodeCode, decodeHeader, encodeHeader } from './codec.js';
import { type Oid, OID_BYTES, bytesToOid, hashBytes, oidToBytes } from './oid.js';
import { type RootMeta, decodeRootMeta, encodeRootMeta, type RootKind, ROOT_KIND_CODES } from './commit.js';
import { type TreeEntry, decodeTree, encodeTree } from './tree.js';

export const DERIVATION_VERSION = 1;
export const RECIPE_VERSION = 1;

/** Frozen: part of the encoding. */
export const DERIVATION_KIND_CODES = { derive: 1, install: 2, upgrade: 3, remove: 4, merge: 5 } as const;
export type DerivationKind = keyof typeof DERIVATION_KIND_CODES;
/** The kinds whose recipe is a PackageRecipe (a package manager's request), not edits. */
export type PackageOp = 'install' | 'upgrade' | 'remove';
export const PACKAGE_RECIPE_VERSION = 1;
export const MERGE_RECIPE_VERSION = 1;

/** What generated a written file's content (shown by `show --derivation`; the content itself is a blob). */
export type Generated = '' | 'hostname' | 'machine-id' | 'ssh-host-key';

/**
 * One edit of a recipe. Paths are image paths as bytes, relative to the image root (a disk: `p1/etc/…`).
 * Frozen op codes: write 1, add-tree 2, add-entry 3, rm 4, mkdir 5, symlink 6, chmod 7, chown 8, set-xattr 9,
 * rm-xattr 10, mtime 11, rename 12.
 */
export type Edit =
  /** File content (an existing file keeps its metadata; a new one gets `mode`, root:root, the recipe's time). */
  | { op: 'write'; path: Buffer; blob: Oid; size: number; mode: number; generated: Generated }
  /**
   * A directory tree merged in at `path` (as `cp -a DIR/. PATH/`), with the directory's own metadata when the source
   * had it (a directory; a tar with a `./` member) — else `path` keeps its own, or is made as `mkdir` would.
   */
  | { op: 'add-tree'; path: Buffer; tree: Oid; meta?: RootMeta }
  /** One entry (a file, symlink, device… with all its metadata) placed at `path`; `entry.name` is the last component. */
  | { op: 'add-entry'; path: Buffer; entry: TreeEntry }
  | { op: 'rm'; path: Buffer }
  | { op: 'mkdir'; path: Buffer; mode: number }
  | { op: 'symlink'; path: Buffer; target: Buffer }
  | { op: 'chmod'; path: Buffer; mode: number }
  | { op: 'chown'; path: Buffer; uid: number; gid: number }
  | { op: 'set-xattr'; path: Buffer; name: string; value: Buffer }
  | { op: 'rm-xattr'; path: Buffer; name: string }
  | { op: 'mtime'; path: Buffer; mtimeNs: bigint }
  | { op: 'rename'; path: Buffer; to: Buffer };

export type EditOp = Edit['op'];

const OP_CODES: Readonly<Record<EditOp, number>> = {
  write: 1, 'add-tree': 2, 'add-entry': 3, rm: 4, mkdir: 5, symlink: 6, chmod: 7, chown: 8, 'set-xattr': 9, 'rm-xattr': 10, mtime: 11, rename: 12,
};
const GENERATED: readonly Generated[] = ['', 'hostname', 'machine-id', 'ssh-host-key'];

export interface Recipe {
  /** Seconds since the epoch: the mtime of what the recipe creates, so a replay makes the same tree. */
  time: number;
  edits: Edit[];
}

export interface DerivationBase {
  commit: Oid;
  rootKind: RootKind;
  /** The base commit's root (tree or disk): with the recipe id, the memo key. */
  root: Oid;
}

/**
 * A package request as it was carried out: what was asked, the options, and the packages unpacked (by the sha256 of
 * each .deb and the id of its stored record: control files, data tree, archive order — see ops/deb-record.ts). Holds
 * no time: the same request on the same base tree is the same recipe, so its result is reused (memoized).
 */
export interface PackageRecipe {
  /** Packages named to install or upgrade (`version` from `name=version`), in the order given. Empty: upgrade all. */
  request: Array<{ name: string; version?: string }>;
  /** Packages named to remove. */
  remove: string[];
  /** Remove with `--purge` (configuration files too). */
  purge: boolean;
  /** Maintainer scripts and triggers were run (else the packages are left unpacked, as `dpkg --unpack`). */
  scripts: boolean;
  /** The packages unpacked, in dpkg's order. */
  debs: Array<{ name: string; version: string; arch: string; sha256: Oid; record: Oid }>;
  /** Installed packages the resolver removed besides the named ones (conflicts, broken reverse dependencies). */
  removed: string[];
}

interface DerivationCommon {
  bases: DerivationBase[];
  /** The program that made it ('viva 0.1.0'); recorded, not part of the memo key (the recipe version is). */
  tool: string;
}

/** Edits applied to one base (derive, derive --batch). */
export interface EditDerivation extends DerivationCommon {
  kind: 'derive';
  recipe: Recipe;
}

/** Packages installed, upgraded or removed (install, upgrade, remove). */
export interface PackageDerivation extends DerivationCommon {
  kind: PackageOp;
  recipe: PackageRecipe;
}

/**
 * How two images were merged (`viva merge`): the merge base compared with, and the conflicts resolved by hand, by
 * path. The two inputs are the derivation's bases (ours first).
 */
export interface MergeRecipe {
  /** The merge base (null: unrelated histories merged against an empty image). */
  base: Oid | null;
  resolutions: Array<{ path: Buffer; how: 'ours' | 'theirs' | 'base' | 'content'; blob?: Oid; size?: number }>;
}

/** Two images merged (merge). */
export interface MergeDerivation extends DerivationCommon {
  kind: 'merge';
  recipe: MergeRecipe;
}

export type Derivation = EditDerivation | PackageDerivation | MergeDerivation;

const RESOLUTION_CODES = { ours: 1, theirs: 2, base: 3, content: 4 } as const;

export function encodeMergeRecipe(r: MergeRecipe): Buffer {
  const e = encodeHeader(new Encoder(), 'merge', MERGE_RECIPE_VERSION);
  if (r.base) e.u8(1).raw(oidToBytes(r.base)); else e.u8(0);
  e.uint(r.resolutions.length);
  for (const x of r.resolutions) {
    e.bytes(x.path).u8(RESOLUTION_CODES[x.how]);
    if (x.how === 'content') e.raw(oidToBytes(x.blob!)).uint(x.size ?? 0);
  }
  return e.finish();
}

export function decodeMergeRecipe(buf: Uint8Array): MergeRecipe {
  const d = new Decoder(buf);
  decodeHeader(d, 'merge', MERGE_RECIPE_VERSION);
  const has = d.u8();
  if (has > 1) throw new DecodeError('bad base flag', d.pos - 1);
  const base = has ? bytesToOid(d.raw(OID_BYTES)) : null;
  const n = d.uint();
  if (n > buf.length) throw new DecodeError('count exceeds recipe size', d.pos);
  const resolutions: MergeRecipe['resolutions'] = [];
  for (let i = 0; i < n; i++) {
    const path = Buffer.from(d.bytes());
    const how = decodeCode(d, RESOLUTION_CODES, 'resolution');
    resolutions.push(how === 'content' ? { path, how, blob: bytesToOid(d.raw(OID_BYTES)), size: d.uint() } : { path, how });
  }
  d.expectEnd();
  return { base, resolutions };
}

export function isPackageOp(kind: DerivationKind): kind is PackageOp {
  return kind === 'install' || kind === 'upgrade' || kind === 'remove';
}

export function encodeRecipe(r: Recipe): Buffer {
  const e = encodeHeader(new Encoder(), 'recipe', RECIPE_VERSION);
  e.sbig(BigInt(r.time)).uint(r.edits.length);
  for (const ed of r.edits) {
    e.u8(OP_CODES[ed.op]).bytes(ed.path);
    switch (ed.op) {
      case 'write': e.raw(oidToBytes(ed.blob)).uint(ed.size).uint(ed.mode & 0o7777).u8(GENERATED.indexOf(ed.generated)); break;
      case 'add-tree': e.raw(oidToBytes(ed.tree)); if (ed.meta) encodeRootMeta(e.u8(1), ed.meta); else e.u8(0); break;
      case 'add-entry': e.bytes(encodeTree({ entries: [ed.entry] })); break;
      case 'rm': break;
      case 'mkdir': e.uint(ed.mode & 0o7777); break;
      case 'symlink': e.bytes(ed.target); break;
      case 'chmod': e.uint(ed.mode & 0o7777); break;
      case 'chown': e.uint(ed.uid).uint(ed.gid); break;
      case 'set-xattr': e.str(ed.name).bytes(ed.value); break;
      case 'rm-xattr': e.str(ed.name); break;
      case 'mtime': e.sbig(ed.mtimeNs); break;
      case 'rename': e.bytes(ed.to); break;
    }
  }
  return e.finish();
}

export function decodeRecipe(buf: Uint8Array): Recipe {
  const d = new Decoder(buf);
  decodeHeader(d, 'recipe', RECIPE_VERSION);
  const time = Number(d.sbig());
  const n = d.uint();
  if (n > buf.length) throw new DecodeError('edit count exceeds recipe size', d.pos);
  const edits: Edit[] = [];
  for (let i = 0; i < n; i++) {
    const op = decodeCode(d, OP_CODES, 'edit');
    const path = Buffer.from(d.bytes());
    switch (op) {
      case 'write': {
        const blob = bytesToOid(d.raw(OID_BYTES));
        const size = d.uint();
        const mode = d.uint();
        const g = GENERATED[d.u8()];
        if (g === undefined) throw new DecodeError('unknown generated kind', d.pos - 1);
        edits.push({ op, path, blob, size, mode, generated: g });
        break;
      }
      case 'add-tree': {
        const tree = bytesToOid(d.raw(OID_BYTES));
        const has = d.u8();
        if (has > 1) throw new DecodeError('bad metadata flag', d.pos - 1);
        edits.push(has ? { op, path, tree, meta: decodeRootMeta(d) } : { op, path, tree });
        break;
      }
      case 'add-entry': {
        const t = decodeTree(d.bytes());
        if (t.entries.length !== 1) throw new DecodeError('add-entry holds one entry', d.pos);
        edits.push({ op, path, entry: t.entries[0]! });
        break;
      }
      case 'rm': edits.push({ op, path }); break;
      case 'mkdir': edits.push({ op, path, mode: d.uint() }); break;
      case 'symlink': edits.push({ op, path, target: Buffer.from(d.bytes()) }); break;
      case 'chmod': edits.push({ op, path, mode: d.uint() }); break;
      case 'chown': edits.push({ op, path, uid: d.uint(), gid: d.uint() }); break;
      case 'set-xattr': edits.push({ op, path, name: d.str(), value: Buffer.from(d.bytes()) }); break;
      case 'rm-xattr': edits.push({ op, path, name: d.str() }); break;
      case 'mtime': edits.push({ op, path, mtimeNs: d.sbig() }); break;
      case 'rename': edits.push({ op, path, to: Buffer.from(d.bytes()) }); break;
    }
  }
  d.expectEnd();
  return { time, edits };
}

/** The recipe's id: sha256 of its canonical encoding. */
export function recipeId(r: Recipe): Oid {
  return hashBytes(encodeRecipe(r));
}

export function encodePackageRecipe(r: PackageRecipe): Buffer {
  const e = encodeHeader(new Encoder(), 'packages', PACKAGE_RECIPE_VERSION);
  e.uint(r.request.length);
  for (const q of r.request) e.str(q.name).str(q.version ?? '');
  e.uint(r.remove.length);
  for (const n of r.remove) e.str(n);
  e.u8((r.purge ? 1 : 0) | (r.scripts ? 2 : 0)).uint(r.debs.length);
  for (const d of r.debs) e.str(d.name).str(d.version).str(d.arch).raw(oidToBytes(d.sha256)).raw(oidToBytes(d.record));
  e.uint(r.removed.length);
  for (const n of r.removed) e.str(n);
  return e.finish();
}

export function decodePackageRecipe(buf: Uint8Array): PackageRecipe {
  const d = new Decoder(buf);
  decodeHeader(d, 'packages', PACKAGE_RECIPE_VERSION);
  const count = () => {
    const n = d.uint();
    if (n > buf.length) throw new DecodeError('count exceeds recipe size', d.pos);
    return n;
  };
  const request: PackageRecipe['request'] = [];
  for (let i = count(); i > 0; i--) {
    const name = d.str();
    const version = d.str();
    request.push(version ? { name, version } : { name });
  }
  const remove: string[] = [];
  for (let i = count(); i > 0; i--) remove.push(d.str());
  const flags = d.u8();
  if (flags > 3) throw new DecodeError('bad option flags', d.pos - 1);
  const debs: PackageRecipe['debs'] = [];
  for (let i = count(); i > 0; i--) {
    debs.push({ name: d.str(), version: d.str(), arch: d.str(), sha256: bytesToOid(d.raw(OID_BYTES)), record: bytesToOid(d.raw(OID_BYTES)) });
  }
  const removed: string[] = [];
  for (let i = count(); i > 0; i--) removed.push(d.str());
  d.expectEnd();
  return { request, remove, purge: (flags & 1) !== 0, scripts: (flags & 2) !== 0, debs, removed };
}

/** The encoding of a derivation's recipe (edits or a package request): what its id hashes. */
function encodeAnyRecipe(dv: Derivation): Buffer {
  if (dv.kind === 'derive') return encodeRecipe(dv.recipe);
  if (dv.kind === 'merge') return encodeMergeRecipe(dv.recipe);
  return encodePackageRecipe(dv.recipe);
}

/** The id of a derivation's recipe, of either kind: with the base root, the memo key. */
export function derivationRecipeId(dv: Derivation): Oid {
  return hashBytes(encodeAnyRecipe(dv));
}

/** The package recipe's id: sha256 of its canonical encoding. */
export function packageRecipeId(r: PackageRecipe): Oid {
  return hashBytes(encodePackageRecipe(r));
}

/**
 * Objects a derivation refers to besides its bases, which a replay (`rebuild`) needs: written blobs and added trees
 * of edits, the stored records of unpacked packages. Reachability (gc, fsck, sync) follows these as it follows trees.
 */
export function derivationReferences(dv: Derivation): Array<{ kind: 'blob' | 'tree'; oid: Oid }> {
  if (dv.kind === 'merge') return dv.recipe.resolutions.flatMap((r) => (r.blob ? [{ kind: 'blob' as const, oid: r.blob }] : []));
  if (dv.kind !== 'derive') return dv.recipe.debs.map((d) => ({ kind: 'tree' as const, oid: d.record }));
  const out: Array<{ kind: 'blob' | 'tree'; oid: Oid }> = [];
  for (const e of dv.recipe.edits) {
    if (e.op === 'write') out.push({ kind: 'blob', oid: e.blob });
    else if (e.op === 'add-tree') out.push({ kind: 'tree', oid: e.tree });
    else if (e.op === 'add-entry' && e.entry.oid) out.push({ kind: e.entry.type === 'dir' ? 'tree' : 'blob', oid: e.entry.oid });
  }
  return out;
}

export function encodeDerivation(dv: Derivation): Buffer {
  const e = encodeHeader(new Encoder(), 'derivation', DERIVATION_VERSION);
  e.u8(DERIVATION_KIND_CODES[dv.kind]).uint(dv.bases.length);
  for (const b of dv.bases) e.raw(oidToBytes(b.commit)).u8(ROOT_KIND_CODES[b.rootKind]).raw(oidToBytes(b.root));
  e.bytes(encodeAnyRecipe(dv)).str(dv.tool);
  return e.finish();
}

export function decodeDerivation(buf: Uint8Array): Derivation {
  const d = new Decoder(buf);
  decodeHeader(d, 'derivation', DERIVATION_VERSION);
  const kind = decodeCode(d, DERIVATION_KIND_CODES, 'derivation kind');
  const nb = d.uint();
  if (nb > 1024) throw new DecodeError('too many bases', d.pos);
  const bases: DerivationBase[] = [];
  for (let i = 0; i < nb; i++) {
    const commit = bytesToOid(d.raw(OID_BYTES));
    bases.push({ commit, rootKind: decodeCode(d, ROOT_KIND_CODES, 'root kind'), root: bytesToOid(d.raw(OID_BYTES)) });
  }
  const recipe = d.bytes();
  const tool = d.str();
  d.expectEnd();
  if (kind === 'derive') return { kind, bases, recipe: decodeRecipe(recipe), tool };
  if (kind === 'merge') return { kind, bases, recipe: decodeMergeRecipe(recipe), tool };
  return { kind, bases, recipe: decodePackageRecipe(recipe), tool };
}

/** The memo key of a derivation step: sha256('memo\0' + base root id + recipe id). */
export function memoKey(baseRoot: Oid, recipe: Oid): Oid {
  return hashBytes(Buffer.concat([Buffer.from('memo\0'), oidToBytes(baseRoot), oidToBytes(recipe)]));
}
