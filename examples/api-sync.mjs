// Using viva as a library: clone a repository, commit in the clone, push back, and pull into a second clone.
// Remotes are paths here; http(s):// URLs of `viva serve` work the same. Run after `npm ci && npm run build`:
//   node examples/api-sync.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repository, clone, commit, derive, log, parsePushSpec, pull, push } from 'viva';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-api-'));
const rootfs = path.join(dir, 'rootfs');
fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
fs.writeFileSync(path.join(rootfs, 'etc/hostname'), 'base\n');

const origin = path.join(dir, 'origin');
const hub = Repository.init(origin);
await commit(hub, { source: rootfs, branch: 'main', message: 'base image' });
await hub.close();

const a = await clone(origin, path.join(dir, 'a')); // remote 'origin', branch main tracking origin/main
console.log(`cloned into ${path.basename(a.dir)}: ${a.objects} objects, branch ${a.branch}`);
const b = await clone(origin, path.join(dir, 'b'));

const repoA = Repository.open(a.dir, 'write');
try {
  await derive(repoA, { base: 'main', branch: 'main', message: 'rename', edits: [{ op: 'set', path: 'etc/hostname', data: Buffer.from('renamed\n') }] });
  const p = await push(repoA, 'origin', [parsePushSpec('main')]);
  for (const u of p.updated) console.log(`pushed ${u.ref}: ${u.old?.slice(0, 12)} -> ${u.new?.slice(0, 12)}`);
} finally {
  await repoA.close();
}

const repoB = Repository.open(b.dir, 'write');
try {
  const r = await pull(repoB, 'origin');
  console.log(`pulled into ${r.branch}: ${r.fastForward ? 'fast-forward' : 'merge'} to ${r.to.slice(0, 12)}`);
  for (const e of log(repoB, { rev: 'main' })) console.log(`${e.id.slice(0, 12)} ${e.message}`);
} finally {
  await repoB.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
