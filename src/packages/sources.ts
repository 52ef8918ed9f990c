// Temporary stand-in (replaced by the full module on merge).
import path from 'node:path';
import { type DebIndexCache, readDebDirectory } from './deb-directory.js';
import { type PackageCandidate, PackageUniverse } from './source.js';

export interface OpenSourcesOptions { arch: string; cacheDir: string; indexCache?: DebIndexCache; signal?: AbortSignal }
export interface PackageSources {
  universe: PackageUniverse;
  sources: Array<{ spec: string; kind: string; packages: number }>;
  fetch(c: PackageCandidate): Promise<string>;
}
export async function openSources(specs: string[], options: OpenSourcesOptions): Promise<PackageSources> {
  const universe = new PackageUniverse();
  const sources: PackageSources['sources'] = [];
  for (const spec of specs) {
    const r = await readDebDirectory(spec, { arch: options.arch, universe, ...(options.indexCache ? { cache: options.indexCache } : {}) });
    sources.push({ spec, kind: 'debs', packages: r.packages });
  }
  return { universe, sources, fetch: async (c) => path.join(c.origin!, c.filename!) };
}
