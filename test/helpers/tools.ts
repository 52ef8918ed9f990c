/** Which system tools a test can use: a test that needs a missing one is registered as skipped, never passed. */
import { execFileSync } from 'node:child_process';

/** True when `tool` is on the PATH. */
export function have(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
