/** The writable NBD sessions of a repository (`viva nbd --list`, `--drop`): their overlays beside the objects. */
import fs from 'node:fs';
import { NbdSessionBusyError, NbdSessionNotFoundError, WriteError, systemReason } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { OVERLAY_BLOCK, Overlay, listSessionNames, readSessionInfo, sessionDir, sessionHolder } from './nbd-overlay.js';
import type { Repository } from '../store/repository.js';

/** One session as `viva nbd --list` shows it. */
export interface NbdSessionEntry {
  name: string;
  /** The revision served, as given. */
  rev: string;
  commit: Oid;
  size: number;
  /** Bytes of the disk the overlay holds at its last flush (whole blocks written, zeroed or trimmed). */
  changedBytes: number;
  /** ISO 8601. */
  created: string;
  /** Whether a live process serves it now (its pid). */
  live: boolean;
  pid?: number;
}

const NO_BASE = { read: () => Buffer.alloc(0), extents: () => [] };

/**
 * The sessions of the repository, by name, each at its last flushed state.
 * Locking: none (a live session's last flush is read; it may change meanwhile).
 *
 * @example
 * for (const s of listNbdSessions(repo)) console.log(s.name, s.changedBytes, s.live);
 */
export function listNbdSessions(repo: Repository): NbdSessionEntry[] {
  return listSessionNames(repo.dataDir).map((name) => {
    const dir = sessionDir(repo.dataDir, name);
    const info = readSessionInfo(dir);
    const o = Overlay.open(dir, NO_BASE, 'read');
    const changedBytes = Math.min(o.blocks * OVERLAY_BLOCK, info.size);
    o.close();
    const pid = sessionHolder(dir);
    return { name, rev: info.rev, commit: info.commit, size: info.size, changedBytes, created: info.created, live: pid !== undefined, ...(pid !== undefined ? { pid } : {}) };
  });
}

/**
 * Removes session `name` and its overlay (what was written and not committed is gone).
 * Throws NbdSessionNotFoundError, NbdSessionBusyError (a live process serves it), WriteError.
 *
 * @example
 * dropNbdSession(repo, 'web-test');
 */
export function dropNbdSession(repo: Repository, name: string): { name: string; changedBytes: number } {
  const dir = sessionDir(repo.dataDir, name);
  if (!fs.existsSync(dir)) throw new NbdSessionNotFoundError(name);
  const entry = listNbdSessions(repo).find((s) => s.name === name);
  const pid = sessionHolder(dir);
  if (pid !== undefined) throw new NbdSessionBusyError(name, `is served by pid ${pid}: stop that server first`);
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    throw new WriteError(dir, systemReason(e));
  }
  return { name, changedBytes: entry?.changedBytes ?? 0 };
}
