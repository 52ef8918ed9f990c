/**
 * Hardlink groups in the tree merge. Members of a group share one inode, so a group merges as a whole, not path by
 * path: a group only one side touched is taken from that side (every member, with that side's canonical name), a
 * group both sides touched in different ways is a conflict on its paths. A group is "touched" on a side when one of
 * its members differs from base there (content, metadata, group name, or the member added or removed).
 *
 * The paths involved come from two places: the three-way walk hands over every path where a hardlinked entry
 * differs, and the subtrees the walk takes whole from one side (by id, unread) are read here afterwards, only their
 * changed directories, for hardlinked entries that side changed — a group can span a subtree one side changed and
 * paths the other changed. Groups are joined across sides by shared paths and by name: two paths in one group on any
 * side are in one cluster, decided together.
 */
import type { Oid } from '../model/oid.js';
import type { TreeEntry } from '../model/tree.js';
import type { ObjectReader } from '../store/object-store.js';
import { walkTrees } from './walk.js';
import { isLinked, sameEntry } from './merge-fields.js';

/** A path where a hardlinked entry differs between base, ours and theirs. */
export interface LinkedPath {
  path: Buffer;
  b?: TreeEntry;
  o?: TreeEntry;
  t?: TreeEntry;
  /** The side whose entry the merged tree holds there before the groups are decided. */
  current: 'ours' | 'theirs';
}

/** A subtree the walk took whole: `side` changed it and the other side kept base's (`both`: both made it the same). */
export interface WholeSubtree {
  path: Buffer;
  side: 'ours' | 'theirs' | 'both';
  base?: TreeEntry;
  dir: TreeEntry;
}

/** What the groups decide: entries to put in the merged tree (undefined: remove), and the paths that conflict. */
export interface LinkDecision {
  sets: Array<{ path: Buffer; entry: TreeEntry | undefined }>;
  /** `group`: a number shared by the paths of one conflicting cluster; `members`: all its paths. */
  conflicts: Array<{ rec: LinkedPath; group: number; members: Buffer[] }>;
}

/** The hardlinked entries `s.side` changed below `s.path` (only the directories that differ from base are read). */
function scanSubtree(objects: ObjectReader, s: WholeSubtree, out: LinkedPath[], signal?: AbortSignal): void {
  const baseDir: Oid | undefined = s.base?.type === 'dir' ? s.base.oid : undefined;
  walkTrees(objects, [baseDir, s.dir.oid], {
    path: s.path,
    signal,
    enter(path, [b, e]) {
      if (sameEntry(b, e) || !(isLinked(b) || isLinked(e))) return true;
      const o = s.side === 'theirs' ? b : e;
      const t = s.side === 'ours' ? b : e;
      out.push({ path, b, o, t, current: s.side === 'theirs' ? 'theirs' : 'ours' });
      // A member replaced by a directory (or the reverse) is taken or kept with its subtree, as one entry.
      return false;
    },
  });
}

/**
 * Adds the hardlinked entries changed inside the whole-taken subtrees to `found`. Ours' subtrees are read only when
 * theirs touched some group at all: when it did not, every group is ours' alone and the merged tree already has it.
 */
export function scanWholeSubtrees(objects: ObjectReader, subtrees: readonly WholeSubtree[], found: LinkedPath[], signal?: AbortSignal): void {
  for (const s of subtrees) if (s.side !== 'ours') scanSubtree(objects, s, found, signal);
  if (!found.some((r) => !sameEntry(r.b, r.t))) return;
  for (const s of subtrees) if (s.side === 'ours') scanSubtree(objects, s, found, signal);
}

/** Union-find over string keys. */
class Clusters {
  private readonly parent = new Map<string, string>();
  find(k: string): string {
    let p = this.parent.get(k) ?? k;
    if (p !== k) {
      p = this.find(p);
      this.parent.set(k, p);
    }
    return p;
  }
  join(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(ra, rb);
  }
}

/** Groups `recs` into clusters: paths sharing a group on any side, transitively. */
function cluster(recs: readonly LinkedPath[]): LinkedPath[][] {
  const c = new Clusters();
  for (const r of recs) {
    const pk = `p:${r.path.toString('latin1')}`;
    for (const [side, e] of [['b', r.b], ['o', r.o], ['t', r.t]] as const) {
      if (isLinked(e)) c.join(pk, `${side}:${e!.hardlink!.toString('latin1')}`);
    }
  }
  const out = new Map<string, LinkedPath[]>();
  for (const r of recs) {
    const root = c.find(`p:${r.path.toString('latin1')}`);
    const list = out.get(root) ?? [];
    list.push(r);
    out.set(root, list);
  }
  return [...out.values()];
}

/**
 * Decides every cluster of `recs`: touched on one side → that side's entries (put where the merged tree holds the
 * other's); touched on both the same way → kept; touched on both differently → a conflict at each path where ours
 * and theirs differ. Symmetric in ours and theirs.
 */
export function decideLinkGroups(recs: readonly LinkedPath[]): LinkDecision {
  const decision: LinkDecision = { sets: [], conflicts: [] };
  let group = 0;
  for (const members of cluster(recs)) {
    const byOurs = members.some((r) => !sameEntry(r.b, r.o));
    const byTheirs = members.some((r) => !sameEntry(r.b, r.t));
    const differ = members.filter((r) => !sameEntry(r.o, r.t));
    if (byOurs && byTheirs && differ.length) {
      group++;
      const paths = members.map((r) => r.path).sort(Buffer.compare);
      for (const rec of differ) decision.conflicts.push({ rec, group, members: paths });
      continue;
    }
    const side = byTheirs && !byOurs ? 'theirs' : 'ours';
    for (const r of members) {
      const want = side === 'theirs' ? r.t : r.o;
      if (!sameEntry(want, r.current === 'theirs' ? r.t : r.o)) decision.sets.push({ path: r.path, entry: want });
    }
  }
  return decision;
}
