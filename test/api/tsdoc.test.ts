import test from 'ava';
import path from 'node:path';
import ts from 'typescript';

/** Every export of the public entry point (src/index.ts) must carry a doc comment: the generated reference is made from them. */

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
  const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  const program = ts.createProgram([INDEX], { ...config!.options, noEmit: true });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(INDEX)!)!;
  const missing: string[] = [];
  const exports = checker.getExportsOfModule(moduleSymbol);
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

test('tsdoc: every export of src/index.ts has a doc comment', (t) => {
  const { names, count } = undocumentedExports();
  t.true(count > 100, `src/index.ts exports ${count} names`);
  t.deepEqual(names, [], `exports without a doc comment:\n  ${names.join('\n  ')}`);
});
