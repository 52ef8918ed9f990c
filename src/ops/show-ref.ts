/** The show-ref op, as git's: the refs of the repository with their ids, optionally only branches, tags, or some names. */
import type { Oid } from '../model/oid.js';
import { HEADS, TAGS } from '../model/ref.js';
import type { Repository } from '../store/repository.js';

/** The options of {@link showRef} (git's `--heads`, `--tags` and patterns). */
export interface ShowRefOptions {
  /** Only refs/heads/ (with `tags`: branches and tags). */
  heads?: boolean;
  /** Only refs/tags/. */
  tags?: boolean;
  /** git's matching: a ref matches a pattern it equals or ends with after a `/` (`main` matches refs/heads/main and refs/remotes/origin/main). */
  patterns?: string[];
}

/**
 * Refs in name order (symbolic refs such as HEAD are not listed). Locking: none.
 * @example showRef(repo, { heads: true }).map((r) => r.ref); // ['refs/heads/main', ...]
 */
export function showRef(repo: Repository, options: ShowRefOptions = {}): Array<{ ref: string; oid: Oid }> {
  const prefixes = [...(options.heads ? [HEADS] : []), ...(options.tags ? [TAGS] : [])];
  const patterns = (options.patterns ?? []).map((p) => p.replace(/^\/+/, ''));
  return repo.refs.list('refs/').filter((r) => {
    if (prefixes.length && !prefixes.some((p) => r.ref.startsWith(p))) return false;
    return !patterns.length || patterns.some((p) => r.ref === p || r.ref.endsWith('/' + p));
  });
}
