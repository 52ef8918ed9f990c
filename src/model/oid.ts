/** Object ids: 32-byte SHA-256 digests, shown as 64 lowercase hex digits. */
import { native } from '../native/index.js';

/** An object id: the sha256 of the object's canonical encoding, as 64 lowercase hex digits. */
export type Oid = string; // 64 lowercase hex digits

export const OID_BYTES = 32;
export const OID_HEX = 64;
export const SHORT_OID = 12;
export const MIN_PREFIX = 4;

export function hashBytes(data: Uint8Array): Oid {
  return native().sha256Hex(data);
}

export function isOid(s: string): boolean {
  return s.length === OID_HEX && /^[0-9a-f]{64}$/.test(s);
}

export function oidToBytes(oid: Oid): Buffer {
  return Buffer.from(oid, 'hex');
}

export function bytesToOid(b: Uint8Array): Oid {
  return Buffer.from(b.buffer, b.byteOffset, OID_BYTES).toString('hex');
}

export function shortOid(oid: Oid): string {
  return oid.slice(0, SHORT_OID);
}

/** sha256 of the empty string: the id of every empty file. */
export const EMPTY_BLOB_OID: Oid = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
