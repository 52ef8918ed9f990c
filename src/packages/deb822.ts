/**
 * Debian control data: deb822 paragraphs (Packages indexes, Release files, dpkg's `var/lib/dpkg/status`) and the
 * relation fields inside them (Depends, Pre-Depends, Conflicts, Breaks, Provides, ...), as dpkg's lib/dpkg/parse.c
 * and fields.c (f_dependency) read them. Pure: text in, values out.
 */
import { RelationSyntaxError } from '../errors.js';
import { parseDebVersion } from './debversion.js';

/** One field of a deb822 paragraph (`Package: htop`). */
export interface Deb822Field {
  /** As written (`Pre-Depends`); look fields up with `fieldValue`, which ignores case as dpkg does. */
  name: string;
  /**
   * The first line's value without surrounding blanks; each continuation line follows after a `\n`, without the one
   * leading space or tab that marks it (so a Description's ` .` lines come back as `.`).
   */
  value: string;
}

export interface Deb822Problem {
  /** 1-based line. */
  line: number;
  message: string;
}

/** One paragraph of a deb822 file (a dpkg status record, a Packages entry, a control file), with its problems. */
export interface Deb822Paragraph {
  /** In file order. A repeated field is kept once (the first) and reported as a problem, as dpkg refuses it. */
  fields: Deb822Field[];
  /** 1-based line of the paragraph's first line. */
  line: number;
  /** Lines of this paragraph that are not fields (reported, skipped); the rest of the paragraph is still read. */
  problems: Deb822Problem[];
}

/** The value of field `name` (case-insensitive), or undefined. */
export function fieldValue(p: Deb822Paragraph, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const f of p.fields) if (f.name.toLowerCase() === lower) return f.value;
  return undefined;
}

/**
 * Splits deb822 text into paragraphs separated by blank lines (lines of only spaces and tabs count as blank, as in
 * dpkg). `#` comment lines are skipped only with `comments: true` (dpkg's status and Packages files have none). A
 * paragraph with only bad lines is still returned, with no fields, so that its problems are seen.
 */
export function parseDeb822(text: string, options: { comments?: boolean } = {}): Deb822Paragraph[] {
  const out: Deb822Paragraph[] = [];
  const lines = text.split('\n');
  let cur: Deb822Paragraph | undefined;
  let last: Deb822Field | undefined;
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (/^[ \t]*$/.test(line)) {
      if (cur) out.push(cur);
      cur = undefined;
      last = undefined;
      seen.clear();
      continue;
    }
    if (options.comments && line.startsWith('#')) continue;
    cur ??= { fields: [], line: i + 1, problems: [] };
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!last) { cur.problems.push({ line: i + 1, message: 'continuation line outside a field' }); continue; }
      last.value += `\n${line.slice(1).trimEnd()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      cur.problems.push({ line: i + 1, message: `line is not a 'Field: value' pair` });
      last = undefined;
      continue;
    }
    const name = line.slice(0, colon);
    const key = name.toLowerCase();
    const field = { name, value: line.slice(colon + 1).trim() };
    if (seen.has(key)) {
      cur.problems.push({ line: i + 1, message: `duplicate field '${name}'` });
      last = { ...field }; // continuation lines of the duplicate go nowhere
      continue;
    }
    seen.add(key);
    cur.fields.push(field);
    last = field;
  }
  if (cur) out.push(cur);
  return out;
}

/** Writes paragraphs back as deb822 text (fields in their order, continuation lines re-indented by one space). */
export function formatDeb822(paragraphs: Array<Pick<Deb822Paragraph, 'fields'>>): string {
  return paragraphs
    .map((p) => p.fields.map((f) => `${f.name}: ${f.value.split('\n').map((l, i) => (i === 0 ? l : ` ${l}`)).join('\n')}\n`).join(''))
    .join('\n');
}

/** dpkg's relation operators after normalising the deprecated `<` (meaning `<=`) and `>` (meaning `>=`). */
export type RelationOp = '<<' | '<=' | '=' | '>=' | '>>';

/**
 * One package relation (`libc6 (>= 2.36) [amd64]`): a name, an optional version constraint and architecture restrictions.
 */
export interface Relation {
  /** Package name, as written (dpkg compares names without case; Debian names are lowercase). */
  name: string;
  /** `:any`, `:native` or an architecture name after the package name, without the colon. */
  archQualifier?: string;
  op?: RelationOp;
  version?: string;
  /** `[amd64 arm64]` or `[!i386]` (source package fields): the alternative applies only on those architectures. */
  arches?: string[];
  /** `<!nocheck> <stage1 cross>`: build profiles (source package fields). Kept, but ignored for binary packages. */
  profiles?: string[][];
}

/** One entry of a comma-separated relation field: alternatives separated by `|`, any one satisfies it. */
export type RelationGroup = Relation[];

const NAME = /^[A-Za-z0-9][A-Za-z0-9+.\-_]*$/;
const ARCH = /^[a-z0-9][a-z0-9-]*$/;

/**
 * Parses a relation field (`Depends: a (>= 1.2) | b:any, c [amd64] <!nocheck>`) into groups of alternatives.
 * Versions must be valid Debian versions; operators are dpkg's (`<<`, `<=`, `=`, `>=`, `>>`; the deprecated `<` and
 * `>` mean `<=` and `>=`, and a bare version `=`, as in dpkg and apt). Empty entries (`a, , b`, a trailing comma) are skipped, as Dpkg::Deps
 * does. Anything else malformed throws RelationSyntaxError naming the field and the text.
 *
 * @example
 * parseRelations('libc6 (>= 2.34), mawk | awk', 'Depends')
 * // [[{ name: 'libc6', op: '>=', version: '2.34' }], [{ name: 'mawk' }, { name: 'awk' }]]
 */
export function parseRelations(text: string, field = 'Depends'): RelationGroup[] {
  const fail = (reason: string): never => { throw new RelationSyntaxError(field, text, reason); };
  const groups: RelationGroup[] = [];
  for (const entry of text.split(',')) {
    if (entry.trim() === '') continue;
    const group: RelationGroup = [];
    for (const alt of entry.split('|')) {
      let s = alt.trim();
      if (s === '') fail('empty alternative');
      const m = /^([^\s:(\[<]+)(?::(\S*?))?(?=[\s(\[<]|$)/.exec(s);
      if (!m) fail(`missing package name, or garbage where a package name is expected in '${s}'`);
      const name = m![1]!;
      if (!NAME.test(name)) fail(`invalid package name '${name}'`);
      const rel: Relation = { name };
      if (m![2] !== undefined) {
        if (!ARCH.test(m![2])) fail(`invalid architecture qualifier '${m![2]}' of '${name}'`);
        rel.archQualifier = m![2];
      }
      s = s.slice(m![0].length).trimStart();
      if (s.startsWith('(')) {
        const close = s.indexOf(')');
        if (close < 0) fail(`version of '${name}' unterminated`);
        const inner = s.slice(1, close).trim();
        const v = /^(<<|<=|>=|>>|=|<|>)?\s*([^\s<>=]\S*)$/.exec(inner);
        if (!v) fail(`bad version relationship '${inner}' of '${name}'`);
        // A bare version is an exact match: dpkg warns and reads it as `=`, and so does apt.
        const op = v![1] === '<' ? '<=' : v![1] === '>' ? '>=' : ((v![1] ?? '=') as RelationOp);
        const parsed = parseDebVersion(v![2]!);
        if (typeof parsed === 'string') fail(`version '${v![2]}' of '${name}': ${parsed}`);
        rel.op = op;
        rel.version = v![2]!;
        s = s.slice(close + 1).trimStart();
      }
      if (s.startsWith('[')) {
        const close = s.indexOf(']');
        if (close < 0) fail(`architecture list of '${name}' unterminated`);
        const list = s.slice(1, close).trim().split(/\s+/).filter(Boolean);
        if (list.length === 0) fail(`empty architecture list of '${name}'`);
        const negated = list.map((a) => a.startsWith('!'));
        if (negated.some((n) => n !== negated[0])) fail(`architecture list of '${name}' mixes negated and plain names`);
        for (const a of list) if (!ARCH.test(a.replace(/^!/, ''))) fail(`invalid architecture '${a}' in the list of '${name}'`);
        rel.arches = list;
        s = s.slice(close + 1).trimStart();
      }
      while (s.startsWith('<')) {
        const close = s.indexOf('>');
        if (close < 0) fail(`build profile list of '${name}' unterminated`);
        const terms = s.slice(1, close).trim().split(/\s+/).filter(Boolean);
        if (terms.length === 0) fail(`empty build profile list of '${name}'`);
        for (const p of terms) if (!/^!?[a-z0-9.+-]+$/.test(p)) fail(`invalid build profile '${p}' of '${name}'`);
        (rel.profiles ??= []).push(terms);
        s = s.slice(close + 1).trimStart();
      }
      if (s !== '') fail(`syntax error after reference to package '${name}': '${s}'`);
      group.push(rel);
    }
    groups.push(group);
  }
  return groups;
}

/** True when the alternative's architecture list (if any) includes `arch`: `[amd64]`, `[!i386]`. */
export function relationAppliesTo(rel: Relation, arch: string): boolean {
  if (!rel.arches) return true;
  if (rel.arches[0]!.startsWith('!')) return !rel.arches.includes(`!${arch}`);
  return rel.arches.includes(arch);
}

/** The relation as Debian writes it: `libc6 (>= 2.34)`, `python3:any`. */
export function formatRelation(rel: Relation): string {
  let s = rel.name + (rel.archQualifier ? `:${rel.archQualifier}` : '');
  if (rel.op) s += ` (${rel.op} ${rel.version})`;
  if (rel.arches) s += ` [${rel.arches.join(' ')}]`;
  for (const p of rel.profiles ?? []) s += ` <${p.join(' ')}>`;
  return s;
}

/** A group as Debian writes it: `mawk | awk`. */
export function formatRelationGroup(group: RelationGroup): string {
  return group.map(formatRelation).join(' | ');
}
