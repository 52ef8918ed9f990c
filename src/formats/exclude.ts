/**
 * Exclusion patterns for commit (`--exclude`, `--exclude-from`), with gitignore's syntax and meaning, matched by the
 * `ignore` package (the matcher eslint and prettier use) on paths relative to the image root.
 */
import fs from 'node:fs';
import ignore from 'ignore';
import { SourceReadError, UsageError } from '../errors.js';
import type { ImageEntry, ImageReader } from './types.js';

/** Says whether an image path (relative, no leading slash) is left out; `isDir` for gitignore's `dir/` patterns. */
export type ExcludeTest = ((path: Buffer, isDir: boolean) => boolean) & {
  /** The patterns it tests, as one string: equal keys exclude the same paths (the tree cache keys records by it). */
  key?: string;
};

/**
 * A test for gitignore-style `patterns` (`*.log`, `/tmp/`, `cache/`, `!keep.log`, `**\/x`) plus the lines of each
 * `files` entry (blank lines and `#` comments skipped, as in .gitignore). Returns undefined when there is nothing to
 * exclude. Throws SourceReadError for an unreadable file, UsageError for a pattern the matcher rejects.
 *
 * @example
 * const skip = excludeTest(['*.log', 'var/cache/'], []); skip!(Buffer.from('var/cache'), true) === true
 */
export function excludeTest(patterns: string[], files: string[]): ExcludeTest | undefined {
  const lines = [...patterns];
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw new SourceReadError(f, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message, { cause: e });
    }
    lines.push(...text.split(/\r?\n/));
  }
  if (!lines.some((l) => l.trim() !== '' && !l.startsWith('#'))) return undefined;
  const ig = ignore({ allowRelativePaths: false });
  for (const l of lines) {
    try {
      ig.add(l);
    } catch (e) {
      throw new UsageError(`bad exclude pattern '${l}': ${(e as Error).message}`);
    }
  }
  const test = (p: Buffer, isDir: boolean) => p.length > 0 && ig.ignores(`${p.toString('utf8')}${isDir ? '/' : ''}`);
  return Object.assign(test, { key: lines.join('\n') });
}

/**
 * `reader` without the entries `skip` excludes, anything below an excluded directory, and hardlinks to an excluded
 * file (for readers that cannot prune their walk themselves, such as a tar).
 */
export function excludeEntries(reader: ImageReader, skip: ExcludeTest): ImageReader {
  return {
    description: reader.description,
    async *entries(signal?: AbortSignal): AsyncGenerator<ImageEntry> {
      // Paths of excluded files: a hardlink to one is left out too (its content went with the excluded name).
      const left = new Set<string>();
      for await (const e of reader.entries(signal)) {
        // The matcher also tests each parent directory, so entries below an excluded one go whatever the order.
        const out = skip(e.path, e.type === 'dir') || (e.type === 'hardlink' && e.linkTarget !== undefined && left.has(e.linkTarget.toString('latin1')));
        if (out) {
          if (e.type !== 'dir') left.add(e.path.toString('latin1'));
          continue;
        }
        yield e;
      }
    },
  };
}
