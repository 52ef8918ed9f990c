/** The entries `viva diff` reports, as plain data (shared by diff, log's per-commit changes and status). */
export type DiffStatus = 'A' | 'D' | 'M' | 'T' | 'R';

/** What differs in an entry present on both sides. */
export type DiffField = 'content' | 'mode' | 'owner' | 'xattrs' | 'mtime' | 'target' | 'rdev' | 'holes' | 'hardlink';

export interface DiffSide {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: string;
  oid?: string;
  linkTarget?: string;
}

/**
 * One difference between two images: the path, its status (A added, D deleted, M modified, T type changed, R renamed), the fields that changed and both sides' metadata.
 */
export interface DiffEntry {
  status: DiffStatus;
  /** UTF-8 text (lossy); `pathHex` holds the exact bytes when they are not UTF-8. */
  path: string;
  pathHex?: string;
  /** Renames: where it was (`fromHex`: its exact bytes, when not UTF-8). */
  from?: string;
  fromHex?: string;
  /** For M: the fields that differ ('content' when the bytes differ). */
  changes?: DiffField[];
  old?: DiffSide;
  new?: DiffSide;
  /** For xattrs changes: names added, removed or changed. */
  xattrs?: string[];
}
