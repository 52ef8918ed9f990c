/**
 * Reachability walk shared by fsck and gc: every object the refs, HEAD and reflogs reach, and the disks built to serve
 * reachable directory commits.
 */
import type { Oid } from '../model/oid.js';
import type { ObjectKind } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { readBlobRecord, readCommit, readDisk } from '../store/typed.js';
import { diskReferences } from '../model/disk.js';
import { decodeDerivation, derivationReferences } from '../model/derivation.js';
import { walkTree } from '../tree/walk.js';
import { HEAD } from '../model/ref.js';
import { partialConfig } from '../sync/partial.js';
import { listTreeDisks } from './tree-disk.js';

export interface ReachProblem {
  kind: ObjectKind | 'ref' | 'pack' | 'index';
  oid: string;
  problem: string;
}

export interface ReachResult {
  /** `${kind}:${oid}` of every reachable object that exists. */
  reachable: Set<string>;
  problems: ReachProblem[];
}

/** Roots: every ref, HEAD, and (unless `refsOnly`) every oid a reflog names. */
export function rootCommits(repo: Repository, refsOnly = false): Array<{ oid: Oid; from: string }> {
  const roots: Array<{ oid: Oid; from: string }> = repo.refs.list('').map((r) => ({ oid: r.oid, from: r.ref }));
  const head = repo.refs.resolve(HEAD)?.oid;
  if (head) roots.push({ oid: head, from: HEAD });
  if (!refsOnly) for (const oid of repo.refs.reflogOids()) roots.push({ oid, from: 'reflog' });
  return roots;
}

/** Options of {@link walkReachable}. */
export interface WalkOptions {
  /**
   * Whether the object exists (default `repo.objects.hasObject`). gc of a bucket repository counts copies that an
   * earlier gc marked too: they are still readable, and a writer that relied on one keeps it alive.
   */
  exists?: (kind: ObjectKind, oid: Oid) => boolean;
}

/**
 * Marks everything reachable; missing or undecodable objects become problems (the walk goes on around them).
 * Hardlink groups are checked for consistency (every member has the same type and content).
 */
export function walkReachable(repo: Repository, roots: Array<{ oid: Oid; from: string }>, options: WalkOptions = {}): ReachResult {
  const store = repo.objects;
  const exists = options.exists ?? ((kind: ObjectKind, oid: Oid) => store.hasObject(kind, oid));
  const reachable = new Set<string>();
  const problems: ReachProblem[] = [];
  const fail = (kind: ObjectKind, oid: string, problem: string) => problems.push({ kind, oid, problem });
  // A partial clone lacks file content by design: it is fetched on demand, so its absence is no damage.
  const partial = partialConfig(repo) !== undefined;
  const has = (kind: ObjectKind, oid: Oid, via: string): boolean => {
    const k = `${kind}:${oid}`;
    if (reachable.has(k)) return false;
    if (!exists(kind, oid)) {
      if (!(partial && (kind === 'blob' || kind === 'chunk'))) fail(kind, oid, `missing (referenced by ${via})`);
      reachable.add(k);
      return false;
    }
    reachable.add(k);
    return true;
  };
  const blob = (oid: Oid, via: string) => {
    if (!has('blob', oid, via)) return;
    try {
      const rec = readBlobRecord(store, oid);
      if (rec.form === 'chunked') for (const s of rec.segments) if (s.kind === 'chunk') has('chunk', s.oid, `blob ${oid}`);
    } catch (e) { fail('blob', oid, (e as Error).message); }
  };
  // Each tree once, through the walker: a subtree already reached (or missing) is pruned, one that cannot be read is
  // a problem and the walk goes on. `parents` is the stack of trees whose entries the walk is at, each with its
  // hardlink groups (a group's members are checked within one tree, as commit names them).
  const tree = (root: Oid, via: string) => {
    if (!has('tree', root, via)) return;
    const parents: Array<{ oid: Oid; groups: Map<string, string> }> = [{ oid: root, groups: new Map() }];
    walkTree(store, root, (_p, e) => {
      const parent = parents[parents.length - 1]!;
      const from = `tree ${parent.oid}`;
      if (e.type === 'file' && e.oid) blob(e.oid, from);
      if (e.hardlink) {
        const sig = `${e.type}:${e.oid ?? ''}:${e.linkTarget?.toString('hex') ?? ''}`;
        const g = e.hardlink.toString('latin1');
        const prev = parent.groups.get(g);
        if (prev !== undefined && prev !== sig) fail('tree', parent.oid, `hardlink group '${e.hardlink.toString('utf8')}' has members with different content`);
        parent.groups.set(g, sig);
      }
      if (e.type !== 'dir' || !e.oid || !has('tree', e.oid, from)) return false;
      parents.push({ oid: e.oid, groups: new Map() });
      return true;
    }, {
      leave: () => { parents.pop(); },
      onReadError: (e, _p, oid) => fail('tree', oid, (e as Error).message),
    });
  };
  const disk = (oid: Oid, via: string): void => {
    if (!has('disk', oid, via)) return;
    let d;
    try { d = readDisk(store, oid); } catch (e) { fail('disk', oid, (e as Error).message); return; }
    const from = `disk ${oid}`;
    for (const ref of diskReferences(d)) {
      if (ref.kind === 'tree') tree(ref.oid, from);
      else if (ref.kind === 'blob') blob(ref.oid, from);
      else disk(ref.oid, from);
    }
  };
  const stack = roots.map((r) => ({ oid: r.oid, via: r.from }));
  while (stack.length) {
    const { oid, via } = stack.pop()!;
    if (!has('commit', oid, via)) continue;
    let c;
    try { c = readCommit(store, oid); } catch (e) { fail('commit', oid, (e as Error).message); continue; }
    if (c.rootKind === 'tree') tree(c.root, `commit ${oid}`);
    else disk(c.root, `commit ${oid}`);
    // What a replay needs: the recipe's content and package records (not the bases: they are references only).
    if (c.derivation) {
      try {
        for (const r of derivationReferences(decodeDerivation(c.derivation))) {
          if (r.kind === 'tree') tree(r.oid, `derivation of commit ${oid}`);
          else blob(r.oid, `derivation of commit ${oid}`);
        }
      } catch (e) { fail('commit', oid, `derivation record: ${(e as Error).message}`); }
    }
    for (const p of c.parents) stack.push({ oid: p, via: `commit ${oid}` });
  }
  // Disks built to serve directory commits (tree-disk.ts): kept while their tree is reachable; a record whose disk
  // is gone is no damage (it is built again when needed).
  for (const t of listTreeDisks(repo)) {
    if (reachable.has(`tree:${t.tree}`) && exists('disk', t.disk)) disk(t.disk, `the disk built for tree ${t.tree}`);
  }
  return { reachable, problems };
}
