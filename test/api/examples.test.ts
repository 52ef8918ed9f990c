/** Every script in examples/ runs as a user would run it (`import … from 'viva'`, the built package) and says what it did. */
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, cleanEnv, tmpDir } from '../helpers/cli.js';

const run = promisify(execFile);

/** A line each example prints when it did its work: a new example must be added here. */
const EXPECTED: Record<string, RegExp> = {
  'library.mjs': /^checked out \d+ files to /m,
  'api-derive-diff.mjs': /^M etc\/hostname\nD etc\/motd\nA srv\nA srv\/index\.html$/m,
  'api-merge.mjs': /^hostname: web; sshd_config: PermitRootLogin no$/m,
  'api-errors.mjs': /^ERR_NOT_A_REPOSITORY: [^]*^ERR_REVISION_NOT_FOUND: [^]*^ERR_ABORTED: operation aborted; still [0-9a-f]{12}$/m,
  'api-sync.mjs': /^pulled into main: fast-forward to [0-9a-f]{12}\n[0-9a-f]{12} rename\n[0-9a-f]{12} base image$/m,
};

const scripts = fs.readdirSync(path.join(ROOT, 'examples')).filter((f) => f.endsWith('.mjs')).sort();

test('examples: every script has an expected line', (t) => {
  t.deepEqual(scripts.filter((s) => !EXPECTED[s]), []);
  t.deepEqual(Object.keys(EXPECTED).filter((s) => !scripts.includes(s)), []);
});

test('examples: the package resolves itself as \'viva\' (exports map, built declarations)', (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  t.is(pkg.name, 'viva');
  t.is(pkg.exports['.'].types, pkg.types);
  t.true(fs.existsSync(path.join(ROOT, pkg.exports['.'].default)), 'dist missing: run npm run build');
  t.true(fs.existsSync(path.join(ROOT, pkg.exports['.'].types)), 'declarations missing: run npm run build');
});

for (const script of scripts) {
  test(`examples: ${script} runs and prints what it did`, async (t) => {
    const cwd = tmpDir(t, 'viva-example-');
    // In a directory of its own, with temporary files kept under it: what a script leaves is removed with it.
    let stdout: string;
    try {
      ({ stdout } = await run(process.execPath, [path.join(ROOT, 'examples', script)], { cwd, env: cleanEnv({ TMPDIR: cwd }), timeout: 100_000 }));
    } catch (e) {
      const { code, stdout: out, stderr } = e as { code?: number; stdout?: string; stderr?: string };
      t.fail(`exit ${code}\n${out}\n${stderr}`);
      return;
    }
    t.regex(stdout, EXPECTED[script] ?? /^$/);
  });
}
