/**
 * The Node runtime (dist/runtimes/node-runner.js, built by scripts/bundle-runtimes.js) as a real
 * process: TypeScript cells (`--lang ts`) and bash cells (`--lang sh`).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { useRuntime } from "./helpers/runner-harness";
import { assertFinalBar, assertThrottledBar } from "./helpers/runner-progress";

describe("TypeScript runtime", () => {
  const ts = useRuntime("ts");

  test("announces itself ready", () => {
    assert.equal(ts().ready.lang, "ts");
    assert.equal(ts().ready.pid, ts().child.pid);
  });

  test("declarations persist across cells (types are stripped, not checked)", async () => {
    const first = await ts().run(
      "interface Point { x: number }\nconst base: number = 40\nlet { x: step }: Point = { x: 1 }\nfunction add(p: number): number {\n  return base + p + step\n}\nclass Counter { n = 0; inc() { return ++this.n } }\nenum Color { Red, Green }",
    );
    assert.equal(first.status, "ok", JSON.stringify(first.error));
    const second = await ts().run("const c = new Counter(); c.inc(); add(c.inc() - 1)");
    assert.deepEqual(second.result?.data, { "text/plain": "42" });
    const third = await ts().run("step = 5; [add(0), Color.Green, typeof base]");
    assert.equal(third.result?.data["text/plain"], "[ 45, 1, 'number' ]");
    const redeclared = await ts().run("const base = 1; base");
    assert.equal(redeclared.result?.data["text/plain"], "1");
  });

  test("top-level await; undefined gives no result; a promise value is shown, not awaited", async () => {
    const out = await ts().run("const v = await new Promise<number>((r) => setTimeout(() => r(21), 10));\nv * 2");
    assert.equal(out.result?.data["text/plain"], "42");
    const none = await ts().run("let nothing = 1; undefined");
    assert.equal(none.result, undefined);
    const pending = await ts().run("new Promise(() => {})");
    assert.equal(pending.result?.data["text/plain"], "Promise { <pending> }");
  });

  test("console.log and process.stdout.write go over the channel; child processes at fd level", async () => {
    const out = await ts().run(
      "import { execSync } from 'node:child_process'\nconsole.log('logged', { a: 1 })\nprocess.stdout.write('written\\n')\nconsole.error('to stderr')\nexecSync('echo from-child', { stdio: 'inherit' })",
    );
    assert.equal(out.status, "ok", JSON.stringify(out.error));
    assert.equal(out.text("stdout"), "logged { a: 1 }\nwritten\n");
    assert.equal(out.text("stderr"), "to stderr\n");
    await ts().waitForPipe("stdout", "from-child\n");
  });

  test("display API and self-displaying values; `farlab` is importable", async () => {
    const out = await ts().run(
      [
        "import { display as d } from 'farlab'",
        "d.html('<b>hi</b>')",
        "display.plotly({ data: [{ type: 'bar', y: [1, 2] }] })",
        "const h = display.newDisplay(); h.text('one'); h.text('two')",
        "const card = { [Symbol.for('Jupyter.display')]() { return { 'text/html': '<i>card</i>' } } }",
        "card",
      ].join("\n"),
    );
    assert.equal(out.status, "ok", JSON.stringify(out.error));
    const displays = out.of("display");
    assert.equal(displays[0].data["text/html"], "<b>hi</b>");
    assert.deepEqual((displays[1].data["application/vnd.plotly.v1+json"] as { data: unknown[] }).data, [{ type: "bar", y: [1, 2] }]);
    assert.equal(typeof displays[1].data["text/html"], "string");
    assert.equal(displays[2].data["text/plain"], "one");
    const update = out.of("update_display")[0];
    assert.equal(update.data["text/plain"], "two");
    assert.equal(update.displayId, displays[2].displayId);
    assert.equal(out.result?.data["text/html"], "<i>card</i>");
    assert.equal(typeof out.result?.data["text/plain"], "string");
  });

  test("progress() throttles its updates and always sends the final one", async () => {
    const n = 200_000;
    const out = await ts().run(`let sum = 0\nfor (const i of progress(Array.from({ length: ${n} }, (_, k) => k), { description: 'sum' })) sum += i\nsum`);
    assert.equal(out.status, "ok", JSON.stringify(out.error));
    assertThrottledBar(out, n, "sum");
    assertFinalBar(await ts().run("const bar = progress(10); bar.tick(3); bar.done()"), { n: 3, total: 10 });
  });

  test("an error reports name, message and the cell's line", async () => {
    const out = await ts().run("type Id = string\n\ninterface Skipped {}\nfunction fail(id: Id): never {\n  throw new RangeError(`no ${id}`)\n}\nfail('x')");
    assert.equal(out.status, "error");
    assert.equal(out.error?.ename, "RangeError");
    assert.equal(out.error?.evalue, "no x");
    const tb = out.error!.traceback.join("\n");
    assert.match(tb, /at fail \(<cell \d+>:5:\d+\)/);
    assert.match(tb, /<cell \d+>:7:\d+/);
    assert.doesNotMatch(tb, /node-runner|node:internal/);
    const syntax = await ts().run("const = 1");
    assert.equal(syntax.error?.ename, "SyntaxError");
    assert.match(syntax.error?.evalue ?? "", /line 1/);
  });

  test("a cell run again behaves as the first time (its compiled form is reused)", async () => {
    const cell = "let runs = (globalThis as any).runs ?? 0\nruns = runs + 1\nfunction twice(n: number) {\n  if (n > 1) throw new Error(`run ${n}`)\n  return n * 2\n}\ntwice(runs)";
    const first = await ts().run(cell);
    assert.deepEqual(first.result?.data, { "text/plain": "2" });
    const second = await ts().run(cell);
    assert.equal(second.status, "error");
    assert.equal(second.error?.evalue, "run 2");
    // Each run is its own cell in the traceback, mapped to the same source line.
    const firstCell = Number(/at twice \(<cell (\d+)>:4:\d+\)/.exec(second.error!.traceback.join("\n"))?.[1]);
    const third = await ts().run(cell);
    assert.equal(third.error?.evalue, "run 3");
    assert.match(third.error!.traceback.join("\n"), new RegExp(`at twice \\(<cell ${firstCell + 1}>:4:\\d+\\)`));
    const syntax = "const = 2";
    assert.equal((await ts().run(syntax)).error?.ename, "SyntaxError");
    assert.equal((await ts().run(syntax)).error?.ename, "SyntaxError");
  });

  test("SIGINT stops a synchronous loop; the state is kept", async () => {
    const out = await ts().interruptAfter("let kept = 41\nconsole.log('looping')\nwhile (true) {}", "looping");
    assert.equal(out.status, "interrupted");
    assert.equal(out.error?.ename, "Interrupted");
    assert.equal((await ts().run("kept + 1")).result?.data["text/plain"], "42");
  });

  test("SIGINT rejects a pending await; the state is kept", async () => {
    const out = await ts().interruptAfter("let waited = 'yes'\nconsole.log('waiting')\nawait new Promise(() => {})", "waiting");
    assert.equal(out.status, "interrupted");
    assert.equal(out.error?.ename, "Interrupted");
    assert.equal((await ts().run("waited")).result?.data["text/plain"], "'yes'");
  });

  test("inputs are bound first; wantValue returns the JSON value or says why not", async () => {
    const out = await ts().run("({ total: xs.reduce((a: number, b: number) => a + b, 0) * factor })", { inputs: { xs: [1, 2, 3], factor: 2 }, wantValue: true });
    assert.deepEqual(out.result?.value, { total: 12 });
    const bad = await ts().run("({ f: () => 1 })", { wantValue: true });
    assert.equal(bad.result?.value, undefined);
    assert.match(bad.result?.valueError ?? "", /not JSON-serialisable: a function at key "f"/);
    const none = await ts().run("let z = 1", { wantValue: true });
    assert.match(none.result?.valueError ?? "", /does not end with an expression/);
  });

  test("an error thrown later by a timer does not end the session", async () => {
    const job = await ts().run("setTimeout(() => { throw new Error('late') }, 1); 'scheduled'");
    assert.equal(job.result?.data["text/plain"], "'scheduled'");
    const next = ts().start("await new Promise((r) => setTimeout(r, 20)); 'alive'");
    const out = await next.done;
    assert.equal(out.result?.data["text/plain"], "'alive'");
  });
});

describe("shell runtime", () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-sh-cwd-"));
  after(() => fs.rmSync(cwd, { recursive: true, force: true }));
  const sh = useRuntime("sh", { cwd });

  test("runs bash in the session's working directory with output at the fd level", async () => {
    assert.equal(sh().ready.lang, "sh");
    const out = await sh().run("echo \"cwd=$(pwd)\"\necho to-stderr >&2");
    assert.equal(out.status, "ok");
    assert.equal(out.error, undefined);
    await sh().waitForPipe("stdout", `cwd=${fs.realpathSync(cwd)}\n`);
    await sh().waitForPipe("stderr", "to-stderr\n");
  });

  test("a non-zero exit status is a ShellError; inputs are environment variables", async () => {
    const out = await sh().run("echo \"name=$NAME n=$N\"\nexit 3", { inputs: { NAME: "ada", N: 7 } });
    assert.equal(out.status, "error");
    assert.deepEqual({ ename: out.error?.ename, evalue: out.error?.evalue }, { ename: "ShellError", evalue: "exit status 3" });
    await sh().waitForPipe("stdout", "name=ada n=7\n");
  });

  test("SIGINT interrupts the shell cell and the runtime stays", async () => {
    const job = sh().start("echo started-sleep\nsleep 60");
    await sh().waitForPipe("stdout", "started-sleep\n");
    sh().interrupt();
    const out = await job.done;
    assert.equal(out.status, "interrupted");
    assert.equal((await sh().run("true")).status, "ok");
  });
});
