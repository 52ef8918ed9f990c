/**
 * Edit flags of `viva derive` (`--set PATH=TEXT`, `--rm PATH`, …). oclif groups repeated flags by name, which loses
 * their order, and edits apply in the order given: so the raw argv is read again here, in order.
 */
import { UsageError } from '../errors.js';
import type { EditSpec } from '../ops/derive.js';
import { EDIT_FLAGS, type EditFlag, parseEdit } from '../ops/edit-syntax.js';

export { EDIT_FLAGS, type EditFlag };

/**
 * The edit flags in `argv`, in the order given. `valueFlags`: the command's other flags that take a value (their
 * values are skipped, so `-m '--rm x'` is a message). Stops at `--`.
 */
export function editsFromArgv(argv: readonly string[], valueFlags: ReadonlySet<string>): EditSpec[] {
  const out: EditSpec[] = [];
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === '--') break;
    const m = /^--([a-z-]+)(?:=([\s\S]*))?$/.exec(t);
    if (m && m[1]! in EDIT_FLAGS) {
      const flag = m[1] as EditFlag;
      let value = m[2];
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`--${flag} needs a value: ${EDIT_FLAGS[flag]}`);
      }
      out.push(parseEdit(flag, value));
      continue;
    }
    // A value-taking flag given as `-m VALUE` / `--message VALUE` (not `--message=VALUE`, not `-mVALUE`).
    if (valueFlags.has(t)) i++;
  }
  return out;
}
