/**
 * Object ids are hashed by the native addon (OpenSSL's SHA-256, without loading node:crypto): the same digests as
 * node:crypto for every input shape an id is taken of — empty, a view into a larger buffer, a plain Uint8Array, large.
 */
import test from 'ava';
import crypto from 'node:crypto';
import { EMPTY_BLOB_OID, hashBytes, isOid } from '../../src/model/oid.js';
import { randomBytes } from '../helpers/repo.js';

const reference = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

test('hashBytes: the SHA-256 of its input as 64 lowercase hex digits, as node:crypto gives it', (t) => {
  const big = randomBytes(3 << 20, 'big');
  const inputs: Uint8Array[] = [
    Buffer.alloc(0), Buffer.from('abc'), big, big.subarray(12345, 1_000_001), new Uint8Array(big.buffer, big.byteOffset + 7, 1000),
    new Uint8Array([0, 255, 1]), Buffer.alloc(64, 0x61), Buffer.alloc(55, 0x62), Buffer.alloc(56, 0x63),
  ];
  for (const b of inputs) {
    const h = hashBytes(b);
    t.true(isOid(h), h);
    t.is(h, reference(b), `${b.length} bytes at offset ${b.byteOffset}`);
  }
  t.is(hashBytes(Buffer.alloc(0)), EMPTY_BLOB_OID);
  t.is(hashBytes(Buffer.from('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('hashBytes: anything but bytes is a TypeError, not a digest of something else', (t) => {
  t.throws(() => hashBytes('abc' as unknown as Uint8Array), { instanceOf: TypeError });
  t.throws(() => hashBytes(new Uint16Array(4) as unknown as Uint8Array), { instanceOf: TypeError });
});
