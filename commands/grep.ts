import { Args, Flags } from '../src/cli/flags.js';
import { quoteResultPath } from '../src/model/quote.js';
import { grep } from '../src/ops/grep.js';
import { EXIT, EXIT_STATUS_HELP } from '../src/cli/exit-codes.js';
import { RepoCommand } from '../src/cli/repo-command.js';
import { renderGrepHit } from '../src/cli/render.js';
import { paint } from '../src/cli/color.js';

export default class Grep extends RepoCommand {
  static override summary = 'search the contents of an image\'s files';
  static override pager = true;
  static override description = `Prints path:line:text for each matching line (JavaScript regular expression; -F for a fixed string, -i to ignore case, -l for file names only). Files are streamed chunk by chunk; binary files (a NUL byte in the first 8000 bytes) are skipped. Paths after -- limit the search. Exit status 1 when nothing matched, as grep and git grep.

${EXIT_STATUS_HELP}`;
  static override examples = [
    "<%= config.bin %> grep PermitRootLogin debian/12/base -- etc/ssh",
    "<%= config.bin %> grep -il 'password' vm/web:p1 -- etc",
  ];
  static override strict = false;
  static override args = {
    pattern: Args.string({ required: true, description: 'regular expression (or fixed string with -F)' }),
    rev: Args.string({ description: 'REV or REV:path', default: 'HEAD' }),
  };
  static override flags = {
    'ignore-case': Flags.boolean({ char: 'i', summary: 'ignore case' }),
    'fixed-strings': Flags.boolean({ char: 'F', summary: 'the pattern is a fixed string' }),
    'files-with-matches': Flags.boolean({ char: 'l', summary: 'print only the names of matching files' }),
  };

  async run(): Promise<undefined> {
    const { args, flags } = await this.parse(Grep);
    const dd = this.argv.indexOf('--');
    const paths = dd >= 0 ? this.argv.slice(dd + 1) : [];
    const json = this.jsonEnabled();
    let count = 0;
    let any = false;
    await this.withRepo('read', flags.repo, async (repo) => {
      let lastFile = '';
      for await (const h of grep(repo, { pattern: args.pattern, rev: args.rev!, paths, ignoreCase: flags['ignore-case'], fixed: flags['fixed-strings'] })) {
        any = true;
        // --json streams an array too: hits are written as they are found, not collected.
        if (json) { process.stdout.write(`${count++ ? ',\n' : '[\n'}${JSON.stringify(h)}`); continue; }
        const name = quoteResultPath(h.path, h.pathHex);
        if (flags['files-with-matches']) {
          if (name !== lastFile) process.stdout.write(`${paint.file(name)}\n`);
          lastFile = name;
          continue;
        }
        process.stdout.write(`${renderGrepHit(name, h.line, h.text)}\n`);
      }
    });
    if (!any) process.exitCode = EXIT.FAILURE;
    if (json) process.stdout.write(count ? '\n]\n' : '[]\n');
    return undefined;
  }
}
