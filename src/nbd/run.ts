/**
 * `viva run`: boots a disk commit in qemu without materializing it — an NBD server on a Unix socket in a fresh
 * temporary directory, and `qemu-system-x86_64` reading the disk from it (KVM when /dev/kvm can be opened, TCG
 * otherwise), its serial console on the caller's terminal. In a partial clone the blocks the guest reads are fetched
 * on demand (see ops/disk-fetch.ts) and kept.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { UsageError } from '../errors.js';
import { findExecutable } from '../exec-path.js';
import type { Repository } from '../store/repository.js';
import { HEADS } from '../model/ref.js';
import { listNbdSessions } from '../ops/nbd-sessions.js';
import { resolveRevision } from '../ops/resolve.js';
import { type NbdExport, type NbdServerStats, serveNbd } from './server.js';

/** The emulator `viva run` starts (VIVA_QEMU overrides it). */
export const DEFAULT_QEMU = 'qemu-system-x86_64';
/** Guest memory when not given (qemu's -m syntax). */
export const DEFAULT_RUN_MEMORY = '1G';

/** The options of {@link runVm}. */
export interface RunVmOptions {
  /** The disk commit to boot. */
  rev: string;
  /** qemu's -m value (e.g. 512M, 2G); default {@link DEFAULT_RUN_MEMORY}. */
  memory?: string;
  /** Virtual CPUs (-smp); qemu's default (1) when not given. */
  cpus?: number;
  /** More qemu arguments, after viva's own (a later -accel, -m or -serial wins in qemu). */
  qemuArgs?: string[];
  /** The emulator binary; default {@link DEFAULT_QEMU}. */
  qemu?: string;
  /** Accelerator; default `kvm` when /dev/kvm can be opened for reading and writing, else `tcg`. */
  accel?: 'kvm' | 'tcg';
  /** Where qemu's console goes: the caller's terminal (default) or pipes handed to `onSpawn`. */
  stdio?: 'inherit' | 'pipe';
  /** Called once the NBD server is up, before qemu starts, with the writable session (undefined without one). */
  onSession?: (session: { name: string; created: boolean } | undefined) => void;
  /** Called with the qemu process once started (e.g. to forward signals or read piped output). */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void;
  /** The NBD server's per-connection log lines (default: dropped; the console is the guest's). */
  log?: (line: string) => void;
  /**
   * Boot writable: the guest's writes go to the overlay of NBD session `session` (default: a generated name; an
   * existing one is reopened), kept when qemu exits, to be committed with `viva commit nbd:SESSION`. Without it the
   * guest writes to a temporary overlay qemu drops.
   */
  writable?: { session?: string };
  /** A directory commit's disk size (see NbdServeOptions.size). */
  size?: number;
  /** Called before and after a directory commit's disk is built or found. */
  onBuild?: (rev: string, phase: 'start' | 'built' | 'found') => void;
}

/** What {@link runVm} returns when qemu has exited. */
export interface RunVmResult {
  export: NbdExport;
  accel: 'kvm' | 'tcg';
  /** The qemu command line (the socket path is gone by now). */
  command: string[];
  /** qemu's exit status; 128 + the signal number when it was killed by a signal. */
  exitCode: number;
  signal?: string;
  /** Bytes the guest read through NBD and, in a partial clone, bytes fetched from the promisor remote for them. */
  stats: NbdServerStats;
  /**
   * With `writable`: the session holding the guest's writes, whether it was created by this run, its size at the
   * end, and the branch REV named (when it named one).
   */
  session?: { name: string; created: boolean; changedBytes: number; branch?: string };
}

/** Whether KVM can be used here: /dev/kvm exists and this user may open it for reading and writing. */
export function kvmUsable(): boolean {
  try {
    fs.closeSync(fs.openSync('/dev/kvm', 'r+'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Serves REV over NBD on a private Unix socket and runs qemu on it until qemu exits. Without a writable session
 * the guest writes into a temporary overlay qemu keeps (`snapshot=on`) and drops at exit: the repository is never
 * changed. With one, the writes go to the session's overlay (flushed when qemu's connection ends) and stay there
 * until `viva commit nbd:SESSION` records them or `viva nbd --drop SESSION` removes them.
 * Locking: none of its own (reads; a partial clone stores the objects it fetches).
 * A directory commit boots from the disk built once from its tree (see ops/tree-disk.ts; the repository must be open
 * for writing the first time).
 * Throws: UsageError (qemu cannot be started; a directory commit in a repository open read-only), RevisionNotFoundError,
 * CheckoutError (a directory commit's disk cannot be built).
 *
 * @example
 * const r = await runVm(repo, { rev: 'vm/web', memory: '2G', qemuArgs: ['-no-reboot'] });
 * process.exitCode = r.exitCode;
 */
export async function runVm(repo: Repository, options: RunVmOptions): Promise<RunVmResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-run-'));
  const socket = path.join(dir, 'nbd.sock');
  try {
    const server = await serveNbd(repo, {
      revs: [options.rev], socket, log: options.log ?? (() => undefined),
      ...(options.size !== undefined ? { size: options.size } : {}), ...(options.onBuild ? { onBuild: options.onBuild } : {}),
      ...(options.writable ? { writable: options.writable } : { name: 'disk' }),
    });
    const session = server.session;
    options.onSession?.(session);
    let result: RunVmResult;
    try {
      const accel = options.accel ?? (kvmUsable() ? 'kvm' : 'tcg');
      const args = [
        '-accel', accel, '-m', options.memory ?? DEFAULT_RUN_MEMORY,
        ...(options.cpus !== undefined ? ['-smp', String(options.cpus)] : []),
        '-display', 'none', '-serial', 'mon:stdio',
        // qemu's option syntax: a comma inside a value is written twice.
        '-drive', `file=${server.uris[0]!.replace(/,/g, ',,')},format=raw,if=virtio${session ? ',cache=writeback' : ',snapshot=on'}`,
        ...(options.qemuArgs ?? []),
      ];
      const qemu = options.qemu ?? process.env.VIVA_QEMU ?? DEFAULT_QEMU;
      // qemu dies with viva: its disk is this process's NBD server, so a qemu outliving a `kill -9` of viva would
      // only hang on I/O while holding the console. setpriv (util-linux) arms the parent-death signal and execs it.
      const exe = findExecutable(qemu);
      const setpriv = exe ? findExecutable('setpriv') : undefined;
      const child = setpriv
        ? spawn(setpriv, ['--pdeathsig', 'KILL', exe!, ...args], { stdio: options.stdio ?? 'inherit' })
        : spawn(qemu, args, { stdio: options.stdio ?? 'inherit' });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        child.once('error', (e: NodeJS.ErrnoException) => reject(new UsageError(e.code === 'ENOENT' ? `'${qemu}' not found: install qemu (qemu-system-x86) or set VIVA_QEMU` : `cannot start '${qemu}': ${e.message}`)));
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
      options.onSpawn?.(child);
      const { code, signal } = await exited;
      result = {
        export: server.exports[0]!,
        accel,
        command: [qemu, ...args],
        exitCode: code ?? 128 + (signal ? os.constants.signals[signal] : 0),
        ...(signal ? { signal } : {}),
        stats: server.stats(),
      };
    } finally {
      await server.close();
    }
    // Closed, the session's overlay is flushed: its size is final.
    if (session) {
      const changedBytes = listNbdSessions(repo).find((e) => e.name === session.name)?.changedBytes ?? 0;
      // The branch REV named, if it named one: where the commit of the session naturally goes.
      const ref = resolveRevision(repo, options.rev).ref;
      const branch = ref?.startsWith(HEADS) ? ref.slice(HEADS.length) : undefined;
      result = { ...result, session: { ...session, changedBytes, ...(branch ? { branch } : {}) } };
    }
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
