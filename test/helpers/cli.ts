/** Runs the built CLI (bin/run.js → dist/) in child processes, and takes exact dumps of a repository for before/after comparisons. */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openEnvironment } from '../../src/store/lmdb-store.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/run.js');

export interface RunOptions {
  cwd?: string;
  /** Added to a clean environment (the caller's VIVA_* and DEBUG are removed first). */
  env?: Record<string, string | undefined>;
  uid?: number;
  gid?: number;
  /** Kill the child after this long (ms); default 100 s. */
  timeoutMs?: number;
  /** Written to the child's standard input (which is otherwise closed). */
  input?: string | Buffer;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
}

/**
 * The environment every CLI run starts from: no repository hints, no debug output, a fixed author, and no NODE_ENV
 * (ava sets NODE_ENV=test, which makes oclif warn about commands that failed before parsing).
 */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('VIVA_') || k === 'DEBUG' || k === 'NODE_OPTIONS' || k === 'NODE_ENV') delete env[k];
  env.VIVA_AUTHOR = 'Test User <test@example.com>';
  env.NO_COLOR = '1';
  // An internal error (a bug) prints its stack, so that a failure in CI says where it came from.
  env.VIVA_TRACE_INTERNAL = '1';
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts `node bin/run.js ...args` without waiting (for kill tests). */
export function spawnViva(args: string[], options: RunOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? os.tmpdir(), env: cleanEnv(options.env), stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    ...(options.uid !== undefined ? { uid: options.uid } : {}), ...(options.gid !== undefined ? { gid: options.gid } : {}),
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  return child;
}

/** Collects a child's output and exit. */
export function finished(child: ChildProcess, timeoutMs = 100_000): Promise<RunResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => err.push(d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Runs `viva ...args` to completion. */
export function viva(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return finished(spawnViva(args, options), options.timeoutMs);
}

/** Runs `viva ...args --json`, fails the test unless it exits 0, and returns the parsed output. */
export async function vivaJson<T = any>(t: ExecutionContext, args: string[], options: RunOptions = {}): Promise<T> {
  const r = await viva([...args, '--json'], options);
  if (r.code !== 0) t.fail(`viva ${args.join(' ')} --json exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Runs `viva ...args` and fails the test unless it exits 0. */
export async function vivaOk(t: ExecutionContext, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const r = await viva(args, options);
  if (r.code !== 0) t.fail(`viva ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** A fresh temporary directory, removed when the test ends. */
export function tmpDir(t: ExecutionContext | undefined, prefix = 'viva-cli-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  if (t) t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Path of the LMDB data file of the repository rooted at `repo`. */
export function dataFile(repo: string): string {
  return path.join(repo, '.viva', 'data.mdb');
}

/** Copies a (closed, idle) repository to a new root directory: the LMDB data file is all of it. */
export function copyRepository(from: string, to: string): string {
  fs.mkdirSync(path.join(to, '.viva'), { recursive: true });
  fs.copyFileSync(dataFile(from), dataFile(to));
  return to;
}

export type SubDatabase = 'index' | 'refs' | 'reflog' | 'meta' | 'sessions' | (string & {});

/**
 * An exact picture of the repository: one line per record of every sub-database (all of them, as LMDB's main
 * database lists them, unless `dbs` is given), `db key-hex sha256(value)`, read with raw binary encodings so that any
 * change to any key or value shows. The environment is closed again.
 */
export async function dumpRepository(repo: string, dbs?: readonly SubDatabase[]): Promise<string[]> {
  const env = openEnvironment({ path: dataFile(repo), readOnly: true, maxDbs: 64 });
  const lines: string[] = [];
  try {
    // Logical content: objects are listed by key with the hash of their stored bytes (found through their pack);
    // the packs themselves are physical layout (gc may repack live objects) and are left out.
    const names = (dbs ?? [...env.getKeys({})].filter((k): k is string => typeof k === 'string').sort()).filter((n) => n !== 'packs');
    const packs = env.openDB({ name: 'packs', keyEncoding: 'binary', encoding: 'binary' });
    for (const name of names) {
      const db = env.openDB({ name, keyEncoding: 'binary', encoding: 'binary' });
      for (const { key, value } of db.getRange({})) {
        let v = value as Buffer;
        if (name === 'index') {
          const pack = packs.get(v.subarray(0, 4)) as Buffer;
          v = pack.subarray(v.readUInt32BE(4), v.readUInt32BE(4) + v.readUInt32BE(8));
        }
        lines.push(`${name} ${Buffer.from(key as Buffer).toString('hex')} ${crypto.createHash('sha256').update(v).digest('hex')}`);
      }
    }
  } finally {
    await env.close();
  }
  return lines;
}

/** Lines of a dump that belong to one sub-database. */
export function dumpOf(dump: string[], db: SubDatabase): string[] {
  return dump.filter((l) => l.startsWith(db + ' '));
}

/** Sleeps. */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Starts `viva serve` and resolves with its URL (from its start-up line). */
export async function startServer(t: ExecutionContext, args: string[], options: RunOptions = {}): Promise<{ url: string; child: ChildProcess; log: () => string }> {
  const child = spawnViva(['serve', '--listen', '127.0.0.1:0', ...args], options);
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start-up line: ${err}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving .* at (\S+)/.exec(err);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    child.on('exit', () => reject(new Error(`serve exited: ${err}`)));
  });
  t.teardown(() => { child.kill('SIGKILL'); });
  return { url, child, log: () => err };
}
