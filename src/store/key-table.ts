/**
 * A hash table of fixed-size binary keys (object keys, ids), each with a fixed-size value, outside the JavaScript
 * heap. It stands in for a Map of strings where a commit keeps one entry per object to its end (the ids a writer has
 * sent, the index entries it has deferred): a 10 GiB file has 160 000 chunks, and a Map keyed by 64-digit strings
 * cost about 150 bytes per entry on the JavaScript heap, plus the slack V8 keeps beside a growing heap. Here an entry
 * costs its key and value bytes, in blocks in the order of insertion, and 8 to 16 bytes of hash slots (open
 * addressing, linear probing, at a load of at most one half). No library offers this for Buffers: the hash maps on
 * npm key by JavaScript values.
 *
 * Keys are hashed by their last four bytes, so they must end in a uniformly distributed part (a sha256).
 */
const MIN_SLOTS = 1024;
/** Entries per block (log2). */
const BLOCK_SHIFT = 11;
const BLOCK_ENTRIES = 1 << BLOCK_SHIFT;

export class KeyTable {
  /**
   * Entry e: in block e >> BLOCK_SHIFT, its key at (e mod BLOCK_ENTRIES) × entryBytes, its value right after. Blocks
   * are never copied as the table grows: one buffer grown by copies left the garbage collector the earlier ones, tens
   * of MB that a collector with little else to do let stay.
   */
  private readonly blocks: Buffer[] = [];
  private readonly entryBytes: number;
  /** Hash slots: 0 when free, else the entry's number + 1. */
  private slots: Uint32Array;
  private count = 0;

  constructor(readonly keyBytes: number, readonly valueBytes: number) {
    if (keyBytes < 4) throw new RangeError('keys of a KeyTable have at least 4 bytes');
    this.entryBytes = keyBytes + valueBytes;
    this.slots = new Uint32Array(MIN_SLOTS);
  }

  /** Number of keys held. */
  get size(): number {
    return this.count;
  }

  /** The hash slot of `key`: where it is, or the free slot where it would go. */
  private slotOf(key: Uint8Array): number {
    const kb = this.keyBytes;
    if (key.length !== kb) throw new RangeError(`a key of ${key.length} bytes in a table of ${kb}-byte keys`);
    const mask = this.slots.length - 1;
    let i = ((key[kb - 4]! | (key[kb - 3]! << 8) | (key[kb - 2]! << 16) | (key[kb - 1]! << 24)) >>> 0) & mask;
    for (;;) {
      const e = this.slots[i]!;
      if (e === 0) return i;
      const at = ((e - 1) & (BLOCK_ENTRIES - 1)) * this.entryBytes;
      if (this.blocks[(e - 1) >>> BLOCK_SHIFT]!.compare(key, 0, kb, at, at + kb) === 0) return i;
      i = (i + 1) & mask;
    }
  }

  /** The number of `key`'s entry, or -1. */
  private entryOf(key: Uint8Array): number {
    return this.slots[this.slotOf(key)]! - 1;
  }

  has(key: Uint8Array): boolean {
    return this.entryOf(key) >= 0;
  }

  /** The value of `key` (a view into the table), or undefined. */
  get(key: Uint8Array): Buffer | undefined {
    const e = this.entryOf(key);
    return e < 0 ? undefined : this.valueAt(e);
  }

  /**
   * Adds `key` if it is new and returns its value's bytes to fill in (a view into the table); returns undefined, and
   * changes nothing, when the table holds `key` already.
   */
  insert(key: Uint8Array): Buffer | undefined {
    if (2 * (this.count + 1) > this.slots.length) this.rehash(2 * this.slots.length);
    const i = this.slotOf(key);
    if (this.slots[i] !== 0) return undefined;
    const e = this.count++;
    if ((e & (BLOCK_ENTRIES - 1)) === 0) this.blocks.push(Buffer.allocUnsafeSlow(BLOCK_ENTRIES * this.entryBytes));
    this.blocks[e >>> BLOCK_SHIFT]!.set(key, (e & (BLOCK_ENTRIES - 1)) * this.entryBytes);
    this.slots[i] = e + 1;
    return this.valueAt(e);
  }

  /** Entry numbers (0 … size − 1, in the order of insertion) sorted by their keys' bytes. */
  sortedEntries(): Uint32Array {
    const n = this.count;
    const order = new Uint32Array(n);
    // Compared first by their first six bytes as a number (exact in a double), which decides nearly every pair.
    const lead = Math.min(6, this.keyBytes);
    const prefix = new Float64Array(n);
    for (let e = 0; e < n; e++) {
      order[e] = e;
      prefix[e] = this.keyAt(e).readUIntBE(0, lead);
    }
    return order.sort((a, b) => (prefix[a]! - prefix[b]!) || Buffer.compare(this.keyAt(a), this.keyAt(b)));
  }

  /** Entry `e`'s key (a view into the table). */
  keyAt(e: number): Buffer {
    const at = (e & (BLOCK_ENTRIES - 1)) * this.entryBytes;
    return this.blocks[e >>> BLOCK_SHIFT]!.subarray(at, at + this.keyBytes);
  }

  /** Entry `e`'s value (a view into the table). */
  valueAt(e: number): Buffer {
    const at = (e & (BLOCK_ENTRIES - 1)) * this.entryBytes + this.keyBytes;
    return this.blocks[e >>> BLOCK_SHIFT]!.subarray(at, at + this.valueBytes);
  }

  private rehash(size: number): void {
    this.slots = new Uint32Array(size);
    for (let e = 0; e < this.count; e++) this.slots[this.slotOf(this.keyAt(e))] = e + 1;
  }
}
