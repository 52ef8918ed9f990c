/**
 * The pager for long output on a terminal, as git's: `VIVA_PAGER`, else `PAGER`, else `less` with `LESS=FRX` (quit
 * when the output fits on one screen, pass colours, leave the text on the screen). Never on a pipe, with --json or
 * with --no-pager; `VIVA_PAGER=cat` (or empty) turns it off.
 */
import type { ChildProcess } from 'node:child_process';
import { childProcess } from '../lazy.js';
import { findExecutable } from '../exec-path.js';

/** The pager when neither VIVA_PAGER nor PAGER names one. */
export const DEFAULT_PAGER = 'less';

/** The pager command to run, or undefined for none: an empty value or `cat` means no pager, as in git. */
export function pagerCommand(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const cmd = (env.VIVA_PAGER ?? env.PAGER ?? DEFAULT_PAGER).trim();
  if (cmd === '' || cmd === 'cat') return undefined;
  // A program that is not there would swallow the output: the default is skipped quietly, a named one with a warning.
  const program = cmd.split(/\s+/)[0]!;
  if (/^[\w./+-]+$/.test(program) && findExecutable(program, env.PATH) === undefined) {
    if (env.VIVA_PAGER !== undefined || env.PAGER !== undefined) process.stderr.write(`warning: cannot run pager '${program}': not found\n`);
    return undefined;
  }
  return cmd;
}

/** A running pager that standard output is written into until `end()`. */
export interface Pager {
  /** Ends the pager's input and waits until the user quits it. */
  end(): Promise<void>;
}

/**
 * Starts `command` (through the shell, as git does) with its input replacing what `process.stdout.write` writes.
 * When the user quits the pager before the output ends, the process exits at once with status 0, as git does on the
 * pager's SIGPIPE: the reader chose to stop reading. Ctrl-C while the pager runs is the pager's to handle (less
 * stops waiting for input); viva exits 130 once the pager has gone, never leaving it alone on the terminal.
 * A pager that cannot be run (the shell's exit 127) is a warning, and output goes to the terminal.
 */
export function startPager(command: string): Pager {
  const env = { ...process.env };
  if (env.LESS === undefined) env.LESS = 'FRX';
  if (env.LV === undefined) env.LV = '-c';
  const child: ChildProcess = childProcess().spawn(command, { shell: true, stdio: ['pipe', 'inherit', 'inherit'], env });
  const input = child.stdin!;
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const write = process.stdout.write.bind(process.stdout);
  let ended = false;
  let interrupted = false;
  const onSigint = () => { interrupted = true; };
  process.on('SIGINT', onSigint);
  const restore = () => {
    process.stdout.write = write;
    process.off('SIGINT', onSigint);
  };
  // An EPIPE is followed by the pager's exit, handled below.
  input.on('error', () => undefined);
  child.once('error', restore);
  child.once('exit', (code) => {
    if (ended) return;
    restore();
    if (code === 127) {
      process.stderr.write(`warning: cannot run pager '${command}'\n`);
      return;
    }
    // The pager quit (q in less) while output was still coming: stop as the reader asked.
    process.exit(interrupted ? 130 : 0);
  });
  process.stdout.write = ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean => {
    if (typeof encoding === 'function') return input.write(chunk, encoding);
    return input.write(chunk, encoding ?? 'utf8', cb);
  }) as typeof process.stdout.write;
  return {
    async end() {
      ended = true;
      process.stdout.write = write;
      input.end();
      await exited;
      process.off('SIGINT', onSigint);
      if (interrupted) process.exitCode = 130;
    },
  };
}
