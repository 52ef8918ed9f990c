/**
 * Running the file-system tools a rebuilt disk is made with (mke2fs, mkfs.xfs, mkfs.vfat, mtools, mount): one place
 * that turns "not installed" and "failed" into a CheckoutError naming the destination and the tool's last line.
 */
import { execFile } from 'node:child_process';
import { CheckoutError } from '../errors.js';

const MiB = 1 << 20;

/** Which Debian package installs each tool a rebuild runs, for the "not installed" message. */
const PACKAGE_OF: Record<string, string> = {
  mke2fs: 'e2fsprogs', debugfs: 'e2fsprogs', sfdisk: 'fdisk', 'mkfs.xfs': 'xfsprogs', 'mkfs.vfat': 'dosfstools',
  mcopy: 'mtools', mattrib: 'mtools', mount: 'mount', umount: 'mount',
};

/** Options of {@link runTool}: its environment, text for its standard input. */
export interface ToolOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
}

/**
 * Runs `cmd args` and returns its standard output. Throws CheckoutError(dest): "`cmd` is not installed (needed to
 * `what`; apt-get install PKG)" or "`cmd` failed to `what`: LAST LINE OF ITS ERROR OUTPUT". Standard input is empty
 * unless `input` is given, so a tool that would ask a question reads end-of-file instead of hanging.
 */
export async function runTool(cmd: string, args: string[], what: string, dest: string, options: ToolOptions = {}): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 * MiB, ...(options.env ? { env: options.env } : {}) }, (e, stdout, stderr) => {
      if (!e) { resolve(String(stdout)); return; }
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') {
        reject(new CheckoutError(dest, `${cmd} is not installed (needed to ${what}; apt-get install ${PACKAGE_OF[cmd] ?? cmd})`));
        return;
      }
      const detail = `${String(stderr)}\n${String(stdout)}`.trim().split('\n').map((l) => l.trim()).filter(Boolean)
        .find((l) => !/^mkfs\.fat \d|^usage:/i.test(l)) ?? err.message;
      reject(new CheckoutError(dest, `${cmd} failed to ${what}: ${detail}`));
    });
    // A tool that exits without reading its input closes the pipe: that is not an error of ours.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}
