/**
 * The public API (src/index.ts) is documented and nameable: every export carries a doc comment (the generated
 * reference is made from them), and the types its functions take and return are exported too.
 */
import test from 'ava';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(import.meta.dirname, '../..');
const INDEX = path.join(ROOT, 'src/index.ts');

/** Declaration kinds whose doc comment the reference shows. */
const DOCUMENTED = new Set([
  ts.SyntaxKind.FunctionDeclaration, ts.SyntaxKind.ClassDeclaration, ts.SyntaxKind.InterfaceDeclaration,
  ts.SyntaxKind.TypeAliasDeclaration, ts.SyntaxKind.EnumDeclaration, ts.SyntaxKind.VariableDeclaration,
]);

function hasDoc(decl: ts.Declaration): boolean {
  return ts.getJSDocCommentsAndTags(decl).some((d) => ts.isJSDoc(d) && ts.getTextOfJSDocComment(d.comment)?.trim());
}

let loaded: { checker: ts.TypeChecker; exports: ts.Symbol[] } | undefined;

/** The type checker of a program rooted at src/index.ts, and the symbols it exports (made once). */
function load(): { checker: ts.TypeChecker; exports: ts.Symbol[] } {
  if (loaded) return loaded;
  const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  const program = ts.createProgram([INDEX], { ...config!.options, noEmit: true });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(INDEX)!)!;
  loaded = { checker, exports: checker.getExportsOfModule(moduleSymbol) };
  return loaded;
}

function where(d: ts.Node): string {
  const file = d.getSourceFile();
  return `${path.relative(ROOT, file.fileName)}:${file.getLineAndCharacterOfPosition(d.getStart()).line + 1}`;
}

/** A subclass of another class of errors.ts (VivaError's members carry its docs). */
function isErrorClass(c: ts.ClassDeclaration): boolean {
  return path.basename(c.getSourceFile().fileName) === 'errors.ts' && c.heritageClauses !== undefined;
}

/** `name (file:line)` of every export of src/index.ts that has no doc comment, sorted. */
function undocumentedExports(): { names: string[]; count: number } {
  const { checker, exports } = load();
  const missing: string[] = [];
  for (const exported of exports) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const decls = (symbol.declarations ?? []).filter((d) => DOCUMENTED.has(d.kind));
    if (decls.length === 0) continue;
    if (!decls.some(hasDoc)) missing.push(`${exported.name} (${where(decls[0]!)})`);
    // The public members of a class (Repository, PackageUniverse); an error class's are those of VivaError.
    const cls = decls.find(ts.isClassDeclaration);
    if (cls && !isErrorClass(cls)) {
      for (const m of cls.members) {
        if (!m.name || ts.isClassStaticBlockDeclaration(m) || ts.isConstructorDeclaration(m) || ts.isIndexSignatureDeclaration(m)) continue;
        const flags = ts.getCombinedModifierFlags(m);
        if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected) || ts.isPrivateIdentifier(m.name)) continue;
        if (!hasDoc(m)) missing.push(`${exported.name}.${m.name.getText()} (${where(m)})`);
      }
    }
  }
  return { names: missing.sort(), count: exports.length };
}

/**
 * Types viva's own sources declare that an exported function's parameters or result name but 'viva' does not export
 * (a user could not name them), as `fn: Type`. Walks the written type annotations, not inferred types.
 */
function unexportedSignatureTypes(): string[] {
  const { checker, exports } = load();
  const resolve = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const exported = new Set(exports.map(resolve));
  const out = new Set<string>();
  for (const e of exports) {
    for (const d of resolve(e).declarations ?? []) {
      if (!ts.isFunctionDeclaration(d)) continue;
      const visit = (n: ts.Node): void => {
        if (ts.isTypeReferenceNode(n)) {
          const sym = checker.getSymbolAtLocation(n.typeName);
          const target = sym && resolve(sym);
          const decl = target?.declarations?.[0];
          if (target && decl && !(target.flags & ts.SymbolFlags.TypeParameter) && !exported.has(target) && decl.getSourceFile().fileName.startsWith(path.join(ROOT, 'src'))) {
            out.add(`${e.name}: ${target.name}`);
          }
        }
        ts.forEachChild(n, visit);
      };
      for (const p of d.parameters) if (p.type) visit(p.type);
      if (d.type) visit(d.type);
    }
  }
  return [...out].sort();
}

/** Deliberately not public: an advanced option's internal type (readHostSide can reuse another side's object overlay). */
const INTERNAL_SIGNATURE_TYPES = ['readHostSide: HostOverlay'];

test('tsdoc: the types exported functions take and return are exported too', (t) => {
  t.deepEqual(unexportedSignatureTypes().filter((x) => !INTERNAL_SIGNATURE_TYPES.includes(x)), []);
});

test('tsdoc: every export of src/index.ts has a doc comment', (t) => {
  const { names, count } = undocumentedExports();
  t.true(count > 100, `src/index.ts exports ${count} names`);
  t.deepEqual(names, [], `exports without a doc comment:\n  ${names.join('\n  ')}`);
});
