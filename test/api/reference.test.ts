/** The API reference committed in docs/api is what `npm run docs:api` makes of the current sources. */
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, cleanEnv, tmpDir } from '../helpers/cli.js';

const run = promisify(execFile);

function typedocBin(): string | undefined {
  try {
    // The package's exports map hides bin/: find it beside its package.json.
    return path.join(path.dirname(createRequire(path.join(ROOT, 'package.json')).resolve('typedoc/package.json')), 'bin/typedoc');
  } catch {
    return undefined;
  }
}

/** Every file under `dir`, relative, sorted. */
function files(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

const bin = typedocBin();

// typedoc is a devDependency: missing only in an install without dev dependencies.
(bin ? test : test.skip)('reference: docs/api is up to date (npm run docs:api)', async (t) => {
  const out = tmpDir(t, 'viva-apiref-');
  await run(process.execPath, [bin!, '--out', out, '--logLevel', 'Warn'], { cwd: ROOT, env: cleanEnv(), timeout: 100_000 });
  const committed = path.join(ROOT, 'docs/api');
  const want = files(out);
  t.true(want.includes('functions/commit.md'), 'typedoc wrote no page for commit');
  t.deepEqual(files(committed), want, 'pages added or removed: run npm run docs:api');
  const stale = want.filter((f) => fs.existsSync(path.join(committed, f)) && !fs.readFileSync(path.join(committed, f)).equals(fs.readFileSync(path.join(out, f))));
  t.deepEqual(stale, [], 'pages out of date: run npm run docs:api');
});
