/**
 * The ONE module that reaches into tslab's internals (tslab 1.0.22 is pinned in package.json).
 * Upgrading or replacing tslab touches this file only; the rest of farlab sees `CellCompiler`.
 *
 * What we take from tslab: its converter (type check + transpile of one cell against the
 * declarations of the cells before it, `tslab/dist/converter`), its is-complete heuristic and its
 * quick-info printer. What we add here:
 *  - source maps. tslab's converter emits without them and rewrites the cell twice (TypeScript ->
 *    ES module JS -> CommonJS), so line numbers of runtime errors do not match the cell. Its
 *    compiler options are object literals we cannot reach, so while the converter works we give
 *    every object that carries tslab's marker option (`noImplicitUseStrict: true`, which nothing
 *    else sets) an inherited `inlineSourceMap: true` (a getter on Object.prototype that exists only
 *    while the converter runs). Both steps then append an inline map, and
 *    `mapToCell` composes them.
 *  - virtual packages: `import ... from "farlab"` must type-check in any notebook folder, so
 *    `<cwd>/node_modules/farlab/*.d.ts` are served from memory through `ts.sys` (tslab's compiler
 *    host delegates file reads to it).
 */
import { SourceMap } from "node:module";
import * as path from "node:path";
import * as ts from "@tslab/typescript-for-tslab";
import { createConverter, isCompleteCode, type Converter, type Diagnostic } from "tslab/dist/converter";
import { printQuickInfo } from "tslab/dist/inspect";

export type CellDiagnostic = Diagnostic;

export interface CompiledCell {
  /** CommonJS code to run inside `(function (exports, require) { ... })`. Undefined: nothing to run. */
  code?: string;
  /** Declarations of this and all earlier cells, the `prevDecl` of the next cell. */
  declarations: string;
  /** Where the value of the cell's last expression is stored in `exports`. */
  lastExpressionVar?: string;
  hasTopLevelAwait: boolean;
  /** Type and syntax errors; when not empty nothing else is set. */
  diagnostics: CellDiagnostic[];
  /** JavaScript of local .ts/.js files the cell imports, by absolute path. */
  sideOutputs: { path: string; data: string }[];
  /** Maps a 0-based (line, column) of `code` to the 0-based position in the cell source. */
  mapToCell(line: number, column: number): { line: number; column: number } | undefined;
}

export interface Completion {
  /** UTF-16 offsets in the cell source. */
  start: number;
  end: number;
  candidates: string[];
}

export interface QuickInfo {
  text: string;
  start: number;
  length: number;
}

export interface CellCompiler {
  compile(prevDecl: string, src: string): CompiledCell;
  complete(prevDecl: string, src: string, position: number): Completion;
  inspect(prevDecl: string, src: string, position: number): QuickInfo | undefined;
  close(): void;
}

export const versions = {
  tslab: (require("tslab/package.json") as { version: string }).version,
  typescript: ts.version,
};

/** tslab's converter marks its option objects with this (deprecated, otherwise unused) option. */
const TSLAB_OPTION_MARKER = "noImplicitUseStrict";
let sourceMapsWanted = 0;

/** Present only while the compiler works, so user code never sees it on Object.prototype. */
const inlineSourceMapForTslab: PropertyDescriptor = {
  configurable: true,
  enumerable: false,
  get(this: object): true | undefined {
    const marked = Object.prototype.hasOwnProperty.call(this, TSLAB_OPTION_MARKER) &&
      (this as Record<string, unknown>)[TSLAB_OPTION_MARKER] === true;
    return marked ? true : undefined;
  },
};

function withSourceMaps<T>(work: () => T): T {
  if (sourceMapsWanted++ === 0) Object.defineProperty(Object.prototype, "inlineSourceMap", inlineSourceMapForTslab);
  try {
    return work();
  } finally {
    if (--sourceMapsWanted === 0) delete (Object.prototype as Record<string, unknown>).inlineSourceMap;
  }
}

const INLINE_MAP = /^\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/gm;

/** Splits the two inline maps off the converter's output: [step 1 (TS -> ESM), step 2 (ESM -> CJS)]. */
function takeSourceMaps(output: string): { code: string; maps: SourceMap[] } {
  const maps: SourceMap[] = [];
  for (const match of output.matchAll(INLINE_MAP)) {
    try {
      maps.push(new SourceMap(JSON.parse(Buffer.from(match[1], "base64").toString("utf8"))));
    } catch {
      // A map we cannot read only costs us line mapping.
    }
  }
  return { code: output.replace(INLINE_MAP, "").trimEnd() + "\n", maps };
}

/** Lines tslab prepends to every cell ("export {};\n") before compiling it. */
const SOURCE_PREFIX_LINES = 1;

function composeMaps(maps: SourceMap[]): CompiledCell["mapToCell"] {
  return (line, column) => {
    if (maps.length !== 2) return undefined;
    const [toTs, toEsm] = maps;
    const esm = toEsm.findEntry(line, column) as { originalLine?: number; originalColumn?: number };
    if (esm.originalLine === undefined) return undefined;
    const cell = toTs.findEntry(esm.originalLine, esm.originalColumn ?? 0) as { originalLine?: number; originalColumn?: number };
    if (cell.originalLine === undefined) return undefined;
    const cellLine = cell.originalLine - SOURCE_PREFIX_LINES;
    return cellLine < 0 ? undefined : { line: cellLine, column: cell.originalColumn ?? 0 };
  };
}

export function createCellCompiler(): CellCompiler {
  const converter: Converter = withSourceMaps(() => createConverter());
  return {
    compile(prevDecl, src) {
      const result = withSourceMaps(() => converter.convert(prevDecl, src));
      const sideOutputs = (result.sideOutputs ?? []).map((side) => ({ path: side.path, data: takeSourceMaps(side.data).code }));
      if (result.diagnostics.length > 0) {
        return { declarations: prevDecl, hasTopLevelAwait: false, diagnostics: result.diagnostics, sideOutputs, mapToCell: () => undefined };
      }
      const taken = result.output ? takeSourceMaps(result.output) : undefined;
      return {
        code: taken?.code,
        declarations: result.declOutput ?? "",
        lastExpressionVar: result.lastExpressionVar,
        hasTopLevelAwait: result.hasToplevelAwait === true,
        diagnostics: [],
        sideOutputs,
        mapToCell: composeMaps(taken?.maps ?? []),
      };
    },
    complete(prevDecl, src, position) {
      const info = converter.complete(prevDecl, src, position);
      return { start: info.start, end: info.end, candidates: info.candidates };
    },
    inspect(prevDecl, src, position) {
      const info = converter.inspect(prevDecl, src, position);
      if (!info) return undefined;
      const text = printQuickInfo(info);
      return text ? { text, start: info.textSpan.start, length: info.textSpan.length } : undefined;
    },
    close() {
      converter.close();
    },
  };
}

/** tslab's heuristic: incomplete when the parser wants more at the very end of the input. */
export function checkComplete(src: string): { complete: true } | { complete: false; indent: string } {
  const result = isCompleteCode(src);
  return result.completed ? { complete: true } : { complete: false, indent: result.indent ?? "" };
}

/** Syntax errors of a cell as the TypeScript parser reports them (no type checking). */
export function syntaxErrors(src: string): { start: number; length: number; code: number; message: string }[] {
  const file = ts.createSourceFile("cell.ts", src, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const diagnostics = (file as unknown as { parseDiagnostics?: ts.DiagnosticWithLocation[] }).parseDiagnostics ?? [];
  return diagnostics.map((d) => ({
    start: d.start,
    length: d.length,
    code: d.code,
    message: ts.flattenDiagnosticMessageText(d.messageText, "\n"),
  }));
}

/**
 * Serves `files` (name -> text) as `<root>/<name>` to the TypeScript compiler of every converter
 * in this process, so that e.g. `<cwd>/node_modules/farlab/index.d.ts` resolves `import "farlab"`.
 */
export function serveVirtualFiles(root: string, files: Record<string, string>): void {
  const byPath = new Map(Object.entries(files).map(([name, text]) => [path.join(root, name), text]));
  const dirs = new Set<string>();
  for (const file of byPath.keys()) {
    for (let dir = path.dirname(file); dir !== path.dirname(dir) && !dirs.has(dir); dir = path.dirname(dir)) dirs.add(dir);
  }
  const sys = ts.sys;
  const { fileExists, readFile, directoryExists } = sys;
  sys.fileExists = (p) => byPath.has(p) || fileExists.call(sys, p);
  sys.readFile = (p, encoding) => byPath.get(p) ?? readFile.call(sys, p, encoding);
  sys.directoryExists = (p) => dirs.has(p) || directoryExists.call(sys, p);
}
