import { Flags } from '../src/cli/flags.js';
import fs from 'node:fs';
import { UsageError } from '../src/errors.js';
import { quoteResultPath } from '../src/model/quote.js';
import { find, findFiles, type FindHit, type FindScope } from '../src/ops/find.js';
import { EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';

export default class Find extends RepoCommand {
  static override summary = 'find files (by checksum, name, path, size, type, mode, owner, xattr, time) or packages across images';
  static override pager = true;
  static override description = `Prints one line per hit: ref, commit, path (for packages: name and version, and for a disk commit the partition they are installed in; every file system of a disk is searched). Checksum queries are answered from the content index (no image is scanned); the other predicates read manifests, each distinct subtree once. Predicates combine (AND).

Scope: --all (every commit in the history of every ref, the default), --heads (only the commits branches point at), --ref PREFIX (the history of refs whose name starts with PREFIX, e.g. customers/acme).

Patterns: * and ? within a path component, ** across them, [abc] classes. --size N, +N (more), -N (less), with K/M/G. --mode 0644 (exactly), -0600 (all these bits), /4000 (any). --newer takes a date (2024-01-31, or with a time) or seconds. --version takes an operator and a Debian version: '<3.0.13', '>=1:2.36-9' (dpkg ordering).

${EXIT_STATUS_HELP}`;
  static override examples = [
    '<%= config.bin %> find --sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    'sha256sum bad/* | cut -d" " -f1 | <%= config.bin %> find --stdin --heads',
    '<%= config.bin %> find --name "*.pem" --ref customers/',
    '<%= config.bin %> find --path "etc/ssh/**" --mode /077',
    '<%= config.bin %> find --type f --mode /4000 --heads',
    '<%= config.bin %> find --package openssl --version "<3.0.13"',
  ];
  static override flags = {
    sha256: Flags.string({ summary: 'content checksum (or a prefix of ≥ 8 hex digits); repeatable', multiple: true }),
    stdin: Flags.boolean({ summary: 'read checksums from standard input, one a line (sha256sum output works)' }),
    name: Flags.string({ summary: 'entry name glob' }),
    path: Flags.string({ summary: 'whole path glob' }),
    size: Flags.string({ summary: 'size: N, +N, -N (K/M/G)' }),
    type: Flags.string({ summary: 'f d l c b p s' }),
    mode: Flags.string({ summary: 'permission bits: 0644, -0600, /4000' }),
    uid: Flags.integer({ summary: 'owner uid' }),
    xattr: Flags.string({ summary: 'has this xattr (NAME or NAME=VALUE)' }),
    newer: Flags.string({ summary: 'modified after this date or epoch second' }),
    package: Flags.string({ summary: 'installed package name (glob)' }),
    version: Flags.string({ summary: "package version constraint, e.g. '<3.0.13'" }),
    all: Flags.boolean({ summary: 'every commit in history (default)', exclusive: ['heads', 'ref'] }),
    heads: Flags.boolean({ summary: 'only branch heads', exclusive: ['all', 'ref'] }),
    ref: Flags.string({ summary: 'only refs whose name starts with this', exclusive: ['all', 'heads'] }),
  };

  async run(): Promise<undefined> {
    const { flags } = await this.parse(Find);
    const sums = [...(flags.sha256 ?? [])];
    if (flags.stdin) {
      for (const line of fs.readFileSync(0, 'utf8').split('\n')) {
        const first = line.trim().split(/\s+/)[0];
        if (first) sums.push(first);
      }
      if (!sums.length) throw new UsageError('--stdin: no checksums on standard input');
    }
    const scope: FindScope = flags.heads ? { kind: 'heads' } : flags.ref !== undefined ? { kind: 'ref', prefix: flags.ref } : { kind: 'all' };
    const json = this.jsonEnabled();
    let count = 0;
    // Hits go out in blocks of about 64 KiB, not a write each (stdout to a pipe is synchronous: a system call a line).
    let pending = '';
    const emit = (s: string) => {
      pending += s;
      if (pending.length >= 65536) { process.stdout.write(pending); pending = ''; }
    };
    try {
      await this.withRepo('read', flags.repo, async (repo) => {
        const options = {
          ...(sums.length ? { sha256: sums } : {}), ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(flags.path !== undefined ? { path: flags.path } : {}), ...(flags.size !== undefined ? { size: flags.size } : {}),
          ...(flags.type !== undefined ? { type: flags.type } : {}), ...(flags.mode !== undefined ? { mode: flags.mode } : {}),
          ...(flags.uid !== undefined ? { uid: flags.uid } : {}), ...(flags.xattr !== undefined ? { xattr: flags.xattr } : {}),
          ...(flags.newer !== undefined ? { newer: flags.newer } : {}), ...(flags.package !== undefined ? { package: flags.package } : {}),
          ...(flags.version !== undefined ? { version: flags.version } : {}), scope,
        };
        // Hits stream out as they are found; --json streams an array too, written as hits come, not collected.
        const hit = (h: FindHit) => {
          if (json) { emit(`${count++ ? ',\n' : '[\n'}${JSON.stringify(h)}`); return; }
          const what = h.package ? `${h.package.name} ${h.package.version}${h.package.arch ? ` ${h.package.arch}` : ''}${h.partition ? `\t${h.partition}` : ''}` : quoteResultPath(h.path, h.pathHex);
          emit(`${h.ref}\t${h.commit.slice(0, 12)}\t${what}${h.sha256 && sums.length > 1 ? `\t${h.sha256}` : ''}\n`);
        };
        // Checksum and entry queries are synchronous: a plain loop, without a promise per hit.
        if (flags.package === undefined && flags.version === undefined) for (const h of findFiles(repo, options)) hit(h);
        else for await (const h of find(repo, options)) hit(h);
      });
    } finally {
      if (pending) process.stdout.write(pending);
    }
    if (json) process.stdout.write(count ? '\n]\n' : '[]\n');
    return undefined;
  }
}
