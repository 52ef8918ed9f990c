/** Finding a program the way a shell would, before running it (to tell "not installed" apart, or to run it through a wrapper). */
import fs from 'node:fs';
import path from 'node:path';

/**
 * The executable file `program` names: itself when it holds a slash, else the first one of that name in `PATH`'s
 * directories (an empty entry is the current directory, as in POSIX). Undefined when there is none.
 */
export function findExecutable(program: string, PATH = process.env.PATH ?? ''): string | undefined {
  const dirs = program.includes('/') ? [''] : PATH.split(path.delimiter);
  for (const dir of dirs) {
    const file = dir === '' ? program : path.join(dir, program);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not this one
    }
  }
  return undefined;
}
