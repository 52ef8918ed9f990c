/**
 * viva's public API: the repository handle, one function per op (each `op(repo, options)` → plain data), model
 * types and errors. Everything a program needs is imported from `'viva'`; nothing else in the package is public.
 *
 * @packageDocumentation
 *
 * @example
 * import { Repository, commit, log } from 'viva';
 * const repo = Repository.open('/srv/images', 'write');
 * try {
 *   await commit(repo, { source: '/srv/rootfs', branch: 'web/main', message: 'base' });
 *   for (const e of log(repo, { rev: 'web/main' })) console.log(e.id, e.message);
 * } finally {
 *   await repo.close();
 * }
 */
export * from './errors.js';
export { quotePath, quoteResultPath, unquotePath } from './model/quote.js';
export { Repository, findRepository, REPO_DIR, REPO_FORMAT, type OpenMode } from './store/repository.js';
export { commit, defaultAuthor, parseLabel, type CommitOptions, type CommitResult, type ProgressEvent } from './ops/commit.js';
export { checkout, type CheckoutOptions, type CheckoutResult } from './ops/checkout.js';
export { log, isoDate, parseApproxDate, addLogPatches, type LogEntry, type LogOptions } from './ops/log.js';
export { mergeBase, mergeBases, type MergeBases } from './ops/merge-base.js';
export { merge, mergeContinue, type MergeOptions, type MergeContinueOptions, type MergeOpResult, type MergeConflictInfo } from './ops/merge.js';
export {
  packageOp, install, upgrade, remove,
  type PackageOpOptions, type PackageRequest, type PackageOpResult, type PackageOpItem, type PackageChangeItem,
} from './ops/install.js';
export type { PackageOp } from './model/derivation.js';
export { exportGit, type ExportGitOptions, type ExportGitResult, type ExportedRef } from './ops/export-git.js';
export { importGit, type ImportGitOptions, type ImportGitResult } from './ops/import-git.js';
export { show, type ShowResult } from './ops/show.js';
export { ls, cat, catJson, describeEntry, diskLayout, MAX_CAT_JSON_BYTES, type CatResult, type LsEntry, type LsOptions } from './ops/ls.js';
export type { DiskFsInfo, DiskInfo, DiskRegionInfo, DiskVolumeInfo } from './ops/disk-info.js';
export { listBranches, createRef, deleteRef, renameBranch, aheadBehind, type RefInfo, type RefKind, type ListRefsOptions, type CreateRefOptions } from './ops/branch.js';
export { switchBranch, findTrackingCandidate, createTrackingBranch, type SwitchOptions, type SwitchResult } from './ops/switch.js';
export { readUpstream, setUpstream, setUpstreamTo, unsetUpstream, trackingMessage, type Upstream, type UpstreamConfig, type UpstreamResult } from './ops/upstream.js';
export { resolveRevisionRange, resolveRevisionArgument, splitRange, type RevisionRange, type RevisionArgument } from './ops/rev-list.js';
export { revParse, type RevParseOptions, type RevParseLine } from './ops/rev-parse.js';
export { showRef, type ShowRefOptions } from './ops/show-ref.js';
export { reflog, type ReflogResult } from './ops/reflog.js';
export { fsck, type FsckResult, type FsckOptions } from './ops/fsck.js';
export { gc, type GcResult, type GcOptions } from './ops/gc.js';
export { compact, type CompactResult } from './ops/compact.js';
export { init, type InitOptions, type InitResult } from './ops/init.js';
export { resolveRevision, resolveSpec, previousBranch, type ResolvedRevision, type ResolvedEntry } from './ops/resolve.js';
export type { ExcludeTest } from './formats/exclude.js';
export { openImage, createImageWriter, outputFormatForName, STDOUT_DEST, SUPPORTED_DEST, type OutputFormat } from './formats/index.js';
export type { ImageEntry, ImageReader, ImageWriter, StoredDir } from './formats/types.js';
export type { DirectoryTreeCache } from './formats/directory.js';
export type { Commit } from './model/commit.js';
export type { Tree, TreeEntry } from './model/tree.js';
export type { Oid } from './model/oid.js';
export { parseSize } from './cli/argv.js';
export { REBUILD_FS_TYPES, type BuildDiskOptions, type PartitionScheme, type RebuildFsType } from './ops/build-disk.js';
export { diff, patchFor, isBinary, resolveDiffRange, resolveDiffSides, type DiffEntry, type DiffResult, type DiffOptions, type DiffField, type PatchOptions } from './ops/diff.js';
export { readHostSide, isHostArgument, type HostSide } from './ops/diff-source.js';
export { status, recordCheckout, findCheckout, type StatusOptions, type StatusResult, type CheckoutRecord } from './ops/status.js';
export { diffPackages, inventoryOf, inventoriesOf, type PackageDiff } from './ops/image-packages.js';
export { compareDebVersions, parseDebVersion, parseConstraint, type DebVersion, type VersionConstraint } from './packages/debversion.js';
export {
  parseDeb822, fieldValue, formatDeb822, parseRelations, formatRelation, formatRelationGroup, relationAppliesTo,
  type Deb822Paragraph, type Deb822Field, type Relation, type RelationGroup, type RelationOp,
} from './packages/deb822.js';
export { PackageUniverse, readRepository, candidateFromParagraph, type PackageCandidate, type ReadRepositoryOptions } from './packages/source.js';
export { resolveInstall, type InstallRequest, type InstallPlan, type PlannedInstall, type PlannedRemoval, type ResolveOptions } from './packages/resolve.js';
export { parseDpkgStatus, parseApkInstalled, diffInventories, type Inventory, type Package, type PackageChange } from './packages/inventory.js';
export {
  readDeb, parseDebControl, formatRelations, controlField,
  type DebPackage, type DebControl, type ControlField, type ControlFile, type Relations,
} from './packages/deb.js';
export { find, findFiles, globRegExp, scopeCommits, type FindHit, type FindOptions, type FindScope } from './ops/find.js';
export { rebuildIndex, checkIndex, type IndexRebuildOptions, type IndexRebuildResult } from './ops/index-rebuild.js';
export { grep, type GrepHit, type GrepOptions } from './ops/grep.js';
export { imageStats, repositoryStats, du, type ImageStats, type RepositoryStats, type DuEntry } from './ops/stats.js';
export { search, type SearchOptions, type SearchHit } from './ops/search.js';
export { addRemote, removeRemote, listRemotes, fetch, fetchImageContent, push, pull, clone, defaultCloneDir, defaultRemote, lsRemote, parsePushSpec, isAncestor, type RemoteConfig, type FetchOptions, type PushOptions, type CloneOptions, type PullOptions, type FetchResult, type PushResult, type PullResult, type CloneResult, type PushSpec } from './ops/sync.js';
export { serve, type ServeOptions, type Server, type ServeHandler, type ServeAuth } from './sync/server.js';
export { webHandler, CONTENT_SECURITY_POLICY, type WebHandler, type WebAuth } from './web/handler.js';
export { serveNbd, DEFAULT_NBD_LISTEN, DEFAULT_HANDSHAKE_TIMEOUT, type NbdServeOptions, type NbdServer, type NbdExport, type NbdServerStats } from './nbd/server.js';
export { runVm, kvmUsable, DEFAULT_QEMU, DEFAULT_RUN_MEMORY, type RunVmOptions, type RunVmResult } from './nbd/run.js';
export { DiskFetcher, fetchDiskMaps, DEFAULT_FETCH_AHEAD, type DiskFetchStats } from './ops/disk-fetch.js';
export { listNbdSessions, dropNbdSession, type NbdSessionEntry } from './ops/nbd-sessions.js';
export { diskOfTree, autoTreeDiskSize, type TreeDisk, type TreeDiskOptions } from './ops/build-tree-disk.js';
export { namesDirectoryCommit, listTreeDisks, treeOfDiskKey, treeDiskKey, TREE_DISK_PREFIX, type TreeDiskRecord } from './ops/tree-disk.js';
export { DiskReader, BlobRangeReader, type DiskRun, type DiskExtent } from './ops/disk-reader.js';
export { derive, type DeriveOptions, type DeriveResult, type EditSpec } from './ops/derive.js';
export { derivedFrom, derivationGraph, showDerivation, type DerivationGraph, type DerivationEdge, type DerivationInfo } from './ops/derivations.js';
export { rebuild, type RebuildOptions, type RebuildResult, type RebuildItem } from './ops/rebuild.js';
export { deriveBatch, parseBatchSpec, type DeriveBatchOptions, type BatchResult, type BatchVariant } from './ops/derive-batch.js';
export { readDebDirectory, type DebIndexCache, type ReadDebDirectoryOptions, type DebDirectoryResult } from './packages/deb-directory.js';
export { openSources, type OpenSourcesOptions, type PackageSources, type OpenedSource, type SourceKind } from './packages/sources.js';
