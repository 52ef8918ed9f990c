/**
 * The rev-parse op, as git's: revision arguments to full commit ids (`^id` for an exclusion), or to the full or short
 * name of the ref they name.
 */
import { UsageError } from '../errors.js';
import { type Oid, shortOid } from '../model/oid.js';
import { HEAD, shortRefName } from '../model/ref.js';
import type { Repository } from '../store/repository.js';
import { mergeBases } from './merge-base.js';
import { resolveSpec } from './resolve.js';
import { resolveRevisionArgument, splitRange } from './rev-list.js';

/** The options of {@link revParse} (git's `--verify`, `--abbrev-ref`, `--symbolic-full-name`, …). */
export interface RevParseOptions {
  /** Exactly one revision, not a range (git's `--verify`). */
  verify?: boolean;
  /** Print the short name of the ref each revision names (`main`, `origin/x`), nothing for a commit id. */
  abbrevRef?: boolean;
  /** Print the full name of the ref each revision names (`refs/heads/main`), nothing for a commit id. */
  symbolicFullName?: boolean;
  /** Print abbreviated ids. */
  short?: boolean;
}

/** One line of {@link revParse}'s output: the id an argument names, and whether it is excluded. */
export interface RevParseLine {
  /** The argument this line comes from. */
  arg: string;
  /** The commit (for `REV:path`, the entry's object id). */
  oid: Oid;
  /** Left out of a range: `^A`, the A of `A..B`, a merge base of `A...B`. */
  exclude: boolean;
  /** The full name of the ref the revision named, if it named one. */
  ref?: string;
  /** What the CLI prints for it (absent: nothing, as for a commit id with --abbrev-ref). */
  text?: string;
}

/**
 * Resolves each argument (`REV`, `^REV`, `A..B`, `A...B`, `REV:path`). Throws RevisionNotFoundError (exit 3; git
 * exits 128), AmbiguousRevisionError, PathNotFoundError, and UsageError for `verify` with other than one plain
 * revision. Locking: none.
 *
 * @example revParse(repo, ['HEAD'], { abbrevRef: true })[0]!.text; // 'main'
 */
export function revParse(repo: Repository, args: string[], options: RevParseOptions = {}): RevParseLine[] {
  if (options.verify && (args.length !== 1 || splitRange(args[0]!) || args[0]!.startsWith('^'))) throw new UsageError('needed a single revision');
  const lines: RevParseLine[] = [];
  for (const arg of args) {
    const range = splitRange(arg);
    if (!range && !arg.startsWith('^') && arg.includes(':')) {
      const e = resolveSpec(repo, arg);
      lines.push({ arg, oid: e.entry.oid ?? e.commitOid, exclude: false });
      continue;
    }
    const r = resolveRevisionArgument(repo, arg);
    for (const x of r.revs) lines.push({ arg, oid: x.oid, exclude: x.exclude, ...(x.ref ? { ref: x.ref } : {}) });
    if (r.symmetric) {
      const mb = mergeBases(repo, r.revs[0]!.oid, r.revs[1]!.oid);
      if (mb.via === 'history') for (const o of mb.bases) lines.push({ arg, oid: o, exclude: true });
    }
  }
  return lines.map((l) => {
    const text = lineText(l, options);
    return text === undefined ? l : { ...l, text };
  });
}

function lineText(l: RevParseLine, options: RevParseOptions): string | undefined {
  const neg = l.exclude ? '^' : '';
  if (options.symbolicFullName || options.abbrevRef) {
    if (!l.ref) return undefined;
    return neg + (options.symbolicFullName ? l.ref : l.ref === HEAD ? HEAD : shortRefName(l.ref));
  }
  return neg + (options.short ? shortOid(l.oid) : l.oid);
}
