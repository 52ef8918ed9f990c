/** viva's public API: the repository handle, one function per op, model types and errors. */
export * from './errors.js';
export { Repository, findRepository, REPO_DIR, REPO_FORMAT } from './store/repository.js';
export { commit, defaultAuthor, parseLabel, type CommitOptions, type CommitResult, type ProgressEvent } from './ops/commit.js';
export { checkout, type CheckoutOptions, type CheckoutResult } from './ops/checkout.js';
export { log, isoDate, type LogEntry, type LogOptions } from './ops/log.js';
export { show, type ShowResult } from './ops/show.js';
export { ls, cat, describeEntry, type LsEntry, type LsOptions } from './ops/ls.js';
export { listBranches, createRef, deleteRef, renameBranch, type RefInfo, type RefKind } from './ops/branch.js';
export { reflog, type ReflogResult } from './ops/reflog.js';
export { fsck, type FsckResult, type FsckOptions } from './ops/fsck.js';
export { gc, type GcResult, type GcOptions } from './ops/gc.js';
export { init, type InitResult } from './ops/init.js';
export { resolveRevision, resolveSpec } from './ops/resolve.js';
export { openImage, createImageWriter, outputFormatForName, type OutputFormat } from './formats/index.js';
export type { ImageEntry, ImageReader, ImageWriter } from './formats/types.js';
export type { Commit } from './model/commit.js';
export type { Tree, TreeEntry } from './model/tree.js';
export type { Oid } from './model/oid.js';
