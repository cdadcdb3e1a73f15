/**
 * Turns a TypeScript cell into a script whose state outlives it, like Node's REPL:
 *
 * 1. transpile (no type check) with typescript's transpileModule, to ES2022 + CommonJS, with a
 *    source map; syntax errors become a CellSyntaxError;
 * 2. rewrite the top-level declarations of the output so that they land on globalThis:
 *    `const {a, b} = o, c = 1` -> `;({a, b} = o), (c = 1)`; `class C {}` -> `;C = class C {};`;
 *    `function f() {}` stays (hoisting) and `globalThis.f = f` runs first. Edits never add or
 *    remove a line, so the source map still maps lines back to the cell;
 * 3. the last expression statement becomes `return { value: (expr) }` (an object, so a promise
 *    value is shown, not awaited);
 * 4. everything is wrapped in an async arrow (top-level await) called at once, with `exports`
 *    bound to globalThis (so `export const x` also persists) and a cell `require`.
 *
 * A cell run again reuses its compiled form (the last 64 sources, see compileCell).
 */
import * as nodeModule from "node:module";
import ts from "typescript";

export class CellSyntaxError extends Error {
  override name = "SyntaxError";
}

export interface CompiledCell {
  /** JavaScript for vm.Script; evaluates to a Promise<{ value } | undefined>. */
  readonly script: string;
  /** Names the cell declares at top level: they must exist on globalThis before it runs. */
  readonly declaredNames: readonly string[];
  /** Map a (1-based) line/column of the script to the cell's (1-based) line/column. */
  originalPosition(line: number, column: number): { line: number; column: number } | undefined;
}

/** The global through which the wrapper reaches the cell's require(). */
export const CELL_SCOPE = "__farlabCellScope";

const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  moduleDetection: ts.ModuleDetectionKind.Force, // top-level await parses in every cell
  esModuleInterop: true,
  sourceMap: true,
  inlineSources: false,
  jsx: ts.JsxEmit.React,
};

interface Edit {
  start: number;
  end: number;
  text: string;
}

function bindingNames(name: ts.BindingName, into: string[]): void {
  if (ts.isIdentifier(name)) {
    into.push(name.text);
    return;
  }
  for (const element of name.elements) {
    if (ts.isBindingElement(element)) bindingNames(element.name, into);
  }
}

function diagnosticText(diagnostic: ts.Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
  if (diagnostic.file && diagnostic.start !== undefined) {
    const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    return `line ${line + 1}, column ${character + 1}: ${message}`;
  }
  return message;
}

/** Whether the cell as written ends with an expression (`export const x = 1` emits `exports.x = 1`). */
function endsWithExpression(file: ts.SourceFile): boolean {
  const last = file.statements[file.statements.length - 1];
  return last !== undefined && ts.isExpressionStatement(last);
}

function rewrite(js: string, showLast: boolean): { edits: Edit[]; declaredNames: string[] } {
  const file = ts.createSourceFile("cell.js", js, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const edits: Edit[] = [];
  const declaredNames: string[] = [];
  const functionNames: string[] = [];
  let directiveEnd = 0;
  const statements = file.statements;
  statements.forEach((statement, index) => {
    const isLast = index === statements.length - 1;
    if (index === 0 && ts.isExpressionStatement(statement) && ts.isStringLiteral(statement.expression)) {
      directiveEnd = statement.end; // "use strict": the hoisted assignments go after it
      return;
    }
    if (ts.isVariableStatement(statement)) {
      const list = statement.declarationList;
      const isVar = (list.flags & (ts.NodeFlags.Let | ts.NodeFlags.Const)) === 0;
      const first = list.declarations[0];
      edits.push({ start: statement.getStart(), end: first.getStart(), text: ";" });
      for (const declaration of list.declarations) {
        const names: string[] = [];
        bindingNames(declaration.name, names);
        declaredNames.push(...names);
        if (declaration.initializer) {
          edits.push({ start: declaration.getStart(), end: declaration.getStart(), text: "(" });
          edits.push({ start: declaration.end, end: declaration.end, text: ")" });
        } else {
          // `let x;` resets x; `var x;` leaves a value from an earlier cell alone, as in JS.
          const text = isVar ? "void 0" : names.map((n) => `${n} = undefined`).join(", ");
          edits.push({ start: declaration.getStart(), end: declaration.end, text: `(${text})` });
        }
      }
      return;
    }
    if (ts.isFunctionDeclaration(statement) && statement.name && statement.body) {
      functionNames.push(statement.name.text);
      declaredNames.push(statement.name.text);
      return;
    }
    if (ts.isClassDeclaration(statement) && statement.name) {
      declaredNames.push(statement.name.text);
      edits.push({ start: statement.getStart(), end: statement.getStart(), text: `;${statement.name.text} = ` });
      edits.push({ start: statement.end, end: statement.end, text: ";" });
      return;
    }
    if (isLast && showLast && ts.isExpressionStatement(statement)) {
      edits.push({ start: statement.getStart(), end: statement.expression.getStart(), text: "return { value: (" });
      edits.push({ start: statement.expression.end, end: statement.expression.end, text: ") }" });
    }
  });
  if (functionNames.length > 0) {
    // After "use strict" (if any), on line 1: functions are on globalThis before the cell runs.
    const hoisted = functionNames.map((n) => `globalThis[${JSON.stringify(n)}] = ${n};`).join(" ");
    edits.push({ start: directiveEnd, end: directiveEnd, text: " " + hoisted });
  }
  edits.sort((a, b) => a.start - b.start || a.end - b.end);
  return { edits, declaredNames: [...new Set(declaredNames)] };
}

function applyEdits(text: string, edits: Edit[]): string {
  let out = "";
  let at = 0;
  for (const edit of edits) {
    out += text.slice(at, edit.start) + edit.text;
    at = edit.end;
  }
  return out + text.slice(at);
}

/** An offset in the edited text back to the offset in the text before the edits. */
function offsetBeforeEdits(edits: Edit[], edited: number): number {
  let shift = 0;
  for (const edit of edits) {
    const editedStart = edit.start + shift;
    if (edited < editedStart) break;
    if (edited < editedStart + edit.text.length) return edit.start; // inside text we inserted
    shift += edit.text.length - (edit.end - edit.start);
  }
  return edited - shift;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

/**
 * Compiled cells by source text, most recently used last. Running a cell again is the common case
 * in a notebook, and the compiler is most of a small cell's time in the runner (~1-3 ms: a
 * transpileModule builds a program and a type checker each time); compiling is a pure function of
 * the source, so a cached cell is the same cell. Failures are not kept (they are rare and cheap
 * to see again), nor large sources.
 */
const cache = new Map<string, CompiledCell>();
const CACHE_ENTRIES = 64;
const CACHE_MAX_SOURCE_CHARS = 16 * 1024; // so that the cache stays a few MB at most

export function compileCell(source: string): CompiledCell {
  const cached = cache.get(source);
  if (cached) {
    cache.delete(source);
    cache.set(source, cached);
    return cached;
  }
  const cell = compile(source);
  if (source.length <= CACHE_MAX_SOURCE_CHARS) {
    cache.set(source, cell);
    if (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  }
  return cell;
}

function compile(source: string): CompiledCell {
  // The cell as parsed by the transpiler, seen by a transformer that changes nothing (a second
  // parse of the source would cost as much).
  let showLast = false;
  const lookAtSource: ts.TransformerFactory<ts.SourceFile> = () => (file) => {
    showLast = endsWithExpression(file);
    return file;
  };
  const output = ts.transpileModule(source, {
    compilerOptions: COMPILER_OPTIONS,
    reportDiagnostics: true,
    fileName: "cell.ts",
    transformers: { before: [lookAtSource] },
  });
  const errors = (output.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) throw new CellSyntaxError(errors.map(diagnosticText).join("\n"));
  const js = output.outputText.replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n");
  const { edits, declaredNames } = rewrite(js, showLast);
  const body = applyEdits(js, edits);
  const prefix = `(async (exports, require, module) => {`;
  const script = prefix + body + `\n})(globalThis, globalThis.${CELL_SCOPE}.require, globalThis.${CELL_SCOPE}.module)`;

  const map = new nodeModule.SourceMap(JSON.parse(output.sourceMapText ?? "{}"));
  const scriptLines = lineStarts(script);
  const jsLines = lineStarts(js);
  return {
    script,
    declaredNames,
    originalPosition(line, column) {
      // script position -> offset in the edited body -> offset in the transpiled JS -> source map.
      const bodyOffset = (scriptLines[line - 1] ?? Infinity) + column - 1 - prefix.length;
      if (!(bodyOffset >= 0 && bodyOffset < body.length)) return undefined; // the wrapper itself
      const jsOffset = offsetBeforeEdits(edits, bodyOffset);
      let jsLine = jsLines.length - 1;
      while (jsLines[jsLine] > jsOffset) jsLine--;
      const entry = map.findEntry(jsLine, jsOffset - jsLines[jsLine]) as Partial<{ originalLine: number; originalColumn: number }>;
      if (entry?.originalLine === undefined) return undefined;
      return { line: entry.originalLine + 1, column: (entry.originalColumn ?? 0) + 1 };
    },
  };
}
