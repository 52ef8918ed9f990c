/**
 * In-process timings for the inspect measures (issue 5), run by `npm run bench` against a repository holding min,
 * base, web and base2: 1000 checksum lookups (900 of files picked at random from the corpus trees, 100 absent) with
 * recall and false-hit checks, `diff base base2`, `diff --packages base base2`, and the content index's size.
 * Prints one JSON object.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Repository } from '../../src/store/repository.js';
import { find } from '../../src/ops/find.js';
import { diff } from '../../src/ops/diff.js';
import { diffPackages } from '../../src/ops/image-packages.js';
import { resolveSpec } from '../../src/ops/resolve.js';
import { lmdb } from '../helpers/lmdb.js';

const [repoDir, corpus] = process.argv.slice(2);
if (!repoDir || !corpus) throw new Error('usage: inspect-probe REPO CORPUS');
const TREES = ['min', 'base', 'web', 'base2'];

/** 900 regular files of the four trees, picked with a fixed seed, with their sha256. */
function sample(): Array<{ tree: string; rel: string; sha: string }> {
  const files: Array<{ tree: string; rel: string }> = [];
  for (const tree of TREES) {
    const root = path.join(corpus!, tree);
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) files.push({ tree, rel: path.relative(root, p) });
      }
    };
    walk(root);
  }
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  const out: Array<{ tree: string; rel: string; sha: string }> = [];
  const seen = new Set<string>();
  while (out.length < 900) {
    const f = files[Math.floor(rnd() * files.length)]!;
    const k = `${f.tree}/${f.rel}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ ...f, sha: crypto.createHash('sha256').update(fs.readFileSync(path.join(corpus!, f.tree, f.rel))).digest('hex') });
  }
  return out;
}

const picked = sample();
const absent = Array.from({ length: 100 }, (_, i) => crypto.createHash('sha256').update(`absent ${i}`).digest('hex'));
const repo = Repository.open(repoDir, 'read');
const t0 = process.hrtime.bigint();
const hits = [];
for await (const h of find(repo, { sha256: [...picked.map((p) => p.sha), ...absent] })) hits.push(h);
const lookupMs = Number(process.hrtime.bigint() - t0) / 1e6;
// Recall: every picked (tree, path) is among the hits of its checksum; no hit of an absent checksum; every hit's entry has that content.
const found = new Set(hits.map((h) => `${h.ref}\0${h.path}\0${h.sha256}`));
const missed = picked.filter((p) => !found.has(`${p.tree}\0${p.rel}\0${p.sha}`));
const absentHits = hits.filter((h) => absent.includes(h.sha256!)).length;
let falseHits = 0;
for (const h of hits) if (resolveSpec(repo, `${h.commit}:${h.path}`).entry.oid !== h.sha256) falseHits++;
let t1 = process.hrtime.bigint();
const d = diff(repo, { a: 'base', b: 'base2' });
const diffMs = Number(process.hrtime.bigint() - t1) / 1e6;
t1 = process.hrtime.bigint();
const p = await diffPackages(repo, 'base', 'base2');
const packagesMs = Number(process.hrtime.bigint() - t1) / 1e6;
const stat = (db: { getStats(): unknown }) => db.getStats() as { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number; entryCount: number };
const ix = [stat(lmdb(repo).ixParent), stat(lmdb(repo).ixRoot)];
const indexBytes = ix.reduce((n, s) => n + (s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages) * 4096, 0);
await repo.close();
console.log(JSON.stringify({
  lookups: picked.length + absent.length, hits: hits.length, lookupMs, missed: missed.length, absentHits, falseHits,
  diffMs, diffEntries: d.entries.length, packagesMs, packageChanges: p.changes.length, indexBytes, indexEntries: ix.reduce((n, s) => n + s.entryCount, 0),
}));
