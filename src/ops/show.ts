/** The show op: one commit with its metadata and a summary of its image. */
import type { Repository } from '../store/repository.js';
import { commitTree, readDisk, readTree } from '../store/typed.js';
import { type DiskInfo, describeDisk } from './disk-info.js';
import { type LogEntry, headBranch, toLogEntry } from './log-entry.js';
import { resolveRevision } from './resolve.js';
import { type DerivationInfo, showDerivation } from './derivations.js';

/** A commit as {@link show} describes it: the log entry plus its root, disk layout and derivation. */
export interface ShowResult extends LogEntry {
  /** The tree paths address (a disk commit's view tree). */
  tree: string;
  /** Disk commits: the disk object (partition table, regions, file systems). */
  disk?: DiskInfo;
  rootMeta?: { mode: string; uid: number; gid: number; mtimeNs: string };
  /** Number of entries in the root directory. */
  rootEntries: number;
  refs: string[];
  /** Derived commits: how it was made (base, recipe, tool). */
  derivation?: DerivationInfo;
}

/** Locking: none. Throws RevisionNotFoundError. */
export function show(repo: Repository, rev = 'HEAD'): ShowResult {
  const r = resolveRevision(repo, rev);
  const c = r.commit;
  const refs: string[] = [];
  for (const { ref, oid } of repo.refs.list('')) if (oid === r.oid) refs.push(ref);
  const tree = commitTree(repo.objects, c);
  const head = headBranch(repo);
  return {
    ...toLogEntry(r.oid, c),
    ...(head?.oid === r.oid ? { head: head.ref } : {}),
    tree,
    ...(c.rootKind === 'disk' ? { disk: describeDisk(c.root, readDisk(repo.objects, c.root)) } : {}),
    ...(c.rootMeta ? { rootMeta: { mode: c.rootMeta.mode.toString(8).padStart(4, '0'), uid: c.rootMeta.uid, gid: c.rootMeta.gid, mtimeNs: c.rootMeta.mtimeNs.toString() } } : {}),
    rootEntries: readTree(repo.objects, tree).entries.length,
    refs,
    ...(c.derivation ? { derivation: showDerivation(repo, r.oid)! } : {}),
  };
}
