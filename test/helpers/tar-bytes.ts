/** Hand-made tar archives for tests: headers written field by field, with a correct checksum. */

/** Fields of one header; numeric fields are given as the raw bytes of the field when a test needs odd encodings. */
export interface RawHeader {
  name: string;
  mode?: number | Buffer;
  uid?: number | Buffer;
  gid?: number | Buffer;
  size?: number | Buffer;
  mtime?: number | Buffer;
  typeflag?: string;
  linkname?: string;
  magic?: 'ustar' | 'gnu' | 'v7';
  devmajor?: number | Buffer;
  devminor?: number | Buffer;
  /** Overrides the computed checksum field (raw bytes). */
  chksum?: Buffer;
}

function octal(n: number, len: number): Buffer {
  return Buffer.from(`${n.toString(8).padStart(len - 1, '0')}\0`, 'latin1');
}

/** One 512-byte header block. */
export function header(h: RawHeader): Buffer {
  const b = Buffer.alloc(512);
  const put = (v: number | Buffer | undefined, off: number, len: number, dflt: number) => {
    const buf = typeof v === 'object' ? v : octal(v ?? dflt, len);
    buf.copy(b, off, 0, len);
  };
  b.write(h.name, 0, 100, 'latin1');
  put(h.mode, 100, 8, 0o644);
  put(h.uid, 108, 8, 0);
  put(h.gid, 116, 8, 0);
  put(h.size, 124, 12, 0);
  put(h.mtime, 136, 12, 1_700_000_000);
  b.write(h.typeflag ?? '0', 156, 1, 'latin1');
  if (h.linkname) b.write(h.linkname, 157, 100, 'latin1');
  const magic = h.magic ?? 'ustar';
  if (magic === 'ustar') b.write('ustar\x0000', 257, 8, 'latin1');
  if (magic === 'gnu') b.write('ustar  \x00', 257, 8, 'latin1');
  if (magic !== 'v7') {
    put(h.devmajor, 329, 8, 0);
    put(h.devminor, 337, 8, 0);
  }
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  (h.chksum ?? Buffer.from(`${sum.toString(8).padStart(6, '0')}\0 `, 'latin1')).copy(b, 148, 0, 8);
  return b;
}

/** Data padded to whole blocks. */
export function data(d: Buffer | string): Buffer {
  const b = typeof d === 'string' ? Buffer.from(d) : d;
  return Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
}

/** A pax extended header member ('x') holding the given records. */
export function pax(records: Record<string, string>, name = 'PaxHeaders/x'): Buffer {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest);
    body += `${len}${rest}`;
  }
  const d = Buffer.from(body);
  return Buffer.concat([header({ name, typeflag: 'x', size: d.length }), data(d)]);
}

/** A whole archive: the members, then two zero blocks. */
export function archive(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}
