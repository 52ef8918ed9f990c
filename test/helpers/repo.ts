/** Test fixtures for repository tests: temporary directories and repositories, a fixed author and clock, tree builders. */
import type { ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repository } from '../../src/store/repository.js';
import { commit, type CommitOptions, type CommitResult } from '../../src/ops/commit.js';

export const AUTHOR = 'Viva Test <test@example.org>';
/** 2023-11-14T22:13:20Z. */
export const TIME = 1_700_000_000;
export const MiB = 1 << 20;
export const isRoot = process.getuid?.() === 0;

/** A fresh directory under the system temp dir, removed when the test ends. */
export function tmpDir(t: ExecutionContext, prefix = 'viva-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A new repository in a temp dir; closed (if still open) and removed when the test ends. */
export function tmpRepo(t: ExecutionContext): { repo: Repository; dir: string } {
  const dir = tmpDir(t, 'viva-repo-');
  const repo = Repository.init(path.join(dir, 'repo'));
  let closed = false;
  const close = repo.close.bind(repo);
  repo.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  t.teardown(() => repo.close());
  return { repo, dir };
}

/** commit() with the fixed author and a fixed time (TIME + `tick` seconds), so ids are reproducible. */
export function commitAt(repo: Repository, source: string, options: Partial<CommitOptions> & { tick?: number } = {}): Promise<CommitResult> {
  const { tick, ...rest } = options;
  return commit(repo, { source, message: 'test commit', author: AUTHOR, time: TIME + (tick ?? 0), ...rest });
}

export type Spec = { [name: string]: string | Buffer | Spec };

/**
 * Writes a small tree: strings/Buffers are files, objects are directories. Sets every mtime to a fixed value
 * (directories last), so two trees written from the same spec in any order are identical in content and metadata.
 */
export function writeTree(root: string, spec: Spec, options: { reverse?: boolean; mtime?: Date } = {}): void {
  const mtime = options.mtime ?? new Date('2020-01-02T03:04:05Z');
  const dirs: string[] = [];
  const write = (dir: string, s: Spec) => {
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o755);
    dirs.push(dir);
    const names = Object.keys(s).sort();
    if (options.reverse) names.reverse();
    for (const name of names) {
      const v = s[name]!;
      const p = path.join(dir, name);
      if (typeof v === 'string' || Buffer.isBuffer(v)) {
        fs.writeFileSync(p, v);
        fs.chmodSync(p, 0o644);
        fs.utimesSync(p, mtime, mtime);
      } else {
        write(p, v);
      }
    }
  };
  write(root, spec);
  for (const d of dirs.reverse()) fs.utimesSync(d, mtime, mtime);
}

/** Deterministic pseudo-random bytes (AES-256-CTR keystream keyed by the seed). */
export function randomBytes(n: number, seed: string): Buffer {
  const key = crypto.createHash('sha256').update(seed).digest();
  const cipher = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(n)), cipher.final()]);
}

export function sha256(data: Uint8Array | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
