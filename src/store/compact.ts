/**
 * Compaction of the repository's LMDB file: LMDB reuses freed pages but never shrinks its file, so `gc --compact`
 * writes a compacted copy (mdb_env_copy2 with MDB_CP_COMPACT, through lmdb-js's `backup(path, true)`) and renames it
 * over `data.mdb`.
 *
 * Crash safety: the copy goes to `.viva/data.mdb.compact-tmp`, is fsynced and checked, and only then renamed over
 * `data.mdb` (rename is atomic), and the directory is fsynced. A kill -9 at any moment leaves either the old or the
 * new file, both complete; a leftover temporary file is removed by the next gc.
 *
 * Concurrency: the whole copy runs inside one LMDB write transaction of this process (so no writer anywhere can
 * commit meanwhile; the copy itself is made by a child process, because lmdb-js copies asynchronously and a
 * synchronous transaction cannot wait for it). Other processes that have the environment open would keep using the
 * old, unlinked file after the rename — a writer's later commits would be lost — so compaction refuses while any
 * other process has `data.mdb` or its lock file open (found through /proc/PID/fd; processes of other users are
 * invisible to a non-root user). Readers that start during the copy read the old file's snapshot, which holds the same
 * data. The lock file is removed before the rename: the next opener builds a fresh reader table for the new file.
 */
import { childProcess } from '../lazy.js';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { CompactionError, RepositoryLockedError, WriteError } from '../errors.js';
import { checkLmdbFile } from './lmdb-header.js';

export const COMPACT_TMP_SUFFIX = '.compact-tmp';

/** The child that copies: opens the environment read-only, writes the compacted copy, and dies with its parent. */
const COPY_SCRIPT = `
const { src, dst, lmdb } = JSON.parse(process.env.VIVA_COMPACT);
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(1); }, 100).unref();
const { open } = require(lmdb);
const env = open({ path: src, readOnly: true, maxDbs: 64 });
env.backup(dst, true).then(() => env.close()).then(() => process.exit(0), (e) => {
  process.stderr.write(String(e && e.message || e));
  process.exit(1);
});
`;

export interface CompactStats {
  /** Size of `data.mdb` before and after, in bytes. */
  before: number;
  after: number;
}

/** Removes a temporary copy left by a compaction that was killed. Call while holding the write lock. */
export function removeCompactLeftover(dataFile: string): boolean {
  try {
    fs.unlinkSync(dataFile + COMPACT_TMP_SUFFIX);
    return true;
  } catch {
    return false;
  }
}

/** Pids of other processes with one of `files` open (any fd whose link names it; `(deleted)` counts). */
export function processesUsing(files: string[]): number[] {
  const wanted = new Set(files.flatMap((f) => [f, `${f} (deleted)`]));
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${name}/fd`);
    } catch {
      continue; // gone, or another user's process
    }
    for (const fd of fds) {
      let target: string;
      try { target = fs.readlinkSync(`/proc/${name}/fd/${fd}`); } catch { continue; }
      if (wanted.has(target)) { pids.push(Number(name)); break; }
    }
  }
  return pids;
}

function fsyncPath(p: string, flags = 'r'): void {
  const fd = fs.openSync(p, flags);
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/**
 * Writes the compacted copy of the environment in `dataFile` and renames it over `dataFile`. Must run inside a write
 * transaction of this process on that environment (Repository.compact does), which keeps every writer out; the
 * caller's handle still maps the old file afterwards and must be reopened. Throws RepositoryLockedError (another
 * process has the repository open) or CompactionError (the copy failed: the repository is unchanged).
 */
export function compactEnvironmentFile(root: string, dataFile: string): CompactStats {
  if (!fs.existsSync('/proc/self/fd')) throw new CompactionError(dataFile, 'needs /proc to make sure no other process has the repository open');
  const real = fs.realpathSync(dataFile);
  const lock = real + '-lock';
  const tmp = real + COMPACT_TMP_SUFFIX;
  const busy = () => {
    const pids = processesUsing([real, lock]);
    if (pids.length) throw new RepositoryLockedError(root, `${pids.length === 1 ? 'process' : 'processes'} ${pids.join(', ')} (the repository is open; compaction needs it to itself)`);
  };
  busy();
  removeCompactLeftover(real);
  const before = fs.statSync(real).size;
  const lmdb = createRequire(import.meta.url).resolve('lmdb');
  const child = childProcess().spawnSync(process.execPath, ['-e', COPY_SCRIPT], {
    env: { ...process.env, VIVA_COMPACT: JSON.stringify({ src: real, dst: tmp, lmdb }) },
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  try {
    if (child.error || child.status !== 0) {
      const why = child.error?.message ?? (child.stderr.trim().split('\n')[0] || `copy exited with ${child.status ?? child.signal}`);
      // A full disk is a failed write (exit 16), as everywhere else.
      if (/no space left|ENOSPC|EDQUOT|quota/i.test(why)) throw new WriteError(tmp, 'no space left on device for the compacted copy (the repository is unchanged)');
      throw new CompactionError(dataFile, why);
    }
    // The copy takes the place of the old file: it keeps its mode and owner (a shared repository stays shared).
    const old = fs.statSync(real);
    fs.chmodSync(tmp, old.mode & 0o7777);
    try {
      fs.chownSync(tmp, old.uid, old.gid);
    } catch (e) {
      throw new CompactionError(dataFile, `cannot give the compacted copy the owner ${old.uid}:${old.gid} of the old file (${(e as NodeJS.ErrnoException).code ?? e}): run gc --compact as that user or as root`);
    }
    fsyncPath(tmp, 'r+');
    const check = checkLmdbFile(tmp);
    if (!check.ok) throw new CompactionError(dataFile, `the compacted copy is unusable: ${check.reason}`);
    // Checked again right before the swap: a process that opened the repository during the copy is caught here.
    busy();
  } catch (e) {
    removeCompactLeftover(real);
    throw e;
  }
  const after = fs.statSync(tmp).size;
  // The lock file's reader table describes the old file: the next opener must build a new one.
  try { fs.unlinkSync(lock); } catch { /* none */ }
  fs.renameSync(tmp, real);
  fsyncPath(path.dirname(real));
  return { before, after };
}
