/**
 * The executor child process (forked by kernel/executor/child-interpreter.ts with an IPC channel;
 * messages in ./ipc.ts). It runs cells in its main thread: cells with magic lines go to the magic
 * router (extension/magics), the others to the TypeScript engine.
 *
 * - stdout/stderr: process.stdout.write and process.stderr.write (so console.* too) become `output`
 *   stream messages of the running request, or of the most recent one between requests, so they
 *   stay in order with displays. Native writes to fd 1/2 are read from the pipes by the parent.
 * - SIGINT (sent by the parent to interrupt): synchronous cell code is stopped by V8
 *   (breakOnSigint); otherwise our handler ends a pending await and aborts magics. The cell ends
 *   with InterruptError ("Interrupted by the user"), then `interrupted` is sent. State survives.
 * - Start-up: the TypeScript compiler is warmed before `ready` is sent.
 * - The process exits when the IPC channel closes (the kernel went away).
 */
import { createInterruptSource } from "../../remote-agent/runtimes/node/interrupt";
import type { ErrorContent, ExecuteOutcome, ExecuteParams, IopubOutput, IsCompleteResult } from "../interpreter";
import { createDisplayApi } from "../display/display-api";
import { toBundle } from "../display/bundle";
import { createFarlabModule } from "../display/farlab-module";
import { createTslabModule } from "../display/tslab-compat";
import type { DisplayMessage } from "../display/types";
import type { MagicContext } from "../../extension/magics/types";
import type { MagicRouter } from "../../extension/magics/router";
import type { FromExecutor, ToExecutor } from "./ipc";
import { InterruptError, TypeScriptEngine } from "./typescript-engine";
import { versions } from "./tslab";

if (!process.send) {
  process.stderr.write("kernel/executor/main.js is the kernel's executor child: it must be forked with an IPC channel\n");
  process.exit(2);
}

function send(message: FromExecutor): void {
  if (process.connected) process.send!(message);
}

// ---- the request that output belongs to ---------------------------------------------------------

/** The running execute request, or the most recent one (output of timers after a cell ended). */
let outputId: number | undefined;

function publish(output: IopubOutput): void {
  if (outputId === undefined) return;
  send({ type: "output", id: outputId, output });
}

// ---- stdout/stderr capture, coalesced ------------------------------------------------------------

const FLUSH_INTERVAL_MS = 50;
const FLUSH_BYTES = 64 * 1024;

class StreamCapture {
  private pending: { name: "stdout" | "stderr"; text: string }[] = [];
  private pendingBytes = 0;
  private lastFlush = Date.now();
  private timer: NodeJS.Timeout | undefined;
  readonly originalWrite = {
    stdout: process.stdout.write.bind(process.stdout),
    stderr: process.stderr.write.bind(process.stderr),
  };

  install(): void {
    for (const name of ["stdout", "stderr"] as const) {
      const stream = process[name];
      stream.write = ((chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
        const done = typeof encoding === "function" ? encoding : callback;
        if (outputId === undefined) {
          return this.originalWrite[name](chunk as string, encoding as BufferEncoding, callback as () => void);
        }
        const text = typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString(typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
        this.add(name, text);
        if (typeof done === "function") process.nextTick(done as () => void);
        return true;
      }) as typeof stream.write;
    }
  }

  private add(name: "stdout" | "stderr", text: string): void {
    const last = this.pending[this.pending.length - 1];
    if (last && last.name === name) last.text += text;
    else this.pending.push({ name, text });
    this.pendingBytes += text.length;
    // Checked on every write, so output of a busy synchronous loop still streams.
    if (this.pendingBytes >= FLUSH_BYTES || Date.now() - this.lastFlush >= FLUSH_INTERVAL_MS) {
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_INTERVAL_MS);
    }
  }

  /** The first write of a cell goes out at once (so a parent can see a busy cell start). */
  startCell(): void {
    this.flush();
    this.lastFlush = 0;
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.lastFlush = Date.now();
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const { name, text } of pending) publish({ msgType: "stream", content: { name, text } });
  }
}

const capture = new StreamCapture();
capture.install();

// ---- display, engine, magics -------------------------------------------------------------------

const display = createDisplayApi({
  publish(message: DisplayMessage) {
    capture.flush(); // keep printed text and displays in order
    publish(message);
  },
});
Object.defineProperty(globalThis, "display", { value: display, writable: true, configurable: true, enumerable: false });

/** Local cells ask the frontend for input like Python's input(); only while a cell runs. */
function input(prompt = "", options: { password?: boolean } = {}): Promise<string> {
  if (!running) return Promise.reject(new Error("input() can only be used while a cell is running"));
  return requestInput(running.id, String(prompt), options.password === true);
}
Object.defineProperty(globalThis, "input", { value: input, writable: true, configurable: true, enumerable: false });

const engine = new TypeScriptEngine({
  modules: {
    farlab: createFarlabModule(display),
    tslab: createTslabModule(display, versions),
  },
});

let router: MagicRouter | undefined;
/** Lines starting with % (a line magic, or %% on the first line); cheaper than loading the router. */
const MAGIC_LINE = /^[ \t]*%/m;

function magicRouter(): MagicRouter {
  // Loaded on the first magic cell: it brings the agent client, which TypeScript cells never need.
  // extension/index registers farlab's magics in the default registry the router reads.
  if (!router) {
    require("../../extension");
    router = (require("../../extension/magics/router") as typeof import("../../extension/magics/router")).createMagicRouter();
  }
  return router;
}

// ---- stdin ---------------------------------------------------------------------------------------

let nextInputId = 1;
const inputWaiters = new Map<number, { resolve(value: string): void; reject(error: Error): void }>();

function requestInput(id: number, prompt: string, password: boolean): Promise<string> {
  const inputId = nextInputId++;
  capture.flush();
  return new Promise((resolve, reject) => {
    inputWaiters.set(inputId, { resolve, reject });
    send({ type: "input_request", id, inputId, prompt, password });
  });
}

function settleInput(message: Extract<ToExecutor, { type: "input_reply" | "input_refused" }>): void {
  const waiter = inputWaiters.get(message.inputId);
  if (!waiter) return;
  inputWaiters.delete(message.inputId);
  if (message.type === "input_reply") {
    waiter.resolve(message.value);
  } else {
    const error = new Error(message.message);
    error.name = message.name ?? "StdinNotAllowedError";
    waiter.reject(error);
  }
}

// ---- execution and interrupts ---------------------------------------------------------------------

interface Running {
  id: number;
  abort: AbortController;
  interrupted: boolean;
  rejectInterrupt(error: InterruptError): void;
}

let running: Running | undefined;
let queue: Promise<void> = Promise.resolve();

// Node's own SIGINT watchdog is held open for the child's whole life (as the remote node runtime
// does, see remote-agent/runtimes/node/interrupt.ts): otherwise a SIGINT that lands while a
// breakOnSigint run is finishing is swallowed and re-delivered to the next cell. Every SIGINT
// then either stops a running synchronous cell (breakOnSigint) or is picked up here.
createInterruptSource().arm(() => {
  if (!running) {
    send({ type: "interrupted" });
    return;
  }
  running.interrupted = true;
  // Proof of life for the kernel: this handler only runs when the event loop is free, so the
  // cell is unwinding (a magic waiting on its agent, a pending await) and need not be killed.
  send({ type: "interrupt_received" });
  const error = new InterruptError();
  engine.interrupt();
  running.abort.abort(error);
  running.rejectInterrupt(error);
});

async function execute(id: number, params: ExecuteParams): Promise<void> {
  capture.startCell();
  outputId = id;
  let rejectInterrupt!: (error: InterruptError) => void;
  const interruptedPromise = new Promise<never>((_, reject) => (rejectInterrupt = reject));
  interruptedPromise.catch(() => {});
  const state: Running = { id, abort: new AbortController(), interrupted: false, rejectInterrupt };
  running = state;
  let outcome: ExecuteOutcome;
  try {
    // A magic cell is not raced against the interrupt: its handler sees ctx.signal, asks the
    // agent to interrupt, and ends with the remote error (e.g. KeyboardInterrupt) once the remote
    // job has unwound, so no remote output lands after the cell has ended.
    const cell = runCell(params, state);
    const result = await (isMagicCell(params.code) ? cell : Promise.race([cell, interruptedPromise]));
    if (result.hasValue && !params.silent) {
      const { data, metadata } = toBundle(result.value);
      capture.flush();
      publish({ msgType: "execute_result", content: { data, metadata } });
    }
    outcome = { status: "ok", userExpressions: await userExpressions(params.userExpressions) };
  } catch (error) {
    if (error instanceof InterruptError) state.interrupted = true;
    outcome = { status: "error", ...errorContent(error) };
  }
  capture.flush();
  running = undefined;
  send({ type: "execute_done", id, outcome });
  if (state.interrupted) send({ type: "interrupted" });
}

function isMagicCell(code: string): boolean {
  return MAGIC_LINE.test(code) && magicRouter().isMagicCell(code);
}

async function runCell(params: ExecuteParams, state: Running): Promise<{ value: unknown; hasValue: boolean }> {
  const cellName = String(params.executionCount);
  if (!isMagicCell(params.code)) {
    return engine.run(params.code, cellName);
  }
  let piece = 0;
  const result = await magicRouter().run(params.code, magicContext(state), async (src) => {
    const { value } = await engine.run(src, piece++ === 0 ? cellName : `${cellName}.${piece}`);
    return value;
  });
  return result === undefined ? { value: undefined, hasValue: false } : { value: result.value, hasValue: result.value !== undefined };
}

function magicContext(state: Running): MagicContext {
  return {
    display,
    stream: (name, text) => {
      capture.flush();
      publish({ msgType: "stream", content: { name, text } });
    },
    input: (prompt, password) => requestInput(state.id, prompt, password),
    locals: engine.locals,
    signal: state.abort.signal,
  };
}

function errorContent(error: unknown): ErrorContent {
  return engine.errorContent(error);
}

async function userExpressions(expressions: Record<string, string>): Promise<Record<string, unknown> | undefined> {
  const names = Object.keys(expressions ?? {});
  if (names.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const name of names) {
    try {
      const { data, metadata } = toBundle(await engine.locals.evaluate(expressions[name]));
      out[name] = { status: "ok", data, metadata };
    } catch (error) {
      out[name] = { status: "error", ...errorContent(error) };
    }
  }
  return out;
}

// ---- user code errors outside any cell must not end the process ---------------------------------

function reportStray(kind: string, error: unknown): void {
  const { ename, evalue, traceback } = errorContent(error);
  const text = traceback.length > 0 ? traceback.join("\n") : `${ename}: ${evalue}`;
  if (outputId === undefined) capture.originalWrite.stderr(`${kind}: ${text}\n`);
  else process.stderr.write(`${kind}: ${text}\n`);
}
process.on("uncaughtException", (error) => reportStray("Uncaught exception", error));
process.on("unhandledRejection", (reason) => reportStray("Unhandled promise rejection", reason));

// ---- the IPC loop ----------------------------------------------------------------------------------

function reply(message: ToExecutor): void {
  switch (message.type) {
    case "execute":
      queue = queue.then(() => execute(message.id, message.params));
      return;
    case "complete": {
      const result = guarded(() => engine.complete(message.code, message.cursorPos), {
        matches: [],
        cursorStart: message.cursorPos,
        cursorEnd: message.cursorPos,
      });
      send({ type: "complete_done", id: message.id, result: { ...result, metadata: {} } });
      return;
    }
    case "inspect": {
      const info = guarded(() => engine.inspect(message.code, message.cursorPos), undefined);
      send({
        type: "inspect_done",
        id: message.id,
        result: info ? { found: true, data: { "text/plain": info.text }, metadata: {} } : { found: false, data: {}, metadata: {} },
      });
      return;
    }
    case "is_complete": {
      const result: IsCompleteResult = MAGIC_LINE.test(message.code)
        ? { status: "complete" } // magic bodies may be Python or shell: not ours to parse
        : guarded<IsCompleteResult>(() => engine.isComplete(message.code), { status: "unknown" });
      send({ type: "is_complete_done", id: message.id, result });
      return;
    }
    case "input_reply":
    case "input_refused":
      settleInput(message);
      return;
  }
}

/** Completion and friends answer something even if the compiler trips over odd input. */
function guarded<T>(work: () => T, fallback: T): T {
  try {
    return work();
  } catch (error) {
    capture.originalWrite.stderr(`farlab executor: ${(error as Error)?.stack ?? String(error)}\n`);
    return fallback;
  }
}

process.on("message", (message: ToExecutor) => reply(message));
process.on("disconnect", () => process.exit(0));

try {
  engine.warm();
} catch (error) {
  capture.originalWrite.stderr(`farlab executor: warming the TypeScript compiler failed: ${(error as Error)?.stack ?? String(error)}\n`);
}
send({ type: "ready" });
