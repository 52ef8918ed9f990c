/** Shared body of `viva branch` and `viva tag` (git's UX: list, create, -d delete, -m rename). */
import { Args, Flags } from './flags.js';
import { UsageError } from '../errors.js';
import { createRef, deleteRef, listBranches, renameBranch, type ListRefsOptions, type RefInfo, type RefKind } from '../ops/branch.js';
import { EXIT_STATUS_HELP } from './exit-codes.js';
import { RepoCommand } from './repo-command.js';
import { renderRefs } from './render.js';

export function refCommandDescription(kind: RefKind): string {
  const what = kind === 'branch' ? 'branches' : 'tags';
  return `Without arguments, lists ${what}; with --list PATTERN (or -l), only those under a prefix ('debian/') or matching a glob ('debian/*/base', '**/web').
NAME [START] creates one at START (default HEAD); -d deletes; -m OLD NEW renames (with its reflog). Names are hierarchical ('customers/acme/web') and follow git's ref-name rules.

${EXIT_STATUS_HELP}`;
}

export const refArgs = {
  name: Args.string({ description: 'name to create, delete or rename (or pattern with --list)' }),
  target: Args.string({ description: 'start revision (create) or new name (rename)' }),
};

export const refFlags = {
  list: Flags.boolean({ char: 'l', summary: 'list, optionally filtered by a prefix or glob given as NAME' }),
  delete: Flags.boolean({ char: 'd', summary: 'delete NAME' }),
  move: Flags.boolean({ char: 'm', summary: 'rename NAME to TARGET' }),
  force: Flags.boolean({ char: 'f', summary: 'overwrite an existing ref when creating or renaming; delete the branch HEAD points at' }),
};

export abstract class RefCommand extends RepoCommand {
  protected abstract kind: RefKind;

  /** `list`: how branches are listed (`-r`, `-a`); `verbosity` 1 (`-v`) and 2 (`-vv`) add subjects and upstreams. */
  protected async runRef(args: { name?: string; target?: string }, flags: { repo?: string; list: boolean; delete: boolean; move: boolean; force: boolean }, list: ListRefsOptions & { verbosity?: number } = {}): Promise<RefInfo[]> {
    const kind = this.kind;
    if (flags.delete) {
      if (!args.name) throw new UsageError(`-d needs the name of the ${kind} to delete`);
      const r = await this.withRepo('write', flags.repo, (repo) => deleteRef(repo, kind, args.name!, flags.force));
      this.log(`Deleted ${kind} ${r.name} (was ${r.oid.slice(0, 12)})`);
      return [r];
    }
    if (flags.move) {
      if (!args.name || !args.target) throw new UsageError('-m needs OLD and NEW names');
      const r = await this.withRepo('write', flags.repo, (repo) => renameBranch(repo, kind, args.name!, args.target!, flags.force));
      this.log(`Renamed ${kind} ${args.name} to ${r.name}`);
      return [r];
    }
    if (flags.list || !args.name || list.remotes) {
      const verbosity = list.verbosity ?? 0;
      const refs = await this.withRepo('read', flags.repo, (repo) => listBranches(repo, kind, args.name, { ...(list.remotes ? { remotes: list.remotes } : {}), verbose: verbosity > 0 }));
      if (refs.length) this.log(renderRefs(refs, verbosity));
      return refs;
    }
    const r = await this.withRepo('write', flags.repo, (repo) => createRef(repo, { kind, name: args.name!, rev: args.target, force: flags.force }));
    // As git: "Reset branch 'main'" when --force moved an existing one.
    if (r.replaced) this.log(`Reset ${kind} ${r.name} to ${r.oid.slice(0, 12)} (was ${r.replaced.slice(0, 12)})`);
    else this.log(`Created ${kind} ${r.name} at ${r.oid.slice(0, 12)}`);
    return [r];
  }
}
