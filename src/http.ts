/**
 * What every HTTP client of viva shares (the sync client, package sources over HTTP): how long a server may stay
 * silent, and a response body that fails instead of hanging when it does.
 */

/** How long a response may stay silent (VIVA_HTTP_TIMEOUT seconds, default 60) before the transfer is abandoned. */
export function idleMs(): number {
  const s = Number(process.env.VIVA_HTTP_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 60_000;
}

/** The chunks of a response body, failing when none arrives for `ms` (a stalled or endless-silent server). */
export async function* withIdleTimeout(body: ReadableStream<Uint8Array>, ms: number, abort: AbortController): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const next = await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) => { timer = setTimeout(() => { abort.abort(); reject(new Error(`no data for ${ms / 1000} s`)); }, ms); }),
      ]).finally(() => clearTimeout(timer));
      if (next.done) return;
      yield next.value;
    }
  } finally {
    reader.releaseLock();
  }
}
