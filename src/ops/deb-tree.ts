/** The file tree of a .deb's data archive, stored as a viva tree so that installs can merge it into any base at tree level. */
import type { EntryType, ImageEntry, ImageReader } from '../formats/types.js';
import type { RootMeta } from '../model/commit.js';
import type { Oid } from '../model/oid.js';
import { type DebPackage, hashDeb, readDeb } from '../packages/deb.js';
import type { ObjectWriter } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { MutableTree } from '../tree/mutable-tree.js';
import { type IngestContext, ingestEntries } from './ingest.js';

/** One member of the data archive, in archive order (what dpkg records in `var/lib/dpkg/info/PKG.list`). */
export interface DebFileEntry {
  /** Image path (`usr/bin/x`; '' is the root `./`). */
  path: Buffer;
  /** A hardlink's type is `hardlink` here (its tree entry has the target's type). */
  type: EntryType | 'hardlink';
}

/** What {@link debTree} stored for a .deb: the tree of its data archive and the files in it. */
export interface DebTreeResult {
  /** The tree of the data archive. */
  tree: Oid;
  /** The metadata of the archive's `./` entry (or the implied 0755 root:root when it has none). */
  rootMeta: RootMeta;
  files: DebFileEntry[];
  /** Files and bytes stored (every one: the tree is built from nothing). */
  fileCount: number;
  bytes: number;
  /** The package: control paragraph and control files. */
  deb: DebPackage;
}

/**
 * Unpacks the data archive of the .deb `file` into a tree, storing its contents and trees through `writer`.
 * The tree is a pure function of the archive's members and their tar metadata (modes, owners, times, xattrs), so
 * a caller memoizes it by the .deb's sha256 (`hashDeb`) together with the tree format version: nothing else is an
 * input. The same content committed from a directory (`dpkg-deb -x` as root) gives the same tree id.
 *
 * Locking: none; objects are written unreferenced, so the caller holds a session (`repo.beginSession`) until a ref
 * or memo entry points at the tree.
 * Throws what `readDeb` and the data archive throw (CorruptInputError, UnsafeInputError, UnsupportedInputError,
 * SourceReadError, all naming the file), and AbortedError when `signal` fires.
 *
 * @example
 * const { tree, files } = await debTree(repo, repo.objects, 'hello_2.10-3_amd64.deb');
 */
export async function debTree(repo: Repository, writer: ObjectWriter, file: string, options: { signal?: AbortSignal } = {}): Promise<DebTreeResult> {
  const deb = await readDeb(file);
  const files: DebFileEntry[] = [];
  const recording: ImageReader = {
    description: deb.data.description,
    entries: async function* (signal?: AbortSignal) {
      for await (const e of deb.data.entries(signal) as AsyncIterable<ImageEntry>) {
        files.push({ path: e.path, type: e.type });
        yield e;
      }
    },
  };
  const tree = new MutableTree(undefined, { sourceName: file });
  const ctx: IngestContext = {
    store: repo.objects, statCache: repo.statCache, writer, useCache: false, startNs: 0n, cacheUpdates: [], files: 0, bytes: 0, cachedFiles: 0,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  await ingestEntries(ctx, recording, tree, file);
  const written = tree.write(writer);
  return { tree: written.oid, rootMeta: tree.rootMeta(), files, fileCount: ctx.files, bytes: ctx.bytes, deb };
}

export { hashDeb };
