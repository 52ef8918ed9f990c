/**
 * Debian version numbers: parsing and ordering exactly as `dpkg --compare-versions` does (dpkg's lib/dpkg/version.c,
 * parseversion() and verrevcmp()), and version constraints such as `<3.0.13` or `>= 1:2.3-1`.
 */
import { UsageError } from '../errors.js';

/** A Debian version split into its parts (`1:2.3-4` → epoch 1, upstream `2.3`, revision `4`). */
export interface DebVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

/**
 * Parses `[epoch:]upstream[-revision]`. Returns an error message instead of throwing, as dpkg's parseversion()
 * does, for what dpkg itself refuses: empty, embedded spaces, a non-numeric or negative epoch, an empty upstream
 * part, an upstream part not starting with a digit, or characters outside [A-Za-z0-9.+~:-] (upstream) and
 * [A-Za-z0-9.+~] (revision).
 */
export function parseDebVersion(s: string): DebVersion | string {
  const v = s.trim();
  if (v === '') return 'version string is empty';
  if (/\s/.test(v)) return 'version string has embedded spaces';
  let epoch = 0;
  let rest = v;
  const colon = v.indexOf(':');
  if (colon >= 0) {
    const e = v.slice(0, colon);
    if (e === '') return 'epoch in version is empty';
    if (!/^\d+$/.test(e)) return 'epoch in version is not number';
    epoch = Number(e);
    if (epoch > 2147483647) return 'epoch in version is too big';
    rest = v.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  const upstream = dash >= 0 ? rest.slice(0, dash) : rest;
  const revision = dash >= 0 ? rest.slice(dash + 1) : '';
  if (upstream === '') return 'version number is empty';
  if (dash >= 0 && revision === '') return 'revision number is empty';
  if (!/^\d/.test(upstream)) return 'version number does not start with digit';
  if (!/^[A-Za-z0-9.+~:-]*$/.test(upstream)) return 'invalid character in version number';
  if (!/^[A-Za-z0-9.+~]*$/.test(revision)) return 'invalid character in revision number';
  return { epoch, upstream, revision };
}

/** dpkg's order(): digits 0, letters their code, '~' before everything (even the end), other characters after letters. */
function order(c: number): number {
  if (c >= 0x30 && c <= 0x39) return 0;
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return c;
  if (c === 0x7e) return -1;
  if (c) return c + 256;
  return 0;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** dpkg's verrevcmp(): alternating non-digit and digit runs. Negative, 0 or positive. */
function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  const at = (s: string, k: number) => (k < s.length ? s.charCodeAt(k) : 0);
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(at(a, i))) || (j < b.length && !isDigit(at(b, j)))) {
      const ac = order(at(a, i));
      const bc = order(at(b, j));
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (at(a, i) === 0x30) i++;
    while (at(b, j) === 0x30) j++;
    while (isDigit(at(a, i)) && isDigit(at(b, j))) {
      if (!firstDiff) firstDiff = at(a, i) - at(b, j);
      i++;
      j++;
    }
    if (isDigit(at(a, i))) return 1;
    if (isDigit(at(b, j))) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

/** Compares two parsed versions as dpkg does: epoch, then upstream, then revision. */
export function compareParsed(a: DebVersion, b: DebVersion): number {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch ? 1 : -1;
  const u = verrevcmp(a.upstream, b.upstream);
  if (u) return u;
  return verrevcmp(a.revision, b.revision);
}

/**
 * Compares two version strings (-1, 0, 1). Unparsable strings are compared leniently the way dpkg treats a
 * version it has to read anyway: epoch 0, everything as the upstream part.
 */
export function compareDebVersions(a: string, b: string): number {
  const pa = parseDebVersion(a);
  const pb = parseDebVersion(b);
  const fa = typeof pa === 'string' ? lenient(a) : pa;
  const fb = typeof pb === 'string' ? lenient(b) : pb;
  return Math.sign(compareParsed(fa, fb));
}

function lenient(s: string): DebVersion {
  const m = /^(\d+):(.*)$/.exec(s.trim());
  const rest = m ? m[2]! : s.trim();
  const dash = rest.lastIndexOf('-');
  return { epoch: m ? Number(m[1]) : 0, upstream: dash >= 0 ? rest.slice(0, dash) : rest, revision: dash >= 0 ? rest.slice(dash + 1) : '' };
}

export type VersionOp = '<<' | '<=' | '=' | '>=' | '>>' | '<' | '>' | '!=';

/** A parsed version constraint (`>= 2.36`) that tests versions. */
export interface VersionConstraint {
  op: VersionOp;
  version: string;
  /** True when `v` satisfies the constraint (in Debian order, or in the order `compare` gives). */
  test(v: string, compare?: (a: string, b: string) => number): boolean;
}

/**
 * Parses a constraint: an operator (`<`, `<=`, `=`, `>=`, `>`, `!=`, or dpkg's `<<`/`>>`) followed by a version,
 * e.g. `<3.0.13`, `>= 1:2.36-9`. A bare version means `=`. Throws UsageError for anything else.
 */
export function parseConstraint(expr: string): VersionConstraint {
  const m = /^\s*(<<|>>|<=|>=|!=|=|<|>)?\s*(\S+)\s*$/.exec(expr);
  if (!m) throw new UsageError(`version expression '${expr}' is not of the form OP VERSION (OP one of < <= = >= > !=)`);
  const op = (m[1] ?? '=') as VersionOp;
  const version = m[2]!;
  const parsed = parseDebVersion(version);
  // Characters dpkg would not take are fine for rpm versions (1.2-3.el9_2); anything else is refused.
  if (typeof parsed === 'string' && !parsed.startsWith('invalid character')) throw new UsageError(`version expression '${expr}': ${parsed}`);
  const check: Record<VersionOp, (c: number) => boolean> = {
    '<<': (c) => c < 0, '<': (c) => c < 0, '<=': (c) => c <= 0, '=': (c) => c === 0, '!=': (c) => c !== 0,
    '>=': (c) => c >= 0, '>': (c) => c > 0, '>>': (c) => c > 0,
  };
  return { op, version, test: (v: string, compare = compareDebVersions) => check[op](Math.sign(compare(v, version))) };
}
