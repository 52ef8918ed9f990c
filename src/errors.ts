/** Every expected failure of the library: one class per failure, each with a stable `code` and structured `data`. */

/** An error as JSON (what `--json` prints as `{"error": …}`): its stable code, class name, message and data. */
export interface ErrorJson {
  code: string;
  name: string;
  message: string;
  data: Record<string, unknown>;
}

/**
 * The base class of every error viva throws on purpose: `code` (stable, `ERR_…`) says which failure it is, `data`
 * holds its details (a path, a revision, an offset); `toJSON()` is what `--json` prints. Test with `instanceof` of
 * the subclass or compare `code`, never the message.
 */
export class VivaError extends Error {
  static readonly code: string = 'ERR_VIVA';
  readonly code: string = VivaError.code;
  override readonly name: string = 'VivaError';
  constructor(message: string, readonly data: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
  }
  toJSON(): ErrorJson {
    return { code: this.code, name: this.name, message: this.message, data: this.data };
  }
}

import util from 'node:util';

const SYSTEM_ERRORS = util.getSystemErrorMap();

/** [name, description] of the system error whose errno `e` carries (['ENOENT', 'no such file or directory']), or undefined. */
function systemError(e: unknown): [string, string] | undefined {
  const errno = typeof e === 'object' && e !== null ? (e as { errno?: unknown }).errno : undefined;
  return typeof errno === 'number' ? SYSTEM_ERRORS.get(errno) : undefined;
}

/** The system's description of `e`'s errno, lowercase ('no such file or directory'), else the error's message. */
export function systemText(e: unknown): string {
  const known = systemError(e);
  return known ? known[1].toLowerCase() : (e as Error).message;
}

/** The system's description of an errno name, lowercase ('EROFS' → 'read-only file system'), else the name in lowercase. */
export function describeErrno(name: string): string {
  for (const [n, desc] of SYSTEM_ERRORS.values()) if (n === name) return desc.toLowerCase();
  return name.toLowerCase();
}

/**
 * The reason part of a message for a failed system call: 'no such file or directory (ENOENT)', 'permission denied
 * (EACCES)'; the plain message for anything else. (Node's own text repeats the syscall and path the caller names.)
 */
export function systemReason(e: unknown): string {
  const known = systemError(e);
  if (known) return `${known[1].toLowerCase()} (${known[0]})`;
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  return e instanceof Error ? e.message : String(e);
}

function quote(v: unknown): string {
  return `'${String(v)}'`;
}

/** A flag or argument that does not make sense; exit 2. */
export class UsageError extends VivaError {
  static override readonly code = 'ERR_USAGE';
  override readonly code = UsageError.code;
  override readonly name = 'UsageError';
  constructor(message: string, data: Record<string, unknown> = {}) { super(message, data); }
}

/**
 * No viva repository at the given path (nor, when searching, in the current directory or any parent); exit 10.
 * `data`: `{ path }`.
 */
export class NotARepositoryError extends VivaError {
  static override readonly code = 'ERR_NOT_A_REPOSITORY';
  override readonly code = NotARepositoryError.code;
  override readonly name = 'NotARepositoryError';
  constructor(path: string) { super(`not a viva repository (or any parent): ${quote(path)}`, { path }); }
}

/** init or clone found a repository already there; exit 12. `data`: `{ path }`. */
export class RepositoryExistsError extends VivaError {
  static override readonly code = 'ERR_REPOSITORY_EXISTS';
  override readonly code = RepositoryExistsError.code;
  override readonly name = 'RepositoryExistsError';
  constructor(path: string) { super(`a viva repository already exists in ${quote(path)}`, { path }); }
}

/**
 * The repository was written by a newer viva (its format number is higher than this one reads); exit 10.
 * `data`: `{ path, found, supported }`.
 */
export class RepositoryFormatError extends VivaError {
  static override readonly code = 'ERR_REPOSITORY_FORMAT';
  override readonly code = RepositoryFormatError.code;
  override readonly name = 'RepositoryFormatError';
  constructor(path: string, found: number, supported: number) {
    super(`repository ${quote(path)} has format ${found}, this viva reads format ${supported} or older: upgrade viva`, { path, found, supported });
  }
}

/**
 * A writable NBD session cannot be opened or removed: a live process serves it, or (for a new one) it exists; exit 11.
 * `data`: `{ session, reason }`.
 */
export class NbdSessionBusyError extends VivaError {
  static override readonly code = 'ERR_SESSION_BUSY';
  override readonly code = NbdSessionBusyError.code;
  override readonly name = 'NbdSessionBusyError';
  constructor(session: string, reason: string) { super(`nbd session ${quote(session)} ${reason}`, { session, reason }); }
}

/** No writable NBD session of that name in the repository; exit 3. `data`: `{ session }`. */
export class NbdSessionNotFoundError extends VivaError {
  static override readonly code = 'ERR_SESSION_NOT_FOUND';
  override readonly code = NbdSessionNotFoundError.code;
  override readonly name = 'NbdSessionNotFoundError';
  constructor(session: string) { super(`no nbd session ${quote(session)}`, { session }); }
}

/**
 * Another process holds the lock the op needs (gc's exclusive lock, or a writer while gc runs); exit 11.
 * `data`: `{ path, holder }`.
 */
export class RepositoryLockedError extends VivaError {
  static override readonly code = 'ERR_LOCKED';
  override readonly code = RepositoryLockedError.code;
  override readonly name = 'RepositoryLockedError';
  constructor(path: string, holder: string) { super(`repository ${quote(path)} is locked by ${holder}`, { path, holder }); }
}

/** An object (commit, tree, blob, chunk) named by id is not in the repository; exit 3. `data`: `{ kind, oid }`. */
export class ObjectNotFoundError extends VivaError {
  static override readonly code = 'ERR_OBJECT_NOT_FOUND';
  override readonly code = ObjectNotFoundError.code;
  override readonly name = 'ObjectNotFoundError';
  constructor(kind: string, oid: string) { super(`${kind} ${quote(oid)} not found`, { kind, oid }); }
}

/** A revision (branch, tag, id, `REV~N`, …) does not name a commit; exit 3. `data`: `{ rev }`. */
export class RevisionNotFoundError extends VivaError {
  static override readonly code = 'ERR_REVISION_NOT_FOUND';
  override readonly code = RevisionNotFoundError.code;
  override readonly name = 'RevisionNotFoundError';
  constructor(rev: string, reason = 'unknown revision', message?: string) { super(message ?? `${reason} ${quote(rev)}`, { rev }); }
}

/** `viva status DIR`: no checkout of this repository wrote DIR (or it was replaced since). */
export class NotACheckoutError extends VivaError {
  static override readonly code = 'ERR_NOT_A_CHECKOUT';
  override readonly code = NotACheckoutError.code;
  override readonly name = 'NotACheckoutError';
  constructor(dir: string) {
    super(`not a checkout of this repository: ${quote(dir)} (nor any directory above it; 'viva checkout REV DIR' records what it writes, 'viva diff REV DIR' compares any directory)`, { dir });
  }
}

/** A short id matches more than one object; exit 2. `data`: `{ rev, candidates }`. */
export class AmbiguousRevisionError extends VivaError {
  static override readonly code = 'ERR_AMBIGUOUS_REVISION';
  override readonly code = AmbiguousRevisionError.code;
  override readonly name = 'AmbiguousRevisionError';
  constructor(rev: string, candidates: string[]) {
    super(`short id ${quote(rev)} is ambiguous (${candidates.length} candidates: ${candidates.slice(0, 4).join(', ')})`, { rev, candidates });
  }
}

/** A path does not exist in the image a revision names; exit 3. `data`: `{ path, rev }`. */
export class PathNotFoundError extends VivaError {
  static override readonly code = 'ERR_PATH_NOT_FOUND';
  override readonly code = PathNotFoundError.code;
  override readonly name = 'PathNotFoundError';
  constructor(path: string, rev: string) { super(`path ${quote(path)} does not exist in ${quote(rev)}`, { path, rev }); }
}

/**
 * A branch, tag or remote name breaks the ref-name rules (those of `git check-ref-format`); exit 2.
 * `data`: `{ ref, reason }`.
 */
export class InvalidRefNameError extends VivaError {
  static override readonly code = 'ERR_INVALID_REF_NAME';
  override readonly code = InvalidRefNameError.code;
  override readonly name = 'InvalidRefNameError';
  constructor(ref: string, reason: string) { super(`${quote(ref)} is not a valid ref name: ${reason}`, { ref, reason }); }
}

/** A branch, tag, remote or remote branch does not exist; exit 3. `data`: `{ ref }`. */
export class RefNotFoundError extends VivaError {
  static override readonly code = 'ERR_REF_NOT_FOUND';
  override readonly code = RefNotFoundError.code;
  override readonly name = 'RefNotFoundError';
  /** `message` replaces the default wording (remotes, remote branches). */
  constructor(ref: string, message?: string) { super(message ?? `ref ${quote(ref)} not found`, { ref }); }
}

/** A branch or tag to create exists already (pass force to replace it); exit 12. `data`: `{ ref }`. */
export class RefExistsError extends VivaError {
  static override readonly code = 'ERR_REF_EXISTS';
  override readonly code = RefExistsError.code;
  override readonly name = 'RefExistsError';
  constructor(ref: string, message?: string) { super(message ?? `ref ${quote(ref)} already exists`, { ref }); }
}

/**
 * A compare-and-swap ref update found another value than expected (a concurrent writer moved it); exit 12.
 * `data`: `{ ref, expected, actual, applied? }`.
 */
export class RefConflictError extends VivaError {
  static override readonly code = 'ERR_REF_CONFLICT';
  override readonly code = RefConflictError.code;
  override readonly name = 'RefConflictError';
  /**
   * `message` replaces the default wording (non-fast-forward pushes, diverged pulls). `applied` lists the refs an
   * update that is not atomic across refs (a bucket repository) moved before this conflict stopped it; it appears in
   * `data` only when given.
   */
  constructor(ref: string, expected: string | null, actual: string | null, message?: string, applied?: string[]) {
    super(message ?? `ref ${quote(ref)} moved concurrently (expected ${expected ?? 'none'}, found ${actual ?? 'none'})`, { ref, expected, actual, ...(applied ? { applied } : {}) });
  }
}

/** A checkout or clone destination exists and is not an empty directory; exit 12. `data`: `{ path }`. */
export class DestinationNotEmptyError extends VivaError {
  static override readonly code = 'ERR_DESTINATION_NOT_EMPTY';
  override readonly code = DestinationNotEmptyError.code;
  override readonly name = 'DestinationNotEmptyError';
  constructor(path: string, reason = 'exists and is not an empty directory') { super(`destination ${quote(path)} ${reason}`, { path }); }
}

/**
 * A checkout destination inside a repository's `.viva` (it would overwrite the repository), or, with `reason`, an
 * existing file that is a repository's database however it is reached (a hard link elsewhere); exit 2.
 */
export class UnsafeDestinationError extends VivaError {
  static override readonly code = 'ERR_UNSAFE_DESTINATION';
  override readonly code = UnsafeDestinationError.code;
  override readonly name = 'UnsafeDestinationError';
  constructor(path: string, repository: string | undefined, reason?: string) {
    super(reason
      ? `destination ${quote(path)} ${reason}: checkout never writes over it`
      : `destination ${quote(path)} is inside the repository ${quote(repository ?? '')}: checkout never writes into it`,
    { path, ...(repository !== undefined ? { repository } : {}), ...(reason ? { reason } : {}) });
  }
}

/** The image given to commit is malformed: names the file and the offset or member path. */
export class CorruptInputError extends VivaError {
  static override readonly code = 'ERR_CORRUPT_INPUT';
  override readonly code = CorruptInputError.code;
  override readonly name = 'CorruptInputError';
  constructor(file: string, where: string, reason: string) { super(`${file}: ${where}: ${reason}`, { file, where, reason }); }
}

/** The image is well-formed but holds something viva refuses (e.g. a '../' member, a link through a symlink). */
export class UnsafeInputError extends VivaError {
  static override readonly code = 'ERR_UNSAFE_INPUT';
  override readonly code = UnsafeInputError.code;
  override readonly name = 'UnsafeInputError';
  constructor(file: string, where: string, reason: string) { super(`${file}: ${where}: ${reason}`, { file, where, reason }); }
}

/**
 * The image uses a feature or format viva cannot read (an unknown file-system feature, a format variant); exit 13.
 * `data`: `{ file, reason }`.
 */
export class UnsupportedInputError extends VivaError {
  static override readonly code = 'ERR_UNSUPPORTED_INPUT';
  override readonly code = UnsupportedInputError.code;
  override readonly name = 'UnsupportedInputError';
  constructor(file: string, reason: string) { super(`${file}: ${reason}`, { file, reason }); }
}

/** The source could not be read (permissions, I/O error, vanished). */
export class SourceReadError extends VivaError {
  static override readonly code = 'ERR_SOURCE_READ';
  override readonly code = SourceReadError.code;
  override readonly name = 'SourceReadError';
  constructor(path: string, reason: string, options?: ErrorOptions) { super(`cannot read ${quote(path)}: ${reason}`, { path, reason }, options); }
}

/** A file changed while it was being read; the commit is abandoned rather than recording a torn file. */
export class SourceChangedError extends VivaError {
  static override readonly code = 'ERR_SOURCE_CHANGED';
  override readonly code = SourceChangedError.code;
  override readonly name = 'SourceChangedError';
  constructor(path: string) { super(`${quote(path)} changed while it was being read`, { path }); }
}

/**
 * A checkout could not create an entry at its destination (permissions, a file in the way, I/O); exit 16.
 * `data`: `{ path, reason }`.
 */
export class CheckoutError extends VivaError {
  static override readonly code = 'ERR_CHECKOUT';
  override readonly code = CheckoutError.code;
  override readonly name = 'CheckoutError';
  constructor(path: string, reason: string, options?: ErrorOptions) { super(`cannot create ${quote(path)}: ${reason}`, { path, reason }, options); }
}

/** The repository itself is damaged (an object does not hash to its id, a reachable object is missing, ...). */
export class RepositoryCorruptError extends VivaError {
  static override readonly code = 'ERR_REPOSITORY_CORRUPT';
  override readonly code = RepositoryCorruptError.code;
  override readonly name = 'RepositoryCorruptError';
  constructor(what: string, reason: string, message?: string, data: Record<string, unknown> = {}) { super(message ?? `${what}: ${reason}`, { what, reason, ...data }); }

  /**
   * A stored object whose bytes do not hash to the id it was read by (`path`: the image path it was read for, when
   * the reader knows it): `chunk 'ab12…' of 'etc/passwd' does not match its id (repository damaged: run 'viva fsck')`.
   */
  static mismatch(kind: string, oid: string, path?: string): RepositoryCorruptError {
    const subject = `${kind} ${quote(oid)}${path !== undefined ? ` of ${quote(path)}` : ''}`;
    return new RepositoryCorruptError(`${kind} ${oid}`, 'does not match its id', `${subject} does not match its id (repository damaged: run 'viva fsck')`, { kind, oid, ...(path !== undefined ? { path } : {}) });
  }

  /**
   * A stored object whose pack could not be read (`error`: the system's words; `path` as for mismatch):
   * `cannot read blob 'ab12…' of 'etc/passwd': input/output error (pack 7)`. `data.reason` is 'cannot be read'.
   */
  static unreadable(kind: string, oid: string, error: string, pack?: number, path?: string): RepositoryCorruptError {
    const subject = `${kind} ${quote(oid)}${path !== undefined ? ` of ${quote(path)}` : ''}`;
    return new RepositoryCorruptError(`${kind} ${oid}`, 'cannot be read', `cannot read ${subject}: ${error}${pack !== undefined ? ` (pack ${pack})` : ''}`,
      { kind, oid, error, ...(pack !== undefined ? { pack } : {}), ...(path !== undefined ? { path } : {}) });
  }
}

/**
 * The repository (or another destination) could not be written: disk full, quota, I/O error, or the object writer
 * failed. Nothing was referenced: refs did not move.
 */
export class WriteError extends VivaError {
  static override readonly code = 'ERR_WRITE';
  override readonly code = WriteError.code;
  override readonly name = 'WriteError';
  constructor(path: string, reason: string, options?: ErrorOptions) { super(`cannot write ${quote(path)}: ${reason}`, { path, reason }, options); }
}

/** init or clone cannot create the repository's directory (a path under a file, in /proc, read-only, no permission). */
export class RepositoryCreateError extends VivaError {
  static override readonly code = 'ERR_REPOSITORY_CREATE';
  override readonly code = RepositoryCreateError.code;
  override readonly name = 'RepositoryCreateError';
  constructor(path: string, reason: string) { super(`cannot create repository directory ${quote(path)}: ${reason}`, { path, reason }); }
}

/**
 * The repository's LMDB file is missing, truncated or not an LMDB file at all: found by reading its header before
 * LMDB maps it (mapping a truncated file would kill the process with SIGBUS).
 */
export class RepositoryDamagedError extends VivaError {
  static override readonly code = 'ERR_REPOSITORY_DAMAGED';
  override readonly code = RepositoryDamagedError.code;
  override readonly name = 'RepositoryDamagedError';
  constructor(file: string, reason: string) {
    super(`repository database ${quote(file)} damaged or missing: ${reason} (restore it from a remote with 'viva clone', or from a backup of the .viva directory)`, { file, reason });
  }
}

/** `gc --compact` could not write its compacted copy (no space, I/O error); the repository is unchanged. */
export class CompactionError extends VivaError {
  static override readonly code = 'ERR_COMPACTION';
  override readonly code = CompactionError.code;
  override readonly name = 'CompactionError';
  constructor(file: string, reason: string) { super(`cannot compact ${quote(file)}: ${reason} (the repository is unchanged)`, { file, reason }); }
}

/** The op was stopped through its `signal` (an AbortSignal) before it finished; nothing was referenced. Exit 130. */
export class AbortedError extends VivaError {
  static override readonly code = 'ERR_ABORTED';
  override readonly code = AbortedError.code;
  override readonly name = 'AbortedError';
  constructor() { super('operation aborted'); }
}

/** A time (VIVA_DATE, a flag, a commit's own time) outside what a commit can record: exit 2. */
export class InvalidTimeError extends VivaError {
  static override readonly code = 'ERR_INVALID_TIME';
  override readonly code = InvalidTimeError.code;
  override readonly name = 'InvalidTimeError';
  constructor(what: string, value: string, reason: string) { super(`${what} ${quote(value)} is not a valid time: ${reason}`, { what, value, reason }); }
}

/** A remote repository could not be reached, refused the request (auth, read-only, limits) or answered garbage. */
export class RemoteError extends VivaError {
  static override readonly code = 'ERR_REMOTE';
  override readonly code = RemoteError.code;
  override readonly name = 'RemoteError';
  constructor(url: string, message: string, readonly status?: number) { super(`${url}: ${message}`, { url, status }); }
}

/** A host key or machine id could not be generated as asked: unknown key type, bad seed, bits or comment. */
export class InvalidHostKeyOptionError extends VivaError {
  static override readonly code = 'ERR_INVALID_HOST_KEY_OPTION';
  override readonly code = InvalidHostKeyOptionError.code;
  override readonly name = 'InvalidHostKeyOptionError';
  constructor(option: string, value: string, reason: string) { super(`host key ${option} ${quote(value)} is not valid: ${reason}`, { option, value, reason }); }
}


/**
 * An edit that cannot apply to the tree: a path through a symlink or a file, `..`, an invalid name, a type
 * mismatch (chmod of something missing is PathNotFoundError instead). Exit 2.
 */
export class InvalidEditError extends VivaError {
  static override readonly code = 'ERR_INVALID_EDIT';
  override readonly code = InvalidEditError.code;
  override readonly name = 'InvalidEditError';
  constructor(path: string, reason: string) { super(`cannot edit '${path}': ${reason}`, { path, reason }); }
}

/**
 * An edit of a recipe that does not apply to its base (the path it removes is gone, a parent is a symlink): names
 * the edit and why. Exit 2 (rebuild reports it per branch).
 */
export class EditFailedError extends VivaError {
  static override readonly code = 'ERR_EDIT_FAILED';
  override readonly code = EditFailedError.code;
  override readonly name = 'EditFailedError';
  constructor(index: number, edit: string, reason: string, options?: ErrorOptions) {
    super(`edit ${index + 1} (${edit}) does not apply: ${reason}`, { index, edit, reason }, options);
  }
}

/**
 * A change cannot be applied in place to an ext2/3/4 file system (the patch of a derived disk): no free inode or
 * block, a feature or structure the patcher does not handle, a path that is missing or of the wrong type. `path` is
 * the change's path ('/' for the file system as a whole) and `kind` the failure: 'no-space', 'unsupported',
 * 'not-found', 'invalid' (a change that contradicts the tree: not a directory, not empty, exists) or 'corrupt'.
 * Nothing was written. Exit 16.
 */
export class Ext4PatchError extends VivaError {
  static override readonly code = 'ERR_EXTFS_PATCH';
  override readonly code = Ext4PatchError.code;
  override readonly name = 'Ext4PatchError';
  constructor(path: string, reason: string, readonly kind: 'no-space' | 'unsupported' | 'not-found' | 'invalid' | 'corrupt' = 'unsupported') {
    super(`cannot patch ${quote(path)}: ${reason}`, { path, reason, kind });
  }
}

/**
 * The install sandbox could not be set up or a program in it failed: names the step, the reason and keeps the tail of
 * the output (`data.output`). Exit 1.
 */
export class SandboxError extends VivaError {
  static override readonly code = 'ERR_SANDBOX';
  override readonly code = SandboxError.code;
  override readonly name = 'SandboxError';
  constructor(step: string, reason: string, output: string) { super(`sandbox: ${step}: ${reason}`, { step, reason, output }); }
}

/**
 * A relation field of Debian control data (Depends, Pre-Depends, Conflicts, Provides, ...) that cannot be parsed:
 * names the field, the text and what is wrong. Exit 13 (corrupt input).
 */
export class RelationSyntaxError extends VivaError {
  static override readonly code = 'ERR_RELATION_SYNTAX';
  override readonly code = RelationSyntaxError.code;
  override readonly name = 'RelationSyntaxError';
  constructor(field: string, text: string, reason: string) { super(`cannot parse ${field} field ${quote(text)}: ${reason}`, { field, text, reason }); }
}

/**
 * A package request that cannot be satisfied from the image's installed packages and the package sources: a
 * dependency no source provides, a conflict, an Essential package that would have to go. `package` is the package
 * whose relation fails, `relation` that relation as written, `kind` the failure. Nothing was written. Exit 18.
 */
export class DependencyError extends VivaError {
  static override readonly code = 'ERR_DEPENDENCY';
  override readonly code = DependencyError.code;
  override readonly name = 'DependencyError';
  constructor(
    message: string,
    readonly kind: 'missing' | 'version' | 'conflict' | 'essential' | 'virtual' | 'unknown-package' = 'missing',
    readonly package_?: string,
    readonly relation?: string,
  ) {
    super(message, { kind, package: package_, relation });
  }
}

/**
 * A package would overwrite a file that another installed package owns, and does not declare `Replaces` on it
 * (dpkg's "trying to overwrite '…', which is also in package …"). `data`: the .deb, its package, the path and the
 * owner. Nothing of that package was unpacked. Exit 18.
 */
export class FileConflictError extends VivaError {
  static override readonly code = 'ERR_FILE_CONFLICT';
  override readonly code = FileConflictError.code;
  override readonly name = 'FileConflictError';
  constructor(file: string, pkg: string, path: string, owner: string, ownerVersion?: string) {
    super(`cannot unpack ${quote(file)}: ${quote(pkg)} would overwrite ${quote(path)}, which is also in package ${quote(owner)}${ownerVersion ? ` (${ownerVersion})` : ''} and not replaced by it`,
      { file, package: pkg, path, owner, ownerVersion });
  }
}

/**
 * A maintainer script, trigger or dpkg run inside the install sandbox failed: names the step (`dpkg --configure`,
 * `preinst of foo`), the exit code, and keeps the tail of its output (`output`, printed under the message). Nothing
 * was committed and the sandbox was removed. Exit 19.
 */
export class ScriptFailedError extends VivaError {
  static override readonly code = 'ERR_SCRIPT_FAILED';
  override readonly code = ScriptFailedError.code;
  override readonly name = 'ScriptFailedError';
  constructor(readonly image: string, readonly step: string, readonly exitCode: number, readonly output: string) {
    const last = String(output ?? '').split('\n').map((l) => l.trim()).filter(Boolean).pop();
    super(`${image}: ${step} failed with exit code ${exitCode}${last ? `: ${last}` : ''}`, { image, step, exitCode, output });
  }
}

/**
 * The image has no dpkg database (`var/lib/dpkg/status`) to install into, or it cannot be read; or a package to
 * remove or upgrade is not installed. Exit 18.
 */
export class PackageStateError extends VivaError {
  static override readonly code = 'ERR_PACKAGE_STATE';
  override readonly code = PackageStateError.code;
  override readonly name = 'PackageStateError';
  constructor(image: string, reason: string) { super(`${image}: ${reason}`, { image, reason }); }
}

/** Every error class, for the CLI's exit-code table and for the test that checks names and codes. */
export const ERROR_CLASSES = [
  VivaError, UsageError, NotARepositoryError, RepositoryExistsError, RepositoryFormatError, RepositoryLockedError,
  ObjectNotFoundError, RevisionNotFoundError, AmbiguousRevisionError, PathNotFoundError, InvalidRefNameError,
  RefNotFoundError, RefExistsError, RefConflictError, DestinationNotEmptyError, UnsafeDestinationError, CorruptInputError, UnsafeInputError,
  UnsupportedInputError, SourceReadError, SourceChangedError, CheckoutError, RepositoryCorruptError, WriteError,
  RepositoryDamagedError, RepositoryCreateError, CompactionError, AbortedError, RemoteError, InvalidTimeError,
  InvalidHostKeyOptionError, InvalidEditError, EditFailedError, SandboxError, Ext4PatchError, RelationSyntaxError, DependencyError,
  FileConflictError, ScriptFailedError, PackageStateError,
] as const;
