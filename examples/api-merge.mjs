// Using viva as a library: two variants of one image, merged three-way; then the result is checked out.
// Run after `npm ci && npm run build`:   node examples/api-merge.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repository, checkout, commit, derive, log, merge } from 'viva';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-api-'));
const rootfs = path.join(dir, 'rootfs');
fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
fs.writeFileSync(path.join(rootfs, 'etc/hostname'), 'base\n');
fs.writeFileSync(path.join(rootfs, 'etc/hosts'), '127.0.0.1 localhost\n');

const repo = Repository.init(path.join(dir, 'repo'));
try {
  await commit(repo, { source: rootfs, branch: 'fleet/base', message: 'base image' });
  // Two teams change the same image in different places.
  await derive(repo, { base: 'fleet/base', branch: 'fleet/web', message: 'name it web', edits: [{ op: 'set', path: 'etc/hostname', data: Buffer.from('web\n') }] });
  await derive(repo, { base: 'fleet/base', branch: 'fleet/hardened', message: 'harden ssh', edits: [{ op: 'set', path: 'etc/ssh/sshd_config', data: Buffer.from('PermitRootLogin no\n') }] });

  // Merge fleet/hardened into fleet/web, onto a new branch; conflicts would come back as data (r.conflicts). The
  // variants share no commit: their merge base is found through what they were derived from.
  const r = await merge(repo, { a: 'fleet/web', b: 'fleet/hardened', branch: 'fleet/web-hardened', message: 'web, hardened' });
  console.log(`merge: ${r.status} into ${r.branch} against ${r.base?.slice(0, 12)} (via ${r.via}), ${r.conflicts.length} conflicts`);
  for (const e of log(repo, { rev: 'fleet/web-hardened' })) console.log(`${e.id.slice(0, 12)} ${e.parents.length} parents  ${e.message}`);

  const out = path.join(dir, 'checkout');
  await checkout(repo, { rev: 'fleet/web-hardened', dest: out });
  console.log(`hostname: ${fs.readFileSync(path.join(out, 'etc/hostname'), 'utf8').trim()}; sshd_config: ${fs.readFileSync(path.join(out, 'etc/ssh/sshd_config'), 'utf8').trim()}`);
} finally {
  await repo.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
