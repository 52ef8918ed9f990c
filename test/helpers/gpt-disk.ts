/**
 * Raw GPT disks with one ext4 partition, built at test time with sfdisk and mke2fs (the source the disk container
 * and qcow2 snapshot tests convert with qemu-img), and the ids a commit of such a disk gets.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { tmpDir, viva, vivaJson } from './cli.js';

export { have } from './tools.js';

/** Runs `cmd` with `input` on its standard input (if given); throws, with its stderr, when it fails. */
export function run(cmd: string, args: string[], input?: string): void {
  execFileSync(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], input });
}

/**
 * Makes `disk` a sparse raw disk of `size` (truncate's syntax, default 24 MiB) with a GPT whose one Linux
 * partition (sectors 2048 to 42047) holds an ext4 file system of 20000 1 KiB blocks made from the directory `tree`.
 */
export function makeGptExt4Disk(disk: string, tree: string, size = '24M'): void {
  run('truncate', ['-s', size, disk]);
  run('sfdisk', ['-q', '--label', 'gpt', disk], 'start=2048, size=40000, type=linux\n');
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, '-E', 'offset=1048576', disk, '20000']);
}

/** A new temporary directory with an empty repository (made by `viva init`) at `repo` inside it. */
export async function initRepo(t: ExecutionContext): Promise<{ dir: string; repo: string }> {
  const dir = tmpDir(t);
  const repo = path.join(dir, 'repo');
  const r = await viva(['init', repo]);
  t.is(r.code, 0, r.stderr);
  return { dir, repo };
}

/** Commits `args` (a source and its options) to `repo`: the commit's root and tree ids and the source's format. */
export async function commitIds(t: ExecutionContext, repo: string, args: string[], message = 'x'): Promise<{ root: string; tree: string; format: string }> {
  const c = await vivaJson(t, ['commit', ...args, '-C', repo, '-m', message]);
  const s = await vivaJson(t, ['show', c.id, '-C', repo]);
  return { root: s.root, tree: s.tree, format: c.source.format };
}
