/**
 * The ONE module that reaches into tslab's internals (tslab 1.0.22 is pinned in package.json).
 * Upgrading or replacing tslab touches this file only; the rest of farlab sees `CellCompiler`.
 *
 * What we take from tslab: its converter (type check + transpile of one cell against the
 * declarations of the cells before it, `tslab/dist/converter`), its is-complete heuristic and its
 * quick-info printer. What we add here:
 *  - source maps, on demand. tslab's converter emits without them and rewrites the cell twice
 *    (TypeScript -> ES module JS -> CommonJS), so line numbers of runtime errors do not match the
 *    cell. Cells compile without maps (they cost compile time, and most cells never throw); the
 *    first time an error's stack needs a cell's positions, that cell is converted again with an
 *    inline map from each step (see withSourceMaps: the options of both steps are reached without
 *    patching anything on the compile path), and `mapToCell` composes them.
 *  - a fast second step: tslab's ES module -> CommonJS step calls ts.transpileModule (a program
 *    and a type checker per call, 1-2 ms); converter.js is loaded with a TypeScript namespace
 *    whose transpileModule tries ./esm-to-cjs first (the same output for the shapes it accepts).
 *  - virtual packages: `import ... from "farlab"` must type-check in any notebook folder, so
 *    `<cwd>/node_modules/farlab/*.d.ts` are served from memory through `ts.sys` (tslab's compiler
 *    host delegates file reads to it).
 */
import Module, { SourceMap } from "node:module";
import * as path from "node:path";
import * as ts from "@tslab/typescript-for-tslab";
import type { Converter, Diagnostic } from "tslab/dist/converter";
import { printQuickInfo } from "tslab/dist/inspect";
import { fastEsmToCommonJs } from "./esm-to-cjs";

export type CellDiagnostic = Diagnostic;

/** True while a conversion with source maps runs: its second step must be TypeScript's own. */
let mapsRequested = false;

function transpileForConverter(input: string, options: ts.TranspileOptions): ts.TranspileOutput {
  if (!mapsRequested && options.compilerOptions?.module === ts.ModuleKind.CommonJS) {
    const outputText = fastEsmToCommonJs(input);
    if (outputText !== undefined) return { outputText, diagnostics: [] };
  }
  return ts.transpileModule(input, options);
}

/**
 * tslab/dist/converter, loaded with its own view of the TypeScript namespace: the same live
 * bindings except transpileModule (converter.js reads `ts.transpileModule` on every call through
 * its __importStar copy; the namespace's own properties cannot be reassigned).
 */
function loadConverterModule(): typeof import("tslab/dist/converter") {
  const converterPath = require.resolve("tslab/dist/converter");
  if (require.cache[converterPath]) throw new Error("tslab/dist/converter was loaded before kernel/executor/tslab.ts could wrap it");
  const view: Record<string, unknown> = {};
  for (const key of Object.keys(ts)) {
    if (key !== "transpileModule") Object.defineProperty(view, key, { enumerable: true, get: () => (ts as Record<string, unknown>)[key] });
  }
  view.transpileModule = transpileForConverter;
  const moduleRequire = Module.prototype.require;
  Module.prototype.require = function (this: Module, id: string) {
    if (this.filename === converterPath && id === "@tslab/typescript-for-tslab") return view;
    return moduleRequire.call(this, id);
  } as typeof moduleRequire;
  try {
    return require(converterPath) as typeof import("tslab/dist/converter");
  } finally {
    Module.prototype.require = moduleRequire;
  }
}

const { createConverter, isCompleteCode } = loadConverterModule();

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

/**
 * The compiler options of tslab's watch program (step 1 of a cell's conversion, TypeScript -> ES
 * module), found by watching which marked object the compiler reads `inlineSourceMap` from while
 * createConverter() runs: a getter on Object.prototype that only records `this` and returns
 * undefined, so the compiler behaves as without it, present only during that one call (before any
 * cell, never on the compile path: a change of Object.prototype deoptimises the whole compiler).
 */
function createConverterWithOptions(): { converter: Converter; options: Set<Record<string, unknown>> } {
  const options = new Set<Record<string, unknown>>();
  Object.defineProperty(Object.prototype, "inlineSourceMap", {
    configurable: true,
    enumerable: false,
    get(this: Record<string, unknown>): undefined {
      if (Object.prototype.hasOwnProperty.call(this, TSLAB_OPTION_MARKER) && this[TSLAB_OPTION_MARKER] === true) options.add(this);
      return undefined;
    },
  });
  let converter: Converter;
  try {
    converter = createConverter();
  } finally {
    delete (Object.prototype as Record<string, unknown>).inlineSourceMap;
  }
  // An own property from now on, so switching maps on and off never changes the objects' shape.
  for (const object of options) object.inlineSourceMap = undefined;
  return { converter, options };
}

/**
 * Step 2 (ES module -> CommonJS) is a ts.transpileModule call with a fresh options object; the
 * options transpileModule forces on every call are a list TypeScript exports, so adding
 * `inlineSourceMap` there for one conversion gives that step a map too.
 */
const INLINE_MAP_IN_TRANSPILE = { name: "inlineSourceMap", transpileOptionValue: true };

/** Runs one conversion with inline source maps from both steps. */
function withSourceMaps<T>(watchOptions: Set<Record<string, unknown>>, work: () => T): T {
  const forced = (ts as unknown as { transpileOptionValueCompilerOptions: unknown[] }).transpileOptionValueCompilerOptions;
  for (const object of watchOptions) object.inlineSourceMap = true;
  forced.push(INLINE_MAP_IN_TRANSPILE);
  mapsRequested = true;
  try {
    return work();
  } finally {
    mapsRequested = false;
    const at = forced.lastIndexOf(INLINE_MAP_IN_TRANSPILE);
    if (at >= 0) forced.splice(at, 1);
    for (const object of watchOptions) object.inlineSourceMap = undefined;
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
  return { code: normalizeCode(output.replace(INLINE_MAP, "")), maps };
}

function normalizeCode(output: string): string {
  return output.trimEnd() + "\n";
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

const unmapped: CompiledCell["mapToCell"] = () => undefined;

export function createCellCompiler(): CellCompiler {
  const { converter, options: watchOptions } = createConverterWithOptions();
  /**
   * Local files a source-map conversion emitted (a file changed on disk since it was last
   * converted): tslab marks them converted, so they are handed out with the next compile instead.
   */
  let pendingSideOutputs: CompiledCell["sideOutputs"] = [];

  function sideOutputsOf(result: ReturnType<Converter["convert"]>): CompiledCell["sideOutputs"] {
    return (result.sideOutputs ?? []).map((side) => ({ path: side.path, data: takeSourceMaps(side.data).code }));
  }

  /**
   * Source maps cost a third more compile time, and are only needed to map a runtime error's
   * stack: the cell is converted again, with maps, the first time one of its positions is
   * asked for. The same inputs give the same code (checked: when they do not, e.g. an imported
   * file changed meanwhile, positions stay unmapped rather than wrong).
   */
  function lazyMapToCell(prevDecl: string, src: string, code: string): CompiledCell["mapToCell"] {
    let map: CompiledCell["mapToCell"] | undefined;
    return (line, column) => {
      if (!map) {
        map = unmapped;
        const result = withSourceMaps(watchOptions, () => converter.convert(prevDecl, src));
        pendingSideOutputs.push(...sideOutputsOf(result));
        if (result.diagnostics.length === 0 && result.output) {
          const taken = takeSourceMaps(result.output);
          if (taken.code === code) map = composeMaps(taken.maps);
        }
      }
      return map(line, column);
    };
  }

  return {
    compile(prevDecl, src) {
      const result = converter.convert(prevDecl, src);
      const sideOutputs = [...pendingSideOutputs, ...sideOutputsOf(result)];
      pendingSideOutputs = [];
      if (result.diagnostics.length > 0) {
        return { declarations: prevDecl, hasTopLevelAwait: false, diagnostics: result.diagnostics, sideOutputs, mapToCell: unmapped };
      }
      const code = result.output ? normalizeCode(result.output) : undefined;
      return {
        code,
        declarations: result.declOutput ?? "",
        lastExpressionVar: result.lastExpressionVar,
        hasTopLevelAwait: result.hasToplevelAwait === true,
        diagnostics: [],
        sideOutputs,
        mapToCell: code === undefined ? unmapped : lazyMapToCell(prevDecl, src, code),
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
