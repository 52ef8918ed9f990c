/**
 * SSH host keys and a machine id, as the files `ssh-keygen -A` and `systemd-machine-id-setup` write into an image, so
 * that `viva derive --batch` can give each VM clone its own identity.
 *
 * The OpenSSH private key encoder is written here rather than taken from npm: the one widely used library that writes
 * "openssh-key-v1" (sshpk) is not installed, pulls in nine dependencies (its own JS curve code among them), sees
 * little maintenance (1.18.0, its latest, is over a year old), and picks the check int at random, so it could not give
 * the reproducible output the seeded variant promises. The format itself is short (OpenSSH's PROTOCOL.key);
 * node:crypto does all the key generation and arithmetic.
 *
 * Private key file ("openssh-key-v1", unencrypted), every integer big-endian:
 *   "-----BEGIN OPENSSH PRIVATE KEY-----\n", base64 of the bytes below in 70-character lines, "-----END OPENSSH PRIVATE KEY-----\n"
 *     "openssh-key-v1\0"    magic, NUL-terminated
 *     string "none"          cipher
 *     string "none"          kdf
 *     string ""              kdf options
 *     uint32 1               number of keys
 *     string public-blob     as in the .pub line
 *     string private-section
 *       uint32 check, uint32 check   two equal values (a wrong passphrase would decrypt them unequal)
 *       private fields       by type, below
 *       string comment
 *       bytes 1, 2, 3, …     padding to a multiple of 8 (the "none" cipher's block size)
 * where string = uint32 length + bytes and mpint = string of the unsigned big-endian value, without leading zeros,
 * with one 0x00 prepended when the top bit is set (RFC 4251 §5).
 *
 *   type     public blob                                        private fields
 *   ed25519  string "ssh-ed25519", string A (32)                string "ssh-ed25519", string A, string seed‖A (64)
 *   ecdsa    string "ecdsa-sha2-nistp256", string "nistp256",   the public blob's fields, then mpint d
 *            string Q (65, uncompressed point)
 *   rsa      string "ssh-rsa", mpint e, mpint n                 string "ssh-rsa", mpint n, mpint e, mpint d,
 *                                                               mpint iqmp (q⁻¹ mod p), mpint p, mpint q
 */
import crypto from 'node:crypto';
import { InvalidHostKeyOptionError } from '../errors.js';

export type HostKeyType = 'ed25519' | 'ecdsa' | 'rsa';

/** ssh-keygen's default RSA modulus size since OpenSSH 8.8. */
export const DEFAULT_RSA_BITS = 3072;
/** ssh-keygen refuses smaller RSA keys (SSH_RSA_MINIMUM_MODULUS_SIZE). */
export const MIN_RSA_BITS = 1024;
/** ssh-keygen refuses larger RSA keys (SSH_RSA_MAXIMUM_MODULUS_SIZE). */
export const MAX_RSA_BITS = 16384;
/** Length of a seed for the deterministic variant. */
export const HOST_KEY_SEED_BYTES = 32;

export interface HostKeyOptions {
  /** RSA modulus size (default DEFAULT_RSA_BITS); ed25519 and ecdsa keys have a fixed size, 256. */
  bits?: number;
  /**
   * 32 bytes that make the output a pure function of (type, comment, seed): ed25519 uses the seed as its private key;
   * ecdsa derives its scalar from it. Not for rsa. Anyone who has the seed has the private key: keep it as secret.
   */
  seed?: Uint8Array;
}

export interface HostKey {
  type: HostKeyType;
  /** The private key file (`-----BEGIN OPENSSH PRIVATE KEY-----` …), as ssh-keygen writes it. */
  private: Buffer;
  /** The .pub file: one line, `ssh-ed25519 AAAA… comment\n`. */
  public: Buffer;
  /** `SHA256:` + unpadded base64 of the public key blob's sha256, as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

/** A file to place in an image; paths are relative to the image root, owner is always root. */
export interface HostKeyFile {
  path: string;
  /** Permission bits: 0o600 for a private key, 0o644 for the rest. */
  mode: number;
  uid: 0;
  gid: 0;
  content: Buffer;
}

const KEY_NAME: Record<HostKeyType, string> = { ed25519: 'ssh-ed25519', ecdsa: 'ecdsa-sha2-nistp256', rsa: 'ssh-rsa' };
/** Order in which hostKeyFiles lists keys: as `ls /etc/ssh` does. */
const FILE_ORDER: readonly HostKeyType[] = ['ecdsa', 'ed25519', 'rsa'];
/** Order of P-256 (FIPS 186-4 D.1.2.3): a scalar must lie in [1, n). */
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows (RFC 8410 §7). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const PEM_BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----\n';
const PEM_END = '-----END OPENSSH PRIVATE KEY-----\n';
/** ssh-keygen wraps the base64 body at 70 characters (sshbuf_dtob64 in sshkey_private_to_blob2). */
const PEM_LINE = 70;

/**
 * Generate an SSH host key of `type` and encode it as the two files ssh-keygen writes: the private key in the OpenSSH
 * format (unencrypted) and the one-line .pub file ending in `comment`.
 *
 * Without `seed`, keys come from node:crypto's generator and the check int is random, as with ssh-keygen. With a
 * 32-byte `seed`, the output is a pure function of (type, comment, seed): the ed25519 private key is the seed itself;
 * the ecdsa scalar is the first value of HMAC-SHA256(seed, "ecdsa-sha2-nistp256 scalar" ‖ uint32 counter), counter
 * 0, 1, …, that lies in [1, n) (n the P-256 order; outside values are skipped rather than reduced, so no bias); the
 * check int is the first 4 bytes of HMAC-SHA256(seed, "openssh-key-v1 checkint"). These derivations are frozen: a
 * change would give every reproducible build new keys.
 *
 * Throws InvalidHostKeyOptionError for an unknown type, a comment with a line break or NUL, a seed that is not 32
 * bytes, a seed for rsa, or `bits` outside [MIN_RSA_BITS, MAX_RSA_BITS] (rsa) or other than 256 (ed25519, ecdsa).
 *
 * @example
 * const key = generateHostKey('ed25519', 'root@web-1');
 * key.public.toString();  // 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI… root@web-1\n'
 * key.fingerprint;        // 'SHA256:…'
 */
export function generateHostKey(type: HostKeyType, comment: string, options: HostKeyOptions = {}): HostKey {
  if (!Object.hasOwn(KEY_NAME, type)) throw new InvalidHostKeyOptionError('type', String(type), 'expected ed25519, ecdsa or rsa');
  if (/[\n\r\0]/.test(comment)) throw new InvalidHostKeyOptionError('comment', comment, 'a comment is one line without NUL');
  const { seed } = options;
  if (seed !== undefined) {
    if (type === 'rsa') throw new InvalidHostKeyOptionError('seed', 'rsa', 'rsa keys cannot be derived from a seed');
    if (!(seed instanceof Uint8Array) || seed.length !== HOST_KEY_SEED_BYTES) {
      const got = seed instanceof Uint8Array ? `${seed.length} bytes` : typeof seed;
      throw new InvalidHostKeyOptionError('seed', got, `expected ${HOST_KEY_SEED_BYTES} bytes`);
    }
  }
  const bits = options.bits ?? (type === 'rsa' ? DEFAULT_RSA_BITS : 256);
  if (type === 'rsa' ? !Number.isInteger(bits) || bits < MIN_RSA_BITS || bits > MAX_RSA_BITS : bits !== 256) {
    const allowed = type === 'rsa' ? `expected a whole number in [${MIN_RSA_BITS}, ${MAX_RSA_BITS}]` : `${type} keys have 256 bits`;
    throw new InvalidHostKeyOptionError('bits', String(bits), allowed);
  }

  const { publicBlob, privateFields } = type === 'ed25519' ? ed25519Fields(seed) : type === 'ecdsa' ? ecdsaFields(seed) : rsaFields(bits);
  const checkInt = seed ? hmac(seed, 'openssh-key-v1 checkint').subarray(0, 4) : crypto.randomBytes(4);
  const body = encodePrivateKey(publicBlob, privateFields, checkInt, comment);
  const base64 = body.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += PEM_LINE) lines.push(base64.slice(i, i + PEM_LINE));
  const privateText = PEM_BEGIN + lines.join('\n') + '\n' + PEM_END;
  // ssh-keygen leaves the separating space out when the comment is empty (sshkey_save_public).
  const publicText = `${KEY_NAME[type]} ${publicBlob.toString('base64')}${comment ? ` ${comment}` : ''}\n`;
  return { type, private: Buffer.from(privateText), public: Buffer.from(publicText), fingerprint: fingerprintOf(publicBlob) };
}

/**
 * The files of `keys` at the paths and modes Debian's openssh-server gives them: `etc/ssh/ssh_host_<type>_key` 0600
 * and `etc/ssh/ssh_host_<type>_key.pub` 0644, owner root:root, in `ls` order. Types absent from `keys` are skipped.
 *
 * @example
 * const files = hostKeyFiles({ ed25519: generateHostKey('ed25519', 'root@web-1'), ecdsa: generateHostKey('ecdsa', 'root@web-1') });
 * files.map((f) => f.path);  // ['etc/ssh/ssh_host_ecdsa_key', 'etc/ssh/ssh_host_ecdsa_key.pub', 'etc/ssh/ssh_host_ed25519_key', …]
 */
export function hostKeyFiles(keys: Partial<Record<HostKeyType, Pick<HostKey, 'private' | 'public'>>>): HostKeyFile[] {
  const files: HostKeyFile[] = [];
  for (const type of FILE_ORDER) {
    const key = keys[type];
    if (!key) continue;
    const path = `etc/ssh/ssh_host_${type}_key`;
    files.push({ path, mode: 0o600, uid: 0, gid: 0, content: key.private });
    files.push({ path: `${path}.pub`, mode: 0o644, uid: 0, gid: 0, content: key.public });
  }
  return files;
}

/**
 * A new /etc/machine-id: 32 lowercase hex digits and a newline (machine-id(5)). Without `seed`, 128 random bits made
 * a version-4 UUID, as systemd-machine-id-setup does when no hypervisor or container id is offered. With `seed` (any
 * length), the first 16 bytes of HMAC-SHA256(seed, "machine-id") made a version-4 UUID, so the id is a pure function
 * of the seed (frozen, like generateHostKey's derivations).
 *
 * @example
 * generateMachineId();  // 'c6f4b7d2a1e94f0b8d3e5a7c9b1d2e3f\n'
 */
export function generateMachineId(seed?: Uint8Array): string {
  const id = seed ? hmac(seed, 'machine-id').subarray(0, 16) : crypto.randomBytes(16);
  // RFC 9562 §5.4 version and variant bits, as systemd's id128_make_v4_uuid sets them.
  id[6] = (id[6]! & 0x0f) | 0x40;
  id[8] = (id[8]! & 0x3f) | 0x80;
  return `${id.toString('hex')}\n`;
}

/** `SHA256:` + unpadded base64 of the blob's sha256: the form `ssh-keygen -l` prints. */
function fingerprintOf(publicBlob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`;
}

interface KeyFields {
  publicBlob: Buffer;
  privateFields: Buffer;
}

function ed25519Fields(seed?: Uint8Array): KeyFields {
  const privateKey = seed
    ? crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
    : crypto.generateKeyPairSync('ed25519').privateKey;
  const jwk = privateKey.export({ format: 'jwk' });
  const d = Buffer.from(jwk.d!, 'base64url');
  const a = Buffer.from(jwk.x!, 'base64url');
  const name = string(KEY_NAME.ed25519);
  return { publicBlob: Buffer.concat([name, string(a)]), privateFields: Buffer.concat([name, string(a), string(Buffer.concat([d, a]))]) };
}

function ecdsaFields(seed?: Uint8Array): KeyFields {
  let d: Buffer;
  let q: Buffer;
  if (seed) {
    d = ecdsaScalar(seed);
    const ecdh = crypto.createECDH('prime256v1');
    ecdh.setPrivateKey(d);
    q = ecdh.getPublicKey(); // uncompressed: 0x04 ‖ x ‖ y
  } else {
    const jwk = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    d = Buffer.from(jwk.d!, 'base64url');
    q = Buffer.concat([Buffer.of(4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  }
  const publicBlob = Buffer.concat([string(KEY_NAME.ecdsa), string('nistp256'), string(q)]);
  return { publicBlob, privateFields: Buffer.concat([publicBlob, mpint(d)]) };
}

/** The first HMAC-SHA256(seed, label ‖ counter) in [1, n): see generateHostKey. */
function ecdsaScalar(seed: Uint8Array): Buffer {
  for (let counter = 0; ; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const candidate = hmac(seed, Buffer.concat([Buffer.from('ecdsa-sha2-nistp256 scalar'), c]));
    const value = BigInt(`0x${candidate.toString('hex')}`);
    if (value !== 0n && value < P256_ORDER) return candidate;
  }
}

function rsaFields(bits: number): KeyFields {
  const jwk = crypto.generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 65537 }).privateKey.export({ format: 'jwk' });
  const [n, e, d, p, q, qi] = [jwk.n, jwk.e, jwk.d, jwk.p, jwk.q, jwk.qi].map((v) => mpint(Buffer.from(v!, 'base64url')));
  const name = string(KEY_NAME.rsa);
  // JWK's qi is q⁻¹ mod p, the same value OpenSSH calls iqmp.
  return { publicBlob: Buffer.concat([name, e!, n!]), privateFields: Buffer.concat([name, n!, e!, d!, qi!, p!, q!]) };
}

function encodePrivateKey(publicBlob: Buffer, privateFields: Buffer, checkInt: Buffer, comment: string): Buffer {
  const unpadded = Buffer.concat([checkInt, checkInt, privateFields, string(comment)]);
  const padding = Buffer.from(Array.from({ length: (8 - (unpadded.length % 8)) % 8 }, (_, i) => i + 1));
  return Buffer.concat([
    Buffer.from('openssh-key-v1\0'), string('none'), string('none'), string(Buffer.alloc(0)), uint32(1),
    string(publicBlob), string(Buffer.concat([unpadded, padding])),
  ]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** RFC 4251 string: uint32 length + bytes (text as UTF-8). */
function string(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return Buffer.concat([uint32(bytes.length), bytes]);
}

/** RFC 4251 mpint of an unsigned big-endian value: no leading zeros, one 0x00 added when the top bit is set. */
function mpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  const digits = unsigned.subarray(i);
  return string(digits.length > 0 && digits[0]! & 0x80 ? Buffer.concat([Buffer.of(0), digits]) : digits);
}

function hmac(key: Uint8Array, message: Buffer | string): Buffer {
  return crypto.createHmac('sha256', key).update(message).digest();
}
