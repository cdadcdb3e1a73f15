/**
 * The kernel through the command-line clients people use: nbclient (`jupyter execute`,
 * `python3 -m nbconvert --execute`) and `jupyter console`. JupyterLab's client library is in
 * kernel-jupyter-server.test.ts.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { installFarlab, type KernelspecPrefix } from "./helpers/kernelspec";
import { SYSTEM_PYTHON, describeRun, runProgram } from "./helpers/processes";

let spec: KernelspecPrefix;

before(async () => {
  spec = await installFarlab("clients");
});

after(() => spec?.remove());

interface NotebookCell {
  id: string;
  cell_type: "code";
  source: string;
  metadata: Record<string, unknown>;
  outputs: Array<Record<string, any>>;
  execution_count: number | null;
}

/** nbformat may store multi-line strings as arrays of lines. */
function joined(text: string | string[]): string {
  return Array.isArray(text) ? text.join("") : text;
}

function writeNotebook(file: string, sources: string[]): void {
  const cells: NotebookCell[] = sources.map((source, index) => ({
    id: `cell-${index}`,
    cell_type: "code",
    source,
    metadata: {},
    outputs: [],
    execution_count: null,
  }));
  const notebook = {
    cells,
    metadata: {
      kernelspec: { name: "farlab", display_name: "farlab (TypeScript)", language: "typescript" },
      language_info: { name: "typescript" },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
  fs.writeFileSync(file, JSON.stringify(notebook, null, 1));
}

test("jupyter execute (nbclient) runs a farlab notebook and fails on an error cell", { timeout: 120_000 }, async () => {
  const good = path.join(spec.prefix, "good.ipynb");
  writeNotebook(good, ["const base = 21", "base * 2"]);
  const ok = await runProgram("/usr/bin/jupyter-execute", ["--kernel_name=farlab", good], { env: spec.env, timeoutMs: 90_000 });
  assert.equal(ok.code, 0, describeRun("jupyter execute good.ipynb", ok));

  const bad = path.join(spec.prefix, "bad.ipynb");
  writeNotebook(bad, ["1 + 1", 'throw new Error("notebook cell failed")', "2 + 2"]);
  const failed = await runProgram("/usr/bin/jupyter-execute", ["--kernel_name=farlab", bad], { env: spec.env, timeoutMs: 90_000 });
  assert.notEqual(failed.code, 0, describeRun("jupyter execute bad.ipynb", failed));
  assert.match(failed.stdout + failed.stderr, /notebook cell failed/);
});

test("nbclient writes the outputs of a farlab notebook, errors included", { timeout: 120_000 }, async () => {
  const input = path.join(spec.prefix, "outputs.ipynb");
  writeNotebook(input, [
    "const greeting: string = 'farlab'",
    "console.log(`hello from ${greeting}`)",
    "[1, 2, 3].map((x) => x * 2)",
    'display.html("<i>rich</i>")',
    'throw new RangeError("out of range")',
    "greeting.length",
  ]);
  // Debian ships nbconvert as a module only (no jupyter-nbconvert script); it executes through nbclient.
  const result = await runProgram(
    SYSTEM_PYTHON,
    ["-m", "nbconvert", "--to", "notebook", "--execute", "--allow-errors", "--ExecutePreprocessor.kernel_name=farlab", "--output", "executed.ipynb", input],
    { env: spec.env, timeoutMs: 90_000 },
  );
  assert.equal(result.code, 0, describeRun("jupyter nbconvert --execute", result));
  const executed = JSON.parse(fs.readFileSync(path.join(spec.prefix, "executed.ipynb"), "utf8")) as { cells: NotebookCell[] };
  const [declare, print, array, html, failing, later] = executed.cells;
  assert.deepEqual(declare.outputs, []);
  assert.deepEqual(
    print.outputs.map((o) => [o.output_type, o.name, joined(o.text)]),
    [["stream", "stdout", "hello from farlab\n"]],
  );
  assert.equal(array.outputs.length, 1);
  assert.equal(array.outputs[0].output_type, "execute_result");
  assert.equal(joined(array.outputs[0].data["text/plain"]), "[ 2, 4, 6 ]");
  assert.equal(array.outputs[0].execution_count, array.execution_count);
  assert.equal(html.outputs[0].output_type, "display_data");
  assert.equal(joined(html.outputs[0].data["text/html"]), "<i>rich</i>");
  assert.ok("text/plain" in html.outputs[0].data, "every bundle has text/plain");
  assert.deepEqual(
    failing.outputs.map((o) => [o.output_type, o.ename, o.evalue]),
    [["error", "RangeError", "out of range"]],
  );
  assert.equal(joined(later.outputs[0].data["text/plain"]), "6", "cells after an allowed error still run");
  assert.deepEqual(
    executed.cells.map((c) => c.execution_count),
    [1, 2, 3, 4, 5, 6],
  );
});

test("jupyter console evaluates piped input with the farlab kernel", { timeout: 120_000 }, async () => {
  const result = await runProgram("/usr/bin/jupyter-console", ["--kernel", "farlab", "--simple-prompt", "--no-confirm-exit"], {
    env: spec.env,
    input: "1+41\n", // then end of input: the console exits without asking
    timeoutMs: 90_000,
  });
  assert.equal(result.code, 0, describeRun("jupyter console", result));
  assert.match(result.stdout, /Out\[1\]: 42\b/, describeRun("jupyter console", result));
});
