/**
 * The install sandbox: runs a program (dpkg --configure, a maintainer script) inside an image without booting it and
 * without changing its materialized copy. The image's root is a read-only lower layer (a checkout cached per tree id,
 * shared by every run on that tree); the program sees an overlayfs mount of it with /proc, /dev and /sys, in its own
 * mount, network and pid namespaces (no network: only a loopback that is down), chrooted. What it changed is the
 * overlay's upper directory — files written, whiteouts for what it removed, opaque directories for what it replaced —
 * which `applyChanges` turns into edits of a MutableTree.
 *
 * Clean-up: every mount lives in the namespace of the run, so it disappears with the run's processes; `setpriv
 * --pdeathsig KILL` ties those to the viva process, so a `kill -9` of viva ends them too (the set-up script exits when
 * viva died before setpriv armed that signal), and a watcher inside the namespace kills what is left within a second
 * of viva's end should a signal ever be missed. Work directories are named by the creating process id; `removeStale`
 * removes those of processes that no longer exist.
 *
 * Why not a library: nothing on npm runs a chroot in namespaces; util-linux's unshare, setpriv and mount do, as
 * mmdebstrap and debootstrap use them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SandboxError } from '../errors.js';
import { openDirectory } from '../formats/directory.js';
import type { ImageEntry } from '../formats/types.js';
import type { MutableTree } from '../tree/mutable-tree.js';

/** Bytes of a failed program's output kept for its error message (the tail). */
export const OUTPUT_TAIL = 2000;
/** Printed by the set-up script just before the program starts: what comes before it is the sandbox's own. */
const READY = 'viva-sandbox-ready';
/** PATH inside the sandbox (Debian's root PATH). */
const SANDBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunResult {
  code: number;
  /** stdout and stderr, interleaved as they came (the tail when long). */
  output: string;
}

/** The xattrs overlayfs keeps on its upper layer for itself (never part of the image). */
function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** True while process `pid` exists (EPERM: it exists, owned by another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One sandbox over a materialized image root `lower` (never written). Create with `Sandbox.create`, run programs,
 * read the changes, then `remove()`.
 *
 * @example
 * const sb = Sandbox.create(lowerDir, workRoot);
 * const r = await sb.run(['/usr/bin/dpkg', '--configure', '-a']);
 * await applyChanges(sb.upper, tree);
 * sb.remove();
 */
export class Sandbox {
  /** Read-only layers below the upper one, top first: runs stacked and layers added, then the image's root. */
  private readonly layers: string[];
  private runs = 0;

  private constructor(lower: string, readonly dir: string) {
    this.layers = [lower];
  }

  /** Upper layer of the next run: what the programs change. */
  get upper(): string { return path.join(this.dir, `u${this.runs}`); }
  private get work(): string { return path.join(this.dir, 'work'); }
  private get merged(): string { return path.join(this.dir, 'merged'); }

  /** A new sandbox in a fresh directory under `workRoot` (named by this process id). Throws SandboxError. */
  static create(lower: string, workRoot: string): Sandbox {
    try {
      fs.mkdirSync(workRoot, { recursive: true, mode: 0o700 });
      const dir = fs.mkdtempSync(path.join(workRoot, `run-${process.pid}-`));
      const sb = new Sandbox(path.resolve(lower), dir);
      for (const d of [sb.upper, sb.work, sb.merged]) fs.mkdirSync(d, { mode: 0o755 });
      return sb;
    } catch (e) {
      throw new SandboxError('creating the sandbox', (e as Error).message, '');
    }
  }

  /**
   * Makes the changes of the runs so far a read-only layer and starts a new upper layer (empty): the next run's
   * changes are its own. Call after reading `upper`.
   */
  stack(): void {
    this.layers.unshift(this.upper);
    this.runs++;
    fs.mkdirSync(this.upper, { mode: 0o755 });
  }

  /**
   * A new directory for a layer the caller writes (files to add, overlayfs whiteouts for what to hide), which
   * `addLayer` then puts on top of the lower layers.
   */
  layerDir(): string {
    const d = path.join(this.dir, `l${this.layers.length}`);
    fs.mkdirSync(d, { mode: 0o755 });
    return d;
  }

  /** Puts `dir` (from layerDir) on top of the read-only layers; the upper layer must be empty (after `stack`, or before any run). */
  addLayer(dir: string): void {
    this.layers.unshift(dir);
  }

  /** Removes the work directories of runs whose process is gone (after a crash or kill -9). Returns how many. */
  static removeStale(workRoot: string): number {
    let n = 0;
    let names: string[];
    try {
      names = fs.readdirSync(workRoot);
    } catch {
      return 0;
    }
    for (const name of names) {
      const m = /^run-(\d+)-/.exec(name);
      if (!m || pidAlive(Number(m[1]))) continue;
      fs.rmSync(path.join(workRoot, name), { recursive: true, force: true });
      n++;
    }
    return n;
  }

  /**
   * Runs `argv` (a program inside the image and its arguments) chrooted into the overlay, with `env` (besides PATH,
   * HOME=/root, LC_ALL=C). Resolves with the exit code and output; throws SandboxError when the sandbox itself cannot
   * be set up (no overlayfs, not root) — a program that fails is a result, not an error.
   */
  run(argv: string[], env: Record<string, string> = {}, options: { timeoutMs?: number } = {}): Promise<RunResult> {
    const envArgs = Object.entries({ PATH: SANDBOX_PATH, HOME: '/root', LC_ALL: 'C', ...env }).map(([k, v]) => `${k}=${v}`);
    // Inside the new namespaces: mount the overlay and the kernel file systems, then chroot. Mount points missing
    // from the image are made in the overlay's upper layer and taken out again by applyChanges.
    const script = [
      'set -e',
      // setpriv sets its parent-death signal after it starts: a caller killed before that would leave this run
      // behind. The caller alive now — not even a zombie; host /proc, not yet remounted — means the signal was armed
      // while it lived.
      'grep -q "^State:[[:space:]]*[^ZX]" "/proc/$6/status" 2>/dev/null || exit 137',
      // Relative layer names (the sandbox's own directories) keep the option string short with many layers.
      'cd "$5"',
      'mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3,redirect_dir=off,metacopy=off,index=off" "$4"',
      'for d in proc sys dev; do [ -d "$4/$d" ] || mkdir -p "$4/$d"; done',
      'mount -t proc proc "$4/proc"',
      'mount -t sysfs -o ro sysfs "$4/sys"',
      'mount --rbind /dev "$4/dev"',
      'mount --make-rslave "$4/dev"',
      'root="$4"; caller="$6"; shift 6',
      `echo ${READY} >&2`,
      // A second line of defence that does not rest on parent-death signals: a watcher inside the namespace ends
      // every process in it (kill -1 spares only this shell, the namespace's init) once the caller is gone.
      '( while grep -q "^State:[[:space:]]*[^ZX]" "/proc/$caller/status" 2>/dev/null; do sleep 1; done; kill -KILL -1 ) </dev/null >/dev/null 2>&1 &',
      'set +e',
      'chroot "$root" /usr/bin/env -i "$@"',
      'exit $?',
    ].join('\n');
    const args = [
      '--pdeathsig', 'KILL', 'unshare', '--mount', '--net', '--pid', '--fork', '--kill-child', '--propagation', 'private',
      'sh', '-c', script, 'viva-sandbox', this.lowerOption(), path.basename(this.upper), 'work', 'merged', this.dir, String(process.pid), ...envArgs, ...argv,
    ];
    return new Promise((resolve, reject) => {
      const child = spawn('setpriv', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let ready = false;
      const take = (d: Buffer) => {
        out += d.toString('utf8');
        if (!ready) {
          const i = out.indexOf(`${READY}\n`);
          if (i >= 0) {
            ready = true;
            out = out.slice(0, i) + out.slice(i + READY.length + 1);
          }
        }
        if (ready && out.length > 4 * OUTPUT_TAIL) out = out.slice(-2 * OUTPUT_TAIL);
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
      child.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(new SandboxError('starting the sandbox', e.message, ''));
      });
      child.on('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        // Without the marker the set-up failed (no overlayfs, not root): the sandbox's error, not the program's.
        if (!ready) {
          const tail = out.slice(-OUTPUT_TAIL);
          const line = tail.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? `exit ${code ?? signal}`;
          reject(new SandboxError('setting up the sandbox', line, tail));
          return;
        }
        const tail = out.slice(-OUTPUT_TAIL);
        resolve({ code: code ?? (signal ? 128 + (({ SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0) : 1), output: tail });
      });
    });
  }

  /** overlayfs's lowerdir: the sandbox's own layers by relative name, the image root by absolute path. */
  private lowerOption(): string {
    return this.layers.map((l) => {
      const rel = path.dirname(l) === this.dir ? path.basename(l) : l;
      // ':' separates layers and ',' options: escaped as overlayfs reads them.
      return rel.replace(/([\\:,])/g, '\\$1');
    }).join(':');
  }

  /** Removes the sandbox's directories. */
  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A whiteout: overlayfs marks a removed entry with a character device 0:0. */
function isWhiteout(e: ImageEntry): boolean {
  return e.type === 'chr' && (e.rdev?.major ?? -1) === 0 && (e.rdev?.minor ?? -1) === 0;
}

/**
 * Applies what a sandbox's programs changed (its upper layer) to `tree`: removed entries are removed, an opaque
 * directory replaces what was there, everything else is added or replaced with its metadata (overlayfs's own xattrs
 * left out). `store(entry)` stores a file's content and returns it (as commit's ingest does). Mount points the
 * sandbox had to make (`proc`, `sys`, `dev` missing from the image) are left out.
 */
export async function applyChanges(upper: string, tree: MutableTree, store: (entry: ImageEntry) => Promise<{ oid: string; size: number; holes: Array<{ offset: number; length: number }> }>, options: { made?: string[] } = {}): Promise<{ added: number; removed: number }> {
  let added = 0;
  let removed = 0;
  const skip = new Set(options.made ?? []);
  // overlayfs (Linux ≥ 5.8) makes every whiteout a hard link to one shared inode: the reader reports the first as a
  // device and the others as hard links to it.
  const whiteouts = new Set<string>();
  for await (const entry of openDirectory(upper).entries()) {
    if (entry.path.length === 0) continue;
    const p = entry.path.toString('latin1');
    const top = p.split('/')[0]!;
    if (skip.has(top)) continue;
    if (isWhiteout(entry) || (entry.type === 'hardlink' && whiteouts.has(entry.linkTarget!.toString('latin1')))) {
      whiteouts.add(p);
      if (tree.lookup(entry.path)) {
        tree.remove(entry.path);
        removed++;
      }
      continue;
    }
    const xattrs = entry.xattrs.filter((x) => !isOverlayXattr(x.name));
    const opaque = entry.type === 'dir' && entry.xattrs.some((x) => x.name === 'trusted.overlay.opaque' && Buffer.from(x.value).toString() === 'y');
    if (opaque && tree.lookup(entry.path)) tree.remove(entry.path);
    const clean: ImageEntry = { ...entry, xattrs };
    if (clean.type === 'file' && clean.content) tree.add(clean, await store(clean));
    else if (clean.type === 'hardlink') tree.add(clean);
    else {
      const existing = tree.lookup(entry.path);
      if (existing && existing.type !== 'dir' && clean.type === 'dir') tree.remove(entry.path);
      if (existing?.type === 'dir' && clean.type !== 'dir') tree.remove(entry.path);
      tree.add(clean);
    }
    added++;
  }
  return { added, removed };
}
