/**
 * Stable URLs of the web view. A revision is one path segment (percent-encoded, so `debian/12/base` is
 * `debian%2F12%2Fbase`); an image path follows as segments percent-encoded from its raw bytes, so a name that is not
 * UTF-8 round-trips exactly (`caf%FF`). Query parameters carry paging and filters.
 */

/** Bytes that stay as they are in a URL path segment (RFC 3986 unreserved). */
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** An image path's bytes as URL path segments ('/' kept between them, every other byte outside unreserved as %XX). */
export function encodePathBytes(path: Uint8Array): string {
  let out = '';
  for (const b of path) {
    const c = String.fromCharCode(b);
    out += b === 0x2f || (b < 0x80 && UNRESERVED.test(c)) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A percent-encoded URL text as the bytes it encodes (invalid escapes are kept as text). */
export function decodePathBytes(text: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      out.push(c);
    } else {
      out.push(...Buffer.from(text[i]!, 'utf8'));
    }
  }
  return Buffer.from(out);
}

/** The bytes of a result path: `pathHex` when the result has it (not UTF-8), else the UTF-8 text. */
export function pathBytes(path: string, pathHex?: string): Buffer {
  return pathHex !== undefined ? Buffer.from(pathHex, 'hex') : Buffer.from(path, 'utf8');
}

/** A revision as one URL path segment. */
export function revSegment(rev: string): string {
  return encodeURIComponent(rev);
}

/** Query string from parameters (undefined and '' left out), with a leading '?' when there are any. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The history page of a revision. */
export function logUrl(rev: string, page?: number): string {
  return `/ui/log/${revSegment(rev)}${query({ page: page && page > 1 ? page : undefined })}`;
}

/** The image browser at `path` (bytes) in `rev`. */
export function treeUrl(rev: string, path: Uint8Array = Buffer.alloc(0), page?: number): string {
  const p = encodePathBytes(path);
  return `/ui/tree/${revSegment(rev)}${p ? `/${p}` : ''}${query({ page: page && page > 1 ? page : undefined })}`;
}

/** The download of one file. */
export function rawUrl(rev: string, path: Uint8Array): string {
  return `/ui/raw/${revSegment(rev)}/${encodePathBytes(path)}`;
}

/** One commit. */
export function commitUrl(rev: string): string {
  return `/ui/commit/${revSegment(rev)}`;
}

/** The comparison of two images (optionally limited to one path). */
export function compareUrl(a: string, b: string, path?: string): string {
  return `/ui/compare${query({ a, b, path })}`;
}

/** The installed packages of an image. */
export function packagesUrl(rev: string): string {
  return `/ui/packages/${revSegment(rev)}`;
}
