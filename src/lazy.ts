/**
 * Node built-ins and package parts that only some runs of a command need, loaded on first use. Every command loads
 * the store and the CLI, and a static import there loads them at every start: child_process ≈ 3 ms (with dgram),
 * crypto ≈ 2.4 ms (object ids are hashed by the native addon: model/oid.ts), worker_threads ≈ 1.5 ms, zstd-napi's
 * streaming classes (with stream and assert) ≈ 2 ms — against ≈ 100 ms for a whole `viva log`.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const crypto = (): typeof import('node:crypto') => require('node:crypto');
export const childProcess = (): typeof import('node:child_process') => require('node:child_process');
export const workerThreads = (): typeof import('node:worker_threads') => require('node:worker_threads');
/** zstd-napi's stream classes (its binding, which the store uses for single frames, is loaded apart: zstd-napi/binding.js). */
export const zstdStreams = (): typeof import('zstd-napi') => require('zstd-napi');
