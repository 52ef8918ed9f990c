/** Ref names in the hierarchical namespace, validated with git's check-ref-format rules. No storage here. */
import { InvalidRefNameError } from '../errors.js';

export const HEADS = 'refs/heads/';
export const TAGS = 'refs/tags/';
export const REMOTES = 'refs/remotes/';
export const HEAD = 'HEAD';
export const DEFAULT_BRANCH = 'main';

/** Why `name` breaks git's ref-name rules (git check-ref-format, with --allow-onelevel), or undefined. */
export function refNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name === '@') return "'@' alone is reserved";
  if (name.startsWith('/') || name.endsWith('/')) return "it starts or ends with '/'";
  if (name.includes('//')) return "it contains '//'";
  if (name.endsWith('.')) return "it ends with '.'";
  if (name.includes('..')) return "it contains '..'";
  if (name.includes('@{')) return "it contains '@{'";
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return 'it contains a space, a control character or one of ~ ^ : ? * [ \\';
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return "a component starts with '.'";
    if (part.endsWith('.lock')) return "a component ends with '.lock'";
  }
  if (Buffer.byteLength(name) > 1024) return 'it is longer than 1024 bytes';
  return undefined;
}

export function assertRefName(name: string): string {
  const p = refNameProblem(name);
  if (p) throw new InvalidRefNameError(name, p);
  return name;
}

/**
 * What git's `check-ref-format --branch` adds for a short branch or tag name: no leading '-' (it would read as an
 * option), and no 'refs/' prefix (`commit -b refs/tags/x` would make `refs/heads/refs/tags/x`).
 */
function shortNameProblem(name: string, prefix: string): string | undefined {
  if (name.startsWith('-')) return "it starts with '-'";
  if (name.startsWith('refs/')) return `a short name cannot start with 'refs/' (give it as NAME or ${prefix}NAME)`;
  return undefined;
}

/** `debian/12/base` (or `refs/heads/debian/12/base`) → `refs/heads/debian/12/base` (validated). */
export function branchRef(name: string): string {
  const given = name;
  if (name.startsWith(HEADS)) name = name.slice(HEADS.length);
  assertRefName(name);
  if (name === HEAD) throw new InvalidRefNameError(name, "'HEAD' is reserved");
  const p = shortNameProblem(name, HEADS);
  if (p) throw new InvalidRefNameError(given, p);
  return HEADS + name;
}

/** `v1` (or `refs/tags/v1`) → `refs/tags/v1` (validated). */
export function tagRef(name: string): string {
  const given = name;
  if (name.startsWith(TAGS)) name = name.slice(TAGS.length);
  assertRefName(name);
  if (name === HEAD) throw new InvalidRefNameError(name, "'HEAD' is reserved");
  const p = shortNameProblem(name, TAGS);
  if (p) throw new InvalidRefNameError(given, p);
  return TAGS + name;
}

/** How decorations show a ref, as git log does: `main`, `tag: v1`, `origin/main`. */
export function decorationName(ref: string): string {
  return ref.startsWith(TAGS) ? `tag: ${ref.slice(TAGS.length)}` : shortRefName(ref);
}

/** The short display name of a full ref (`refs/heads/x` → `x`, `refs/tags/v1` → `v1`, `refs/remotes/o/x` → `o/x`). */
export function shortRefName(ref: string): string {
  for (const p of [HEADS, TAGS, REMOTES]) if (ref.startsWith(p)) return ref.slice(p.length);
  return ref;
}

/**
 * Glob match for ref listing: `*` matches within a component, `**` across components, `?` one character.
 * As in git's wildmatch, `**` between slashes (or leading `**` and a slash) also matches zero components:
 * `a/**` + `/b` matches `a/b`, `**` + `/web` matches `web`.
 */
export function refGlob(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*' && pattern[i + 2] === '/' && (i === 0 || pattern[i - 1] === '/')) { re += '(?:.*/)?'; i += 2; }
    else if (c === '*' && pattern[i + 1] === '*') { re += '.*'; i++; }
    else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
