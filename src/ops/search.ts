/**
 * The search op: keyword search over ref names, commit messages, labels, package names and file names, ranked.
 * File names come from the content index (every name of every tree, once per distinct tree), packages from each
 * image's package database (parsed once per distinct database), messages and labels from the commits.
 */
import { UsageError } from '../errors.js';
import type { Oid } from '../model/oid.js';
import { decodeParent, indexKey } from '../store/content-index.js';
import type { Repository } from '../store/repository.js';
import { readCommit } from '../store/typed.js';
import { type FindScope, Resolver, pathText, requireIndex, scopeCommits } from './find.js';
import { imageFileSystems, inventoryAt } from './image-packages.js';
import type { Inventory } from '../packages/inventory.js';

/** The options of {@link search}. */
export interface SearchOptions {
  /** Which commits to look in (default: every commit). */
  scope?: FindScope;
  /** At most this many hits (default 50). */
  limit?: number;
}

/** One commit {@link search} found, with its score and what matched. */
export interface SearchHit {
  ref: string;
  commit: Oid;
  score: number;
  message: string;
  /** What matched, e.g. `ref debian/12/base`, `label env=prod`, `package openssl`, `file usr/bin/htop`. */
  matches: string[];
}

/** Weights: a word in a ref name or label counts most, then messages and packages, then file names. */
const W = { refExact: 12, ref: 8, label: 6, message: 4, packageExact: 6, package: 3, fileExact: 2, file: 1 };
/** File-name matches resolved per word (the most exact first); enough to rank, bounded for common words. */
const MAX_FILE_MATCHES = 500;

/** Commits matching every word, best first. Locking: none. Throws UsageError without words. */
export async function search(repo: Repository, words: string[], options: SearchOptions = {}): Promise<SearchHit[]> {
  const ws = words.map((w) => w.trim().toLowerCase()).filter(Boolean);
  if (!ws.length) throw new UsageError('search needs at least one word');
  requireIndex(repo);
  const scope = scopeCommits(repo, options.scope);
  // Per commit, per word: the best score in each category (ref, label, message, package, file) and what matched.
  // Many file or package matches do not outweigh one match in the name or the message.
  const found = new Map<Oid, Map<string, { best: Map<string, number>; matches: string[] }>>();
  const add = (commit: Oid, word: string, score: number, what: string) => {
    if (!scope.has(commit)) return;
    let m = found.get(commit);
    if (!m) found.set(commit, (m = new Map()));
    let x = m.get(word);
    if (!x) m.set(word, (x = { best: new Map(), matches: [] }));
    const category = what.split(' ')[0]!;
    x.best.set(category, Math.max(x.best.get(category) ?? 0, score));
    if (x.matches.length < 5 && !x.matches.includes(what)) x.matches.push(what);
  };
  const inventories = new Map<Oid, Inventory | undefined>();
  for (const [commit, ref] of scope) {
    const c = readCommit(repo.objects, commit);
    const refLower = ref.toLowerCase();
    // Packages of every file system of the image (a disk commit's partitions included).
    const packages = [];
    for (const fsys of imageFileSystems(repo, c)) {
      if (!inventories.has(fsys.tree)) inventories.set(fsys.tree, await inventoryAt(repo, fsys.tree).catch(() => undefined));
      packages.push(...(inventories.get(fsys.tree)?.packages ?? []));
    }
    for (const w of ws) {
      if (refLower.split('/').includes(w)) add(commit, w, W.refExact, `ref ${ref}`);
      else if (refLower.includes(w)) add(commit, w, W.ref, `ref ${ref}`);
      if (c.message.toLowerCase().includes(w)) add(commit, w, W.message, 'message');
      for (const [k, v] of c.labels) if (`${k}=${v}`.toLowerCase().includes(w)) add(commit, w, W.label, `label ${k}=${v}`);
      for (const p of packages) {
        const n = p.name.toLowerCase();
        if (n === w) add(commit, w, W.packageExact, `package ${p.name}`);
        else if (n.includes(w)) add(commit, w, W.package, `package ${p.name}`);
      }
    }
  }
  // File names: every name in the index, matched per word, resolved up to the commits that contain it.
  const resolver = new Resolver(repo);
  // `key`: the index key of the tree (or disk) that holds the name, which the resolver goes up from.
  const perWord = new Map<string, Array<{ key: Buffer; name: string; exact: boolean }>>();
  for (const { value } of repo.contentIndex.scanParents()) {
    const link = decodeParent(value);
    if (!link.name?.length) continue;
    const name = link.name.toString('utf8');
    const lower = name.toLowerCase();
    for (const w of ws) {
      if (!lower.includes(w)) continue;
      let l = perWord.get(w);
      if (!l) perWord.set(w, (l = []));
      l.push({ key: indexKey(link.kind, link.oid), name, exact: lower === w });
    }
  }
  for (const [w, list] of perWord) {
    list.sort((a, b) => Number(b.exact) - Number(a.exact));
    for (const m of list.slice(0, MAX_FILE_MATCHES)) {
      const occ = resolver.occurrences(m.key);
      for (let i = 0; i < occ.length; i += 2) {
        const commit = occ[i]!;
        const dir = occ[i + 1]!;
        const p = dir ? `${pathText(dir)}/${m.name}` : m.name;
        add(commit, w, m.exact ? W.fileExact : W.file, `file ${p}`);
      }
    }
  }
  const hits: SearchHit[] = [];
  for (const [commit, m] of found) {
    if (m.size < ws.length) continue; // every word must match something
    let score = 0;
    const matches: string[] = [];
    for (const x of m.values()) { for (const v of x.best.values()) score += v; matches.push(...x.matches); }
    const c = readCommit(repo.objects, commit);
    hits.push({ ref: scope.get(commit)!, commit, score, message: c.message.split('\n')[0] ?? '', matches });
  }
  hits.sort((a, b) => b.score - a.score || (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  return hits.slice(0, options.limit ?? 50);
}
