/**
 * Every example notebook in notebooks/ (found there, not listed here) runs top to bottom through
 * Jupyter's own executor, nbclient (Debian's python3-nbclient, test/python/run_notebook.py), with
 * the farlab kernelspec and its embedded agent on the Docker backend in the test image, as a user's
 * `jupyter nbconvert --execute` would. One test per notebook, in order; each fails on any error
 * output (naming the notebook, the cell and the error), on a cell that did not run, and when the
 * notebook showed no result (a figure, an image or an HTML table). Notebooks whose results can be
 * judged get checks of their own (CHECKS below).
 *
 * Each notebook runs with a fresh agent data dir and an empty working folder, so its volumes and
 * the files it makes are its own; the notebooks that promise to clean up are checked to have.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TEST_IMAGE, removeContainersOf, requireDocker } from "./docker-helpers";
import { installFarlab, type KernelspecPrefix } from "./helpers/kernelspec";
import { SYSTEM_PYTHON, describeRun, runProgram } from "./helpers/processes";
import { PYTHON_TEST_DIR, REPO_ROOT } from "./helpers/repo";

const NOTEBOOK_DIR = path.join(REPO_ROOT, "notebooks");
/** The notebooks to run: every *.ipynb but the outputs of `farlab run` (*.executed.ipynb). */
const NOTEBOOKS = fs
  .readdirSync(NOTEBOOK_DIR)
  .filter((name) => name.endsWith(".ipynb") && !name.endsWith(".executed.ipynb") && !name.startsWith("."))
  .sort();

/** One notebook's whole run (nbclient's own per-cell limit is CELL_TIMEOUT_S); under the
 * runner's 300 s per test (scripts/run-tests.js), so a hung notebook fails with its outputs. */
const RUN_TIMEOUT_MS = 280_000;
const CELL_TIMEOUT_S = 240;

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

interface Cell {
  cell_type: string;
  source: string | string[];
  metadata: { tags?: string[] };
  outputs?: Output[];
  execution_count?: number | null;
}

interface Notebook {
  cells: Cell[];
}

/** What one run left: the executed notebook, the working folder and the agent's data dir. */
interface Run {
  name: string;
  notebook: Notebook;
  workDir: string;
  agentDir: string;
}

const PLOTLY = "application/vnd.plotly.v1+json";
const joined = (text: unknown): string => (Array.isArray(text) ? text.join("") : typeof text === "string" ? text : "");
const firstLine = (cell: Cell): string => joined(cell.source).split("\n")[0].slice(0, 80);
const raisesOnPurpose = (cell: Cell): boolean => cell.metadata.tags?.includes("raises-exception") ?? false;
const codeCells = (nb: Notebook) => nb.cells.map((cell, index) => ({ cell, index })).filter(({ cell }) => cell.cell_type === "code");

/** Every output's data of one MIME type, in order (display_data and execute_result). */
function dataOf(nb: Notebook, mime: string): string[] {
  return nb.cells.flatMap((cell) => (cell.outputs ?? []).filter((o) => o.data?.[mime] !== undefined).map((o) => {
    const value = o.data![mime];
    return typeof value === "string" || Array.isArray(value) ? joined(value) : JSON.stringify(value);
  }));
}

/** All the text a reader sees: text/plain, markdown and html outputs, and the streams. */
function allText(nb: Notebook): string {
  const streams = nb.cells.flatMap((cell) => (cell.outputs ?? []).filter((o) => o.output_type === "stream").map((o) => joined(o.text)));
  return [...dataOf(nb, "text/plain"), ...dataOf(nb, "text/markdown"), ...dataOf(nb, "text/html"), ...streams].join("\n");
}

/** The progress bars shown (their text/plain lines), e.g. "batches  10/10 [####] 100% ...". */
const progressBars = (nb: Notebook): string[] =>
  nb.cells.flatMap((cell) => (cell.outputs ?? []).filter((o) => joined(o.data?.["text/html"]).includes("farlab-progress")).map((o) => joined(o.data?.["text/plain"])));

interface Figure {
  data: Array<Record<string, unknown>>;
  layout?: { title?: { text?: string } };
}

/** Plotly figures shown, as their JSON specs. */
const plotlyFigures = (nb: Notebook): Figure[] =>
  nb.cells.flatMap((cell) => (cell.outputs ?? []).flatMap((o) => (o.data?.[PLOTLY] ? [o.data[PLOTLY] as Figure] : [])));
const titleOf = (figure: Figure): string => figure.layout?.title?.text ?? "";

/** The number a notebook printed where `pattern`'s NUMBER stands (e.g. /π ≈ NUMBER/); fails naming it. */
function numberIn(nb: Notebook, pattern: RegExp): number {
  const match = allText(nb).match(new RegExp(pattern.source.replace("NUMBER", "(-?[0-9][0-9.,]*(?:e[-+]?[0-9]+)?)")));
  assert.ok(match, `no output matches ${pattern}`);
  return Number(match[1].replace(/,/g, ""));
}

/** For the notebooks that clean up after themselves: no local files, no volumes left. */
function assertCleanedUp(run: Run): void {
  assert.deepEqual(fs.readdirSync(run.workDir), [], `${run.name} left files in its working folder`);
  const volumes = path.join(run.agentDir, "volumes");
  const left = fs.existsSync(volumes) ? fs.readdirSync(volumes).filter((name) => !name.startsWith(".")) : [];
  assert.deepEqual(left, [], `${run.name} left volumes on the agent`);
}

/** Checks of what particular notebooks computed, by file name; every notebook gets the generic ones. */
const CHECKS: Record<string, (run: Run) => void> = {
  "monte-carlo-pi.ipynb": ({ notebook }) => {
    const estimate = numberIn(notebook, /π ≈ NUMBER/);
    assert.ok(Math.abs(estimate - Math.PI) < 0.01, `the estimate ${estimate} is not within 0.01 of π`);
    assert.ok(progressBars(notebook).some((bar) => /^trial\s+16\/16/.test(bar)), `no finished %map bar: ${progressBars(notebook)}`);
    const titles = plotlyFigures(notebook).map((f) => titleOf(f));
    assert.ok(titles.some((t) => t.includes("Running estimate")) && titles.some((t) => t.includes("sample size")), titles.join(", "));
  },
  "parallel-processing.ipynb": (run) => {
    const { notebook } = run;
    assert.match(allText(notebook), /results in input order: <b>true<\/b>/);
    // The deliberately failing %map names each failed input; --return-exceptions puts them in place.
    const mapError = notebook.cells.flatMap((c) => c.outputs ?? []).find((o) => o.output_type === "error");
    assert.equal(mapError?.ename, "MapError");
    assert.match(mapError?.evalue ?? "", /3 of 120 inputs failed; the first: input 7/);
    assert.match(allText(notebook), /117 documents analysed, 3 failed/);
    assert.ok(progressBars(notebook).some((bar) => /^batches\s+10\/10/.test(bar)), `no finished batch bar: ${progressBars(notebook)}`);
    assertCleanedUp(run);
  },
  "molecular-dynamics.ipynb": ({ notebook }) => {
    const drift = numberIn(notebook, /relative energy drift: NUMBER/);
    assert.ok(drift >= 0 && drift < 0.01, `velocity Verlet should conserve energy; the drift was ${drift}`);
    assert.ok(progressBars(notebook).some((bar) => /^velocity Verlet\s+2000\/2000/.test(bar)), `no finished bar: ${progressBars(notebook)}`);
    const energies = plotlyFigures(notebook).find((f) => titleOf(f).startsWith("Energies"));
    assert.deepEqual(energies?.data.map((trace) => trace.name), ["kinetic", "potential", "total"]);
  },
  "etl.ipynb": (run) => {
    const { notebook } = run;
    const generated = numberIn(notebook, /files, NUMBER readings/);
    const read = numberIn(notebook, /Read \*\*NUMBER\*\*/);
    const dropped = numberIn(notebook, /dropped \*\*NUMBER\*\*/);
    assert.equal(read, generated, "every generated reading reached the transform");
    assert.ok(dropped > 0 && dropped < read * 0.05, `dropped ${dropped} of ${read}`);
    assert.ok(dataOf(notebook, "text/html").some((html) => html.includes("mean_temperature")), "the pandas summary table is shown");
    const chart = plotlyFigures(notebook).find((f) => titleOf(f).includes("Hourly mean temperature"));
    assert.equal(chart?.data.length, 6, "one line per sensor");
    assertCleanedUp(run);
  },
  "image-pipeline.ipynb": (run) => {
    const { notebook } = run;
    assert.ok(dataOf(notebook, "image/png").length > 0, "a raw frame is shown as image/png");
    const counted = numberIn(notebook, /NUMBER of 12 images counted exactly/);
    assert.ok(counted >= 10, `only ${counted} of 12 images were counted exactly`);
    assert.ok(dataOf(notebook, "text/html").some((html) => (html.match(/<img /g) ?? []).length === 24), "raw and detected images of all 12 frames");
    assertCleanedUp(run);
  },
};

let spec: KernelspecPrefix;

before(async () => {
  await requireDocker();
  spec = await installFarlab("notebooks");
});

after(() => spec?.remove());

test("the notebooks folder has the example notebooks", () => {
  for (const name of ["quickstart.ipynb", ...Object.keys(CHECKS)]) assert.ok(NOTEBOOKS.includes(name), `${name} is missing from notebooks/`);
});

for (const name of NOTEBOOKS) {
  test(`notebooks/${name} runs top to bottom and shows its results`, { timeout: RUN_TIMEOUT_MS + 15_000 }, async (t) => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `farlab-notebook-${path.basename(name, ".ipynb")}-`));
    const workDir = path.join(scratch, "work");
    const agentDir = path.join(scratch, "agent");
    const executed = path.join(scratch, name);
    fs.mkdirSync(workDir);
    try {
      const run = await runProgram(
        SYSTEM_PYTHON,
        [path.join(PYTHON_TEST_DIR, "run_notebook.py"), path.join(NOTEBOOK_DIR, name), executed, "--cwd", workDir, "--cell-timeout", String(CELL_TIMEOUT_S)],
        {
          env: {
            ...spec.env,
            FARLAB_AGENT_BACKEND: "docker",
            FARLAB_DOCKER_IMAGE: TEST_IMAGE,
            FARLAB_EMBEDDED_AGENT_DIR: agentDir,
          },
          timeoutMs: RUN_TIMEOUT_MS,
        },
      );
      const report = () => describeRun(`run_notebook.py ${name}`, run);
      assert.ok(fs.existsSync(executed), `no executed notebook was written\n${report()}`);
      const notebook = JSON.parse(fs.readFileSync(executed, "utf8")) as Notebook;

      const errors = codeCells(notebook).flatMap(({ cell, index }) =>
        (cell.outputs ?? [])
          .filter((o) => o.output_type === "error" && !raisesOnPurpose(cell))
          .map((o) => `${name} cell ${index} (${firstLine(cell)}): ${o.ename}: ${o.evalue}`),
      );
      assert.deepEqual(errors, [], `${name} has error output:\n${errors.join("\n")}`);
      assert.equal(run.code, 0, report());
      const notRun = codeCells(notebook).filter(({ cell }) => cell.execution_count == null).map(({ index, cell }) => `cell ${index} (${firstLine(cell)})`);
      assert.deepEqual(notRun, [], `${name}: cells that did not run`);
      const claimed = codeCells(notebook).filter(({ cell }) => raisesOnPurpose(cell) && !(cell.outputs ?? []).some((o) => o.output_type === "error"));
      assert.deepEqual(claimed.map(({ index }) => index), [], `${name}: cells tagged raises-exception that raised nothing`);

      const shown = [
        ...plotlyFigures(notebook),
        ...["image/png", "image/jpeg", "image/svg+xml"].flatMap((mime) => dataOf(notebook, mime)),
        ...dataOf(notebook, "text/html").filter((html) => !html.includes("farlab-progress")),
      ];
      assert.ok(shown.length > 0, `${name} shows no figure, image or HTML result`);

      CHECKS[name]?.({ name, notebook, workDir, agentDir });

      const timing = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as { seconds?: number; cells?: Array<[number, number | null]> };
      const slowest = (timing.cells ?? []).filter(([, s]) => s !== null).sort((a, b) => b[1]! - a[1]!).slice(0, 3);
      t.diagnostic(`${name}: ${timing.seconds} s; slowest cells ${slowest.map(([i, s]) => `${i}: ${s} s`).join(", ")}`);
    } finally {
      await removeContainersOf(agentDir);
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
}
