import { Args } from '../src/cli/flags.js';
import { imageStats, repositoryStats, type ImageStats, type RepositoryStats } from '../src/ops/stats.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand, formatBytes, plural } from '../src/cli/repo-command.js';

export default class Stats extends RepoCommand {
  static override summary = 'sizes, deduplication and compression, per image or for the repository';
  static override description = `With REV: the image's file count and logical size, its distinct contents, chunks and their stored size, and the dedup (logical / unique) and compression (unique / stored) ratios; for a disk commit also what the disk keeps besides files. Without REV: object counts and stored bytes by kind, and how the images at the refs compare with what the repository stores. Computed from manifests and blob records, never from file bytes. In a partial clone nothing is fetched: sizes come from the manifests, and content that is not here is reported as absent (stored bytes and compression cover what is present).

${EXIT_STATUS_HELP}`;
  static override examples = ['<%= config.bin %> stats debian/12/base', '<%= config.bin %> stats --json'];
  static override args = { rev: Args.string({ description: 'revision (default: the whole repository)' }) };

  async run(): Promise<ImageStats | RepositoryStats> {
    const { args, flags } = await this.parse(Stats);
    if (args.rev) {
      const s = await this.withRepo('read', flags.repo, (repo) => imageStats(repo, args.rev));
      this.log([
        `image ${s.commit.slice(0, 12)}: ${plural(s.files, 'file')}, ${plural(s.dirs, 'directory', 'directories')}, ${plural(s.symlinks, 'symlink')}, ${s.other} other`,
        `logical size   ${formatBytes(s.logicalBytes)}`,
        `unique content ${formatBytes(s.uniqueBytes)} in ${plural(s.blobs, 'file content')} (dedup ${s.dedupRatio.toFixed(2)}x), ${plural(s.chunks, 'chunk')} in all`,
        `stored         ${formatBytes(s.storedBytes)} (compression ${s.compressionRatio.toFixed(2)}x)`,
        ...(s.diskExtraStoredBytes !== undefined
          ? [s.diskExtraAbsentBlobs
            ? `disk metadata  size unknown here: ${plural(s.diskExtraAbsentBlobs, 'region blob')} not in this partial clone${s.diskExtraBytes ? ` (${formatBytes(s.diskExtraBytes)}, ${formatBytes(s.diskExtraStoredBytes)} stored, of the rest)` : ''} (file-system metadata, boot code, raw regions)`
            : `disk metadata  ${formatBytes(s.diskExtraBytes ?? 0)}, ${formatBytes(s.diskExtraStoredBytes)} stored (file-system metadata, boot code, raw regions)`]
          : []),
        ...(s.absent ? [`absent         ${plural(s.absent.blobs, 'blob')}${s.absent.chunks ? ` and ${plural(s.absent.chunks, 'chunk')}` : ''}, ${s.diskExtraAbsentBlobs ? 'at least ' : ''}${formatBytes(s.absent.bytes)} of content not in this repository (partial clone: fetched on demand${s.diskExtraAbsentBlobs ? `; the size of ${plural(s.diskExtraAbsentBlobs, 'disk region blob')} is not known here` : ''}); stored and compression count what is present`] : []),
      ].join('\n'));
      return s;
    }
    const r = await this.withRepo('read', flags.repo, (repo) => repositoryStats(repo));
    const kinds = Object.keys(r.objects).sort();
    this.log([
      `${plural(r.refs, 'ref')}, ${plural(r.commits, 'commit')}`,
      ...kinds.map((k) => `${k.padEnd(7)} ${String(r.objects[k]).padStart(9)} objects  ${formatBytes(r.storedBytes[k] ?? 0).padStart(10)}`),
      `stored total ${formatBytes(r.totalStoredBytes)}; the images at the refs hold ${formatBytes(r.headsLogicalBytes)} (${r.overallRatio.toFixed(2)}x)`,
    ].join('\n'));
    return r;
  }
}
