/**
 * Runs TypeScript cells: our own execution loop around tslab's converter (kernel/executor/tslab.ts),
 * modelled on tslab's executor `execute()`, but returning values and typed errors instead of
 * printing them.
 *
 * - Each cell is type-checked against the declarations of the cells before it (`prevDecl`), then
 *   run as `(function (exports, require) { ... })` with vm.runInThisContext({ breakOnSigint }),
 *   async when it has top-level await. Names a cell declares live in the shared `exports` object;
 *   later cells refer to them as `exports.name`, so a later cell may redeclare them.
 * - Interrupts: SIGINT stops synchronous code (breakOnSigint); `interrupt()` (called from the
 *   executor's SIGINT handler) rejects the promise an async cell is raced against.
 * - Errors: TypeScriptError (diagnostics), InterruptError, or whatever the cell threw; the
 *   traceback of the latter is mapped to cell lines (`In[3]:4:9`) with internal frames removed.
 */
import Module from "node:module";
import * as path from "node:path";
import * as vm from "node:vm";
import { isFarlabError } from "../../extension/magics/errors";
import type { ErrorContent } from "../interpreter";
import { codePointsToUtf16, utf16ToCodePoints } from "./code-points";
import { farlabTypings } from "./farlab-typings";
import {
  checkComplete,
  createCellCompiler,
  serveVirtualFiles,
  syntaxErrors,
  type CellCompiler,
  type CellDiagnostic,
  type CompiledCell,
} from "./tslab";

/** A plain variable name (what locals.set declares, what locals.evaluate reads directly). */
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** A cell that does not type-check (or parse); ename "TypeScriptError". */
export class TypeScriptError extends Error {
  override name = "TypeScriptError";
  constructor(
    readonly diagnostics: CellDiagnostic[],
    readonly traceback: string[],
  ) {
    super(diagnostics.map(formatDiagnostic).join("\n"));
  }
}

/** The user interrupted the kernel while this cell ran; ename "InterruptError". */
export class InterruptError extends Error {
  override name = "InterruptError";
  constructor() {
    super("Interrupted by the user");
  }
}

export interface CellRun {
  /** The value of the cell's last expression; hasValue is false when there is none or it is undefined. */
  value: unknown;
  hasValue: boolean;
}

export interface EngineOptions {
  /** Modules a cell's require(name) / import from name gets instead of resolving name (e.g. "farlab"). */
  modules?: Record<string, unknown>;
  /** Folder that cells resolve imports from; default process.cwd(). */
  rootDir?: string;
}

function formatDiagnostic(d: CellDiagnostic): string {
  return `${d.fileName ? d.fileName + " " : ""}${d.start.line + 1}:${d.start.character + 1} - ${d.messageText}`;
}

/** TypeScript's "Unterminated template literal." */
const UNTERMINATED_TEMPLATE_LITERAL = 1160;
const ENGINE_GLOBAL = "__farlab_engine__";
const SLOT_GLOBAL = "__farlab_slot__";
/** Our own compiled modules (dist/): frames from here are farlab, not the user's code. */
const PACKAGE_DIST = path.resolve(__dirname, "..", "..") + path.sep;
const PACKAGE_DEPENDENCIES = path.join(PACKAGE_DIST, "node_modules") + path.sep;

export class TypeScriptEngine {
  private compiler: CellCompiler | undefined;
  private prevDecl = "";
  private readonly exportsTarget: Record<string, unknown> = {};
  private readonly exports: Record<string, unknown>;
  private readonly require: NodeJS.Require;
  private readonly sideOutputs = new Map<string, string>();
  private readonly sideModules = new Map<string, Module>();
  /** Source lines and position maps of every cell run so far, by its file name (In[n]). */
  private readonly cells = new Map<string, { lines: string[]; prefixLength: number; callLine: number; mapToCell: CompiledCell["mapToCell"] }>();
  private cellSerial = 0;
  private rejectInterrupt: ((error: InterruptError) => void) | undefined;
  private readonly rootDir: string;
  private readonly declPrefix: string;

  constructor(private readonly options: EngineOptions = {}) {
    this.rootDir = options.rootDir ?? process.cwd();
    const exportsTarget = this.exportsTarget;
    // As tslab: TypeScript emits named imports as defineProperty(getter); store plain values so
    // that later cells may overwrite them.
    this.exports = new Proxy(exportsTarget, {
      defineProperty(_target, prop, attributes) {
        if (prop === "__esModule") return true;
        exportsTarget[prop as string] = attributes.get ? attributes.get() : attributes.value;
        return true;
      },
    });
    this.require = this.wrapRequire(Module.createRequire(path.join(this.rootDir, "src.js")), this.rootDir);
    (globalThis as Record<string, unknown>)[ENGINE_GLOBAL] = { exports: this.exports, require: this.require };
    serveVirtualFiles(path.join(this.rootDir, "node_modules", "farlab"), farlabTypings());
    // Brings farlab's global `display` into every cell's type check (see farlab-typings.ts).
    this.declPrefix = `import "farlab";\n`;
  }

  /** Loads the TypeScript compiler and compiles a first cell (about a second), so the first real cell is fast. */
  warm(): void {
    this.getCompiler().compile(this.declPrefix, "1");
  }

  /** Runs one cell. Throws TypeScriptError, InterruptError, or what the cell threw. */
  async run(src: string, cellName?: string): Promise<CellRun> {
    const compiled = this.getCompiler().compile(this.declPrefix + this.prevDecl, src);
    for (const side of compiled.sideOutputs) {
      this.sideModules.delete(side.path);
      this.sideOutputs.set(side.path, side.data);
    }
    if (compiled.diagnostics.length > 0) {
      throw new TypeScriptError(compiled.diagnostics, diagnosticTraceback(src, compiled.diagnostics));
    }
    if (!compiled.code) {
      this.prevDecl = compiled.declarations;
      return { value: undefined, hasValue: false };
    }
    const filename = this.cellFilename(cellName);
    // tslab's converter detects top-level `await` but not `for await`; an async wrapper is harmless
    // when the `for await` sits inside an async function.
    const isAsync = compiled.hasTopLevelAwait || /\bfor\s+await\b/.test(src);
    const prefix = isAsync ? "(async function (exports, require) { " : "(function (exports, require) { ";
    const wrapped = `${prefix}${compiled.code}\n})(${ENGINE_GLOBAL}.exports, ${ENGINE_GLOBAL}.require)`;
    const callLine = wrapped.split("\n").length - 1;
    this.cells.set(filename, { lines: src.split("\n"), prefixLength: prefix.length, callLine, mapToCell: compiled.mapToCell });
    let result: unknown;
    try {
      result = vm.runInThisContext(wrapped, { filename, breakOnSigint: true });
      if (isAsync) {
        const interrupted = new Promise<never>((_, reject) => (this.rejectInterrupt = reject));
        try {
          await Promise.race([result, interrupted]);
        } finally {
          this.rejectInterrupt = undefined;
        }
      }
    } catch (error) {
      if ((error as { code?: unknown })?.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED") throw new InterruptError();
      throw error;
    } finally {
      // Declarations made before an error stay usable, as in tslab.
      this.prevDecl = compiled.declarations;
    }
    if (!compiled.lastExpressionVar || !(compiled.lastExpressionVar in this.exportsTarget)) {
      return { value: undefined, hasValue: false };
    }
    const value = this.exportsTarget[compiled.lastExpressionVar];
    delete this.exportsTarget[compiled.lastExpressionVar];
    return { value, hasValue: value !== undefined };
  }

  /** Ends a pending `await` in the running cell with InterruptError (sync code is stopped by SIGINT itself). */
  interrupt(): boolean {
    if (!this.rejectInterrupt) return false;
    this.rejectInterrupt(new InterruptError());
    return true;
  }

  /** ErrorContent for any error a cell (or a magic) threw, with the traceback mapped to cell lines. */
  errorContent(error: unknown): ErrorContent {
    if (error instanceof TypeScriptError) {
      return { ename: error.name, evalue: error.message, traceback: error.traceback };
    }
    if (!(error instanceof Error)) {
      const text = inspectThrown(error);
      return { ename: "Error", evalue: `a non-Error value was thrown: ${text}`, traceback: [`Uncaught ${text}`] };
    }
    const ename = error.name || error.constructor?.name || "Error";
    const header = `${ename}: ${error.message}`;
    // Errors that bring their own traceback (a remote runtime's) show it.
    const own = (error as { traceback?: unknown }).traceback;
    if (Array.isArray(own) && own.every((line) => typeof line === "string")) return { ename, evalue: error.message, traceback: own };
    // Expected, user-facing failures (MagicUsageError...) carry no stack trace.
    if (error instanceof InterruptError || isFarlabError(error)) return { ename, evalue: error.message, traceback: [header] };
    return { ename, evalue: error.message, traceback: [header, ...this.userFrames(error)] };
  }

  // ---- completion, inspection, is_complete (positions in code points) --------------------------

  complete(code: string, cursorPos: number): { matches: string[]; cursorStart: number; cursorEnd: number } {
    const position = codePointsToUtf16(code, cursorPos);
    const info = this.getCompiler().complete(this.declPrefix + this.prevDecl, code, position);
    return {
      matches: info.candidates,
      cursorStart: utf16ToCodePoints(code, info.start),
      cursorEnd: utf16ToCodePoints(code, info.end),
    };
  }

  inspect(code: string, cursorPos: number): { text: string } | undefined {
    const position = codePointsToUtf16(code, cursorPos);
    const compiler = this.getCompiler();
    const decl = this.declPrefix + this.prevDecl;
    // A cursor just after a name (the usual case, `foo|`) is outside the name's span: try one back.
    const info = compiler.inspect(decl, code, position) ?? (position > 0 ? compiler.inspect(decl, code, position - 1) : undefined);
    return info ? { text: info.text } : undefined;
  }

  isComplete(code: string): { status: "complete" } | { status: "incomplete"; indent: string } | { status: "invalid" } {
    const check = checkComplete(code);
    if (!check.complete) return { status: "incomplete", indent: check.indent };
    const errors = syntaxErrors(code);
    // A template literal may span lines: still open at the end means more is coming.
    if (errors.some((e) => e.code === UNTERMINATED_TEMPLATE_LITERAL)) return { status: "incomplete", indent: "" };
    return errors.length > 0 ? { status: "invalid" } : { status: "complete" };
  }

  // ---- locals, for magics (-i, -o, %map inputs) -------------------------------------------------

  readonly locals = {
    has: (name: string): boolean => Object.prototype.hasOwnProperty.call(this.exportsTarget, name),
    get: (name: string): unknown => this.exportsTarget[name],
    /** Declares `let name: any` holding value, visible to and type-checkable by later cells. */
    set: async (name: string, value: unknown): Promise<void> => {
      if (!IDENTIFIER.test(name)) throw new TypeError(`not a valid variable name: ${JSON.stringify(name)}`);
      const slots = globalThis as Record<string, unknown>;
      slots[SLOT_GLOBAL] = value;
      try {
        await this.run(`let ${name}: any = (globalThis as any).${SLOT_GLOBAL};`, `set ${name}`);
      } finally {
        delete slots[SLOT_GLOBAL];
      }
    },
    /**
     * Evaluates a TypeScript expression in the notebook's scope (awaiting it if it is a promise).
     * A variable of the notebook is read directly, without compiling a cell for it.
     */
    evaluate: async (expression: string): Promise<unknown> => {
      if (IDENTIFIER.test(expression) && this.locals.has(expression)) return this.locals.get(expression);
      const { value } = await this.run(`(${expression}\n)`, "expression");
      return value;
    },
  };

  close(): void {
    this.compiler?.close();
    this.compiler = undefined;
  }

  // ---- internals --------------------------------------------------------------------------------

  private getCompiler(): CellCompiler {
    this.compiler ??= createCellCompiler();
    return this.compiler;
  }

  private cellFilename(hint?: string): string {
    this.cellSerial++;
    const base = hint !== undefined ? `In[${hint}]` : `In[#${this.cellSerial}]`;
    return this.cells.has(base) ? `${base}#${this.cellSerial}` : base;
  }

  /**
   * Stack lines of the user's code: cell frames mapped to cell lines; node internals, the engine
   * and whatever called the outermost cell frame dropped. A source line with a caret under the
   * column of the innermost cell frame follows the frames.
   */
  private userFrames(error: Error): string[] {
    const stack = typeof error.stack === "string" ? error.stack : "";
    const frames = stack.split("\n").filter((line) => /^\s+at /.test(line));
    const out: string[] = [];
    let context: string[] | undefined;
    let lastCellFrame = -1;
    for (const frame of frames) {
      if (this.isInternalFrame(frame)) continue;
      const position = /(In\[[^\]]*\](?:#\d+)?):(\d+):(\d+)/.exec(frame);
      const cell = position ? this.cells.get(position[1]) : undefined;
      if (!position || !cell) {
        out.push(frame.trim());
        continue;
      }
      const line = Number(position[2]) - 1;
      if (line >= cell.callLine) continue; // the wrapper's own invocation
      const column = Number(position[3]) - 1 - (line === 0 ? cell.prefixLength : 0);
      const at = cell.mapToCell(line, Math.max(0, column));
      const where = at ? `${position[1]}:${at.line + 1}:${at.column + 1}` : position[0];
      if (at && !context) {
        const text = cell.lines[at.line] ?? "";
        context = [`    ${text}`, `    ${" ".repeat(Math.min(at.column, text.length))}^`];
      }
      out.push(frame.trim().replace(position[0], where).replace(/^at Proxy\./, "at "));
      lastCellFrame = out.length - 1;
    }
    const frameLines = (lastCellFrame >= 0 ? out.slice(0, lastCellFrame + 1) : out).map((frame) => `    ${frame}`);
    return context ? [...frameLines, "", ...context] : frameLines;
  }

  private isInternalFrame(frame: string): boolean {
    return (
      frame.includes("node:vm") ||
      frame.includes("node:internal") ||
      (frame.includes(PACKAGE_DIST) && !frame.includes(PACKAGE_DEPENDENCIES))
    );
  }

  /** As tslab's wrapRequire: farlab's modules first, then local .ts files the cell compiled, then Node. */
  private wrapRequire(base: NodeJS.Require, dirname: string): NodeJS.Require {
    const modules = this.options.modules ?? {};
    const fromSideOutputs = (id: string): unknown => {
      let filename = path.resolve(dirname, id);
      if (path.extname(filename) === "") filename += ".js";
      const cached = this.sideModules.get(filename);
      if (cached) return cached.exports;
      const code = this.sideOutputs.get(filename);
      if (code === undefined) return undefined;
      const mod = new Module(filename, module);
      mod.filename = filename;
      mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(path.dirname(filename));
      mod.require = this.wrapRequire(mod.require as NodeJS.Require, path.dirname(filename));
      this.sideModules.set(filename, mod);
      (mod as unknown as { _compile(code: string, filename: string): void })._compile(code, filename);
      return mod.exports;
    };
    return new Proxy(base, {
      apply(target, thisArg, args: unknown[]) {
        const id = args[0];
        if (args.length === 1 && typeof id === "string") {
          if (Object.prototype.hasOwnProperty.call(modules, id)) return modules[id];
          if (id.startsWith(".")) {
            const side = fromSideOutputs(id);
            if (side !== undefined) return side;
          }
        }
        return Reflect.apply(target, thisArg, args);
      },
    });
  }
}

function inspectThrown(value: unknown): string {
  try {
    return require("node:util").inspect(value) as string;
  } catch {
    return String(value);
  }
}

/** `line:col - message`, the offending line, and a caret under the column. */
function diagnosticTraceback(src: string, diagnostics: CellDiagnostic[]): string[] {
  const lines = src.split("\n");
  const out: string[] = [];
  for (const d of diagnostics) {
    out.push(`TypeScriptError: ${formatDiagnostic(d)}`);
    if (d.fileName) continue; // an imported file: its lines are not in this cell
    const text = lines[d.start.line];
    if (text === undefined) continue;
    const width = d.end.line === d.start.line ? Math.max(1, d.end.character - d.start.character) : 1;
    out.push(`    ${text}`, `    ${" ".repeat(d.start.character)}${"^".repeat(width)}`);
  }
  return out;
}
