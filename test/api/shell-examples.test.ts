/**
 * The shell examples run as a user runs them from a clean clone — `npm run demo` (examples/demo.sh, which runs the
 * disk and packages demos too), the git round trip, the NBD walk-through and the S3 one — and end saying what they checked. A
 * demo that breaks (a step whose tool output changed, a size that no longer fits) fails here, not in a user's first
 * minute.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, cleanEnv, tmpDir } from '../helpers/cli.js';
import { have } from '../helpers/tools.js';
import { S3_ENDPOINT, s3Env, s3Skip } from '../helpers/s3.js';

const run = promisify(execFile);


/** Each script, the tools it needs, and lines its output must hold when everything ran. */
const SCRIPTS: Array<{ script: string; needs: string[]; expect: RegExp[]; env?: Record<string, string>; skip?: string }> = [
  {
    script: 'demo.sh',
    needs: ['git', 'mke2fs', 'sfdisk', 'qemu-img', 'mkfs.vfat', 'mcopy'],
    expect: [/^checkout equals the committed tree$/m, /^copy\.raw is bit-identical to disk\.raw$/m, /^new\.qcow2 .* passes qemu-img check$/m],
  },
  { script: 'git-export.sh', needs: ['git'], expect: [/^same tree id: [0-9a-f]{64}$/m] },
  {
    script: 'nbd.sh',
    needs: ['mke2fs', 'qemu-img', 'qemu-io', 'qemu-nbd'],
    expect: [/^vm\/base: identical$/m, /^vm\/web: identical$/m],
    env: { NBD_PORT: String(20000 + (process.pid % 20000)) },
  },
  {
    script: 's3.sh',
    needs: [],
    expect: [/^host A sees: [0-9a-f]{12} web clone$/m, /^checkout from the bucket equals the committed tree$/m, /^removed \d+ objects/m,
      /^fsck from an empty cache: every pack checked$/m],
    // The test server of .ci/ceph (CI starts it); without one the example would start a cluster of its own.
    env: S3_ENDPOINT ? { S3_ENDPOINT, ...s3Env() } : {},
    skip: s3Skip(),
  },
];

// One at a time: each script runs many viva processes and tools, and four at once (on two cores, beside the other
// test files) starved the suite's other CLI tests.
for (const { script, needs, expect, env, skip } of SCRIPTS) {
  const missing = needs.filter((c) => !have(c));
  const why = missing.length ? `needs ${missing.join(', ')}` : skip;
  (why ? test.skip : test.serial)(`examples: ${script} runs to the end${why ? ` (${why})` : ''}`, async (t) => {
    t.timeout(600_000);
    const dir = tmpDir(t, 'viva-shell-example-');
    let out: string;
    try {
      const r = await run('bash', [path.join(ROOT, 'examples', script)], {
        cwd: dir, env: cleanEnv({ DEMO_DIR: path.join(dir, 'work'), TMPDIR: dir, ...env }), timeout: 540_000, maxBuffer: 64 << 20,
      });
      out = r.stdout + r.stderr;
    } catch (e) {
      const { code, stdout, stderr } = e as { code?: number; stdout?: string; stderr?: string };
      t.fail(`exit ${code}\n${(stdout ?? '').slice(-3000)}\n${(stderr ?? '').slice(-3000)}`);
      return;
    }
    for (const re of expect) t.regex(out, re);
  });
}
