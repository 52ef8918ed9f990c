/**
 * Image path names for line-oriented human output, as git's `core.quotePath`: a name that holds a control
 * character, a backslash, a double quote or bytes that are not UTF-8 is printed C-quoted in double quotes with
 * escapes (`"new\nline"`, `"non-utf8-\377\376"`); every other name is printed as it is. Valid non-ASCII UTF-8 stays
 * raw (as git with `core.quotePath=false`): VM images carry localized names, the terminal shows them, and pasting
 * them back gives the same bytes. A path argument that starts with `"` is read back with `unquotePath`, so that
 * every name printed can be given again (`viva cat 'main:"non-utf8-\377\376"'`).
 */

import { isUtf8 } from 'node:buffer';

const ESCAPES: Record<number, string> = { 0x07: 'a', 0x08: 'b', 0x09: 't', 0x0a: 'n', 0x0b: 'v', 0x0c: 'f', 0x0d: 'r', 0x22: '"', 0x5c: '\\' };
const UNESCAPES: Record<string, number> = Object.fromEntries(Object.entries(ESCAPES).map(([b, c]) => [c, Number(b)]));

/** The length of the valid UTF-8 sequence at `b[i]` (1–4), or 0 when the bytes there are not valid UTF-8. */
function utf8Length(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 >= 0xa0)) return 0; // overlong, surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 >= 0x90)) return 0; // overlong, beyond U+10FFFF
    return 4;
  }
  return 0;
}

function needsQuoting(b: Uint8Array): boolean {
  let ascii = true;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c < 0x20 || c === 0x7f || c === 0x22 || c === 0x5c) return true;
    if (c >= 0x80) ascii = false;
  }
  // (Node's isUtf8 rejects what utf8Length rejects: overlong forms, surrogates, code points beyond U+10FFFF.)
  return !ascii && !isUtf8(b);
}

/** `name` as human output prints it: as is, or C-quoted in double quotes (see the module comment). */
export function quotePath(name: Uint8Array | string): string {
  const b = typeof name === 'string' ? Buffer.from(name, 'utf8') : Buffer.from(name.buffer, name.byteOffset, name.byteLength);
  if (!needsQuoting(b)) return b.toString('utf8');
  let out = '"';
  for (let i = 0; i < b.length;) {
    const c = b[i]!;
    const esc = ESCAPES[c];
    if (esc) { out += `\\${esc}`; i++; continue; }
    if (c < 0x20 || c === 0x7f) { out += `\\${c.toString(8).padStart(3, '0')}`; i++; continue; }
    const n = utf8Length(b, i);
    if (n === 0) { out += `\\${c.toString(8).padStart(3, '0')}`; i++; continue; }
    out += b.toString('utf8', i, i + n);
    i += n;
  }
  return `${out}"`;
}

/** Text without a control character, DEL, a double quote or a backslash: printed as it is when it is valid UTF-8. */
const PLAIN = /^[^\x00-\x1f\x7f"\\]*$/;

/** The name of a result that carries `path` (UTF-8, lossy) and, for names that are not UTF-8, `pathHex` (exact). */
export function quoteResultPath(path: string, pathHex?: string): string {
  // The common case, checked on the text: valid UTF-8 (no pathHex) without a character that needs quoting.
  if (pathHex === undefined && PLAIN.test(path)) return path;
  return quotePath(pathHex !== undefined ? Buffer.from(pathHex, 'hex') : Buffer.from(path, 'utf8'));
}

/** Hex of `b` when it is not valid UTF-8 (what results carry as `pathHex`), else undefined. */
export function hexIfNotUtf8(b: Uint8Array): string | undefined {
  return isUtf8(b) ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Whether a path argument is in the quoted form (starts with a double quote). */
export function isQuotedPath(s: string): boolean {
  return s.startsWith('"');
}

/**
 * The bytes a quoted path argument names: `"..."` with C escapes (`\n`, `\t`, `\"`, `\\`, `\a\b\f\r\v`, and `\ooo`
 * octal, 1–3 digits, for any byte); other characters stand for their UTF-8 bytes. A string that does not start
 * with `"` is taken as it is. Returns `{ error }` for a malformed one (no closing quote, text after it, an unknown
 * escape, an octal value above 255).
 */
export function unquotePath(s: string): { bytes: Buffer } | { error: string } {
  if (!s.startsWith('"')) return { bytes: Buffer.from(s, 'utf8') };
  const out: number[] = [];
  let i = 1;
  for (;;) {
    if (i >= s.length) return { error: 'no closing double quote' };
    const ch = s[i]!;
    if (ch === '"') {
      if (i !== s.length - 1) return { error: 'text after the closing double quote' };
      return { bytes: Buffer.from(out) };
    }
    if (ch !== '\\') {
      const cp = s.codePointAt(i)!;
      const len = cp > 0xffff ? 2 : 1;
      out.push(...Buffer.from(s.slice(i, i + len), 'utf8'));
      i += len;
      continue;
    }
    const e = s[i + 1];
    if (e === undefined) return { error: 'a backslash at the end' };
    if (e >= '0' && e <= '7') {
      let j = i + 1;
      let v = 0;
      while (j < s.length && j < i + 4 && s[j]! >= '0' && s[j]! <= '7') v = v * 8 + (s.charCodeAt(j++) - 48);
      if (v > 255) return { error: `octal escape '\\${s.slice(i + 1, j)}' is above 255` };
      out.push(v);
      i = j;
      continue;
    }
    const b = UNESCAPES[e];
    if (b === undefined) return { error: `unknown escape '\\${e}'` };
    out.push(b);
    i += 2;
  }
}
