/**
 * The production Interpreter: forwards every request to the executor child process
 * (kernel/executor/main.ts) over Node IPC (messages in ./ipc.ts). See docs/architecture.md.
 *
 * - The child is forked in its own process group (detached) so that a SIGINT sent to the
 *   kernel's group (Ctrl-C in a terminal) is not delivered to it twice; the kernel forwards it.
 * - Its raw stdout/stderr pipes (native code, subprocesses) become stream output of the running
 *   cell, or of the last cell when nothing runs (a timer in user code printing later).
 * - Interrupt = SIGINT to the child. If its SIGINT handler has not answered (interrupt_received or
 *   interrupted) within the grace period, its event loop is stuck: the child is killed and
 *   replaced, and the cell ends with KernelRestarted. So does a child that dies.
 * - Start-up is lazy: `warmUp()` forks in the background, requests wait for the child's "ready",
 *   so the protocol server answers kernel_info before the TypeScript compiler has loaded.
 */
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import type {
  CompleteResult,
  ErrorContent,
  ExecuteOutcome,
  ExecuteParams,
  ExecutionIO,
  InspectResult,
  Interpreter,
  IsCompleteResult,
} from "../interpreter";
import { createLogger } from "../protocol/log";
import type { FromExecutor, ToExecutor } from "./ipc";

const log = createLogger("executor");

/** The running cell ended because the executor process was replaced; its state is gone. */
export class KernelRestarted extends Error {
  override name = "KernelRestarted";
}

export interface ChildInterpreterOptions {
  /** The child's entry script; default dist/kernel/executor/main.js beside this file. */
  entry?: string;
  /** How long a running cell may take to unwind after SIGINT before the child is replaced. */
  interruptGraceMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

type QueryKind = "complete" | "inspect" | "is_complete";
type QueryResult = CompleteResult | InspectResult | IsCompleteResult;

type PendingCall =
  | { kind: "execute"; io: ExecutionIO; resolve: (outcome: ExecuteOutcome) => void }
  | { kind: QueryKind; resolve: (result: QueryResult) => void; fallback: QueryResult };

/** A forked child and the promise of its "ready". */
interface Executor {
  process: ChildProcess;
  ready: Promise<void>;
  isReady: boolean;
  stderrTail: string;
}

const RECENT_OUTPUTS = 8;

export class ChildInterpreter implements Interpreter {
  private executor: Executor | undefined;
  private nextId = 1;
  private readonly calls = new Map<number, PendingCall>();
  /** ExecutionIO of recent executions, by id: output that arrives after a cell ended still lands in it. */
  private readonly recentIo = new Map<number, ExecutionIO>();
  private runningId: number | undefined;
  private interruptTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly entry: string;
  private readonly interruptGraceMs: number;

  constructor(private readonly options: ChildInterpreterOptions = {}) {
    this.entry = options.entry ?? join(__dirname, "main.js");
    this.interruptGraceMs = options.interruptGraceMs ?? 2000;
  }

  /** Fork the child now, in the background (start-up errors surface on the first request). */
  warmUp(): void {
    this.ensureExecutor().ready.catch(() => {});
  }

  execute(params: ExecuteParams, io: ExecutionIO): Promise<ExecuteOutcome> {
    const executor = this.ensureExecutor();
    const id = this.nextId++;
    const outcome = new Promise<ExecuteOutcome>((resolve) => this.calls.set(id, { kind: "execute", io, resolve }));
    this.remember(id, io);
    this.runningId = id;
    executor.ready.then(
      // Still pending? (an interrupt while the child was starting settles it without running it)
      () => this.calls.has(id) && this.send(executor, { type: "execute", id, params }),
      (error: Error) => this.settle(id, errorOutcome({ ename: "ExecutorStartError", evalue: error.message, traceback: [] })),
    );
    return outcome;
  }

  complete(code: string, cursorPos: number): Promise<CompleteResult> {
    return this.query("complete", { code, cursorPos }, { matches: [], cursorStart: cursorPos, cursorEnd: cursorPos, metadata: {} });
  }

  inspect(code: string, cursorPos: number, detailLevel: number): Promise<InspectResult> {
    return this.query("inspect", { code, cursorPos, detailLevel }, { found: false, data: {}, metadata: {} });
  }

  isComplete(code: string): Promise<IsCompleteResult> {
    return this.query("is_complete", { code }, { status: "unknown" });
  }

  interrupt(): void {
    const executor = this.executor;
    if (!executor) return;
    if (!executor.isReady) {
      // The child may not handle SIGINT yet (it would die); a cell waiting for it simply never starts.
      if (this.runningId !== undefined) {
        this.settle(this.runningId, errorOutcome({ ename: "InterruptError", evalue: "Interrupted by the user before the cell started", traceback: [] }));
      }
      return;
    }
    if (executor.process.pid === undefined) return;
    log.debug(`interrupt: SIGINT to executor pid ${executor.process.pid}`);
    try {
      process.kill(executor.process.pid, "SIGINT");
    } catch (error) {
      log.warn(`could not signal the executor: ${(error as Error).message}`);
      return;
    }
    if (this.runningId !== undefined && !this.interruptTimer) {
      this.interruptTimer = setTimeout(() => {
        this.interruptTimer = undefined;
        if (this.runningId === undefined || this.executor !== executor) return;
        log.warn(`the executor did not stop within ${this.interruptGraceMs} ms of an interrupt; restarting it`);
        this.replace(executor, `the code did not stop within ${this.interruptGraceMs / 1000} s of the interrupt`);
      }, this.interruptGraceMs);
    }
  }

  async shutdown(restart: boolean): Promise<void> {
    this.stopped = true;
    const executor = this.executor;
    this.executor = undefined;
    this.failAll(restart ? "the kernel was restarted" : "the kernel was shut down");
    if (executor) await terminate(executor.process);
    if (restart) {
      this.stopped = false;
      this.warmUp();
    }
  }

  // ---- child process ---------------------------------------------------------------------------

  private ensureExecutor(): Executor {
    if (this.executor) return this.executor;
    const child = fork(this.entry, [], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      cwd: this.options.cwd,
      env: this.options.env ?? process.env,
    });
    let markReady!: () => void;
    let failStart!: (error: Error) => void;
    const executor: Executor = {
      process: child,
      isReady: false,
      stderrTail: "",
      ready: new Promise<void>((resolve, reject) => {
        markReady = resolve;
        failStart = reject;
      }),
    };
    this.executor = executor;
    executor.ready.catch(() => {}); // a failed start is reported to the requests that wait for it

    child.stdout!.setEncoding("utf8");
    child.stderr!.setEncoding("utf8");
    child.stdout!.on("data", (text: string) => this.rawOutput(executor, "stdout", text));
    child.stderr!.on("data", (text: string) => this.rawOutput(executor, "stderr", text));
    child.on("message", (message: FromExecutor) => {
      if (message.type === "ready") {
        executor.isReady = true;
        markReady();
      } else if (this.executor === executor) {
        this.onMessage(executor, message);
      }
    });
    child.on("error", (error) => {
      log.error(`executor process error: ${error.message}`);
      failStart(error);
    });
    child.on("exit", (code, signal) => {
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      const tail = executor.stderrTail.trim();
      failStart(new Error(`the executor process stopped before it was ready (${how})${tail ? `:\n${tail}` : ""}`));
      if (this.executor !== executor) return; // replaced or shut down on purpose
      this.executor = undefined;
      log.warn(`executor process exited unexpectedly (${how})`);
      this.failAll(`the executor process exited unexpectedly (${how})`);
      // A child that died after start-up is replaced at once; one that never started is retried
      // by the next request, so a broken installation does not spin.
      if (executor.isReady && !this.stopped) this.warmUp();
    });
    log.debug(`forked executor pid ${child.pid}`);
    return executor;
  }

  private onMessage(executor: Executor, message: FromExecutor): void {
    switch (message.type) {
      case "output":
        this.recentIo.get(message.id)?.publish(message.output);
        return;
      case "input_request": {
        const io = this.recentIo.get(message.id);
        const { id, inputId } = message;
        if (!io) return this.send(executor, { type: "input_refused", id, inputId, message: "the cell has ended" });
        io.input(message.prompt, message.password).then(
          (value) => this.send(executor, { type: "input_reply", id, inputId, value }),
          (error: Error) => this.send(executor, { type: "input_refused", id, inputId, message: error.message, name: error.name }),
        );
        return;
      }
      case "execute_done":
        // The child wrote its last stdout/stderr bytes before this message; let the pipes be read first.
        void afterPendingReads().then(() => this.settle(message.id, message.outcome));
        return;
      case "complete_done":
      case "inspect_done":
      case "is_complete_done":
        this.settle(message.id, message.result);
        return;
      case "interrupt_received": // its event loop is alive and the cell is unwinding (a remote cell may take a while)
      case "interrupted":
        this.clearInterruptTimer();
        return;
      case "ready":
        return;
    }
  }

  private settle(id: number, result: ExecuteOutcome | QueryResult): void {
    const call = this.calls.get(id);
    if (!call) return;
    this.calls.delete(id);
    if (call.kind === "execute") {
      if (this.runningId === id) {
        this.runningId = undefined;
        this.clearInterruptTimer();
      }
      call.resolve(result as ExecuteOutcome);
    } else {
      call.resolve(result as QueryResult);
    }
  }

  private rawOutput(executor: Executor, name: "stdout" | "stderr", text: string): void {
    const io = this.executor === executor ? this.currentIo() : undefined;
    if (io) {
      io.publish({ msgType: "stream", content: { name, text } });
      return;
    }
    if (name === "stderr") executor.stderrTail = (executor.stderrTail + text).slice(-4000);
    log.info(`${name}: ${text.trimEnd()}`);
  }

  private currentIo(): ExecutionIO | undefined {
    if (this.runningId !== undefined) return this.recentIo.get(this.runningId);
    return [...this.recentIo.values()].pop();
  }

  private async query<R extends QueryResult>(
    kind: QueryKind,
    fields: { code: string; cursorPos?: number; detailLevel?: number },
    fallback: R,
  ): Promise<R> {
    const executor = this.ensureExecutor();
    try {
      await executor.ready;
    } catch (error) {
      log.warn(`${kind}: ${(error as Error).message}`);
      return fallback;
    }
    const id = this.nextId++;
    return new Promise<R>((resolve) => {
      this.calls.set(id, { kind, resolve: resolve as (result: QueryResult) => void, fallback });
      this.send(executor, { type: kind, id, ...fields } as ToExecutor);
    });
  }

  private send(executor: Executor, message: ToExecutor): void {
    if (!executor.process.connected) return; // its exit handler fails the pending calls
    executor.process.send(message, (error) => {
      if (error) log.warn(`could not send ${message.type} to the executor: ${error.message}`);
    });
  }

  /** Kill a stuck or broken child, fail what it was doing, start a fresh one. */
  private replace(executor: Executor, reason: string): void {
    if (this.executor !== executor) return;
    this.executor = undefined;
    killGroup(executor.process, "SIGKILL");
    this.failAll(reason);
    if (!this.stopped) this.warmUp();
  }

  private failAll(reason: string): void {
    this.clearInterruptTimer();
    this.runningId = undefined;
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) {
      if (call.kind === "execute") {
        const error = new KernelRestarted(
          `${reason}. The executor was restarted, so local state (variables, functions, imports) was lost.`,
        );
        call.resolve(errorOutcome({ ename: error.name, evalue: error.message, traceback: [`${error.name}: ${error.message}`] }));
      } else {
        call.resolve(call.fallback);
      }
    }
  }

  private remember(id: number, io: ExecutionIO): void {
    this.recentIo.set(id, io);
    while (this.recentIo.size > RECENT_OUTPUTS) this.recentIo.delete(this.recentIo.keys().next().value!);
  }

  private clearInterruptTimer(): void {
    if (this.interruptTimer) clearTimeout(this.interruptTimer);
    this.interruptTimer = undefined;
  }
}

function errorOutcome(error: ErrorContent): ExecuteOutcome {
  return { status: "error", ...error };
}

/** Two turns of the event loop: enough for libuv to deliver bytes already sitting in a pipe. */
async function afterPendingReads(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the whole group: the child and whatever it started
  } catch {
    child.kill(signal);
  }
}

/** SIGTERM the child's group, SIGKILL after a second; resolves when it has exited. */
function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), 1000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    killGroup(child, "SIGTERM");
  });
}
