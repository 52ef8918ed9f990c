/** In-memory images for op tests: ImageReaders built from entry lists, without touching the file system. */
import type { ImageEntry, ImageReader } from '../../src/formats/types.js';

export function entryOf(p: string, type: ImageEntry['type'], extra: Partial<ImageEntry> = {}): ImageEntry {
  return { path: Buffer.from(p), type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtimeNs: 0n, xattrs: [], ...extra };
}

/** A reader yielding `entries` in order; a function in the list runs at that point (to simulate concurrent changes or failures). */
export function readerOf(entries: Array<ImageEntry | (() => void)>): ImageReader {
  return {
    description: { format: 'test', name: 'test-reader' },
    async *entries() {
      for (const e of entries) {
        if (typeof e === 'function') e();
        else yield e;
      }
    },
  };
}

/** File content from a string or buffer, optionally at an offset (the bytes before it are a hole). */
export function content(data: string | Buffer, offset = 0, size?: number): ImageEntry['content'] {
  const buf = Buffer.from(data);
  return { size: size ?? offset + buf.length, async *read() { if (buf.length) yield { offset, data: buf }; } };
}
