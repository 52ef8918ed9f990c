/**
 * The shared base of every viva command: the global flags (--repo, --color, --no-pager), opening and closing the
 * repository in read or write mode, colour, the pager and progress on a terminal, and turning errors into a one-line
 * message plus a documented exit code.
 */
import { Command, type ParseOptions, type Parsed } from './command.js';
import { type ArgInput, type FlagInput, Flags, type InferredFlags } from './flags.js';
import { CheckoutError, ScriptFailedError, VivaError, systemReason } from '../errors.js';
import { Repository, type OpenMode } from '../store/repository.js';
import type { ProgressEvent } from '../ops/commit.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { type ColorWhen, colorWanted, setColor } from './color.js';
import { type Pager, pagerCommand, startPager } from './pager.js';
import { ProgressBar } from './progress.js';

/** The parsed flags of a command class, the global ones included. */
export type RepoFlags<T extends typeof Command> = InferredFlags<(typeof RepoCommand)['baseFlags'] & T['flags']>;

export { formatBytes, plural } from './format.js';

/**
 * oclif's parse errors span several lines ("The following error occurred:\n  Missing required flag message",
 * "Parsing --max-count \n\tExpected an integer ...", "Missing 1 required arg:\nsource  ..."): keep what names the
 * problem, on one line, without the "See more help" trailer or colours.
 */
export function oclifMessageLine(message: string): string {
  // eslint-disable-next-line no-control-regex
  const first = message.replace(/\x1b\[[0-9;]*m/g, '').split(/\n\s*\n/)[0] ?? '';
  const lines = first.split('\n').map((l) => l.replace(/\s+/g, ' ').trim()).filter((l) => l && !/^See more help with/.test(l));
  if (lines.length > 1 && /^The following errors? occurred:$/.test(lines[0]!)) lines.shift();
  return lines.reduce((acc, l) => (acc ? `${acc}${acc.endsWith(':') ? ' ' : ': '}${l}` : l), '').replace(/:$/, '');
}

/**
 * True when `err` is a write to stdout that failed because the reader of the pipe went away: a raw EPIPE (oclif's
 * own writes), or a checkout to standard output ('-') whose archive write failed with EPIPE. A remote's broken
 * connection is a RemoteError and stays one.
 */
function pipeClosed(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string }; data?: { path?: unknown } };
  if (e.code === 'EPIPE') return true;
  return err instanceof CheckoutError && e.data?.path === '-' && e.cause?.code === 'EPIPE';
}

/** `-q, --quiet` for the commands whose op shows progress: neither progress nor the summary line. */
export const quietFlag = Flags.boolean({ char: 'q', summary: 'no progress and no summary line (warnings and errors still print)' });

/**
 * Opens the repository for a command. A partial clone fetches content on demand, which writes, so it is opened for
 * writing; and the fetcher that reaches its promisor remote (ops/sync.ts) is loaded then, and only then — commands
 * import only what they use, so a command's start-up does not pay for the transport code.
 */
export async function openRepository(repoDir: string | undefined, mode: OpenMode): Promise<Repository> {
  let repo = await Repository.connect(repoDir, mode);
  if (!repo.meta.get('partial')) return repo;
  await import('../ops/sync.js');
  if (mode === 'read') {
    await repo.close();
    repo = await Repository.connect(repoDir, 'write');
  }
  return repo;
}

export abstract class RepoCommand extends Command {
  static override enableJsonFlag = true;
  static override baseFlags = {
    repo: Flags.string({ char: 'C', summary: 'repository directory or bucket URL, s3://BUCKET/PREFIX (default: $VIVA_REPO, or found from the current directory upwards)', helpGroup: 'GLOBAL' }),
    color: Flags.option({ options: ['always', 'never', 'auto'] as const, summary: 'colour the output: always, never, or auto (on a terminal unless NO_COLOR is set; the default)', helpGroup: 'GLOBAL' })(),
    'no-color': Flags.boolean({ summary: 'no colour (same as --color=never)', helpGroup: 'GLOBAL' }),
    'no-pager': Flags.boolean({ summary: 'do not pipe long output into a pager ($VIVA_PAGER, $PAGER or less)', helpGroup: 'GLOBAL' }),
  };

  /** Commands whose output can be long (log, diff, show, ls, grep, ...) page it on a terminal. */
  static pager = false;

  private bar: ProgressBar | undefined;
  private pager: Pager | undefined;
  private outputSet = false;
  /** --quiet was given: no progress, and `log` prints nothing. */
  protected quiet = false;

  /**
   * Parses as oclif does, then sets up output once from the global flags: colour (--color, --no-color, NO_COLOR,
   * a terminal), --quiet, and the pager for a paging command on a terminal (not with --json or --no-pager).
   */
  protected override async parse<F extends FlagInput, B extends FlagInput, A extends ArgInput>(
    options?: ParseOptions<F, B, A>, argv?: string[],
  ): Promise<Parsed<F, B, A>> {
    const out = await super.parse(options, argv);
    if (!this.outputSet) {
      this.outputSet = true;
      const f = out.flags as { color?: ColorWhen; 'no-color'?: boolean; 'no-pager'?: boolean; quiet?: boolean };
      const json = this.jsonEnabled();
      this.quiet = f.quiet === true;
      setColor(colorWanted(f['no-color'] ? 'never' : f.color, process.stdout, json));
      if ((this.constructor as typeof RepoCommand).pager && process.stdout.isTTY && !json && !f['no-pager']) {
        const command = pagerCommand();
        if (command) this.pager = startPager(command);
      }
    }
    return out;
  }

  /** Prints a line on stdout, as oclif's, unless --quiet was given. */
  override log(message = '', ...args: unknown[]): void {
    if (!this.quiet) super.log(message, ...args);
  }

  /**
   * Prints the --json result: JSON.stringify with two spaces and a line end, never coloured. oclif's own logJson
   * colours through a regular-expression tokenizer that overflows the stack on a long string value (`cat --json` of
   * a few MiB of zeros), and colour is off under --json anyway.
   */
  override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  }

  /** Ends progress and the pager (waiting for the user to quit it), after the command ran or failed. */
  protected override async finally(err: Error | undefined): Promise<unknown> {
    this.endProgress();
    const pager = this.pager;
    this.pager = undefined;
    await pager?.end();
    return super.finally(err);
  }

  /**
   * One warning, one line `warning: …` on stderr (also with --json, whose stdout stays the JSON document), in place
   * of oclif's `this.warn`, which indents, prefixes ` ›   Warning:` and wraps at the terminal width.
   */
  protected warnLine(msg: string): void {
    process.stderr.write(`warning: ${msg.replace(/\n/g, ' ')}\n`);
  }

  /** Opens the repository, runs fn, closes it (also on failure). Read mode opens LMDB read-only. */
  protected async withRepo<T>(mode: OpenMode, repoDir: string | undefined, fn: (repo: Repository) => Promise<T> | T): Promise<T> {
    const repo = await openRepository(repoDir, mode);
    // A bucket repository's uploads show on the op's progress line (`committing: 3 packs, 24 MB`), or on one of their own.
    repo.storageProgress = (e) => {
      if (!this.bar) this.progress();
      this.bar?.update(e);
    };
    try {
      return await fn(repo);
    } catch (e) {
      // LMDB's own report of a damaged database (a page of the wrong type, a page not found) wherever it surfaced.
      throw repo.damageOf(e) ?? e;
    } finally {
      // The ops' warnings (ambiguous names, ...) come before any error line, as git's.
      for (const w of repo.warnings.splice(0)) this.warnLine(w);
      await repo.close();
    }
  }

  /**
   * A progress callback for an op: one status line on stderr (src/cli/progress.ts), drawn at once and then at most 10
   * times a second, only on a terminal and never with --json or --quiet. `verb` labels it (`committing`); without
   * one, each event's phase does. Call `endProgress()` before printing the result (catch and finally also do).
   */
  protected progress(verb?: string): ((e: ProgressEvent) => void) | undefined {
    if (!process.stderr.isTTY || this.jsonEnabled() || this.quiet) return undefined;
    this.endProgress();
    const bar = new ProgressBar(verb);
    this.bar = bar;
    return (e) => bar.update(e);
  }

  /** Removes the progress line, if one is shown. */
  protected endProgress(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  protected override async catch(err: Error & { code?: string; oclif?: { exit?: number } }): Promise<unknown> {
    this.endProgress();
    const debug = Boolean(process.env.DEBUG);
    if (pipeClosed(err)) {
      // stdout's reader left (`viva checkout main - | head -c 10`, see bin/run.js): a normal end, nothing to say.
      process.exitCode = EXIT.PIPE_CLOSED;
      return undefined;
    }
    if (err instanceof VivaError) {
      const exit = exitCodeFor(err.code);
      if (this.jsonEnabled()) process.stdout.write(JSON.stringify({ error: err.toJSON() }, null, 2) + '\n');
      process.stderr.write(`error: ${err.message}\n`);
      // A failed maintainer script: the tail of its output under the message, as apt shows dpkg's.
      if (err instanceof ScriptFailedError) process.stderr.write(outputTail(err.output));
      if (debug && err.stack) process.stderr.write(err.stack + '\n');
      process.exitCode = exit;
      return undefined;
    }
    if (err.oclif) {
      // oclif's own parse errors (unknown flag, missing argument): exit 2 with its message.
      if (err.oclif.exit === 0) return undefined;
      process.stderr.write(`error: ${oclifMessageLine(err.message)}\nSee '${this.config.bin} ${this.id ?? ''} --help'.\n`);
      process.exitCode = err.oclif.exit ?? EXIT.USAGE;
      return undefined;
    }
    const sys = err as NodeJS.ErrnoException & { dest?: string; address?: string; port?: number };
    if (sys.syscall) {
      // A system call the ops did not expect to fail: say which, on which path, and why, in viva's words.
      const subject = sys.path ? ` '${sys.path}'${sys.dest ? ` -> '${sys.dest}'` : ''}` : sys.address ? ` '${sys.address}${sys.port ? `:${sys.port}` : ''}'` : '';
      process.stderr.write(`error: cannot ${sys.syscall}${subject}: ${systemReason(sys)}\n`);
      if (debug && err.stack) process.stderr.write(err.stack + '\n');
      process.exitCode = EXIT.FAILURE;
      return undefined;
    }
    process.stderr.write(`error: internal error: ${err.message}\n`);
    // VIVA_TRACE_INTERNAL: the stack of an internal error (a bug) without DEBUG's other output (the test suite sets it).
    if ((debug || process.env.VIVA_TRACE_INTERNAL) && err.stack) process.stderr.write(err.stack + '\n');
    else process.stderr.write('(run with DEBUG=1 for a stack trace)\n');
    process.exitCode = EXIT.INTERNAL;
    return undefined;
  }
}

/** The last lines of a program's output, each as `  | line` (what `error:` lines of install print under them). */
export function outputTail(output: string, lines = 15): string {
  const all = output.replace(/\s+$/, '').split('\n');
  if (all.length === 1 && all[0] === '') return '';
  return all.slice(-lines).map((l) => `  | ${l}\n`).join('');
}
