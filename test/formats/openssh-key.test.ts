/** Host keys checked by the real ssh-keygen (openssh-client): it must load them, derive the same public key and fingerprint, sign with them. */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { generateHostKey, generateMachineId, hostKeyFiles, type HostKey, type HostKeyType } from '../../src/formats/openssh-key.js';
import { InvalidHostKeyOptionError } from '../../src/errors.js';

const SSH_KEYGEN = '/usr/bin/ssh-keygen';
const HAVE_SSH_KEYGEN = fs.existsSync(SSH_KEYGEN);
const withSshKeygen = HAVE_SSH_KEYGEN ? test : test.skip;

/** 0x00, 0x01, …, 0x1f: the seed of the known answers. */
const SEED = Uint8Array.from({ length: 32 }, (_, i) => i);

function tmpdir(t: ExecutionContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-sshkey-test-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function sshKeygen(args: string[], input?: Buffer): string {
  return execFileSync(SSH_KEYGEN, args, { input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] }).toString();
}

/** Writes KEY (0600, as ssh-keygen insists) and KEY.pub into `dir`; returns KEY's path. */
function writeKey(dir: string, name: string, key: HostKey): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, key.private, { mode: 0o600 });
  fs.writeFileSync(`${file}.pub`, key.public, { mode: 0o644 });
  return file;
}

/** The base64 body of a private key file, decoded. */
function body(privateFile: Buffer | string): Buffer {
  const lines = privateFile.toString().trimEnd().split('\n');
  return Buffer.from(lines.slice(1, -1).join(''), 'base64');
}

/** The two check ints sit right after the private section's length; see the format comment in openssh-key.ts. */
function withoutCheckInts(b: Buffer, publicBlobLength: number): Buffer {
  const start = 15 + 8 + 8 + 4 + 4 + 4 + publicBlobLength + 4;
  return Buffer.concat([b.subarray(0, start), b.subarray(start + 8)]);
}

const CASES: Array<[HostKeyType, string, { bits?: number; seed?: Uint8Array }]> = [
  ['ed25519', 'random', {}],
  ['ed25519', 'seeded', { seed: SEED }],
  ['ecdsa', 'random', {}],
  ['ecdsa', 'seeded', { seed: SEED }],
  ['rsa', 'random 2048-bit', { bits: 2048 }],
];

for (const [type, how, options] of CASES) {
  withSshKeygen(`generateHostKey: ssh-keygen loads a ${how} ${type} key, derives the same .pub line and fingerprint`, (t) => {
    const key = generateHostKey(type, 'root@test', options);
    const file = writeKey(tmpdir(t), `ssh_host_${type}_key`, key);
    t.is(sshKeygen(['-y', '-f', file]), key.public.toString());
    const listed = sshKeygen(['-l', '-f', `${file}.pub`]).trim().split(' ');
    t.is(listed[1], key.fingerprint);
    t.is(sshKeygen(['-l', '-f', file]).trim().split(' ')[1], key.fingerprint, 'the fingerprint of the private key file agrees');
    t.regex(key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  withSshKeygen(`generateHostKey: a ${how} ${type} key signs and its .pub verifies (ssh-keygen -Y)`, (t) => {
    const dir = tmpdir(t);
    const file = writeKey(dir, 'key', generateHostKey(type, 'root@test', options));
    const data = path.join(dir, 'data');
    fs.writeFileSync(data, 'a file to sign\n');
    sshKeygen(['-Y', 'sign', '-f', file, '-n', 'file', data]);
    const out = sshKeygen(['-Y', 'check-novalidate', '-n', 'file', '-s', `${data}.sig`], fs.readFileSync(data));
    t.regex(out, /Good "file" signature/);
    t.throws(() => sshKeygen(['-Y', 'check-novalidate', '-n', 'file', '-s', `${data}.sig`], Buffer.from('other bytes\n')));
  });
}

const REWRITE_CASES: Array<[HostKeyType, { bits?: number; seed?: Uint8Array }]> = [['ed25519', { seed: SEED }], ['ecdsa', { seed: SEED }], ['rsa', { bits: 2048 }]];
for (const [type, options] of REWRITE_CASES) {
  withSshKeygen(`generateHostKey: ${type} is byte for byte what ssh-keygen writes for the same key, check ints aside`, (t) => {
    const dir = tmpdir(t);
    const key = generateHostKey(type, 'root@test', options);
    const file = writeKey(dir, 'key', key);
    // Changing the (empty) passphrase makes ssh-keygen decode the key and encode it anew, with fresh check ints.
    sshKeygen(['-p', '-P', '', '-N', '', '-f', file]);
    const rewritten = fs.readFileSync(file);
    const blobLength = Buffer.from(key.public.toString().split(' ')[1]!, 'base64').length;
    t.deepEqual(withoutCheckInts(body(rewritten), blobLength), withoutCheckInts(body(key.private), blobLength));
    t.deepEqual(rewritten.toString().split('\n').map((l) => l.length), key.private.toString().split('\n').map((l) => l.length));
  });
}

for (const type of ['ed25519', 'ecdsa'] as const) {
  withSshKeygen(`generateHostKey: ${type}: the file has the layout of one ssh-keygen -t ${type} makes`, (t) => {
    const dir = tmpdir(t);
    const own = path.join(dir, 'own');
    sshKeygen(['-q', '-t', type, '-N', '', '-C', 'root@test', '-f', own]);
    const ours = generateHostKey(type, 'root@test').private.toString();
    const theirs = fs.readFileSync(own, 'utf8');
    const shape = (s: string) => s.split('\n').map((l) => (l.startsWith('-----') ? l : l.length));
    // ecdsa's d is an mpint: 32 or 33 bytes, so the body length may differ by one byte; the header and line width may not.
    if (type === 'ed25519') t.deepEqual(shape(ours), shape(theirs));
    t.is(ours.split('\n')[0], theirs.split('\n')[0]);
    t.true(ours.split('\n').slice(1, -3).every((l) => l.length === 70), 'full lines are 70 characters');
    t.true(theirs.split('\n').slice(1, -3).every((l) => l.length === 70), 'as ssh-keygen writes them');
    t.true(ours.endsWith('\n-----END OPENSSH PRIVATE KEY-----\n'));
    const b = body(ours);
    t.is(b.subarray(0, 15).toString('latin1'), 'openssh-key-v1\0');
    t.deepEqual(b.subarray(0, 62), body(theirs).subarray(0, 62), 'magic, cipher, kdf, key count and public key header agree');
  });
}

withSshKeygen('generateHostKey: rsa defaults to 3072 bits, as ssh-keygen does', (t) => {
  const key = generateHostKey('rsa', 'root@test');
  t.regex(key.public.toString(), /^ssh-rsa AAAAB3NzaC1yc2E\S+ root@test\n$/);
  const file = writeKey(tmpdir(t), 'key', key);
  t.is(sshKeygen(['-l', '-f', file]).split(' ')[0], '3072');
});

test('generateHostKey: with a seed the output is a pure function of (type, comment, seed)', (t) => {
  const other = Uint8Array.from(SEED, (b) => b ^ 0xff);
  for (const type of ['ed25519', 'ecdsa'] as const) {
    const a = generateHostKey(type, 'root@test', { seed: SEED });
    t.deepEqual(generateHostKey(type, 'root@test', { seed: SEED }), a, type);
    const b = generateHostKey(type, 'root@test', { seed: other });
    t.notDeepEqual(b.private, a.private, type);
    t.not(b.fingerprint, a.fingerprint, type);
    const c = generateHostKey(type, 'root@other', { seed: SEED });
    t.is(c.fingerprint, a.fingerprint, `${type}: the comment is not part of the key`);
    t.notDeepEqual(c.private, a.private, type);
  }
  t.not(generateHostKey('ed25519', 'x').fingerprint, generateHostKey('ed25519', 'x').fingerprint, 'without a seed every key is new');
  t.not(generateHostKey('ed25519', 'x', { seed: SEED }).fingerprint, generateHostKey('ecdsa', 'x', { seed: SEED }).fingerprint);
});

// Known answers (confirmed by the ssh-keygen tests above): a change here gives every reproducible build new host keys.
test('generateHostKey: seeded ed25519 known answer (seed 0x00..0x1f, root@test)', (t) => {
  const key = generateHostKey('ed25519', 'root@test', { seed: SEED });
  t.is(key.private.toString(), [
    '-----BEGIN OPENSSH PRIVATE KEY-----',
    'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
    'QyNTUxOQAAACADoQe/884Qvh1w3RjnS8CZZ+TWMJulDV8d3IZkElUxuAAAAJDponXN6aJ1',
    'zQAAAAtzc2gtZWQyNTUxOQAAACADoQe/884Qvh1w3RjnS8CZZ+TWMJulDV8d3IZkElUxuA',
    'AAAEAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHwOhB7/zzhC+HXDdGOdLwJln',
    '5NYwm6UNXx3chmQSVTG4AAAACXJvb3RAdGVzdAECAwQ=',
    '-----END OPENSSH PRIVATE KEY-----',
    '',
  ].join('\n'));
  t.is(key.public.toString(), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4 root@test\n');
  t.is(key.fingerprint, 'SHA256:lbmsoA0yIEcEiVDRnMWuzm+nV+3ZEEpVIURqFoeSspg');
});

test('generateHostKey: seeded ecdsa known answer (seed 0x00..0x1f)', (t) => {
  const key = generateHostKey('ecdsa', 'root@test', { seed: SEED });
  t.is(key.public.toString(), 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJdr09f/QMPkyh+6quqobgwC7TdMjGX/FJBkjkWTi6cpZVWP4HS4g8fV1Dpp3QX2Qsh1zU6GSDEUpHqTXpo3OaA= root@test\n');
  t.is(key.fingerprint, 'SHA256:A02Cz98gLwi/zwxBsKNL9GKnSVm3qrSQ8T3fjujXrFs');
});

test('generateHostKey: padding is 1, 2, 3, … up to a multiple of 8, and the check ints are equal', (t) => {
  for (const comment of ['', 'a', 'ab', 'abc', 'abcd', 'abcde', 'abcdef', 'abcdefg']) {
    const b = body(generateHostKey('ed25519', comment).private);
    const publicLength = b.readUInt32BE(39);
    const sectionAt = 43 + publicLength;
    const section = b.subarray(sectionAt + 4, sectionAt + 4 + b.readUInt32BE(sectionAt));
    t.is(sectionAt + 4 + section.length, b.length, 'the private section ends the file');
    t.is(section.length % 8, 0);
    t.is(section.readUInt32BE(0), section.readUInt32BE(4));
    // check ints (8), "ssh-ed25519" (4+11), A (4+32), seed‖A (4+64), comment (4+n), then the padding.
    const padding = section.subarray(8 + 15 + 36 + 68 + 4 + comment.length);
    t.deepEqual([...padding], padding.length ? Array.from({ length: padding.length }, (_, i) => i + 1) : [], JSON.stringify(comment));
  }
});

test('generateHostKey: an empty comment leaves no trailing space on the .pub line', (t) => {
  t.regex(generateHostKey('ecdsa', '').public.toString(), /^ecdsa-sha2-nistp256 [A-Za-z0-9+/=]+\n$/);
});

const INVALID: Array<[string, () => unknown, string]> = [
  ['an unknown type', () => generateHostKey('dsa' as HostKeyType, 'x'), 'type'],
  ['a comment with a newline', () => generateHostKey('ed25519', 'a\nb'), 'comment'],
  ['a short seed', () => generateHostKey('ed25519', 'x', { seed: new Uint8Array(16) }), 'seed'],
  ['a seed that is not bytes', () => generateHostKey('ecdsa', 'x', { seed: 'abc' as unknown as Uint8Array }), 'seed'],
  ['a seed for rsa', () => generateHostKey('rsa', 'x', { seed: SEED }), 'seed'],
  ['too few rsa bits', () => generateHostKey('rsa', 'x', { bits: 512 }), 'bits'],
  ['fractional rsa bits', () => generateHostKey('rsa', 'x', { bits: 2048.5 }), 'bits'],
  ['ecdsa bits other than 256', () => generateHostKey('ecdsa', 'x', { bits: 384 }), 'bits'],
];
for (const [what, fn, option] of INVALID) {
  test(`generateHostKey: refuses ${what}`, (t) => {
    const err = t.throws(fn, { instanceOf: InvalidHostKeyOptionError });
    t.is(err?.code, 'ERR_INVALID_HOST_KEY_OPTION');
    t.is(err?.data.option, option);
    t.regex(err!.message, /^host key \w+ '.*' is not valid: [a-z]/s);
  });
}

test('hostKeyFiles: Debian paths, private keys 0600 and public keys 0644, owned by root', (t) => {
  const ed25519 = generateHostKey('ed25519', 'root@test', { seed: SEED });
  const ecdsa = generateHostKey('ecdsa', 'root@test', { seed: SEED });
  const files = hostKeyFiles({ ed25519, ecdsa });
  t.deepEqual(files.map((f) => [f.path, f.mode.toString(8), f.uid, f.gid]), [
    ['etc/ssh/ssh_host_ecdsa_key', '600', 0, 0],
    ['etc/ssh/ssh_host_ecdsa_key.pub', '644', 0, 0],
    ['etc/ssh/ssh_host_ed25519_key', '600', 0, 0],
    ['etc/ssh/ssh_host_ed25519_key.pub', '644', 0, 0],
  ]);
  t.is(files[0]!.content, ecdsa.private);
  t.is(files[3]!.content, ed25519.public);
  const rsa = hostKeyFiles({ rsa: { private: Buffer.from('p'), public: Buffer.from('q') } });
  t.deepEqual(rsa.map((f) => f.path), ['etc/ssh/ssh_host_rsa_key', 'etc/ssh/ssh_host_rsa_key.pub']);
});

test('generateMachineId: 32 lowercase hex digits and a newline, a version-4 id; seeded ids are repeatable', (t) => {
  const v4 = /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}\n$/;
  const random = generateMachineId();
  t.regex(random, v4);
  t.not(generateMachineId(), random);
  const seeded = generateMachineId(SEED);
  t.regex(seeded, v4);
  t.is(generateMachineId(SEED), seeded);
  t.not(generateMachineId(Uint8Array.from(SEED, (b) => b ^ 1)), seeded);
  t.is(seeded, 'acd886f497b64defa18502674ad7c97f\n', 'known answer: a change gives reproducible builds new machine ids');
});
