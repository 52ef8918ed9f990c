/**
 * The text syntax of derive's edits (`etc/hostname=web01`, `0600:etc/shadow`, …), shared by the command line
 * (`--set PATH=TEXT`) and batch specs (`- set: PATH=TEXT`).
 */
import { UsageError } from '../errors.js';
import type { EditSpec } from './derive.js';

/** The edit flags, each with its value syntax (for help and messages). */
export const EDIT_FLAGS = {
  set: 'PATH=TEXT',
  'set-file': 'PATH=HOSTFILE',
  add: 'HOSTPATH:PATH',
  rm: 'PATH',
  mkdir: 'PATH',
  symlink: 'PATH=TARGET',
  chmod: 'MODE:PATH',
  chown: 'UID:GID:PATH',
  xattr: 'PATH:NAME=VALUE',
  'rm-xattr': 'PATH:NAME',
  mtime: 'SECONDS:PATH',
  rename: 'PATH=NEWPATH',
} as const;

export type EditFlag = keyof typeof EDIT_FLAGS;

function bad(flag: string, value: string, why = `expected ${EDIT_FLAGS[flag as EditFlag]}`): never {
  throw new UsageError(`--${flag} '${value}': ${why}`);
}

/** Splits at the first `sep`; refuses a value without one or with an empty left side. */
/**
 * Splits at the first `sep`; refuses a value without one or with an empty left side. A left side in viva's quoted
 * form (`"etc/a=b"=text`) ends at its closing quote, so a quoted path may hold the separator.
 */
function splitFirst(flag: string, value: string, sep: string): [string, string] {
  let from = 0;
  if (value.startsWith('"')) {
    for (let j = 1; j < value.length; j++) {
      if (value[j] === '\\') { j++; continue; }
      if (value[j] === '"') { from = j + 1; break; }
    }
  }
  const i = value.indexOf(sep, from);
  if (i <= 0) bad(flag, value);
  return [value.slice(0, i), value.slice(i + sep.length)];
}

function splitLast(flag: string, value: string, sep: string): [string, string] {
  const i = value.lastIndexOf(sep);
  if (i <= 0 || i === value.length - 1) bad(flag, value);
  return [value.slice(0, i), value.slice(i + 1)];
}

function parseId(flag: string, value: string, what: string, text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0xffffffff) bad(flag, value, `${what} '${text}' is not a number from 0 to 4294967295`);
  return Number(text);
}

/** The xattr namespaces Linux has (setfattr refuses others). */
const XATTR_NAMESPACES = ['user.', 'trusted.', 'security.', 'system.'];

function checkXattrName(flag: string, value: string, name: string): void {
  if (!XATTR_NAMESPACES.some((ns) => name.startsWith(ns) && name.length > ns.length)) bad(flag, value, `xattr name '${name}' is not in a namespace (${XATTR_NAMESPACES.map((n) => `${n}…`).join(', ')})`);
}

/** A mode in octal (`0644`, `644`, `4755`), 12 bits at most. */
export function parseMode(flag: string, value: string, text: string): number {
  if (/^[0-7]+$/.test(text) && !/^0?[0-7]{1,4}$/.test(text)) bad(flag, value, `mode '${text}' is out of range (at most 7777)`);
  if (!/^0?[0-7]{1,4}$/.test(text)) bad(flag, value, `mode '${text}' is not octal (e.g. 0644)`);
  return parseInt(text, 8);
}

/** An xattr value as setfattr reads one: `0x…` hex, `0s…` base64, else the text itself. */
export function parseXattrValue(flag: string, value: string, text: string): Buffer {
  if (/^0x/i.test(text)) {
    const hex = text.slice(2);
    if (!/^([0-9a-f]{2})*$/i.test(hex)) bad(flag, value, 'hex value has an odd length or a non-hex digit');
    return Buffer.from(hex, 'hex');
  }
  if (text.startsWith('0s')) {
    const b64 = text.slice(2);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) bad(flag, value, 'base64 value is not valid base64');
    return Buffer.from(b64, 'base64');
  }
  return Buffer.from(text);
}

/** One edit flag's value as an EditSpec. Throws UsageError naming the flag and value. */
export function parseEdit(flag: EditFlag, value: string): EditSpec {
  switch (flag) {
    case 'set': { const [path, text] = splitFirst(flag, value, '='); return { op: 'set', path, data: Buffer.from(text) }; }
    case 'set-file': { const [path, host] = splitFirst(flag, value, '='); if (!host) bad(flag, value); return { op: 'set-file', path, host }; }
    case 'add': { const [host, path] = splitLast(flag, value, ':'); return { op: 'add', host, path }; }
    case 'rm': if (!value) bad(flag, value); return { op: 'rm', path: value };
    case 'mkdir': if (!value) bad(flag, value); return { op: 'mkdir', path: value };
    case 'symlink': { const [path, target] = splitFirst(flag, value, '='); if (!target) bad(flag, value, 'empty target'); return { op: 'symlink', path, target }; }
    case 'chmod': { const [mode, path] = splitFirst(flag, value, ':'); if (!path) bad(flag, value); return { op: 'chmod', path, mode: parseMode(flag, value, mode) }; }
    case 'chown': {
      const [uid, rest] = splitFirst(flag, value, ':');
      const [gid, path] = splitFirst(flag, rest, ':');
      if (!path) bad(flag, value);
      return { op: 'chown', path, uid: parseId(flag, value, 'uid', uid), gid: parseId(flag, value, 'gid', gid) };
    }
    case 'xattr': {
      const [left, text] = splitFirst(flag, value, '=');
      const [path, name] = splitLast(flag, left, ':');
      checkXattrName(flag, value, name);
      return { op: 'xattr', path, name, value: parseXattrValue(flag, value, text) };
    }
    case 'rm-xattr': { const [path, name] = splitLast(flag, value, ':'); checkXattrName(flag, value, name); return { op: 'rm-xattr', path, name }; }
    case 'mtime': {
      const [time, path] = splitFirst(flag, value, ':');
      if (!/^-?\d{1,15}$/.test(time) || !path) bad(flag, value, 'expected whole seconds since the epoch, then :PATH');
      return { op: 'mtime', path, time: Number(time) };
    }
    case 'rename': { const [path, to] = splitFirst(flag, value, '='); if (!to) bad(flag, value); return { op: 'rename', path, to }; }
  }
}
