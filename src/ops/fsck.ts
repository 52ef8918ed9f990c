/** The fsck op: rehash every object, check every reachable object is present and every tree is well-formed. */
import { decodeBlob } from '../model/blob.js';
import { hashBytes } from '../model/oid.js';
import { decodeStored } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import type { ProgressEvent } from './commit.js';
import { type ReachProblem, rootCommits, walkReachable } from './reachable.js';
import { blobContentHash, encodingProblem } from '../store/typed.js';
import { checkIndex } from './index-rebuild.js';
import { partialConfig } from '../sync/partial.js';
import { isOid } from '../model/oid.js';

/** fsck reports progress every this many objects (and at the first). */
export const FSCK_PROGRESS_EVERY = 256;

/** Orders pack ids: numeric ids ("2" before "10") by their number, others (content hashes) as strings. */
function comparePackIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** The options of {@link fsck}. */
export interface FsckOptions {
  /** Skip rehashing content (chunks and blob reassembly); still checks structure and reachability. */
  connectivityOnly?: boolean;
  onProgress?: (e: ProgressEvent) => void;
}

/** What {@link fsck} found: counts of objects checked and reachable, and every problem (empty when `ok`). */
export interface FsckResult {
  ok: boolean;
  objects: number;
  reachable: number;
  /** Objects nothing reaches (gc removes them). */
  unreachable: number;
  /** Bytes of pack space no index entry points at (an interrupted commit's packs, dead objects): gc reclaims them. */
  garbageBytes: number;
  problems: ReachProblem[];
}

/**
 * Verifies the repository. Locking: none (reads a consistent LMDB snapshot; commits may run meanwhile).
 * Never throws for damage: damage is reported in `problems` (and the CLI exits non-zero).
 */
export async function fsck(repo: Repository, options: FsckOptions = {}): Promise<FsckResult> {
  const store = repo.objects;
  const problems: ReachProblem[] = [];
  const partial = partialConfig(repo) !== undefined;
  let objects = 0;
  {
    // A repository in a bucket: every pack and segment is read and checked first (their objects enter the cache).
    problems.push(...await repo.verifyStorage((done, total) => {
      if (done % 16 === 1 || done === total) options.onProgress?.({ phase: 'downloading packs', files: done, bytes: 0, totalFiles: total });
    }));
    // In pack order, so that each pack is read (copied) about once rather than once per object.
    const all = [...repo.index.listAll()].map((o) => ({ ...o, loc: repo.index.locate(o.kind, o.oid) }));
    all.sort((a, b) => comparePackIds(a.loc?.pack ?? '', b.loc?.pack ?? '') || (a.loc?.offset ?? 0) - (b.loc?.offset ?? 0));
    for (const { kind, oid } of all) {
      objects++;
      if (objects % FSCK_PROGRESS_EVERY === 1) options.onProgress?.({ phase: 'checking objects', files: objects, bytes: 0, totalFiles: all.length });
      let data: Buffer;
      try {
        data = decodeStored(store.readStored(kind, oid)!);
      } catch (e) {
        problems.push({ kind, oid, problem: `cannot decode stored value: ${(e as Error).message}` });
        continue;
      }
      try {
        switch (kind) {
          case 'chunk':
            if (!options.connectivityOnly && hashBytes(data) !== oid) problems.push({ kind, oid, problem: 'content does not match its id' });
            break;
          case 'tree':
          case 'commit':
          case 'disk': {
            const problem = encodingProblem(kind, oid, data);
            if (problem) problems.push({ kind, oid, problem });
            break;
          }
          case 'blob': {
            const rec = decodeBlob(data);
            if (options.connectivityOnly) break;
            const readChunk = (c: string) => { const stored = store.readStored('chunk', c); return stored && decodeStored(stored); };
            const r = blobContentHash(rec, readChunk, (c, actual, expected) => problems.push({ kind, oid, problem: `chunk ${c} has length ${actual}, expected ${expected}` }));
            // A partial clone fetches chunks on demand: a missing one is expected there.
            if ('missing' in r) { if (!partial) problems.push({ kind, oid, problem: `chunk ${r.missing} missing` }); }
            else if (r.digest !== oid) problems.push({ kind, oid, problem: 'content does not match its id' });
            break;
          }
          default:
            break;
        }
      } catch (e) {
        problems.push({ kind, oid, problem: (e as Error).message });
      }
    }
    let garbageBytes = 0;
    // A bucket's packs were read above; their unreferenced bytes are gc's (orphan packs, marked copies).
    for await (const { id } of repo.inBucket ? [] : repo.packs.list()) {
      try {
        const inspected = store.inspectPack(id);
        inspected?.header.forEach((e, i) => { if (!inspected.live[i]) garbageBytes += e.length; });
      } catch (e) {
        problems.push({ kind: 'pack', oid: id, problem: (e as Error).message });
      }
    }
    for (const { ref, oid } of repo.refs.list('')) {
      if (!isOid(oid)) problems.push({ kind: 'ref', oid: ref, problem: `malformed value '${oid}'` });
      else if (!store.hasObject('commit', oid)) problems.push({ kind: 'ref', oid: ref, problem: `points at missing commit ${oid}` });
    }
    problems.push(...checkIndex(repo));
    const reach = walkReachable(repo, rootCommits(repo));
    const seen = new Set(problems.map((p) => `${p.kind}:${p.oid}:${p.problem}`));
    for (const p of reach.problems) if (!seen.has(`${p.kind}:${p.oid}:${p.problem}`)) problems.push(p);
    return {
      ok: problems.length === 0, objects, reachable: reach.reachable.size, unreachable: Math.max(0, objects - reach.reachable.size),
      garbageBytes, problems,
    };
  }
}
