/** Helpers of the benchmark harness (test/bench/run.ts): timed child processes, RSS sampling, statistics, formatting. */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** One finished child process, timed by wall clock. */
export interface Exec {
  ok: boolean;
  secs: number;
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** One line saying why it failed (set when !ok). */
  error?: string;
}

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the child after this long (ms); default 60 min. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60 * 60_000;
const MAX_BUFFER = 256 << 20;

function failureLine(cmd: string, code: number | null, signal: string | null, stderr: string, spawnError?: Error): string {
  if (spawnError) return `${path.basename(cmd)}: ${spawnError.message}`;
  const lines = stderr.split('\n').map((l) => l.replace(/\s+/g, ' ').trim()).filter((l) => l !== '');
  // the last line usually names the error (python tracebacks, restic "Fatal: ..."); oclif puts it first
  const pick = lines.find((l) => /error|fatal|failed|cannot|denied|not found/i.test(l)) ?? lines.at(-1) ?? '';
  const how = signal ? `signal ${signal}` : `exit ${code}`;
  return `${path.basename(cmd)} ${how}${pick ? `: ${pick.slice(0, 140)}` : ''}`;
}

/** Runs a command to completion with stdio captured; the time covers spawn to exit. */
export function timed(cmd: string, args: string[], options: ExecOptions = {}): Exec {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, {
    cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: MAX_BUFFER, timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, killSignal: 'SIGKILL',
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const stdout = r.stdout?.toString() ?? '';
  const stderr = r.stderr?.toString() ?? '';
  const ok = !r.error && r.status === 0;
  return {
    ok, secs, code: r.status, signal: r.signal, stdout, stderr,
    ...(ok ? {} : { error: failureLine(cmd, r.status, r.signal, stderr, r.error) }),
  };
}

/** Runs a shell pipeline (bash, pipefail) timed. */
export function timedShell(script: string, options: ExecOptions = {}): Exec {
  return timed('bash', ['-c', `set -o pipefail; ${script}`], options);
}

/** Like timed(), but throws on failure: for setup steps whose failure makes the measure meaningless. */
export function must(cmd: string, args: string[], options: ExecOptions = {}): Exec {
  const r = timed(cmd, args, options);
  if (!r.ok) throw new Error(r.error);
  return r;
}

/** A timed run that also reports memory: /usr/bin/time's max RSS and sampled RssAnon/RssFile peaks. */
export interface SampledExec extends Exec {
  /** Max resident set size reported by `/usr/bin/time -f %M` (bytes). */
  maxRss?: number;
  /** Peak of RssAnon summed over the process tree, sampled every SAMPLE_MS (bytes). */
  anonPeak: number;
  /** Peak of RssFile (file-backed pages: binaries, LMDB's mmap) summed over the tree (bytes). */
  filePeak: number;
  samples: number;
}

export const SAMPLE_MS = 50;

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      for (const c of fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ')) if (c.trim()) out.push(Number(c));
    } catch {
      // the task exited between readdir and read
    }
  }
  return out;
}

function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  const todo = childrenOf(pid);
  while (todo.length > 0) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...childrenOf(p));
  }
  return out;
}

function statusKb(pid: number): { anon: number; file: number } | undefined {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
  return { anon: kb('RssAnon'), file: kb('RssFile') };
}

let timeFileSeq = 0;

/**
 * Runs `/usr/bin/time -f %M cmd args` and samples /proc/PID/status of every descendant of `time` (the measured command
 * and whatever it starts) every SAMPLE_MS.
 */
export function timedWithRss(cmd: string, args: string[], options: ExecOptions = {}): Promise<SampledExec> {
  const timeFile = path.join(os.tmpdir(), `viva-bench-time-${process.pid}-${timeFileSeq++}.txt`);
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-o', timeFile, '-f', '%M', cmd, ...args], {
      cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    child.stdout.on('data', (d: Buffer) => { if ((outBytes += d.length) < MAX_BUFFER) out.push(d); });
    child.stderr.on('data', (d: Buffer) => { if ((outBytes += d.length) < MAX_BUFFER) err.push(d); });
    let anonPeak = 0;
    let filePeak = 0;
    let samples = 0;
    const sample = () => {
      if (child.pid === undefined) return;
      let anon = 0;
      let file = 0;
      let seen = 0;
      for (const p of descendantsOf(child.pid)) {
        const s = statusKb(p);
        if (!s) continue;
        anon += s.anon;
        file += s.file;
        seen++;
      }
      if (seen === 0) return;
      samples++;
      anonPeak = Math.max(anonPeak, anon * 1024);
      filePeak = Math.max(filePeak, file * 1024);
    };
    const sampler = setInterval(sample, SAMPLE_MS);
    const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    let spawnError: Error | undefined;
    child.on('error', (e) => { spawnError = e; });
    child.on('close', (code, signal) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      clearInterval(sampler);
      clearTimeout(killer);
      let maxRss: number | undefined;
      let timeOut = '';
      try {
        timeOut = fs.readFileSync(timeFile, 'utf8');
        fs.rmSync(timeFile, { force: true });
      } catch {
        // time did not run
      }
      const last = timeOut.trim().split('\n').at(-1) ?? '';
      if (/^\d+$/.test(last)) maxRss = Number(last) * 1024;
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      const ok = !spawnError && code === 0;
      resolve({
        ok, secs, code, signal, stdout, stderr, maxRss, anonPeak, filePeak, samples,
        ...(ok ? {} : { error: failureLine(cmd, code, signal, stderr, spawnError) }),
      });
    });
  });
}

/** Apparent size in bytes (`du -sb`) of one or more paths. */
export function duBytes(...paths: string[]): number {
  return duBytesExcluding([], ...paths);
}

/** duBytes of `paths`, leaving out files whose names match one of `exclude` (du's --exclude patterns). */
export function duBytesExcluding(exclude: string[], ...paths: string[]): number {
  const r = spawnSync('du', ['-sbc', ...exclude.map((x) => `--exclude=${x}`), ...paths], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`du ${paths.join(' ')}: ${r.stderr.trim()}`);
  const total = r.stdout.trim().split('\n').at(-1)!;
  return Number(total.split('\t')[0]);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function fmtSecs(s: number): string {
  return s < 10 ? s.toFixed(2) : s.toFixed(1);
}

/** Bytes as decimal megabytes (10^6), the unit the targets use. */
export function fmtMB(bytes: number): string {
  const mb = bytes / 1e6;
  return mb < 10 ? mb.toFixed(2) : mb < 1000 ? mb.toFixed(1) : mb.toFixed(0);
}

export function fmtBytes(bytes: number): string {
  if (Math.abs(bytes) < 1e4) return `${bytes} B`;
  if (Math.abs(bytes) < 1e7) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${fmtMB(bytes)} MB`;
}

export function loadAverage(): [number, number, number] {
  const [a, b, c] = os.loadavg();
  return [a!, b!, c!];
}

export function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true, maxRetries: 3 });
}

/** Flushes dirty pages (outside the timings) so one run's writeback does not land in the next run's time. */
export function syncDisks(): void {
  spawnSync('sync', [], { stdio: 'ignore' });
}
