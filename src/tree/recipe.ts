/**
 * Applying a recipe (model/derivation.ts) to a tree: the one place that says what each edit does, for derive and
 * for rebuild's replay. Content is referenced by id, so applying needs only the repository, never the host.
 */
import { EditFailedError, VivaError } from '../errors.js';
import type { Edit, Recipe } from '../model/derivation.js';
import { quotePath } from '../model/quote.js';
import { type MutableTree, type NodeMeta } from './mutable-tree.js';

/** Default mode of a file an edit creates (`--set`, `--set-file`). */
export const DEFAULT_FILE_MODE = 0o644;
/** Default mode of a directory an edit creates (`--mkdir`, and parents of new paths). */
export const DEFAULT_DIR_MODE = 0o755;
/** Mode Linux gives every symlink. */
export const SYMLINK_MODE = 0o777;

/** Metadata of what a recipe creates: root:root, no xattrs, mtime = the recipe's time. */
export function createdMeta(recipe: Pick<Recipe, 'time'>, mode: number): NodeMeta {
  return { mode, uid: 0, gid: 0, mtimeNs: BigInt(recipe.time) * 1_000_000_000n, xattrs: [] };
}

/** One line naming an edit, for messages and `show --derivation`: `rm etc/motd`, `chmod 0600 etc/shadow`. */
export function describeEdit(e: Edit): string {
  const p = quotePath(e.path);
  switch (e.op) {
    case 'write': return `write ${p}${e.generated ? ` (generated ${e.generated})` : ''}`;
    case 'add-tree': return `add ${p || '/'}`;
    case 'add-entry': return `add ${p}`;
    case 'rm': return `rm ${p}`;
    case 'mkdir': return `mkdir ${p}`;
    case 'symlink': return `symlink ${p} -> ${quotePath(e.target)}`;
    case 'chmod': return `chmod ${e.mode.toString(8).padStart(4, '0')} ${p}`;
    case 'chown': return `chown ${e.uid}:${e.gid} ${p}`;
    case 'set-xattr': return `xattr ${p} ${e.name}`;
    case 'rm-xattr': return `rm-xattr ${p} ${e.name}`;
    case 'mtime': return `mtime ${p} ${e.mtimeNs / 1_000_000_000n}`;
    case 'rename': return `rename ${p} -> ${quotePath(e.to)}`;
  }
}

/**
 * Applies every edit of `recipe` to `tree`, in order. Throws EditFailedError naming the first edit that does not
 * apply (its cause: PathNotFoundError, InvalidEditError); `tree` is then partly edited and must be dropped.
 */
export function applyRecipe(tree: MutableTree, recipe: Recipe): void {
  recipe.edits.forEach((e, i) => {
    try {
      applyEdit(tree, recipe, e);
    } catch (err) {
      if (err instanceof VivaError && !(err instanceof EditFailedError) && isEditProblem(err)) {
        throw new EditFailedError(i, describeEdit(e), err.message, { cause: err });
      }
      throw err;
    }
  });
}

/** Problems of the edit against this tree (as opposed to a damaged repository, which stays what it is). */
function isEditProblem(e: VivaError): boolean {
  return e.code === 'ERR_INVALID_EDIT' || e.code === 'ERR_PATH_NOT_FOUND';
}

function applyEdit(tree: MutableTree, recipe: Recipe, e: Edit): void {
  switch (e.op) {
    case 'write':
      tree.writeFile(e.path, { oid: e.blob, size: e.size, holes: [] }, { newMeta: createdMeta(recipe, e.mode), mtimeNs: createdMeta(recipe, 0).mtimeNs });
      return;
    case 'add-tree': tree.graft(e.path, e.tree, e.meta); return;
    case 'add-entry': tree.putEntry(e.path, e.entry); return;
    case 'rm': tree.remove(e.path); return;
    case 'mkdir': tree.mkdir(e.path, createdMeta(recipe, e.mode)); return;
    case 'symlink': tree.symlink(e.path, e.target, createdMeta(recipe, SYMLINK_MODE)); return;
    case 'chmod': tree.chmod(e.path, e.mode); return;
    case 'chown': tree.chown(e.path, e.uid, e.gid); return;
    case 'set-xattr': tree.setXattr(e.path, e.name, e.value); return;
    case 'rm-xattr': tree.removeXattr(e.path, e.name); return;
    case 'mtime': tree.setMtime(e.path, e.mtimeNs); return;
    case 'rename': tree.rename(e.path, e.to); return;
  }
}
