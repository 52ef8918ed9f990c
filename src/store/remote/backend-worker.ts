/**
 * The I/O thread of `SyncReader`: rebuilds the backend from its spec, answers each batch of GETs (a few at a time),
 * posts the answers, then moves the shared counter and wakes the blocked caller.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import { S3Backend, type S3BackendOptions, type S3Location } from './s3-backend.js';
import type { Backend } from './backend.js';
import { SYNC_CONCURRENCY, type SyncRequest, type WorkerReply, type WorkerSpec } from './sync-reader.js';

const { spec, port, flag } = workerData as { spec: WorkerSpec; port: MessagePort; flag: Int32Array };
const backend: Backend = new S3Backend(spec.location as S3Location, spec.options as S3BackendOptions);

port.on('message', (msg: { requests: SyncRequest[] }) => {
  void answer(msg.requests).then((reply) => {
    const transfer = 'answers' in reply ? reply.answers.flatMap((a) => (a && a.body.byteOffset === 0 && a.body.byteLength === a.body.buffer.byteLength ? [a.body.buffer as ArrayBuffer] : [])) : [];
    port.postMessage(reply, [...new Set(transfer)]);
    Atomics.add(flag, 0, 1);
    Atomics.notify(flag, 0);
  });
});

async function answer(requests: SyncRequest[]): Promise<WorkerReply> {
  const answers: Array<{ body: Uint8Array; etag: string } | null> = new Array(requests.length).fill(null);
  let next = 0;
  let failure: unknown;
  const lane = async () => {
    while (next < requests.length && failure === undefined) {
      const i = next++;
      const r = requests[i]!;
      try {
        const got = await backend.get(r.key, r.range);
        answers[i] = got ? { body: got.body, etag: got.etag } : null;
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SYNC_CONCURRENCY, requests.length) }, lane));
  if (failure === undefined) return { answers };
  const e = failure as { name?: string; message?: string; code?: string; data?: Record<string, unknown> };
  return { error: { name: e.name ?? 'Error', message: e.message ?? String(failure), code: e.code, data: e.data } };
}
