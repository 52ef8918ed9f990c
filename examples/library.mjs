// Using viva as a library: commit a directory, list it, derive a variant and check it out. Run after `npm ci`:
//   node examples/library.mjs /path/to/rootfs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repository, checkout, commit, derive, log, ls, showDerivation } from 'viva';

const source = process.argv[2] ?? path.dirname(new URL(import.meta.url).pathname);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-lib-'));
Repository.init(dir).close();
const repo = Repository.open(dir, 'write');
try {
  const r = await commit(repo, { source, branch: 'examples/lib', message: 'from the library example' });
  console.log(`commit ${r.commit} tree ${r.tree}: ${r.files} files, ${r.storedBytes} bytes stored`);
  for (const e of log(repo, { rev: 'examples/lib' })) console.log(e.id.slice(0, 12), e.date, e.message);
  for (const e of ls(repo, { spec: 'examples/lib' }).slice(0, 10)) console.log(e.type.padEnd(7), e.mode, e.path);
  // A variant of the image from edits, without checking it out; its recipe is recorded for rebuilds.
  const d = await derive(repo, { base: 'examples/lib', branch: 'examples/lib-web', edits: [{ op: 'set', path: 'etc/hostname', data: Buffer.from('web\n') }] });
  console.log(`derived ${d.id.slice(0, 12)}: ${d.treesWritten} directories written, recipe ${showDerivation(repo, d.id).recipe.id.slice(0, 12)}`);
  const out = path.join(dir, 'checkout');
  const c = await checkout(repo, { rev: 'examples/lib', dest: out });
  console.log(`checked out ${c.files} files to ${out}`);
} finally {
  await repo.close();
}
