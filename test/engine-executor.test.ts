/**
 * The executor child (dist/kernel/executor/main.js) forked with IPC, as the kernel forks it:
 * execute with streams, results and displays; typed errors; interrupts of synchronous and
 * asynchronous cells (SIGINT), after which the state is still there; queries; exit on disconnect.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import * as os from "node:os";
import * as path from "node:path";
import type { ExecuteOutcome, IopubOutput } from "../kernel/interpreter";
import type { FromExecutor, ToExecutor } from "../kernel/executor/ipc";

const entry = path.join(__dirname, "..", "kernel", "executor", "main.js");

class Executor {
  readonly child: ChildProcess;
  readonly messages: FromExecutor[] = [];
  private waiters: { match(m: FromExecutor): boolean; resolve(m: FromExecutor): void }[] = [];
  private nextId = 1;

  constructor() {
    this.child = fork(entry, [], { cwd: os.tmpdir(), stdio: ["ignore", "pipe", "pipe", "ipc"] });
    this.child.stderr!.setEncoding("utf8").on("data", (text: string) => process.stderr.write(`[executor stderr] ${text}`));
    this.child.on("message", (message: FromExecutor) => {
      this.messages.push(message);
      this.waiters = this.waiters.filter((w) => (w.match(message) ? (w.resolve(message), false) : true));
    });
  }

  /** The first message (already received or future) that matches. */
  waitFor<T extends FromExecutor>(match: (m: FromExecutor) => m is T, from = 0): Promise<T> {
    const seen = this.messages.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve: resolve as (m: FromExecutor) => void }));
  }

  send(message: ToExecutor): void {
    this.child.send(message);
  }

  /** Starts a cell; `done` resolves with its outcome and the outputs it published. */
  execute(code: string): { id: number; done: Promise<{ outcome: ExecuteOutcome; outputs: IopubOutput[] }> } {
    const id = this.nextId++;
    const start = this.messages.length;
    this.send({ type: "execute", id, params: { code, silent: false, storeHistory: true, allowStdin: false, executionCount: id, userExpressions: {} } });
    const done = this.waitFor((m): m is Extract<FromExecutor, { type: "execute_done" }> => m.type === "execute_done" && m.id === id, start).then((m) => ({
      outcome: m.outcome,
      outputs: this.messages.slice(start).flatMap((o) => (o.type === "output" && o.id === id ? [o.output] : [])),
    }));
    return { id, done };
  }

  /** Resolves when the cell `id` has published stdout containing `text`. */
  printed(id: number, text: string): Promise<unknown> {
    return this.waitFor((m): m is FromExecutor => m.type === "output" && m.id === id && m.output.msgType === "stream" && m.output.content.text.includes(text));
  }

  query<T extends FromExecutor["type"]>(message: ToExecutor, type: T): Promise<Extract<FromExecutor, { type: T }>> {
    const start = this.messages.length;
    this.send(message);
    return this.waitFor((m): m is Extract<FromExecutor, { type: T }> => m.type === type && "id" in m && m.id === (message as { id: number }).id, start);
  }
}

const resultText = (outputs: IopubOutput[]) =>
  outputs.flatMap((o) => (o.msgType === "execute_result" ? [o.content.data["text/plain"]] : []));
const streamText = (outputs: IopubOutput[]) => outputs.map((o) => (o.msgType === "stream" ? o.content.text : "")).join("");
const interruptedCount = (executor: Executor) => executor.messages.filter((m) => m.type === "interrupted").length;

const executor = new Executor();

test("the child warms up and says ready", async () => {
  await executor.waitFor((m): m is FromExecutor => m.type === "ready");
});

test("a cell's stdout, stderr, displays and result arrive in order, then execute_done", async () => {
  const { done } = executor.execute(
    "const a = 21;\nconsole.log('out', a);\nconsole.error('err');\ndisplay.html('<b>shown</b>');\nprocess.stdout.write('tail\\n');\na * 2",
  );
  const { outcome, outputs } = await done;
  assert.deepEqual(outcome, { status: "ok" });
  assert.deepEqual(
    outputs.map((o) => o.msgType),
    ["stream", "stream", "display_data", "stream", "execute_result"],
  );
  assert.equal(streamText(outputs), "out 21\nerr\ntail\n");
  assert.deepEqual(outputs[1], { msgType: "stream", content: { name: "stderr", text: "err\n" } });
  assert.deepEqual(resultText(outputs), ["42"]);
});

test("errors: TypeScriptError for type errors, the thrown error's name otherwise; the child survives", async () => {
  const typed = await executor.execute("const n: number = 'no';").done;
  assert.equal(typed.outcome.status, "error");
  assert.equal(typed.outcome.status === "error" && typed.outcome.ename, "TypeScriptError");
  const thrown = await executor.execute("throw new SyntaxError('made up');").done;
  assert.equal(thrown.outcome.status === "error" && thrown.outcome.ename, "SyntaxError");
  assert.equal(thrown.outcome.status === "error" && thrown.outcome.evalue, "made up");
  assert.deepEqual(resultText((await executor.execute("a").done).outputs), ["21"]);
});

/**
 * Runs a cell that prints `marker` and then blocks, sends SIGINT once it has printed, and waits
 * for both the cell's end and the executor's `interrupted`; the cell's outcome.
 */
async function interruptOncePrinted(code: string, marker: string): Promise<ExecuteOutcome> {
  const before = interruptedCount(executor);
  const { id, done } = executor.execute(code);
  await executor.printed(id, marker);
  executor.child.kill("SIGINT");
  const { outcome } = await done;
  await executor.waitFor((m): m is FromExecutor => m.type === "interrupted" && interruptedCount(executor) > before);
  return outcome;
}

test("SIGINT stops `while (true) {}`: InterruptError, then interrupted, and earlier state is kept", async () => {
  const outcome = await interruptOncePrinted("console.log('spinning');\nwhile (true) {}", "spinning");
  assert.deepEqual(outcome, { status: "error", ename: "InterruptError", evalue: "Interrupted by the user", traceback: ["InterruptError: Interrupted by the user"] });
  assert.deepEqual(resultText((await executor.execute("a + 1").done).outputs), ["22"]);
});

test("SIGINT ends `await new Promise(() => {})` the same way", async () => {
  const outcome = await interruptOncePrinted("console.log('waiting');\nawait new Promise(() => {});", "waiting");
  assert.equal(outcome.status === "error" && outcome.ename, "InterruptError");
  assert.deepEqual(resultText((await executor.execute("a * 3").done).outputs), ["63"]);
});

test("SIGINT while idle is acknowledged with interrupted", async () => {
  const before = interruptedCount(executor);
  executor.child.kill("SIGINT");
  await executor.waitFor((m): m is FromExecutor => m.type === "interrupted" && interruptedCount(executor) > before);
});

test("complete, inspect and is_complete answer with code-point positions", async () => {
  const code = "const 🎉 = 1; a.toFix";
  const completion = await executor.query({ type: "complete", id: 9001, code, cursorPos: [...code].length }, "complete_done");
  assert.equal(completion.result.matches[0], "toFixed");
  assert.equal(completion.result.cursorStart, [...code].length - "toFix".length);
  const inspected = await executor.query({ type: "inspect", id: 9002, code: "a", cursorPos: 1, detailLevel: 0 }, "inspect_done");
  assert.deepEqual(inspected.result, { found: true, data: { "text/plain": "const a: 21" }, metadata: {} });
  const incomplete = await executor.query({ type: "is_complete", id: 9003, code: "for (;;) {" }, "is_complete_done");
  assert.deepEqual(incomplete.result, { status: "incomplete", indent: "  " });
  const invalid = await executor.query({ type: "is_complete", id: 9004, code: "let = ;" }, "is_complete_done");
  assert.deepEqual(invalid.result, { status: "invalid" });
});

test("output written after a cell ended goes to that (most recent) request", async () => {
  const { id, done } = executor.execute("setTimeout(() => console.log('late output'), 1);");
  await done;
  await executor.printed(id, "late output");
});

test("an error thrown by a timer after its cell ended is reported on stderr; the child keeps working", async () => {
  const { id, done } = executor.execute("setTimeout(() => { throw new RangeError('from a timer'); }, 1);\nPromise.reject(new TypeError('unhandled'));\n1");
  await done;
  await executor.waitFor((m): m is FromExecutor => m.type === "output" && m.id === id && m.output.msgType === "stream" && m.output.content.name === "stderr" && m.output.content.text.includes("RangeError: from a timer"));
  await executor.waitFor((m): m is FromExecutor => m.type === "output" && m.id === id && m.output.msgType === "stream" && m.output.content.text.includes("TypeError: unhandled"));
  assert.deepEqual(resultText((await executor.execute("a").done).outputs), ["21"]);
});

test("user_expressions are evaluated after the cell; silent cells publish no execute_result", async () => {
  const id = 7001;
  const start = executor.messages.length;
  executor.send({
    type: "execute",
    id,
    params: { code: "const b = 2; b", silent: true, storeHistory: false, allowStdin: false, executionCount: 0, userExpressions: { double: "b * 2", bad: "nope" } },
  });
  const done = await executor.waitFor((m): m is Extract<FromExecutor, { type: "execute_done" }> => m.type === "execute_done" && m.id === id, start);
  assert.equal(done.outcome.status, "ok");
  const expressions = done.outcome.status === "ok" ? done.outcome.userExpressions : undefined;
  assert.deepEqual(expressions?.double, { status: "ok", data: { "text/plain": "4" }, metadata: {} });
  assert.equal((expressions?.bad as { status: string; ename: string }).ename, "TypeScriptError");
  assert.equal(executor.messages.slice(start).some((m) => m.type === "output" && m.id === id && m.output.msgType === "execute_result"), false);
});

test("the child exits when its IPC channel closes", async () => {
  const exited = once(executor.child, "exit");
  executor.child.disconnect();
  const [code] = await exited;
  assert.equal(code, 0);
});
