/**
 * oclif's `command_not_found` hook: a mistyped command (`viva lgo`) is one line naming the closest command and exit 2.
 * On a terminal it asks first, as @oclif/plugin-not-found does ("Did you mean log? (Y/n)"), and runs the command when
 * the answer is yes; with no terminal to ask (a script, CI) it never waits for an answer.
 */
import { Errors, type Hook, toConfiguredId } from '@oclif/core';
import notFoundPlugin from '@oclif/plugin-not-found';
import { EXIT } from '../exit-codes.js';

/**
 * Edit distance between `a` and `b`: insertions, deletions, substitutions and swaps of two neighbours each cost 1
 * (optimal string alignment), so that `lgo` is one edit from `log`, as git's suggestions count it.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known command closest to the typed `id` (oclif's `remote:ad:x`, which may run on into the arguments), compared
 * over as many words as each command has; undefined when none is close: at most 2 edits, or a third of the length of
 * the typed command's last word (so `viva xyzzy` suggests nothing rather than an unrelated command).
 */
export function closestCommand(id: string, ids: readonly string[]): string | undefined {
  const words = id.split(':');
  let best: { id: string; d: number } | undefined;
  for (const c of ids) {
    const typed = words.slice(0, c.split(':').length).join(':');
    const d = editDistance(typed, c);
    if (!best || d < best.d) best = { id: c, d };
  }
  if (!best) return undefined;
  const last = words[Math.min(words.length, best.id.split(':').length) - 1]!;
  return best.d <= Math.max(2, Math.floor(last.length / 3)) ? best.id : undefined;
}

const hook: Hook.CommandNotFound = async function (opts) {
  const { config } = opts;
  const visible = config.commands.filter((c) => !c.hidden);
  const words = opts.id.split(':');
  // Words that name a topic (`remote`) are right: suggest among that topic's commands only.
  let topic = 0;
  while (topic < words.length - 1 && config.findTopic(words.slice(0, topic + 1).join(':'))) topic++;
  const prefix = topic ? `${words.slice(0, topic).join(':')}:` : '';
  const ids = [...visible.map((c) => c.id), ...visible.flatMap((c) => c.aliases)].filter((c) => c.startsWith(prefix));
  const closest = closestCommand(opts.id, ids);
  // What was typed as the command: as many words as the suggestion has, else the topics and one word more.
  const n = closest ? closest.split(':').length : topic + 1;
  const typed = toConfiguredId(words.slice(0, n).join(':'), config);
  if (closest && process.stdin.isTTY && process.stderr.isTTY) {
    // The plugin asks about the closest of the ids it is given: give it viva's choice (it counts `lgo` as far from
    // `log` as from `gc`), so that the command it offers to run is the one this hook names.
    const only = new Proxy(config, { get: (target, key) => (key === 'commandIDs' ? [closest] : key === 'commands' ? [] : Reflect.get(target, key)) });
    try {
      return await notFoundPlugin.call(this, { ...opts, config: only });
    } catch (e) {
      // Declined (or no answer in 10 s): the plugin's own exit 127 becomes viva's usage error below.
      if ((e as { oclif?: { exit?: number } }).oclif?.exit !== 127) throw e;
    }
  }
  const hint = closest ? `; did you mean '${toConfiguredId(closest, config)}'?` : '';
  throw new Errors.CLIError(`'${typed}' is not a ${config.bin} command${hint}`, { exit: EXIT.USAGE });
};

export default hook;
