/** Starts one of viva's worker modules, from compiled .js or (tests, tsx) from .ts source. */
import type { ResourceLimits, Transferable, Worker } from 'node:worker_threads';
import { workerThreads } from '../lazy.js';

/**
 * `base` is the module URL without extension (e.g. `new URL('./read-worker', import.meta.url)`); `transferList` holds
 * the MessagePorts (or buffers) `workerData` carries; `resourceLimits` sizes the worker's JavaScript heap.
 */
export function workerScript(base: URL, workerData: unknown, transferList: Transferable[] = [], resourceLimits?: ResourceLimits): Worker {
  if (import.meta.url.endsWith('.ts')) {
    // Running from source (`node --import=tsx`): tsx's --import hooks do not reach worker threads
    // (privatenumber/tsx#354), so the worker registers tsx itself before loading the TypeScript module.
    const url = `${base.href}.ts`;
    const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url)}); })`;
    return new (workerThreads().Worker)(boot, { eval: true, workerData, transferList, ...(resourceLimits ? { resourceLimits } : {}) });
  }
  return new (workerThreads().Worker)(new URL(`${base.href}.js`), { workerData, transferList, ...(resourceLimits ? { resourceLimits } : {}) });
}
