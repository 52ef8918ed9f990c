/**
 * Generates the JSON Schema of what each command prints with --json, from one source: the result type its `run()`
 * declares (`async run(): Promise<LogEntry[]>` → docs/schemas/log.schema.json). Run as a script
 * (`npm run docs:schemas`) it writes docs/schemas/; json-schema.test.ts checks the committed files against it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { createGenerator } from 'ts-json-schema-generator';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const COMMANDS = path.join(ROOT, 'commands');
/** Where the schemas live: docs/schemas/<command>.schema.json, a topic's space as a dash (remote add → remote-add). */
export const SCHEMA_DIR = path.join(ROOT, 'docs/schemas');

/**
 * Commands whose JSON is streamed to stdout as the op yields it (so `run()` returns nothing for oclif to print):
 * the element type they JSON.stringify, imported from the library, as an array.
 */
const STREAMED: Record<string, string> = { find: 'FindHit', grep: 'GrepHit' };

/** Documents that are no command's result: `error` is what every command prints under --json when it fails. */
const OTHER: Record<string, { imports: string; type: string }> = {
  error: { imports: `import type { ErrorJson } from '${path.join(ROOT, 'src/errors.js').split(path.sep).join('/')}';`, type: '{ error: ErrorJson }' },
};

/** Commands with --json that print no JSON document: `serve` and `nbd` run until stopped, `run`'s terminal is the guest's. */
export const NO_JSON = new Set(['serve', 'nbd', 'run']);

/** One command with a --json result: its id (`remote add`), file name stem (`remote-add`) and source file. */
export interface JsonCommand {
  id: string;
  name: string;
  file: string;
}

/** Every command under commands/ (topics one directory deep), except those in NO_JSON, sorted by name. */
export function jsonCommands(): JsonCommand[] {
  const out: JsonCommand[] = [];
  for (const e of fs.readdirSync(COMMANDS, { withFileTypes: true })) {
    if (e.isDirectory()) {
      for (const f of fs.readdirSync(path.join(COMMANDS, e.name))) {
        if (f.endsWith('.ts')) out.push({ id: `${e.name} ${f.slice(0, -3)}`, name: `${e.name}-${f.slice(0, -3)}`, file: path.join(COMMANDS, e.name, f) });
      }
    } else if (e.name.endsWith('.ts')) out.push({ id: e.name.slice(0, -3), name: e.name.slice(0, -3), file: path.join(COMMANDS, e.name) });
  }
  return out.filter((c) => !NO_JSON.has(c.id)).sort((a, b) => a.name.localeCompare(b.name));
}

/** `Foo` from `async run(): Promise<Foo>` in a command's default-exported class, as source text. */
function runResultText(file: string): string {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  for (const st of sf.statements) {
    if (!ts.isClassDeclaration(st)) continue;
    for (const m of st.members) {
      if (!ts.isMethodDeclaration(m) || m.name.getText(sf) !== 'run') continue;
      const t = m.type;
      if (!t || !ts.isTypeReferenceNode(t) || t.typeName.getText(sf) !== 'Promise' || t.typeArguments?.length !== 1) {
        throw new Error(`${path.relative(ROOT, file)}: run() must declare its result as Promise<T>`);
      }
      return t.typeArguments[0]!.getText(sf);
    }
  }
  throw new Error(`${path.relative(ROOT, file)}: no run() method`);
}

/** The command file's import declarations, with relative module paths made absolute (for a copy elsewhere). */
function importsOf(file: string): string {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  return sf.statements.filter(ts.isImportDeclaration).map((d) => {
    const spec = (d.moduleSpecifier as ts.StringLiteral).text;
    const text = d.getText(sf);
    return spec.startsWith('.') ? text.replace(spec, path.resolve(path.dirname(file), spec).split(path.sep).join('/')) : text;
  }).join('\n');
}

/** The exported type name of a command's result in the generated entry files (`remote add` → `Json_remote_add`). */
const typeName = (c: JsonCommand): string => `Json_${c.name.replace(/-/g, '_')}`;

/**
 * One schema per command: name → schema object. Each command's result type is copied, with the command file's
 * imports, into an entry file of its own (so the same name imported by two commands cannot clash), `void` and
 * `undefined` removed (what oclif does not print), and handed to ts-json-schema-generator.
 */
export function generateSchemas(): Map<string, object> {
  const commands = jsonCommands();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'viva-schemas-'));
  try {
    const index = path.join(ROOT, 'src/index.js').split(path.sep).join('/');
    for (const c of commands) {
      const streamed = STREAMED[c.id];
      const body = streamed
        ? `import type { ${streamed} } from '${index}';\nexport type ${typeName(c)} = ${streamed}[];\n`
        : `${importsOf(c.file)}\nexport type ${typeName(c)} = Exclude<${runResultText(c.file)}, void | undefined>;\n`;
      fs.writeFileSync(path.join(dir, `${c.name}.ts`), body);
    }
    for (const [name, o] of Object.entries(OTHER)) fs.writeFileSync(path.join(dir, `${name}.ts`), `${o.imports}\nexport type ${typeName({ id: name, name, file: '' })} = ${o.type};\n`);
    const generator = createGenerator({
      path: path.join(dir, '*.ts'),
      tsconfig: path.join(ROOT, 'tsconfig.json'),
      type: '*',
      expose: 'export',
      topRef: false,
      jsDoc: 'none',
      additionalProperties: false,
      sortProps: true,
      skipTypeCheck: true,
    });
    const out = new Map<string, object>();
    const all = [...commands.map((c) => ({ c, title: `viva ${c.id} --json` })), ...Object.keys(OTHER).map((name) => ({ c: { id: name, name, file: '' }, title: `viva --json: ${name}` }))];
    for (const { c, title } of all.sort((x, y) => x.c.name.localeCompare(y.c.name))) {
      const schema = generator.createSchema(typeName(c)) as Record<string, unknown>;
      out.set(c.name, {
        $schema: schema.$schema,
        title,
        ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
      });
    }
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The text of a schema file: two-space JSON and a final newline. */
export const schemaText = (schema: object): string => `${JSON.stringify(schema, null, 2)}\n`;

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const schemas = generateSchemas();
  fs.mkdirSync(SCHEMA_DIR, { recursive: true });
  for (const f of fs.readdirSync(SCHEMA_DIR)) if (f.endsWith('.schema.json') && !schemas.has(f.slice(0, -'.schema.json'.length))) fs.rmSync(path.join(SCHEMA_DIR, f));
  for (const [name, schema] of schemas) fs.writeFileSync(path.join(SCHEMA_DIR, `${name}.schema.json`), schemaText(schema));
  process.stdout.write(`wrote ${schemas.size} schemas to ${path.relative(process.cwd(), SCHEMA_DIR) || '.'}\n`);
}
