/**
 * A fast path for the second step of tslab's cell conversion (ES module JS -> CommonJS).
 *
 * tslab converts that step with ts.transpileModule, which builds a program and a type checker and
 * checks the file on every call: about 1-2 ms of a trivial cell's 3-4 ms of compile time. The
 * modules tslab's first step emits for ordinary cells have a narrow shape:
 *
 *   <statements>
 *   export const tsLastExpr = <expr>;      (the cell's last expression, if any)
 *   export { a, b, f };                    (every top-level name the cell declared)
 *
 * For that shape the CommonJS output is a fixed rewrite, done here on the statement texts:
 *
 *   Object.defineProperty(exports, "__esModule", { value: true });
 *   exports.f = exports.b = exports.a = exports.tsLastExpr = void 0;
 *   <each statement>, followed by `exports.a = a;` for each name it declares
 *   exports.tsLastExpr = <expr>;
 *
 * which is what transpileModule prints for it, byte for byte (test/engine-esm-to-cjs.test.ts
 * compares both on many cells). Anything outside the shape returns undefined and goes through
 * transpileModule: imports, dynamic import(), import.meta, renamed or re-exported names, names
 * declared anywhere but by a top-level statement, assignments to exported names (TypeScript
 * rewrites those to keep `exports` in sync), prologue directives and comments outside statements.
 */
import * as ts from "@tslab/typescript-for-tslab";

const HEADER = 'Object.defineProperty(exports, "__esModule", { value: true });';
/** TypeScript writes the `exports.a = ... = void 0;` header in statements of this many names. */
const HEADER_CHUNK = 50;

export function fastEsmToCommonJs(js: string): string | undefined {
  const file = ts.createSourceFile("custom.js", js, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
  const statements = file.statements;
  if (statements.length === 0 || (file as unknown as { parseDiagnostics?: unknown[] }).parseDiagnostics?.length) return undefined;

  // Exported names in the order TypeScript collects them (statement order), and who declares them.
  const exported: string[] = [];
  const exportedSet = new Set<string>();
  const declaredBy = new Map<string, ts.Statement>();
  /** Names of `export const <name> = <expr>;` statements (tslab's tsLastExpr). */
  const lastExpressionNames = new Set<string>();
  let isModule = false;
  const addExport = (name: string): boolean => {
    if (exportedSet.has(name)) return false;
    exportedSet.add(name);
    exported.push(name);
    return true;
  };
  for (const statement of statements) {
    if (ts.isExportDeclaration(statement)) {
      isModule = true;
      if (statement.moduleSpecifier || statement.isTypeOnly || !statement.exportClause || !ts.isNamedExports(statement.exportClause)) return undefined;
      for (const element of statement.exportClause.elements) {
        if (element.propertyName || element.isTypeOnly || !addExport(element.name.text)) return undefined;
      }
      continue;
    }
    if (ts.isImportDeclaration(statement) || ts.isImportEqualsDeclaration(statement) || ts.isExportAssignment(statement)) return undefined;
    const modifiers = ts.canHaveModifiers(statement) ? ts.getModifiers(statement) : undefined;
    const isExported = modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) ?? false;
    if (modifiers?.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword)) return undefined;
    if (isExported) {
      // Only tslab's `export const tsLastExpr = <expr>;`
      isModule = true;
      const name = lastExpressionName(statement);
      if (name === undefined || !addExport(name)) return undefined;
      lastExpressionNames.add(name);
      continue;
    }
    if (ts.isExpressionStatement(statement) && ts.isStringLiteral(statement.expression) && statement === statements[0]) return undefined; // a prologue
    for (const name of declaredNames(statement)) {
      if (declaredBy.has(name)) return undefined;
      declaredBy.set(name, statement);
    }
  }
  if (!isModule) return undefined;
  for (const name of exported) {
    if (!declaredBy.has(name) && !lastExpressionNames.has(name)) return undefined;
  }
  if (!onlyReadsExportedNames(file, exportedSet, lastExpressionNames)) return undefined;

  // Comments before the first statement or after the last are placed by the printer's own rules.
  if (js.slice(0, statements[0].getStart(file)).trim() !== "") return undefined;
  const lastEnd = endWithTrailingComments(js, statements[statements.length - 1].end);
  if (js.slice(lastEnd).trim() !== "") return undefined;

  const out: string[] = [HEADER];
  for (let i = 0; i < exported.length; i += HEADER_CHUNK) {
    const chunk = exported.slice(i, i + HEADER_CHUNK);
    out.push(chunk.reduceRight((line, name) => `${line}exports.${name} = `, "") + "void 0;");
  }
  let from = 0;
  for (const statement of statements) {
    const end = endWithTrailingComments(js, statement.end);
    const text = js.slice(from, end).replace(/^\n/, "");
    from = end;
    if (ts.isExportDeclaration(statement)) {
      if (text.trim() !== js.slice(statement.getStart(file), statement.end)) return undefined; // a comment with it
      continue;
    }
    const name = ts.isVariableStatement(statement) ? lastExpressionName(statement) : undefined;
    if (name !== undefined) {
      const start = statement.getStart(file) - (end - text.length);
      const prefix = `export const ${name} = `;
      if (text.slice(start, start + prefix.length) !== prefix) return undefined;
      out.push(`${text.slice(0, start)}exports.${name} = ${text.slice(start + prefix.length)}`);
      continue;
    }
    out.push(text);
    for (const declared of declaredNames(statement)) {
      if (exportedSet.has(declared)) out.push(`exports.${declared} = ${declared};`);
    }
  }
  return out.join("\n") + "\n";
}

/** `export const <name> = <expr>;` (one declaration, an identifier, an initializer): name. */
function lastExpressionName(statement: ts.Statement): string | undefined {
  if (!ts.isVariableStatement(statement)) return undefined;
  const modifiers = ts.getModifiers(statement) ?? [];
  if (modifiers.length !== 1 || modifiers[0].kind !== ts.SyntaxKind.ExportKeyword) return undefined;
  const list = statement.declarationList;
  if (!(list.flags & ts.NodeFlags.Const) || list.declarations.length !== 1) return undefined;
  const declaration = list.declarations[0];
  if (!ts.isIdentifier(declaration.name) || !declaration.initializer || declaration.type) return undefined;
  return declaration.name.text;
}

/** Names a top-level statement declares, in source order ([] for other statements). */
function declaredNames(statement: ts.Statement): string[] {
  if (ts.isVariableStatement(statement)) {
    const names: string[] = [];
    for (const declaration of statement.declarationList.declarations) collectBindingNames(declaration.name, names);
    return names;
  }
  if ((ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement)) && statement.name) return [statement.name.text];
  return [];
}

function collectBindingNames(name: ts.BindingName, into: string[]): void {
  if (ts.isIdentifier(name)) {
    into.push(name.text);
    return;
  }
  for (const element of name.elements) {
    if (!ts.isOmittedExpression(element)) collectBindingNames(element.name, into);
  }
}

/**
 * False when any exported name may be written after its declaration (by name, ignoring scopes:
 * a shadowing local makes us fall back, never convert wrongly), a name declared by `export const`
 * is used anywhere but in its declaration or export list, or the module uses import()/import.meta:
 * the CommonJS transform rewrites all of these.
 */
function onlyReadsExportedNames(file: ts.SourceFile, exported: Set<string>, declaredByExport: Set<string>): boolean {
  const isExportedName = (node: ts.Node): boolean => ts.isIdentifier(node) && exported.has(node.text);
  let ok = true;
  let exportDeclaredUses = 0;
  const visit = (node: ts.Node): void => {
    if (!ok) return;
    // `export const x = ...` has no local binding: TypeScript reads it as exports.x elsewhere.
    if (ts.isIdentifier(node) && declaredByExport.has(node.text) && ++exportDeclaredUses > declaredByExport.size) ok = false;
    if (ts.isBinaryExpression(node)) {
      const kind = node.operatorToken.kind;
      if (kind >= ts.SyntaxKind.FirstAssignment && kind <= ts.SyntaxKind.LastAssignment) {
        if (!ts.isIdentifier(node.left) && !ts.isPropertyAccessExpression(node.left) && !ts.isElementAccessExpression(node.left)) ok = false; // destructuring
        else if (isExportedName(node.left)) ok = false;
      }
    } else if (ts.isPrefixUnaryExpression(node) || ts.isPostfixUnaryExpression(node)) {
      const op = node.operator;
      if ((op === ts.SyntaxKind.PlusPlusToken || op === ts.SyntaxKind.MinusMinusToken) && isExportedName(node.operand)) ok = false;
    } else if (ts.isForInStatement(node) || ts.isForOfStatement(node)) {
      if (!ts.isVariableDeclarationList(node.initializer)) ok = false;
    } else if (ts.isMetaProperty(node) || (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword)) {
      ok = false;
    }
    if (ok) ts.forEachChild(node, visit);
  };
  visit(file);
  return ok;
}

/** `end` moved past the comments that follow it on the same line. */
function endWithTrailingComments(text: string, end: number): number {
  const comments = ts.getTrailingCommentRanges(text, end);
  return comments && comments.length > 0 ? comments[comments.length - 1].end : end;
}
