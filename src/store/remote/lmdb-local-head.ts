/**
 * HEAD of a bucket repository on one host: kept in the host cache's LMDB (`refs` key `HEAD`, `reflog` entries under
 * `HEAD`), the same records a local repository's HEAD has, so that it survives the process and is per host.
 */
import type { LmdbStore } from '../lmdb-store.js';
import type { ReflogEntry, RefValue } from '../interfaces.js';
import type { LocalHead } from './remote-refs.js';

const HEAD = 'HEAD';

/** `LocalHead` over the host cache; each write is one durable transaction (or part of the caller's). */
export class LmdbLocalHead implements LocalHead {
  constructor(private readonly store: LmdbStore) {}

  read(): RefValue | undefined {
    const v = this.store.refs.get(HEAD) as RefValue | undefined;
    return v && { ...v };
  }

  write(v: RefValue | undefined): void {
    this.tx(() => {
      if (v) this.store.refs.putSync(HEAD, v.symref ? { symref: v.symref } : { oid: v.oid });
      else this.store.refs.removeSync(HEAD);
    });
  }

  reflog(): ReflogEntry[] {
    const out: ReflogEntry[] = [];
    for (const { value } of this.store.reflog.getRange({ start: [HEAD, Number.MAX_SAFE_INTEGER], end: [HEAD, -1], reverse: true })) out.push(value as ReflogEntry);
    return out;
  }

  append(e: ReflogEntry): void {
    this.tx(() => {
      let seq = 0;
      for (const key of this.store.reflog.getKeys({ start: [HEAD, Number.MAX_SAFE_INTEGER], end: [HEAD, -1], reverse: true, limit: 1 })) {
        seq = (key as [string, number])[1] + 1;
      }
      this.store.reflog.putSync([HEAD, seq], e);
    });
  }

  replaceReflog(entries: ReflogEntry[]): void {
    this.tx(() => {
      for (const key of [...this.store.reflog.getKeys({ start: [HEAD, -1], end: [HEAD, Number.MAX_SAFE_INTEGER] })]) this.store.reflog.removeSync(key);
      // `entries` is newest first; sequence numbers grow with age reversed.
      entries.slice().reverse().forEach((e, i) => this.store.reflog.putSync([HEAD, i], e));
    });
  }

  private tx(fn: () => void): void {
    if (this.store.inWriteTransaction) fn();
    else this.store.writeTransaction(fn);
  }
}
