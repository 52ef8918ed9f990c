/**
 * What export-git and import-git share: finding the git directory of DIR, writing git blobs as loose objects, and
 * the git commit text that carries a viva commit (its encoding in a `viva-commit` header).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { type Commit, decodeCommit, encodeCommit, parseAuthor } from '../model/commit.js';

/** The header of an exported git commit that holds the viva commit's encoding (base64, 64 characters a line). */
export const VIVA_COMMIT_HEADER = 'viva-commit';
/** Where export-git keeps its state inside the git directory (docs/git-interop.md). */
export const STATE_DIR = 'viva';
/** Blobs up to this size are deflated in memory; larger ones stream through a temporary file. */
export const DEFAULT_STREAM_THRESHOLD = 16 * 1024 * 1024;

/** Where a git repository keeps its objects and refs. */
export interface GitDir {
  /** The git directory: DIR for a bare repository, DIR/.git for one with a work tree. */
  gitdir: string;
  bare: boolean;
}

/** The git directory of `dir`, or undefined when `dir` is no git repository. */
export function findGitDir(dir: string): GitDir | undefined {
  const dotgit = path.join(dir, '.git');
  if (isGitDir(dotgit)) return { gitdir: dotgit, bare: false };
  if (isGitDir(dir)) return { gitdir: dir, bare: true };
  return undefined;
}

function isGitDir(p: string): boolean {
  try {
    return fs.statSync(path.join(p, 'objects')).isDirectory() && fs.statSync(path.join(p, 'HEAD')).isFile() && fs.statSync(path.join(p, 'refs')).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Writes git blobs as loose objects (zlib level 1, as git's own `core.looseCompression` default), hashed with node's
 * SHA-1, in synchronous calls. Why not isomorphic-git's writeBlob: one promise chain per object through
 * CompressionStream (level 6) and WebCrypto made it 800–940 blobs/s (19–22 MB/s) on /usr/share/doc, against
 * 4 200–4 650 blobs/s (100–111 MB/s) here; a `git fast-import` stream did 1 750/s and needs the git binary. Trees,
 * commits and refs stay with isomorphic-git (docs/git-interop.md has the numbers).
 */
export class LooseObjectWriter {
  /** Objects written by this writer (not counting those that were already there). */
  written = 0;
  /** Uncompressed bytes of those objects. */
  bytes = 0;
  private readonly dirs = new Set<string>();
  private tmpCounter = 0;

  constructor(readonly gitdir: string) {}

  private objectPath(sha: string): string {
    return path.join(this.gitdir, 'objects', sha.slice(0, 2), sha.slice(2));
  }

  private tmpPath(sha: string): string {
    const dir = path.dirname(this.objectPath(sha));
    if (!this.dirs.has(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      this.dirs.add(dir);
    }
    return path.join(dir, `tmp_obj_${process.pid}_${this.tmpCounter++}`);
  }

  /** Writes a blob held in memory; returns its git id. */
  writeBlob(content: Uint8Array): string {
    const header = Buffer.from(`blob ${content.length}\0`);
    const sha = crypto.createHash('sha1').update(header).update(content).digest('hex');
    const p = this.objectPath(sha);
    if (fs.existsSync(p)) return sha;
    const z = zlib.deflateSync(Buffer.concat([header, content]), { level: 1 });
    const tmp = this.tmpPath(sha);
    fs.writeFileSync(tmp, z, { mode: 0o444 });
    fs.renameSync(tmp, p);
    this.written++;
    this.bytes += content.length;
    return sha;
  }

  /** Writes a blob of `size` bytes from `pieces` (any sizes, in order) without holding it in memory; returns its git id. */
  async writeBlobStream(size: number, pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<string> {
    const header = Buffer.from(`blob ${size}\0`);
    const h = crypto.createHash('sha1').update(header);
    // The id is known only at the end: deflate into a temporary file in the objects directory, then rename.
    fs.mkdirSync(path.join(this.gitdir, 'objects'), { recursive: true });
    const tmp = path.join(this.gitdir, 'objects', `tmp_obj_${process.pid}_${this.tmpCounter++}`);
    let total = 0;
    async function* all(): AsyncIterable<Uint8Array> {
      yield header;
      for await (const p of pieces) {
        h.update(p);
        total += p.length;
        yield p;
      }
    }
    try {
      await pipeline(Readable.from(all()), zlib.createDeflate({ level: 1 }), fs.createWriteStream(tmp, { mode: 0o444 }));
      if (total !== size) throw new Error(`blob content is ${total} bytes, expected ${size}`);
      const sha = h.digest('hex');
      const p = this.objectPath(sha);
      if (fs.existsSync(p)) {
        fs.rmSync(tmp);
        return sha;
      }
      this.tmpPath(sha); // creates the fan-out directory
      fs.renameSync(tmp, p);
      this.written++;
      this.bytes += size;
      return sha;
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }
}

/**
 * A blob stored as a loose object, inflated with node's zlib and checked against its id; undefined when `sha` is not
 * a loose object (packed: the caller reads it with isomorphic-git, whose readBlob inflates in JavaScript with pako).
 * Throws for a loose object that is not a blob or does not hash to `sha`.
 */
export function tryReadLooseBlob(gitdir: string, sha: string): Buffer | undefined {
  let z: Buffer;
  try {
    z = fs.readFileSync(path.join(gitdir, 'objects', sha.slice(0, 2), sha.slice(2)));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const raw = zlib.inflateSync(z);
  const nul = raw.indexOf(0);
  const header = raw.subarray(0, nul).toString('latin1');
  if (!/^blob \d+$/.test(header) || Number(header.slice(5)) !== raw.length - nul - 1) throw new Error(`object ${sha} is not a blob ('${header.slice(0, 20)}')`);
  if (crypto.createHash('sha1').update(raw).digest('hex') !== sha) throw new Error(`object ${sha} does not match its id`);
  return raw.subarray(nul + 1);
}

/** Loose objects whose compressed file is larger than this are inflated as a stream, not in memory. */
export const DEFAULT_STREAM_READ_THRESHOLD = 4 * 1024 * 1024;

/**
 * A loose blob's size and content: read whole when its file is small, else inflated as a stream (constant memory),
 * checked against `sha` when the last piece has been read (the iterator throws then). Undefined when `sha` is not a
 * loose object.
 */
export async function tryOpenLooseBlob(gitdir: string, sha: string): Promise<{ size: number; pieces: AsyncIterable<Buffer> | Iterable<Buffer> } | undefined> {
  const file = path.join(gitdir, 'objects', sha.slice(0, 2), sha.slice(2));
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if (st.size <= DEFAULT_STREAM_READ_THRESHOLD) {
    const b = tryReadLooseBlob(gitdir, sha);
    return b && { size: b.length, pieces: [b] };
  }
  const inflate = zlib.createInflate();
  pipeline(fs.createReadStream(file), inflate).catch(() => { /* the error reaches the iterator through the destroyed inflate stream */ });
  const it: AsyncIterator<Buffer> = inflate[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let nul = -1;
  while (nul < 0) {
    const r = await it.next();
    if (r.done || head.length > 64) {
      await it.return?.();
      throw new Error(`object ${sha} has no object header`);
    }
    head = Buffer.concat([head, r.value]);
    nul = head.indexOf(0);
  }
  const header = head.subarray(0, nul).toString('latin1');
  if (!/^blob \d+$/.test(header)) {
    await it.return?.();
    throw new Error(`object ${sha} is not a blob ('${header.slice(0, 20)}')`);
  }
  const size = Number(header.slice(5));
  const h = crypto.createHash('sha1').update(head.subarray(0, nul + 1));
  const first = head.subarray(nul + 1);
  async function* pieces(): AsyncIterable<Buffer> {
    let total = 0;
    try {
      if (first.length) {
        h.update(first);
        total += first.length;
        yield first;
      }
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        h.update(r.value);
        total += r.value.length;
        yield r.value;
      }
      if (total !== size) throw new Error(`object ${sha} holds ${total} bytes, its header says ${size}`);
      if (h.digest('hex') !== sha) throw new Error(`object ${sha} does not match its id`);
    } finally {
      await it.return?.();
    }
  }
  return { size, pieces: pieces() };
}

/** `Name <email> SECONDS +HHMM` for a git author or committer line; names git's fsck refuses are cleaned. */
export function gitIdent(author: string, time: number, tzOffset: number): string {
  const p = parseAuthor(author);
  const name = (p ? p.name : author.replace(/<[^>]*>?/g, '')).replace(/[<>\n]/g, '').trim() || 'unknown';
  const email = (p?.email ?? '').replace(/[<>\n]/g, '');
  const a = Math.abs(tzOffset);
  const tz = `${tzOffset < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}${String(a % 60).padStart(2, '0')}`;
  // git's dates are unsigned: a time before 1970 is written as 0 (the viva-commit header keeps the exact one).
  return `${name} <${email}> ${Math.max(0, time)} ${tz}`;
}

/**
 * The text of the git commit for viva commit `c`: tree, parents, author = committer, the `viva-commit` header
 * (the viva commit's exact encoding, so import gives the identical commit back), then the message. A NUL in the
 * message (which git's fsck refuses) is written as `\0`; git messages end with a newline.
 */
export function gitCommitText(c: Commit, tree: string, parents: string[]): string {
  const ident = gitIdent(c.author, c.time, c.tzOffset);
  const b64 = encodeCommit(c).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  let msg = c.message.replace(/\0/g, '\\0');
  if (!msg.endsWith('\n')) msg += '\n';
  return `tree ${tree}\n${parents.map((p) => `parent ${p}\n`).join('')}author ${ident}\ncommitter ${ident}\n${VIVA_COMMIT_HEADER} ${lines.join('\n ')}\n\n${msg}`;
}

/** The viva commit in a `viva-commit` header value (lines joined by newlines, as isomorphic-git gives it); throws DecodeError. */
export function decodeVivaCommitHeader(value: string): Commit {
  const b64 = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new Error('not base64');
  return decodeCommit(Buffer.from(b64, 'base64'));
}
