// Using viva as a library: commit a directory, derive a variant without checking it out, diff the two, read the log.
// Run after `npm ci && npm run build`:   node examples/api-derive-diff.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repository, commit, derive, diff, log } from 'viva';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-api-'));
const rootfs = path.join(dir, 'rootfs');
fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
fs.writeFileSync(path.join(rootfs, 'etc/hostname'), 'base\n');
fs.writeFileSync(path.join(rootfs, 'etc/motd'), 'welcome\n');

const repo = Repository.init(path.join(dir, 'repo')); // a new repository, opened for writing
try {
  const base = await commit(repo, { source: rootfs, branch: 'demo/base', message: 'base image' });
  console.log(`committed ${base.id.slice(0, 12)}: ${base.files} files`);

  // A variant made from edits: only the changed directories are written; the recipe is recorded for rebuilds.
  const web = await derive(repo, {
    base: 'demo/base', branch: 'demo/web', message: 'web server',
    edits: [
      { op: 'set', path: 'etc/hostname', data: Buffer.from('web\n') },
      { op: 'mkdir', path: 'srv' },
      { op: 'set', path: 'srv/index.html', data: Buffer.from('<h1>hello</h1>\n') },
      { op: 'rm', path: 'etc/motd' },
    ],
  });
  console.log(`derived ${web.id.slice(0, 12)}: ${web.edits} edits, ${web.treesWritten} directories written`);

  for (const e of diff(repo, { a: 'demo/base', b: 'demo/web' }).entries) console.log(`${e.status} ${e.path}`);
  for (const e of log(repo, { rev: 'demo/web' })) console.log(`${e.id.slice(0, 12)} ${e.message}`);
} finally {
  await repo.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
