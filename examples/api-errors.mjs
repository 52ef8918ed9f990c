// Using viva as a library: failures are error classes with a stable `code` and `data`; long ops report progress and
// stop on an AbortSignal. Run after `npm ci && npm run build`:   node examples/api-errors.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AbortedError, NotARepositoryError, Repository, RevisionNotFoundError, VivaError, commit, show } from 'viva';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-api-'));
const rootfs = path.join(dir, 'rootfs');
fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
fs.writeFileSync(path.join(rootfs, 'etc/hostname'), 'demo\n');

try {
  Repository.open(path.join(dir, 'nowhere'));
} catch (e) {
  if (!(e instanceof NotARepositoryError)) throw e;
  console.log(`${e.code}: ${e.message}`);
}

const repo = Repository.init(path.join(dir, 'repo'));
try {
  try {
    show(repo, 'no/such/branch');
  } catch (e) {
    if (!(e instanceof RevisionNotFoundError)) throw e;
    console.log(`${e.code}: ${e.message} ${JSON.stringify(e.data)}`);
  }

  // Progress: events as the op goes, each with its phase and counts (and totals where known).
  const phases = new Set();
  const r = await commit(repo, { source: rootfs, message: 'with progress', onProgress: (ev) => phases.add(ev.phase) });
  console.log(`committed ${r.id.slice(0, 12)}; progress phases: ${[...phases].join(', ') || '(none: too quick)'}`);

  // Cancelling: an aborted signal stops the op with AbortedError, and nothing is referenced.
  const controller = new AbortController();
  controller.abort();
  try {
    await commit(repo, { source: rootfs, message: 'never', signal: controller.signal });
  } catch (e) {
    if (!(e instanceof AbortedError)) throw e;
    console.log(`${e.code}: ${e.message}; still ${show(repo).id.slice(0, 12)}`);
  }
} catch (e) {
  // Every expected failure is a VivaError; anything else is a bug worth a stack trace.
  console.error(e instanceof VivaError ? `${e.name} (${e.code}): ${e.message}` : e);
  process.exitCode = 1;
} finally {
  await repo.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
