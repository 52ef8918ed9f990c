/**
 * Colour in human output, decided once per command: git's colours on a terminal, none on a pipe, with --json, with
 * NO_COLOR set, or with --no-color / --color=never; --color=always forces it (for `viva log --color | less -R`).
 * The renderers call the painters below, which return their text unchanged while colour is off.
 */

/** `--color` values, as git's. */
export type ColorWhen = 'always' | 'never' | 'auto';

const SGR = {
  bold: '1', red: '31', green: '32', yellow: '33', blue: '34', magenta: '35', cyan: '36',
  boldRed: '1;31', boldGreen: '1;32', boldYellow: '1;33', boldCyan: '1;36',
} as const;

let enabled = false;

/**
 * Whether output to `stream` is coloured: `when` (from --color; --no-color is 'never') wins, then NO_COLOR (any
 * non-empty value, https://no-color.org), then TERM=dumb, then whether the stream is a terminal. Never with --json.
 */
export function colorWanted(when: ColorWhen | undefined, stream: { isTTY?: boolean }, json = false, env: NodeJS.ProcessEnv = process.env): boolean {
  if (json || when === 'never') return false;
  if (when === 'always') return true;
  if (env.NO_COLOR) return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

/** Turns colour on or off for every painter of this process (the command base class calls it after parsing). */
export function setColor(on: boolean): void {
  enabled = on;
}

/** Whether the painters colour now. */
export function colorEnabled(): boolean {
  return enabled;
}

function painter(code: string): (s: string) => string {
  return (s) => (enabled && s !== '' ? `\x1b[${code}m${s}\x1b[m` : s);
}

/** The painters, named by what they paint (git's `color.diff.*`, `color.decorate.*` defaults). */
export const paint = {
  /** A commit id at the head of a log entry (`commit 1a2b…`, `--oneline`'s id). */
  commitId: painter(SGR.yellow),
  /** The parentheses and commas around decorations. */
  decoration: painter(SGR.yellow),
  /** `HEAD` and the `->` after it. */
  head: painter(SGR.boldCyan),
  /** A local branch in decorations and `branch`'s current one. */
  branch: painter(SGR.boldGreen),
  /** A remote-tracking branch. */
  remoteBranch: painter(SGR.boldRed),
  /** A tag. */
  tag: painter(SGR.boldYellow),
  /** A removed line (or removed entry) in a diff. */
  removed: painter(SGR.red),
  /** An added line (or added entry) in a diff. */
  added: painter(SGR.green),
  /** A hunk header (`@@ -1,2 +1,3 @@`). */
  hunk: painter(SGR.cyan),
  /** A diff's per-file header (`--- a/…`, `+++ b/…`). */
  meta: painter(SGR.bold),
  /** A conflict, an error worth the eye. */
  conflict: painter(SGR.red),
  /** The current branch in `branch` listings. */
  current: painter(SGR.green),
  /** A file name in `grep` output. */
  file: painter(SGR.magenta),
  /** A line number in `grep` output. */
  lineNumber: painter(SGR.green),
  /** The `:` between `grep`'s fields. */
  separator: painter(SGR.cyan),
};

/**
 * A unified diff (as the diff op returns patches) with git's colours: headers bold, hunk headers cyan, removed lines
 * red, added lines green, context plain.
 */
export function paintPatch(patch: string): string {
  if (!enabled) return patch;
  return patch.split('\n').map((l) => {
    if (l.startsWith('+++') || l.startsWith('---')) return paint.meta(l);
    if (l.startsWith('@@')) return paint.hunk(l);
    if (l.startsWith('+')) return paint.added(l);
    if (l.startsWith('-')) return paint.removed(l);
    return l;
  }).join('\n');
}
