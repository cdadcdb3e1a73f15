/**
 * `farlab run NOTEBOOK`: a notebook executed headless through a real farlab kernel (no Python in
 * the loop), checked on the notebook it writes, with nbformat's own validator.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FARLAB_CLI } from "./helpers/repo";
import { SYSTEM_PYTHON, describeRun, runProgram } from "./helpers/processes";

let dir: string;
let env: NodeJS.ProcessEnv;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "farlab-run-"));
  // Keep the kernels' input history out of the user's home.
  env = { ...process.env, FARLAB_HISTORY_DIR: path.join(dir, "history") };
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Cell {
  cell_type: string;
  source: string | string[];
  metadata: Record<string, unknown>;
  outputs?: Array<Record<string, any>>;
  execution_count?: number | null;
}

function writeNotebook(name: string, cells: Cell[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify({ cells, metadata: {}, nbformat: 4, nbformat_minor: 4 }));
  return file;
}

const code = (source: string, metadata: Record<string, unknown> = {}): Cell => ({ cell_type: "code", source, metadata, outputs: [], execution_count: null });

function readNotebook(file: string): { cells: Cell[]; metadata: Record<string, any> } {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

const joined = (text: string | string[] | undefined): string => (Array.isArray(text) ? text.join("") : (text ?? ""));

async function assertValidNbformat(file: string): Promise<void> {
  const check = await runProgram(SYSTEM_PYTHON, ["-c", "import sys, nbformat; nbformat.validate(nbformat.read(sys.argv[1], 4))", file]);
  assert.equal(check.code, 0, describeRun("nbformat.validate", check));
}

test("farlab run executes every cell and writes outputs in nbformat 4 shape", async () => {
  const input = writeNotebook("ok.ipynb", [
    { cell_type: "markdown", source: "# a notebook", metadata: {} },
    code("const answer: number = 6 * 7;\nanswer"),
    code('console.log("one");\nconsole.log("two");\nconsole.error("warn");\nconsole.log("three");'),
    code('display.html("<b>bold</b>");\n"after display"'),
    code('const d = display.newDisplay();\nd.text("first");\nd.text("second");'),
    code('display.html("<i>gone</i>");\ndisplay.clear(true);\ndisplay.html("<i>kept</i>");'),
    code('throw new Error("expected")', { tags: ["raises-exception"] }),
    code("answer + 1"),
  ]);
  const output = path.join(dir, "custom-output.ipynb");
  const run = await runProgram(process.execPath, [FARLAB_CLI, "run", input, "--output", output], { env, timeoutMs: 60_000 });
  assert.equal(run.code, 0, describeRun("farlab run", run));
  assert.match(run.stdout, new RegExp(`wrote ${output.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  await assertValidNbformat(output);

  const notebook = readNotebook(output);
  assert.equal(notebook.metadata.kernelspec.name, "farlab");
  assert.equal(notebook.metadata.language_info.name, "typescript");
  const [markdown, value, streams, html, updated, cleared, tagged, afterTagged] = notebook.cells;
  assert.equal(joined(markdown.source), "# a notebook");
  assert.equal(markdown.outputs, undefined);

  assert.equal(value.execution_count, 1);
  assert.deepEqual(value.outputs, [{ output_type: "execute_result", execution_count: 1, data: { "text/plain": ["42"] }, metadata: {} }]);

  // consecutive writes to one stream are one output; a switch of stream starts a new one
  const streamOutputs = streams.outputs!.map((o) => [o.output_type, o.name, joined(o.text)]);
  assert.deepEqual(
    streamOutputs.filter(([, name]) => name === "stdout").map(([, , text]) => text).join(""),
    "one\ntwo\nthree\n",
  );
  assert.ok(streamOutputs.some(([type, name, text]) => type === "stream" && name === "stderr" && text === "warn\n"), JSON.stringify(streamOutputs));
  assert.ok(streamOutputs.length <= 3, `expected merged streams, got ${JSON.stringify(streamOutputs)}`);

  assert.equal(html.outputs!.length, 2);
  assert.equal(html.outputs![0].output_type, "display_data");
  assert.equal(joined(html.outputs![0].data["text/html"]), "<b>bold</b>");
  assert.equal(html.outputs![1].output_type, "execute_result");
  assert.equal(html.outputs![1].execution_count, html.execution_count);

  // update_display_data rewrote the display in place instead of adding an output
  assert.equal(updated.outputs!.length, 1, JSON.stringify(updated.outputs));
  assert.equal(joined(updated.outputs![0].data["text/plain"]), "second");

  // clear_output(wait=true) removed what came before, kept what came after
  assert.deepEqual(cleared.outputs!.map((o) => joined(o.data?.["text/html"])), ["<i>kept</i>"]);

  // a cell tagged raises-exception may fail without stopping the run (as in nbclient)
  assert.equal(tagged.outputs![0].output_type, "error");
  assert.equal(joined(afterTagged.outputs![0].data["text/plain"]), "43");
});

test("farlab run stops at the first error, still writes the notebook, and exits non-zero", async () => {
  const input = writeNotebook("fails.ipynb", [
    code('"before"'),
    code('throw new RangeError("out of range")'),
    code('"never run"'),
  ]);
  const run = await runProgram(process.execPath, [FARLAB_CLI, "run", input], { env, timeoutMs: 60_000 });
  assert.notEqual(run.code, 0, describeRun("farlab run", run));
  assert.match(run.stderr, /RangeError: out of range/);

  const written = path.join(dir, "fails.executed.ipynb"); // the default: beside the input, input untouched
  assert.match(run.stdout, /wrote .*fails\.executed\.ipynb/);
  await assertValidNbformat(written);
  assert.deepEqual(readNotebook(input).cells[0].outputs, []);

  const [first, failing, skipped] = readNotebook(written).cells;
  assert.equal(joined(first.outputs![0].data["text/plain"]), "'before'");
  const error = failing.outputs!.find((o) => o.output_type === "error");
  assert.ok(error, JSON.stringify(failing.outputs));
  assert.equal(error.ename, "RangeError");
  assert.equal(error.evalue, "out of range");
  assert.ok(Array.isArray(error.traceback) && error.traceback.length > 0);
  assert.equal(skipped.execution_count, null);
  assert.deepEqual(skipped.outputs, []);
});

test("farlab run --timeout interrupts a cell that runs too long and fails the run", async () => {
  const input = writeNotebook("slow.ipynb", [
    code('"warm"'), // the executor is ready once this returns, so the timeout below hits a running cell
    code('console.log("started");\nawait new Promise(() => {});'),
    code('"not reached"'),
  ]);
  const run = await runProgram(process.execPath, [FARLAB_CLI, "run", input, "--timeout", "2"], { env, timeoutMs: 60_000 });
  assert.notEqual(run.code, 0, describeRun("farlab run", run));
  assert.match(run.stderr, /CellTimeoutError/);
  const [, slow, next] = readNotebook(path.join(dir, "slow.executed.ipynb")).cells;
  assert.equal(joined(slow.outputs![0].text), "started\n");
  assert.equal(slow.outputs!.some((o) => o.output_type === "error"), true, JSON.stringify(slow.outputs));
  assert.equal(next.execution_count, null);
});
