#!/usr/bin/env node
// oclif entry. Errors raised before a command runs (an unknown command) get viva's one-line format and exit 2.
// Global flags may come before the command (`viva -C DIR log`): hoistGlobalFlags moves them after it for oclif.
// viva has no user plugins: not reading them keeps oclif from warning on every command when $HOME is unreadable.
import fs from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hoistGlobalFlags } from '../dist/src/cli/argv.js';

// A reader that stops reading (`viva log | head -1`) is a normal end, not an error: leave at once, silently, with the
// status git and cat get from SIGPIPE (128 + 13; Node ignores the signal itself). EXIT.PIPE_CLOSED in exit-codes.ts.
// Any other failed write to stdout (a full disk: `viva log > /dev/full`) is one line and exit 16 (EXIT.WRITE_FAILED).
for (const stream of [process.stdout, process.stderr]) {
  // Prepended: @oclif/core's own listener rethrows every error but EPIPE (a crash with a stack trace).
  stream.prependListener('error', (err) => {
    if (err?.code === 'EPIPE') process.exit(141);
    if (stream === process.stdout) {
      const reason = String(err?.message ?? err).replace(/^E[A-Z]+: /, '').replace(/, write$/, '');
      try { process.stderr.write(`error: cannot write to standard output: ${reason}${err?.code ? ` (${err.code})` : ''}\n`); } catch { /* nothing left to tell */ }
    }
    process.exit(16);
  });
}

/**
 * The command a command line names, when viva can run it itself: `log …` → dist/commands/log.js, `remote add …` →
 * dist/commands/remote/add.js. Help (`--help`/`-h` before any `--`), a topic alone, an unknown command, the
 * version and completion are left to oclif, which loads its own configuration and plugins for them (about 70 ms
 * that a command does not need: commands parse their own flags, see src/cli/command.ts).
 */
function directCommand(argv) {
  const end = argv.indexOf('--');
  const flagsPart = end === -1 ? argv : argv.slice(0, end);
  if (flagsPart.includes('--help') || flagsPart.includes('-h')) return undefined;
  const words = [];
  for (const w of argv) {
    if (w.startsWith('-') || words.length === 2) break;
    if (!/^[a-z][a-z0-9-]*$/.test(w)) break;
    words.push(w);
  }
  const commands = fileURLToPath(new URL('../dist/commands/', import.meta.url));
  for (let n = words.length; n > 0; n--) {
    const file = `${commands}${words.slice(0, n).join('/')}.js`;
    if (fs.existsSync(file)) return { id: words.slice(0, n).join(':'), file, argv: argv.slice(n) };
  }
  return undefined;
}

try {
  const argv = hoistGlobalFlags(process.argv.slice(2));
  const direct = directCommand(argv);
  if (direct) {
    const command = (await import(pathToFileURL(direct.file).href)).default;
    command.id = direct.id;
    await command.run(direct.argv, { bin: 'viva' });
  } else {
    const { run } = await import('@oclif/core');
    await run(argv, { root: fileURLToPath(import.meta.url), userPlugins: false });
  }
  // Wait for a slow reader to take all of stdout. (oclif's flush() gives up after 10 s with "timed out", exit 2,
  // which a busy machine or a paging reader reaches with a big `log --json`.)
  if (process.stdout.writableNeedDrain) await new Promise((resolve) => process.stdout.once('drain', resolve));
} catch (err) {
  const exit = err?.oclif?.exit ?? 70;
  if (exit !== 0) {
    const msg = String(err?.message ?? err).replace(/\x1b\[[0-9;]*m/g, '').split('\n')[0].trim();
    process.stderr.write(`error: ${msg}\nSee 'viva --help'.\n`);
    if (process.env.DEBUG && err?.stack) process.stderr.write(`${err.stack}\n`);
  }
  process.exitCode = exit;
}
