#!/usr/bin/env node
// oclif entry. Errors raised before a command runs (an unknown command) get viva's one-line format and exit 2.
// Global flags may come before the command (`viva -C DIR log`): hoistGlobalFlags moves them after it for oclif.
// viva has no user plugins: not reading them keeps oclif from warning on every command when $HOME is unreadable.
import { fileURLToPath } from 'node:url';
import { run } from '@oclif/core';
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

try {
  await run(hoistGlobalFlags(process.argv.slice(2)), { root: fileURLToPath(import.meta.url), userPlugins: false });
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
