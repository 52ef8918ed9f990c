/**
 * In-process timings for the web measure (issue 17), run by `npm run bench` against a copy of a repository holding
 * base and base2 (it adds refs and a commit: never point it at a repository that matters). Adds 1,000 branches
 * (alternately at base and base2) and an image with a directory of 5,000 files, serves the web view on 127.0.0.1, and
 * reads the server time (Server-Timing) of: the namespace page, compare base vs base2, and the first page of the
 * 5,000-entry directory — the first request (cold caches) and the median of RUNS more. Prints one JSON object.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repository } from '../../src/store/repository.js';
import { commit } from '../../src/ops/commit.js';
import { resolveRevision } from '../../src/ops/resolve.js';
import { serve } from '../../src/sync/server.js';
import { webHandler } from '../../src/web/handler.js';

const [repoDir, runsText] = process.argv.slice(2);
if (!repoDir) throw new Error('usage: web-probe REPO [RUNS]');
const RUNS = Number(runsText ?? 5);
const BRANCHES = 1000;
const DIR_ENTRIES = 5000;

// Setup (not timed): the branches and the big directory.
{
  const repo = Repository.open(repoDir, 'write');
  const heads = ['base', 'base2'].map((r) => resolveRevision(repo, r).oid);
  await repo.refs.update(Array.from({ length: BRANCHES }, (_, i) => ({
    ref: `refs/heads/fleet/${String(i % 20).padStart(2, '0')}/host${String(i).padStart(4, '0')}`, newOid: heads[i % 2]!, expectedOld: null, message: 'web bench',
  })), 'bench <bench@viva>');
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-web-probe-'));
  fs.mkdirSync(path.join(src, 'many'));
  for (let i = 0; i < DIR_ENTRIES; i++) fs.writeFileSync(path.join(src, 'many', `file-${String(i).padStart(5, '0')}.conf`), `entry ${i}\n`);
  await commit(repo, { source: src, branch: 'bench/dir5000', message: 'a directory of 5,000 files' });
  fs.rmSync(src, { recursive: true, force: true });
  await repo.close();
}

const repo = Repository.open(repoDir, 'read');
const server = await serve(repo, { listen: '127.0.0.1:0', handler: webHandler(repo), log: () => undefined });
const base = server.url.replace(/\/$/, '');

async function serverMs(p: string): Promise<number> {
  const r = await fetch(`${base}${p}`, { headers: { accept: 'text/html' } });
  if (r.status !== 200) throw new Error(`${p}: HTTP ${r.status}`);
  await r.arrayBuffer();
  return Number(/dur=([\d.]+)/.exec(r.headers.get('server-timing') ?? '')?.[1] ?? NaN);
}

async function measure(p: string): Promise<{ coldMs: number; ms: number }> {
  const coldMs = await serverMs(p);
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await serverMs(p));
  runs.sort((a, b) => a - b);
  return { coldMs, ms: runs[Math.floor(runs.length / 2)]! };
}

const namespace = await measure('/ui/');
const compare = await measure('/ui/compare?a=base&b=base2');
const directory = await measure('/ui/tree/bench%2Fdir5000/many');
await server.close();
await repo.close();
console.log(JSON.stringify({ branches: BRANCHES, entries: DIR_ENTRIES, namespace, compare, directory }));
