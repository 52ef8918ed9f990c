/** Exit codes of the viva CLI (documented in every command's help and in docs/cli.md). */
import {
  AbortedError, RemoteError, InvalidEditError, EditFailedError, AmbiguousRevisionError, CheckoutError, CorruptInputError, DestinationNotEmptyError, InvalidRefNameError,
  NotARepositoryError, ObjectNotFoundError, PathNotFoundError, RefConflictError, RefExistsError, RefNotFoundError,
  RepositoryCorruptError, RepositoryCreateError, RepositoryDamagedError, RepositoryExistsError, RepositoryFormatError, RepositoryLockedError, RevisionNotFoundError, NbdSessionBusyError, NbdSessionNotFoundError,
  SourceChangedError, SourceReadError, UnsafeDestinationError, UnsafeInputError, UnsupportedInputError, UsageError, WriteError, InvalidTimeError,
  InvalidHostKeyOptionError, NotACheckoutError, Ext4PatchError, RelationSyntaxError, DependencyError, FileConflictError, ScriptFailedError, PackageStateError, SandboxError,
} from '../errors.js';

export const EXIT = {
  OK: 0,
  /** Failure without a more specific code; also "differences found" for --exit-code style commands. */
  FAILURE: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  /** commit: recorded, but source paths that could not be read were left out (listed as warnings; as restic's 3). */
  INCOMPLETE: 4,
  NO_REPOSITORY: 10,
  LOCKED: 11,
  CONFLICT: 12,
  CORRUPT_INPUT: 13,
  SOURCE_UNREADABLE: 14,
  REPOSITORY_DAMAGED: 15,
  /** Could not write: a checkout entry could not be created, or the disk is full or failed (repository or destination). */
  CHECKOUT_FAILED: 16,
  WRITE_FAILED: 16,
  REMOTE: 17,
  /** A package request cannot be satisfied: a missing dependency, a conflict, an Essential package to remove, a file another package owns. */
  DEPENDENCY: 18,
  /** A maintainer script, trigger or dpkg run in the install sandbox failed, or the sandbox could not be set up. */
  SCRIPT: 19,
  INTERNAL: 70,
  INTERRUPTED: 130,
  /** stdout's reader went away (EPIPE): a silent end, as git's death by SIGPIPE (bin/run.js). */
  PIPE_CLOSED: 141,
} as const;

const TABLE: Array<[{ code: string }, number]> = [
  [UsageError, EXIT.USAGE], [InvalidRefNameError, EXIT.USAGE], [AmbiguousRevisionError, EXIT.USAGE], [InvalidTimeError, EXIT.USAGE],
  [InvalidHostKeyOptionError, EXIT.USAGE],
  [UnsafeDestinationError, EXIT.USAGE], [InvalidEditError, EXIT.USAGE], [EditFailedError, EXIT.USAGE],
  [RevisionNotFoundError, EXIT.NOT_FOUND], [RefNotFoundError, EXIT.NOT_FOUND], [PathNotFoundError, EXIT.NOT_FOUND],
  [ObjectNotFoundError, EXIT.NOT_FOUND], [NotACheckoutError, EXIT.NOT_FOUND],
  [NotARepositoryError, EXIT.NO_REPOSITORY], [RepositoryFormatError, EXIT.NO_REPOSITORY],
  [RepositoryLockedError, EXIT.LOCKED], [NbdSessionBusyError, EXIT.LOCKED], [NbdSessionNotFoundError, EXIT.NOT_FOUND],
  [RefExistsError, EXIT.CONFLICT], [RefConflictError, EXIT.CONFLICT], [DestinationNotEmptyError, EXIT.CONFLICT],
  [RepositoryExistsError, EXIT.CONFLICT],
  [CorruptInputError, EXIT.CORRUPT_INPUT], [RelationSyntaxError, EXIT.CORRUPT_INPUT], [UnsafeInputError, EXIT.CORRUPT_INPUT], [UnsupportedInputError, EXIT.CORRUPT_INPUT],
  [SourceReadError, EXIT.SOURCE_UNREADABLE], [SourceChangedError, EXIT.SOURCE_UNREADABLE],
  [RepositoryCorruptError, EXIT.REPOSITORY_DAMAGED], [RepositoryDamagedError, EXIT.REPOSITORY_DAMAGED],
  [CheckoutError, EXIT.CHECKOUT_FAILED], [WriteError, EXIT.WRITE_FAILED], [Ext4PatchError, EXIT.WRITE_FAILED], [RepositoryCreateError, EXIT.CHECKOUT_FAILED],
  [AbortedError, EXIT.INTERRUPTED],
  [RemoteError, EXIT.REMOTE],
  [DependencyError, EXIT.DEPENDENCY], [FileConflictError, EXIT.DEPENDENCY], [PackageStateError, EXIT.DEPENDENCY],
  [ScriptFailedError, EXIT.SCRIPT], [SandboxError, EXIT.SCRIPT],
];

export const EXIT_BY_CODE: ReadonlyMap<string, number> = new Map(TABLE.map(([cls, n]) => [cls.code, n]));

export function exitCodeFor(code: string | undefined): number {
  return (code ? EXIT_BY_CODE.get(code) : undefined) ?? EXIT.FAILURE;
}

/** The EXIT STATUS section appended to every command's help. */
export const EXIT_STATUS_HELP = `EXIT STATUS
  0   success
  1   failure (merge: conflicts, nothing moved; fsck: damage found; diff --exit-code: differences;
      grep: no match; an unexpected system error)
  2   usage error: bad flag, argument, ref name, time (VIVA_DATE, --newer) or ambiguous revision; --size too
      small; a checkout destination inside .viva, that is a repository's database, or of an unsupported format
  3   not found: revision, ref, path, object, remote name or nbd session
  4   commit: the commit was made, but some source files could not be read and were left out
      (each named in a warning, recorded in the commit; --strict makes that an error, exit 14)
  10  not a viva repository, or one made by a newer viva
  11  repository locked (gc vs. a running commit); an nbd session served by a live process
  12  conflict: ref exists or moved concurrently, destination exists or not empty
  13  corrupt, unsafe or unsupported input image or .deb package, or package control data that cannot be parsed
  14  input unreadable (source, --token-file, --tls-cert/key), or changed while being read
  15  repository damaged (run 'viva fsck'), its database file missing or truncated
  16  could not write or create: disk full or I/O error (repository or destination), the
      checkout destination (a file-system tool failing; --fs xfs without root or loop devices)
      or (with --strict) an entry in it, the directory of init or clone;
      the file system of a derived disk could not be patched in place (full, an unsupported
      feature, a missing path); refs did not move
  17  remote unreachable or not a repository, refused the request (token, read-only, limits) or sent bad data
  18  package dependencies cannot be satisfied (missing, conflicting, Essential), or a package would
      overwrite a file of another package it does not replace; the image has no dpkg database, or a
      package to remove or upgrade is not installed; nothing written
  19  a maintainer script, trigger or dpkg run in the install sandbox failed (its output's tail is
      printed), or the sandbox could not be set up (needs root and overlayfs); nothing written
  70  internal error (a bug: please report it with DEBUG=1 output)
  130 interrupted
  141 the output pipe was closed by its reader (viva log | head): nothing printed, as git`;
