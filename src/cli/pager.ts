/**
 * The pager for long output on a terminal, as git's: `VIVA_PAGER`, else `PAGER`, else `less` with `LESS=FRX` (quit
 * when the output fits on one screen, pass colours, leave the text on the screen). Never on a pipe, with --json or
 * with --no-pager; `VIVA_PAGER=cat` (or empty) turns it off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The pager when neither VIVA_PAGER nor PAGER names one. */
export const DEFAULT_PAGER = 'less';

/** The pager command to run, or undefined for none: an empty value or `cat` means no pager, as in git. */
export function pagerCommand(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const cmd = (env.VIVA_PAGER ?? env.PAGER ?? DEFAULT_PAGER).trim();
  if (cmd === '' || cmd === 'cat') return undefined;
  // The default only where it is installed; a pager the user named is run as given (its shell reports it missing).
  if (env.VIVA_PAGER === undefined && env.PAGER === undefined && !onPath(cmd, env.PATH)) return undefined;
  return cmd;
}

function onPath(cmd: string, PATH = ''): boolean {
  return PATH.split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir || '.', cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A running pager that standard output is written into until `end()`. */
export interface Pager {
  /** Ends the pager's input and waits until the user quits it. */
  end(): Promise<void>;
}

/**
 * Starts `command` (through the shell, as git does) with its input replacing what `process.stdout.write` writes.
 * When the user quits the pager before the output ends, the process exits at once with status 0, as git does on the
 * pager's SIGPIPE: the reader chose to stop reading.
 */
export function startPager(command: string): Pager {
  const env = { ...process.env };
  if (env.LESS === undefined) env.LESS = 'FRX';
  if (env.LV === undefined) env.LV = '-c';
  const child: ChildProcess = spawn(command, { shell: true, stdio: ['pipe', 'inherit', 'inherit'], env });
  const input = child.stdin!;
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const write = process.stdout.write.bind(process.stdout);
  input.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    process.stdout.write = write;
  });
  child.once('error', () => { process.stdout.write = write; });
  // The pager quit (q in less) while output was still coming: stop as the reader asked.
  child.once('exit', () => { if (!ended) process.exit(0); });
  let ended = false;
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
    },
  };
}
