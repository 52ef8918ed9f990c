/**
 * Worker thread of receiveObjects: decodes received objects and checks each against its id (zstd decompression,
 * sha256, a blob reassembled from the chunks sent before it), so that the receiving thread only parses the stream
 * and stores what was verified — the two halves of a large receive run on both cores.
 *
 * Messages: verify (a batch, copied) → done (the batch's problems: an object that is not what its id says, with the
 * reason; or one this thread cannot check because a chunk it needs was not sent in this transfer, left to the
 * receiving thread, which can read its store); stored (the batches up to this one are durable: their chunks are
 * dropped here, the receiving thread reads them from its store when a later blob needs them).
 */
import { parentPort } from 'node:worker_threads';
import type { Oid } from '../model/oid.js';
import { type VerifyBatch, type VerifyProblem, verifyObject } from './peer.js';

const port = parentPort!;
/** Raw bytes of the chunks verified here, by id, with the batch that brought each. */
const chunks = new Map<Oid, { raw: Buffer; batch: number }>();

class Bad extends Error {}

port.on('message', (m: VerifyBatch | { type: 'stored'; batch: number }) => {
  if (m.type === 'stored') {
    for (const [oid, c] of chunks) if (c.batch <= m.batch) chunks.delete(oid);
    return;
  }
  const problems: VerifyProblem[] = [];
  for (let index = 0; index < m.items.length; index++) {
    const [kind, oid, offset, length] = m.items[index]!;
    const o = { kind, oid, stored: Buffer.from(m.buf, offset, length) };
    let missed = false;
    const readChunk = (oid: Oid) => {
      const c = chunks.get(oid)?.raw;
      if (!c) missed = true;
      return c;
    };
    try {
      const raw = verifyObject(o, readChunk, (_id, reason) => new Bad(reason));
      if (o.kind === 'chunk') chunks.set(o.oid, { raw, batch: m.batch });
    } catch (e) {
      // A chunk not sent in this transfer, or anything but a plain mismatch: the receiving thread checks it again.
      if (missed || !(e instanceof Bad)) { problems.push({ index, defer: true }); continue; }
      problems.push({ index, reason: e.message });
      break;
    }
  }
  port.postMessage({ type: 'done', batch: m.batch, problems });
});
