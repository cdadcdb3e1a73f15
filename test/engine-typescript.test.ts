/**
 * The TypeScript engine (kernel/executor/typescript-engine.ts) driven directly, with tslab's real
 * converter: values, state across cells, top-level await, typed errors and tracebacks,
 * redeclaration, locals for magics, completion positions in code points, is_complete.
 * One engine for the whole file: creating the compiler takes seconds.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InterruptError, TypeScriptEngine, TypeScriptError } from "../kernel/executor/typescript-engine";
import { createDisplayApi } from "../kernel/display/display-api";
import { createFarlabModule } from "../kernel/display/farlab-module";
import { createTslabModule } from "../kernel/display/tslab-compat";
import { toBundle } from "../kernel/display/bundle";
import type { DisplayMessage } from "../kernel/display/types";
import { MagicUsageError } from "../extension/magics/errors";

const published: DisplayMessage[] = [];
const display = createDisplayApi({ publish: (message) => published.push(message) });
(globalThis as Record<string, unknown>).display = display;
const engine = new TypeScriptEngine({
  modules: { farlab: createFarlabModule(display), tslab: createTslabModule(display, { tslab: "1.0.22", typescript: "x" }) },
});
let cellNumber = 0;

/** Runs a cell and returns its execute_result text/plain (undefined when it has no value). */
async function resultText(src: string): Promise<string | undefined> {
  const run = await engine.run(src, String(++cellNumber));
  return run.hasValue ? toBundle(run.value).data["text/plain"] : undefined;
}

async function failure(src: string): Promise<unknown> {
  return engine.run(src, String(++cellNumber)).then(
    () => assert.fail(`the cell should have failed: ${src}`),
    (error: unknown) => error,
  );
}

test("values are shown as Node's util.inspect writes them, and state persists across cells", async () => {
  assert.equal(await resultText("let x: number = 41;\nx + 1"), "42");
  assert.equal(await resultText("const s = 'farlab'; s"), "'farlab'");
  assert.equal(await resultText("[1, 2, 3].map((v) => v * x / 41 * 2)"), "[ 2, 4, 6 ]");
  assert.equal(await resultText("x += 1; x"), "42");
  assert.equal(await resultText("function twice(n: number) { return 2 * n; }"), undefined);
  assert.equal(await resultText("twice(x)"), "84");
});

test("undefined gives no result, null does", async () => {
  assert.equal(await resultText("undefined"), undefined);
  assert.equal(await resultText("let nothing: number | undefined; nothing"), undefined);
  assert.equal(await resultText("null"), "null");
});

test("top-level await works and its declarations persist", async () => {
  assert.equal(await resultText("const later = await new Promise<number>((r) => setTimeout(() => r(7), 1));\nlater * 6"), "42");
  assert.equal(await resultText("later + 1"), "8");
  // tslab's converter does not flag a top-level `for await`; the engine still runs it async.
  assert.equal(await resultText("let total = 0;\nfor await (const v of [1, Promise.resolve(2)]) total += v;\ntotal"), "3");
});

test("a type error is a TypeScriptError listing line:col - message, with the source line and a caret", async () => {
  const error = await failure("const ok = 1;\nlet wrong: string = ok;");
  assert.ok(error instanceof TypeScriptError);
  const content = engine.errorContent(error);
  assert.equal(content.ename, "TypeScriptError");
  assert.equal(content.evalue, "2:5 - Type 'number' is not assignable to type 'string'.");
  assert.deepEqual(content.traceback, [
    "TypeScriptError: 2:5 - Type 'number' is not assignable to type 'string'.",
    "    let wrong: string = ok;",
    "        ^^^^^",
  ]);
  // Nothing of the failed cell is declared.
  assert.equal(engine.locals.has("ok"), false);
});

test("a runtime error keeps its name and message; the traceback points at cell lines without internal frames", async () => {
  const error = await failure(
    ["// a comment", "type T = { n: number };", "function boom(t: T) {", "", "  throw new RangeError(`bad ${t.n}`);", "}", "boom({ n: 3 });"].join("\n"),
  );
  const content = engine.errorContent(error);
  assert.equal(content.ename, "RangeError");
  assert.equal(content.evalue, "bad 3");
  assert.equal(content.traceback[0], "RangeError: bad 3");
  const cell = `In[${cellNumber}]`;
  assert.ok(content.traceback.includes(`    at boom (${cell}:5:9)`), content.traceback.join("\n"));
  assert.ok(content.traceback.includes(`    at ${cell}:7:1`), content.traceback.join("\n"));
  assert.ok(content.traceback.includes("      throw new RangeError(`bad ${t.n}`);"));
  assert.ok(content.traceback.includes(`    ${" ".repeat(8)}^`), "a caret under column 9 (`new`)");
  for (const line of content.traceback) {
    assert.doesNotMatch(line, /node:vm|node:internal|typescript-engine|dist\/kernel/);
  }
  // A function of that cell, called from a later one, still maps to its own cell.
  const later = engine.errorContent(await failure("boom({ n: 4 })"));
  assert.ok(later.traceback.includes(`    at boom (${cell}:5:9)`), later.traceback.join("\n"));
  assert.ok(later.traceback.includes(`    at In[${cellNumber}]:1:1`), later.traceback.join("\n"));
});

test("an error thrown after a top-level await is mapped too", async () => {
  const content = engine.errorContent(await failure("await Promise.resolve();\nnull;\nthrow new TypeError('late');"));
  assert.equal(content.ename, "TypeError");
  assert.ok(content.traceback.includes(`    at In[${cellNumber}]:3:7`), content.traceback.join("\n"));
});

test("errors of magics: user-facing ones without a stack, remote ones with their own traceback", () => {
  const usage = engine.errorContent(new MagicUsageError("unknown option foo=1; valid options: gpu, cpu"));
  assert.deepEqual(usage, {
    ename: "MagicUsageError",
    evalue: "unknown option foo=1; valid options: gpu, cpu",
    traceback: ["MagicUsageError: unknown option foo=1; valid options: gpu, cpu"],
  });
  const remote = Object.assign(new Error("division by zero"), { name: "ZeroDivisionError", traceback: ["Traceback (most recent call last):", '  File "<cell>", line 2', "ZeroDivisionError: division by zero"] });
  assert.deepEqual(engine.errorContent(remote).traceback, remote.traceback);
  assert.equal(engine.errorContent(remote).ename, "ZeroDivisionError");
  assert.deepEqual(engine.errorContent("a string"), { ename: "Error", evalue: "a non-Error value was thrown: 'a string'", traceback: ["Uncaught 'a string'"] });
});

test("let and const may be redeclared by a later cell, with the new type", async () => {
  assert.equal(await resultText("const again = 1; again"), "1");
  assert.equal(await resultText("let again = 'two'; again.toUpperCase()"), "'TWO'");
  const error = await failure("again.toFixed(1)");
  assert.match(engine.errorContent(error).evalue, /Property 'toFixed' does not exist on type 'string'/);
});

test("locals: set declares a typed-any variable for later cells; get, has and evaluate", async () => {
  await engine.locals.set("fromMagic", { counts: [1, 2, 3] });
  assert.equal(engine.locals.has("fromMagic"), true);
  assert.deepEqual(engine.locals.get("fromMagic"), { counts: [1, 2, 3] });
  assert.equal(await resultText("fromMagic.counts.length"), "3");
  assert.deepEqual(await engine.locals.evaluate("fromMagic.counts.map((c: number) => c * 10)"), [10, 20, 30]);
  assert.equal(engine.locals.has("neverDeclared"), false);
  await assert.rejects(engine.locals.set("not a name", 1), TypeError);
});

test("display is a global and an import from farlab; tslab's display API works", async () => {
  published.length = 0;
  await engine.run("display.html('<b>global</b>');", String(++cellNumber));
  await engine.run("import { display as d, progress } from 'farlab';\nd.markdown('# imported');\nconst p: typeof progress = progress;", String(++cellNumber));
  await engine.run("import * as tslab from 'tslab';\ntslab.display.html('<i>tslab</i>');", String(++cellNumber));
  const figure = await engine.run("import { Figure } from 'farlab';\nnew Figure({ data: [{ type: 'bar', y: [1, 2] }] })", String(++cellNumber));
  assert.equal(toBundle(figure.value).data["text/plain"], "<Plotly figure: 1 trace (bar)>");
  const data = published.map((m) => (m.msgType === "display_data" ? m.content.data : undefined));
  assert.equal(data[0]?.["text/html"], "<b>global</b>");
  assert.equal(data[1]?.["text/markdown"], "# imported");
  assert.equal(data[2]?.["text/html"], "<i>tslab</i>");
  // The typings are real, not any.
  const error = await failure("display.html(42);");
  assert.match(engine.errorContent(error).evalue, /not assignable to parameter of type 'string'/);
});

test("a self-displaying last expression gives its own bundle", async () => {
  const run = await engine.run(
    "({ [Symbol.for('Jupyter.display')]() { return { 'text/plain': 'plain', 'text/html': '<p>rich</p>' }; } })",
    String(++cellNumber),
  );
  assert.deepEqual(toBundle(run.value).data, { "text/plain": "plain", "text/html": "<p>rich</p>" });
});

test("interrupt() ends a pending await with InterruptError and the state survives", async () => {
  await engine.run("const kept = 'still here';", String(++cellNumber));
  const pending = engine.run("await new Promise(() => {});", String(++cellNumber));
  setImmediate(() => assert.equal(engine.interrupt(), true));
  await assert.rejects(pending, (error: unknown) => {
    assert.ok(error instanceof InterruptError);
    assert.deepEqual(engine.errorContent(error), { ename: "InterruptError", evalue: "Interrupted by the user", traceback: ["InterruptError: Interrupted by the user"] });
    return true;
  });
  assert.equal(await resultText("kept"), "'still here'");
  assert.equal(engine.interrupt(), false, "nothing is pending any more");
});

test("completion and inspection positions are code points, also after astral characters", async () => {
  await engine.run("const emojiLabel = 1; const emojiCount = 2;", String(++cellNumber));
  const code = "const 😀 = '🎉'; emojiC";
  const cursor = [...code].length; // 22 code points, 24 UTF-16 units
  const completion = engine.complete(code, cursor);
  assert.equal(completion.matches[0], "emojiCount");
  assert.equal(completion.cursorEnd, cursor);
  assert.equal(completion.cursorStart, cursor - "emojiC".length);
  const inspected = engine.inspect("'🎉🎉'; emojiLabel", [..."'🎉🎉'; emojiLabel"].length);
  assert.equal(inspected?.text, "const emojiLabel: 1");
});

test("isComplete: incomplete with indent, invalid on syntax errors, complete otherwise", () => {
  assert.deepEqual(engine.isComplete("function f() {"), { status: "incomplete", indent: "  " });
  assert.deepEqual(engine.isComplete("const xs = [1,"), { status: "incomplete", indent: "  " });
  assert.deepEqual(engine.isComplete("if (ok) {\n  f(1,"), { status: "incomplete", indent: "    " });
  assert.deepEqual(engine.isComplete("const t = `first line"), { status: "incomplete", indent: "" });
  assert.deepEqual(engine.isComplete("let x = ;"), { status: "invalid" });
  assert.deepEqual(engine.isComplete("1 +* 2"), { status: "invalid" });
  assert.deepEqual(engine.isComplete("const a = )"), { status: "invalid" });
  assert.deepEqual(engine.isComplete("x + 1"), { status: "complete" });
});

test.after(() => engine.close());
