/**
 * In-process timing of a fetch with nothing new over HTTP (issue 6: < 100 ms), against a running `viva serve`:
 * `sync-probe URL CLONE_DIR` prints {"fetchMs", "objects"} for the second of two fetches.
 */
import { Repository } from '../../src/store/repository.js';
import { fetch } from '../../src/ops/sync.js';

const dir = process.argv[2];
const repo = Repository.open(dir!, 'write');
await fetch(repo, 'origin');
const t0 = process.hrtime.bigint();
const r = await fetch(repo, 'origin');
const fetchMs = Number(process.hrtime.bigint() - t0) / 1e6;
await repo.close();
console.log(JSON.stringify({ fetchMs, objects: r.objects, queries: r.queries }));
