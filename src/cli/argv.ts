/**
 * The command line before oclif reads it: global flags given before the command (`viva -C DIR log`, `viva --no-pager
 * diff`) are moved after it, where oclif parses flags, as git accepts them before its subcommand.
 */
import { UsageError } from '../errors.js';

/** Global flags that take a value as the next word (`-C DIR`, `--repo DIR`). */
const GLOBAL_WITH_VALUE = new Set(['-C', '--repo']);

/** Global flags that stand alone or carry their value after `=` (`--repo=DIR`, `-CDIR`, `--color=never`). */
function isGlobalAlone(arg: string): boolean {
  return /^(--no-pager|--no-color|--color(=.*)?|--repo=.+|-C.+)$/.test(arg);
}

/**
 * Rewrites `argv` (without node and the script) so that oclif sees the command first:
 * - leading global flags (`-C DIR`, `--repo[=]DIR`, `--no-pager`, `--color[=WHEN]`, `--no-color`) move after the
 *   command's words, before a `--` that ends the flags if there is one;
 * - a bare `--color` (before `--`) becomes `--color=always`, as git reads it;
 * - `-h` alone, or global flags with no command after them, become `--help`.
 * Anything else is left as it was, for oclif to accept or reject.
 *
 * @example
 * hoistGlobalFlags(['-C', 'repo', 'log', '--', 'etc']) // ['log', '-C', 'repo', '--', 'etc']
 */
export function hoistGlobalFlags(argv: readonly string[]): string[] {
  const hoisted: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (GLOBAL_WITH_VALUE.has(a) && i + 1 < argv.length) {
      hoisted.push(a, argv[i + 1]!);
      i += 2;
    } else if (isGlobalAlone(a)) {
      hoisted.push(a);
      i++;
    } else {
      break;
    }
  }
  const rest = argv.slice(i);
  if (rest.length === 0 || (rest.length === 1 && rest[0] === '-h')) return hoisted.length || rest.length ? ['--help'] : [];
  const end = rest.indexOf('--');
  const out = end === -1 ? [...rest, ...hoisted] : [...rest.slice(0, end), ...hoisted, ...rest.slice(end)];
  const stop = out.indexOf('--');
  return out.map((a, n) => (a === '--color' && (stop === -1 || n < stop) ? '--color=always' : a));
}

/** Parses `4G`, `512M`, `100000K`, `1T` or a byte count (binary units). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`size '${s}' is not a number of bytes with an optional K, M, G or T suffix`);
  const unit = (m[2] ?? 'B').toUpperCase()[0]!;
  const mult = { B: 1, K: 1024, M: (1 << 20), G: 1024 * (1 << 20), T: 1024 * 1024 * (1 << 20) }[unit as 'B'] ?? 1;
  const n = Math.floor(Number(m[1]) * mult);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`size '${s}' is out of range`);
  return n;
}
