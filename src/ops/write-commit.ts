/**
 * The one way commits are recorded: encode the commit object, make every object durable, then move the branch by
 * compare-and-swap with a reflog entry, the package index entries riding in the same transaction. commit, derive,
 * rebuild (and later install and merge) all end here.
 */
import os from 'node:os';
import { UsageError, WriteError } from '../errors.js';
import { type Commit, checkCommitTime, encodeCommit, hashCommit, parseAuthor, parseCommitTime } from '../model/commit.js';
import type { Oid } from '../model/oid.js';
import type { ObjectWriter } from '../store/object-store.js';
import type { Repository } from '../store/repository.js';
import { packageIndexEntries } from './image-packages.js';

/** The author a new commit records when none is given: VIVA_AUTHOR, else `user <user@host>`. */
export function defaultAuthor(): string {
  if (process.env.VIVA_AUTHOR) return process.env.VIVA_AUTHOR;
  const user = os.userInfo().username || 'viva';
  return `${user} <${user}@${os.hostname()}>`;
}

/**
 * Who and when a new commit records, checked before any work (a bad VIVA_DATE must not cost a whole image read):
 * `author` (default VIVA_AUTHOR or user@host), `time` (default VIVA_DATE or now), and the local time-zone offset.
 * Throws UsageError for an author not of the form 'Name <email>', InvalidTimeError for a bad time.
 */
export function commitIdentity(options: { author?: string; time?: number }): { author: string; time: number; tzOffset: number } {
  const author = options.author ?? defaultAuthor();
  if (!parseAuthor(author)) throw new UsageError(`author '${author}' is not of the form 'Name <email>'`);
  const time = options.time ?? (process.env.VIVA_DATE ? parseCommitTime(process.env.VIVA_DATE, 'VIVA_DATE') : Math.floor(Date.now() / 1000));
  checkCommitTime(time);
  return { author, time, tzOffset: -new Date().getTimezoneOffset() };
}

export interface NewCommit {
  /** The commit object (its `derivation`, when derived, is indexed in `ix-deriv` by the store). */
  commit: Commit;
  /** Full ref name (`refs/heads/…`) the commit goes on. */
  ref: string;
  /** What the ref must hold now (null: must not exist) — the compare-and-swap. */
  expectedOld: Oid | null;
  /** Reflog message ('commit: base image', 'derive: …'). */
  reflog: string;
}

export interface WriteCommitsOptions {
  /** Where objects were written (a background writer is flushed here); default the repository's store. */
  writer?: ObjectWriter;
  /** Point HEAD at this ref (commit does; derive does not), recorded in HEAD's reflog as a checkout when it moves. */
  head?: string;
  /** The person recorded in the reflog (default: each commit's author). */
  who?: string;
}

/**
 * Writes the commit objects, flushes every pending object, then moves all refs in one transaction (all or none).
 * Returns the new commit ids, in order.
 *
 * Locking: the ref transaction takes LMDB's write lock; HEAD moves in it (`head`), so refs and HEAD move together or
 * not at all. Throws RefConflictError when a ref moved (nothing moves then), WriteError for a full or failing disk.
 *
 * @example
 * const [oid] = await writeCommits(repo, [{ commit: c, ref: 'refs/heads/web', expectedOld: null, reflog: 'derive: web' }]);
 */
export async function writeCommits(repo: Repository, commits: NewCommit[], options: WriteCommitsOptions = {}): Promise<Oid[]> {
  const store = repo.objects;
  const writer = options.writer ?? store;
  const oids: Oid[] = [];
  for (const n of commits) {
    const enc = encodeCommit(n.commit);
    const oid = hashCommit(enc);
    if (!writer.hasObject('commit', oid)) writer.writeObject('commit', oid, enc);
    oids.push(oid);
  }
  // Objects first (durable), then the refs in their own transaction.
  await writer.flush();
  if (writer !== store) await store.flush();
  // The package index entries of each image (one per file system with a package database, keyed by the
  // database's content) move in with the refs.
  const pkgs: Array<[Buffer, Buffer]> = [];
  const seenRoots = new Set<string>();
  for (const n of commits) {
    if (seenRoots.has(n.commit.root)) continue;
    seenRoots.add(n.commit.root);
    pkgs.push(...await packageIndexEntries(repo, n.commit));
  }
  const who = options.who ?? commits[0]?.commit.author ?? '';
  const head = options.head;
  // HEAD moves with the refs, in the same transaction: first to the branch (a checkout entry in HEAD's reflog when
  // that branch has commits), so that the commit is then recorded in HEAD's reflog too, as git's `checkout -b; commit`.
  // The package entries go just before (they are keyed by content: entries left by a lost race are still right).
  const fresh = pkgs.filter(([k]) => !repo.packageIndex.get(k.toString('hex')));
  if (fresh.length) repo.packageIndex.put(fresh);
  await repo.refs.update(commits.map((n, i) => ({ ref: n.ref, newOid: oids[i]!, expectedOld: n.expectedOld, message: n.reflog })), who, head ? { head } : {});
  return oids;
}

/** Runs housekeeping after the ref moved; a WriteError becomes a warning on repo.warnings, other errors propagate. */
export async function afterRecorded(repo: Repository, oid: Oid, what: string, fn: () => void | Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof WriteError)) throw e;
    repo.warnings.push(`commit ${oid.slice(0, 12)} is recorded, but ${what} failed: ${e.message}`);
  }
}

export function firstLine(s: string): string {
  return s.split('\n', 1)[0] ?? '';
}
