/**
 * A TypeScript/JavaScript session: cells run in this process's global context, one at a time,
 * and their top-level declarations persist as properties of globalThis (see cell-compiler.ts).
 *
 * Interrupt (SIGINT to the process group): synchronous code runs under vm's breakOnSigint, so
 * V8 stops a `while (true) {}`; a pending await is raced against a promise that rejects on
 * SIGINT (see interrupt.ts). Either way the cell ends with `Interrupted` and the state stays.
 * Code that blocks in an async continuation (after its first await) cannot be stopped this way:
 * the agent's SIGTERM/SIGKILL escalation ends the session then.
 */
import * as nodeModule from "node:module";
import * as path from "node:path";
import * as vm from "node:vm";
import type { ToRunner } from "../../protocol/runner";
import { CELL_SCOPE, compileCell, type CompiledCell } from "./cell-compiler";
import type { RunnerChannel } from "./channel";
import { inspectText, toBundle, type DisplayBundle } from "../../../kernel/display/bundle";
import { createDisplayApi } from "../../../kernel/display/display-api";
import { createFarlabModule } from "../../../kernel/display/farlab-module";
import { PlotlyLibrary } from "../../../kernel/display/plotly";
import { runnerSink } from "./runner-sink";
import { formatCellError, jsonValue } from "./errors";
import { createInterruptSource } from "./interrupt";
import { createProgress } from "./progress";
import { runMapBatch } from "./map-batch";

type Execute = Extract<ToRunner, { type: "execute" }>;
type MapBatch = Extract<ToRunner, { type: "map_batch" }>;
type Status = "ok" | "error" | "interrupted";

export class Interrupted extends Error {
  override name = "Interrupted";
  constructor() {
    super("the cell was interrupted (SIGINT); the session's state is kept");
  }
}

/**
 * Make globalThis[name] an assignable property before a cell's `name = ...` runs (the cell is
 * strict code). A getter-only global such as Node's `crypto` is replaced, as a declaration would
 * shadow it.
 */
function declareGlobal(name: string): void {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, name);
  const assignable = descriptor === undefined ? false : "value" in descriptor ? descriptor.writable : descriptor.set !== undefined;
  if (assignable) return;
  if (descriptor && !descriptor.configurable) return; // e.g. `undefined`: the cell's own error says so
  Object.defineProperty(globalThis, name, { value: undefined, writable: true, configurable: true, enumerable: true });
}

/** The value's bundle; a failing [Symbol.for("Jupyter.display")]() falls back to its inspect text. */
function safeBundle(value: unknown): DisplayBundle {
  try {
    return toBundle(value);
  } catch (error) {
    process.stderr.write(`farlab: the value's own display failed (${String(error)}); showing it as text\n`);
    return { data: { "text/plain": inspectText(value) }, metadata: {} };
  }
}

export class TsSession {
  private cells = 0;
  private readonly compiled = new Map<string, CompiledCell>();
  private readonly closeOpenBars: () => void;
  private readonly interrupts = createInterruptSource();

  constructor(private readonly channel: RunnerChannel) {
    const { progress, closeOpenBars } = createProgress(channel);
    this.closeOpenBars = closeOpenBars;
    // plotly.js is not inlined into remote figures: their text/html uses the page's window.Plotly
    // (which the kernel's own figures bring); the plotly MIME renderer needs none.
    const display = createDisplayApi(runnerSink(channel), { plotlyLibrary: new PlotlyLibrary(() => null) });
    display.progress = progress; // bars as runner `progress` messages, drawn by the kernel
    const farlab = { ...createFarlabModule(display), progress };
    const userRequire = nodeModule.createRequire(path.join(process.cwd(), "[farlab-cell].js"));
    const cellRequire = Object.assign((id: string) => (id === "farlab" ? farlab : userRequire(id)), userRequire);
    const scope = globalThis as Record<string, unknown>;
    scope.display = display;
    scope.progress = progress;
    scope.require = cellRequire;
    scope[CELL_SCOPE] = { require: cellRequire, module: { exports: {} } };

    // Errors thrown later by a cell's timers or promises must not end the session.
    const report = (error: unknown) => {
      const { traceback } = formatCellError(error, this.mapPosition);
      process.stderr.write(`Uncaught ${traceback.join("\n")}\n`);
    };
    process.on("uncaughtException", report);
    process.on("unhandledRejection", report);
  }

  private readonly mapPosition = (filename: string, line: number, column: number) =>
    this.compiled.get(filename)?.originalPosition(line, column);

  private fail(error: unknown): void {
    this.channel.send({ type: "error", ...formatCellError(error, this.mapPosition) });
  }

  async execute(message: Execute): Promise<Status> {
    this.cells += 1;
    const filename = `<cell ${this.cells}>`;
    let cell: CompiledCell;
    try {
      cell = compileCell(message.code);
    } catch (error) {
      this.fail(error);
      return "error";
    }
    this.compiled.set(filename, cell);
    const scope = globalThis as Record<string, unknown>;
    for (const name of cell.declaredNames) declareGlobal(name);
    Object.assign(scope, message.inputs ?? {});

    const interrupted = new Promise<never>((_, reject) => this.interrupts.arm(() => reject(new Interrupted())));
    interrupted.catch(() => undefined);
    let outcome: { value: unknown } | undefined;
    try {
      const script = new vm.Script(cell.script, { filename });
      const running = script.runInThisContext({ breakOnSigint: true }) as Promise<{ value: unknown } | undefined>;
      outcome = await Promise.race([running, interrupted]);
    } catch (error) {
      const wasInterrupted = error instanceof Interrupted || (error as { code?: string })?.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED";
      this.fail(wasInterrupted && !(error instanceof Interrupted) ? new Interrupted() : error);
      return wasInterrupted ? "interrupted" : "error";
    } finally {
      this.interrupts.disarm();
      this.closeOpenBars();
    }
    this.sendResult(outcome, message.wantValue);
    return "ok";
  }

  /** %map: one batch of calls to a function of this session (map-batch.ts). */
  mapBatch(message: MapBatch): Promise<void> {
    return runMapBatch(message, {
      channel: this.channel,
      interrupts: this.interrupts,
      formatError: (error) => formatCellError(error, this.mapPosition),
    });
  }

  private sendResult(outcome: { value: unknown } | undefined, wantValue: boolean): void {
    const show = outcome !== undefined && outcome.value !== undefined;
    if (!show && !wantValue) return;
    let bundle: { data: Record<string, unknown>; metadata: Record<string, unknown> } = { data: {}, metadata: {} };
    if (show) {
      (globalThis as Record<string, unknown>)._ = outcome.value;
      bundle = safeBundle(outcome.value);
    }
    const value = !wantValue
      ? {}
      : outcome === undefined
        ? { valueError: "the cell does not end with an expression, so it has no value" }
        : jsonValue(outcome.value);
    // Goes out with the runner's `done`, which follows at once (one socket write, channel.ts).
    this.channel.sendWithNext({ type: "result", data: bundle.data, metadata: bundle.metadata, ...value });
  }
}
