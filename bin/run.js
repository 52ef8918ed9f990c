#!/usr/bin/env node
// oclif entry. Errors raised before a command runs (an unknown command) get viva's one-line format and exit 2.
// viva has no user plugins: not reading them keeps oclif from warning on every command when $HOME is unreadable.
import { fileURLToPath } from 'node:url';
import { flush, run } from '@oclif/core';

try {
  await run(process.argv.slice(2), { root: fileURLToPath(import.meta.url), userPlugins: false });
  await flush();
} catch (err) {
  const exit = err?.oclif?.exit ?? 70;
  if (exit !== 0) {
    const msg = String(err?.message ?? err).replace(/\x1b\[[0-9;]*m/g, '').split('\n')[0].trim();
    process.stderr.write(`error: ${msg}\nSee 'viva --help'.\n`);
    if (process.env.DEBUG && err?.stack) process.stderr.write(`${err.stack}\n`);
  }
  process.exitCode = exit;
}
