/**
 * `derive --batch SPEC`: many customized clones in one run and one transaction. The spec (YAML, or JSON, which is
 * YAML too; docs/derive-batch.md) lists variants — a branch, a base, edits — expanded by a counter or lists of
 * values into templated copies, with values viva generates per clone: hostname, machine id, ssh host keys.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { SourceReadError, UsageError, VivaError, systemReason } from '../errors.js';
import { generateHostKey, generateMachineId, hostKeyFiles } from '../formats/openssh-key.js';
import { recipeId } from '../model/derivation.js';
import type { Oid } from '../model/oid.js';
import { branchRef } from '../model/ref.js';
import type { Repository } from '../store/repository.js';
import { type EditFlag, EDIT_FLAGS, parseEdit } from './edit-syntax.js';
import { type EditSpec, applyToBase, derivedCommit, makeRecipe } from './derive.js';
import { resolveRevision } from './resolve.js';
import { type NewCommit, commitIdentity, firstLine, writeCommits } from './write-commit.js';

/** Values viva makes for each clone. */
export const GENERATORS = ['hostname', 'machine-id', 'ssh-host-keys'] as const;
export type Generator = (typeof GENERATORS)[number];

/** One clone after expansion: everything templated is filled in. */
export interface BatchVariant {
  branch: string;
  base: string;
  message: string;
  hostname: string;
  /** Disk bases: the file system generated files go to (`p1`); '' for a directory image or a bare file system. */
  partition: string;
  edits: Array<EditSpec | { op: 'generate'; what: Generator }>;
  /** Where the spec defines it (`fleet.yaml:12`), for messages. */
  where: string;
}

const TOP_KEYS = new Set(['base', 'message', 'variants']);
const VARIANT_KEYS = new Set(['branch', 'base', 'message', 'hostname', 'partition', 'count', 'start', 'values', 'edits']);

class Spec {
  readonly lines = new LineCounter();
  constructor(readonly file: string) {}
  where(node: Node | null | undefined): string {
    const at = node?.range ? this.lines.linePos(node.range[0]).line : undefined;
    return at ? `${this.file}:${at}` : this.file;
  }
  fail(node: Node | null | undefined, why: string): never {
    throw new UsageError(`${this.where(node)}: ${why}`);
  }
}

/** Widest padding a template may ask for (`{n:064}`). */
const MAX_TEMPLATE_WIDTH = 64;

/**
 * `{name}` and `{name:03}` (zero-padded to 3; `{name:3}` pads with spaces, at most 64) from `vars`; `{{` and `}}` are
 * braces. Unknown names, malformed templates and lone braces are refused.
 */
export function fillTemplate(template: string, vars: Record<string, string | number>, fail: (why: string) => never): string {
  return template.replace(/\{\{|\}\}|\{([^{}]*)\}|[{}]/g, (m, inner: string | undefined) => {
    if (m === '{{') return '{';
    if (m === '}}') return '}';
    if (inner === undefined) fail(`a lone '${m}' in '${template}': write ${m}${m} for a literal brace`);
    const t = /^([A-Za-z_][A-Za-z0-9_-]*)(?::(0?\d{1,2}))?$/.exec(inner!);
    if (!t) fail(`'{${inner}}' is not a template: {name} or {name:03} (write {{ for a literal brace)`);
    const [, name, width] = t!;
    const v = vars[name!];
    if (v === undefined) fail(`unknown template value '{${name}}' (known: ${Object.keys(vars).map((k) => `{${k}}`).join(', ')})`);
    const n = width ? Number(width) : 0;
    if (n > MAX_TEMPLATE_WIDTH) fail(`'{${inner}}' pads to more than ${MAX_TEMPLATE_WIDTH} characters`);
    const str = String(v);
    return n ? str.padStart(n, width!.startsWith('0') ? '0' : ' ') : str;
  });
}

/** RFC 1123 host names: labels of letters, digits and '-', not starting or ending with '-', 63 each, 253 in all. */
function hostnameProblem(h: string): string | undefined {
  if (h.length === 0 || h.length > 253) return 'must be 1 to 253 characters';
  for (const label of h.split('.')) {
    if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label)) return `label '${label}' is not letters, digits and inner '-' (at most 63)`;
  }
  return undefined;
}

function scalarText(spec: Spec, node: unknown, what: string): string {
  if (!isScalar(node) || (typeof node.value !== 'string' && typeof node.value !== 'number')) spec.fail(node as Node, `${what} must be a string`);
  return String(node.value);
}

/**
 * Reads and expands a batch spec. Throws UsageError naming `file:line` for syntax errors, unknown keys, bad values,
 * unknown template names and two variants on one branch; SourceReadError when the file cannot be read.
 */
export function parseBatchSpec(file: string, text?: string): BatchVariant[] {
  let src = text;
  if (src === undefined) {
    try {
      src = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new SourceReadError(file, systemReason(e), { cause: e });
    }
  }
  const spec: Spec = new Spec(file);
  const doc = parseDocument(src, { lineCounter: spec.lines, uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err) throw new UsageError(`${file}:${spec.lines.linePos(err.pos[0]).line}: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  const root = doc.contents;
  if (!isMap(root)) spec.fail(root, 'expected a mapping with a variants list');
  let defaultBase: string | undefined;
  let defaultMessage: string | undefined;
  let variants: Node | undefined;
  for (const pair of root.items) {
    const k = scalarText(spec, pair.key, 'a key');
    if (!TOP_KEYS.has(k)) spec.fail(pair.key as Node, `unknown key '${k}' (known: ${[...TOP_KEYS].join(', ')})`);
    if (k === 'base') defaultBase = scalarText(spec, pair.value, 'base');
    else if (k === 'message') defaultMessage = scalarText(spec, pair.value, 'message');
    else variants = pair.value as Node;
  }
  if (!isSeq(variants) || variants.items.length === 0) spec.fail(variants ?? root, 'variants must be a non-empty list');
  const out: BatchVariant[] = [];
  for (const v of variants.items) for (const x of expandVariant(spec, v as Node, defaultBase, defaultMessage)) out.push(x);
  // Two variants on one branch: refused before anything is written.
  const seen = new Map<string, string>();
  for (const v of out) {
    const ref = branchRef(v.branch);
    const other = seen.get(ref);
    if (other) throw new UsageError(`${v.where}: branch '${v.branch}' is also made at ${other}`);
    seen.set(ref, v.where);
  }
  return out;
}

function expandVariant(spec: Spec, node: Node, defaultBase?: string, defaultMessage?: string): BatchVariant[] {
  if (!isMap(node)) spec.fail(node, 'a variant must be a mapping (branch, base, edits, …)');
  const fields = new Map<string, Node>();
  for (const pair of node.items) {
    const k = scalarText(spec, pair.key, 'a key');
    if (!VARIANT_KEYS.has(k)) spec.fail(pair.key as Node, `unknown key '${k}' (known: ${[...VARIANT_KEYS].join(', ')})`);
    fields.set(k, pair.value as Node);
  }
  const text = (k: string): string | undefined => (fields.has(k) ? scalarText(spec, fields.get(k), k) : undefined);
  const int = (k: string, min: number): number | undefined => {
    const n = fields.get(k);
    if (n === undefined) return undefined;
    if (!isScalar(n) || typeof n.value !== 'number' || !Number.isInteger(n.value) || n.value < min || n.value > 1_000_000) spec.fail(n, `${k} must be a whole number from ${min} to 1000000`);
    return n.value;
  };
  const branchT = text('branch') ?? spec.fail(node, 'a variant needs a branch');
  const baseT = text('base') ?? defaultBase ?? spec.fail(node, 'a variant needs a base (here or at the top)');
  // The rows: one per count step, or one per element of the value lists (zipped).
  const rows: Array<Record<string, string | number>> = [];
  const valuesNode = fields.get('values');
  const count = int('count', 1);
  const start = int('start', 0) ?? 1;
  if (valuesNode !== undefined) {
    if (!isMap(valuesNode)) spec.fail(valuesNode, 'values must map names to lists');
    let n: number | undefined;
    const lists: Array<[string, string[]]> = [];
    for (const pair of valuesNode.items) {
      const name = scalarText(spec, pair.key, 'a value name');
      if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) || ['n', 'i', 'branch', 'hostname'].includes(name)) spec.fail(pair.key as Node, `'${name}' cannot be a value name`);
      if (!isSeq(pair.value) || pair.value.items.length === 0) spec.fail(pair.value as Node, `values.${name} must be a non-empty list`);
      const list = pair.value.items.map((x) => scalarText(spec, x, `values.${name} items`));
      if (n !== undefined && list.length !== n) spec.fail(pair.value as Node, `values.${name} has ${list.length} items, the other lists ${n}`);
      n = list.length;
      lists.push([name, list]);
    }
    if (count !== undefined && count !== n) spec.fail(fields.get('count'), `count ${count} does not match the ${n} values`);
    for (let i = 0; i < n!; i++) rows.push({ i, n: start + i, ...Object.fromEntries(lists.map(([k, l]) => [k, l[i]!])) });
  } else {
    for (let i = 0; i < (count ?? 1); i++) rows.push({ i, n: start + i });
  }
  const editsNode = fields.get('edits');
  if (editsNode !== undefined && !isSeq(editsNode)) spec.fail(editsNode, 'edits must be a list');
  const editNodes = (editsNode && isSeq(editsNode) ? editsNode.items : []) as Node[];
  const out: BatchVariant[] = [];
  for (const row of rows) {
    const fail = (at: Node | undefined) => (why: string): never => spec.fail(at ?? node, why);
    const branch = fillTemplate(branchT, row, fail(fields.get('branch')));
    const vars = { ...row, branch };
    try {
      branchRef(branch);
    } catch (e) {
      if (e instanceof VivaError) spec.fail(fields.get('branch'), e.message);
      throw e;
    }
    const hostname = fillTemplate(text('hostname') ?? branch.split('/').pop()!, vars, fail(fields.get('hostname')));
    const badHost = hostnameProblem(hostname);
    if (badHost && (fields.has('hostname') || editNodes.some((en) => isMap(en) && en.items.some((p) => isScalar(p.key) && p.key.value === 'generate')))) {
      spec.fail(fields.get('hostname') ?? fields.get('branch'), `hostname '${hostname.replace(/\n/g, '\\n')}' ${badHost}`);
    }
    const all = { ...vars, hostname };
    const base = fillTemplate(baseT, all, fail(fields.get('base')));
    const messageT = text('message') ?? defaultMessage;
    const message = messageT !== undefined ? fillTemplate(messageT, all, fail(fields.get('message'))) : `derive ${branch} from ${base}`;
    const edits: BatchVariant['edits'] = [];
    for (const en of editNodes) {
      if (!isMap(en) || en.items.length !== 1) spec.fail(en, `an edit is one 'kind: value' pair (kinds: ${[...Object.keys(EDIT_FLAGS), 'generate'].join(', ')})`);
      const pair = en.items[0]!;
      const kind = scalarText(spec, pair.key, 'an edit kind');
      const value = fillTemplate(scalarText(spec, pair.value, kind), all, fail(pair.value as Node));
      if (kind === 'generate') {
        if (!(GENERATORS as readonly string[]).includes(value)) spec.fail(pair.value as Node, `unknown generator '${value}' (known: ${GENERATORS.join(', ')})`);
        edits.push({ op: 'generate', what: value as Generator });
      } else if (kind in EDIT_FLAGS) {
        try {
          const ed = parseEdit(kind as EditFlag, value);
          // Host files of a spec are found next to it, as a build file's are.
          if ((ed.op === 'set-file' || ed.op === 'add') && !path.isAbsolute(ed.host)) ed.host = path.join(path.dirname(spec.file), ed.host);
          edits.push(ed);
        } catch (e) {
          if (e instanceof UsageError) spec.fail(pair.value as Node, e.message.replace(/^--/, ''));
          throw e;
        }
      } else {
        spec.fail(pair.key as Node, `unknown edit '${kind}' (kinds: ${[...Object.keys(EDIT_FLAGS), 'generate'].join(', ')})`);
      }
    }
    if (edits.length === 0) spec.fail(node, 'a variant needs at least one edit');
    const partition = fields.has('partition') ? fillTemplate(text('partition')!, all, fail(fields.get('partition'))) : '';
    if (partition && !/^p\d+$/.test(partition)) spec.fail(fields.get('partition'), `partition '${partition}' is not p1, p2, …`);
    out.push({ branch, base, message, hostname, partition, edits, where: spec.where(node) });
  }
  return out;
}

/** The edits a generator stands for, with fresh values (random: every clone its own machine id and host keys), below `partition` (`p1/…`) on a disk. */
function generated(what: Generator, hostname: string, partition: string): EditSpec[] {
  return generatedFiles(what, hostname).map((e) => (partition ? { ...e, path: `${partition}/${e.path}` } : e));
}

function generatedFiles(what: Generator, hostname: string): EditSpec[] {
  switch (what) {
    case 'hostname':
      return [{ op: 'set', path: 'etc/hostname', data: Buffer.from(`${hostname}\n`), generated: 'hostname' }];
    case 'machine-id':
      // systemd-machine-id-setup writes it 0444.
      return [{ op: 'set', path: 'etc/machine-id', data: Buffer.from(generateMachineId()), mode: 0o444, generated: 'machine-id' }];
    case 'ssh-host-keys': {
      const comment = `root@${hostname}`;
      const files = hostKeyFiles({ ed25519: generateHostKey('ed25519', comment), ecdsa: generateHostKey('ecdsa', comment) });
      return files.map((f) => ({ op: 'set', path: f.path, data: f.content, mode: f.mode, generated: 'ssh-host-key' }));
    }
  }
}

/** The options of {@link deriveBatch}. */
export interface DeriveBatchOptions {
  /** The spec file (YAML; see docs/derive-batch.md); named in messages even when `text` is given. */
  file: string;
  /** The spec's text, instead of reading `file`. */
  text?: string;
  /** `Name <email>` (default: VIVA_AUTHOR, else user@host). */
  author?: string;
  /** Seconds since the epoch (default: VIVA_DATE, else now). */
  time?: number;
}

/** What {@link deriveBatch} made: one commit per variant of the spec, all branches moved together. */
export interface BatchResult {
  variants: Array<{ branch: string; id: Oid; parent: Oid | null; base: Oid; recipe: Oid; treesWritten: number }>;
}

/**
 * Makes every variant of the spec `file`, then moves all their branches in one transaction (all or none).
 *
 * Locking: as derive; RefConflictError when any branch moved meanwhile (nothing moves then). Throws UsageError for
 * a bad spec (file:line) or a variant whose edits do not fit its base (named by file:line and branch).
 *
 * @example
 * const r = await deriveBatch(repo, { file: 'examples/fleet.yaml' });
 */
export async function deriveBatch(repo: Repository, options: DeriveBatchOptions): Promise<BatchResult> {
  const id = commitIdentity(options);
  const variants = parseBatchSpec(options.file, options.text);
  const bases = new Map<string, ReturnType<typeof resolveRevision>>();
  for (const v of variants) {
    if (bases.has(v.base)) continue;
    try {
      bases.set(v.base, resolveRevision(repo, v.base));
    } catch (e) {
      if (e instanceof VivaError) e.message = `${v.where}: ${e.message}`;
      throw e;
    }
  }
  const store = repo.objects;
  const commits: NewCommit[] = [];
  const result: BatchResult = { variants: [] };
  await repo.beginSession('derive');
  try {
    for (const v of variants) {
      const b = bases.get(v.base)!;
      const ref = branchRef(v.branch);
      const head = repo.refs.resolve(ref)?.oid ?? null;
      try {
        const edits = v.edits.flatMap((e) => (e.op === 'generate' ? generated(e.what, v.hostname, v.partition) : [e]));
        const recipe = await makeRecipe(repo, store, edits, id.time);
        const base = { oid: b.oid, commit: b.commit, name: v.base };
        const applied = await applyToBase(repo, store, base, recipe);
        const commit = derivedCommit(base, recipe, applied, { ...id, parents: head ? [head] : [], message: v.message });
        commits.push({ commit, ref, expectedOld: head, reflog: `derive: ${firstLine(v.message)}` });
        result.variants.push({ branch: ref, id: '', parent: head, base: b.oid, recipe: recipeId(recipe), treesWritten: applied.treesWritten });
      } catch (e) {
        if (e instanceof VivaError) e.message = `${v.where}: ${v.branch}: ${e.message}`;
        throw e;
      }
    }
    const oids = await writeCommits(repo, commits, { who: id.author });
    oids.forEach((oid, i) => { result.variants[i]!.id = oid; });
  } catch (e) {
    store.discard();
    throw e;
  } finally {
    try { await repo.endSession(); } catch { /* gc clears a stale session */ }
  }
  return result;
}
