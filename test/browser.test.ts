/**
 * notebooks/quickstart.ipynb in a real browser: the classic Jupyter Notebook (Debian's 6.4) with
 * the farlab kernel, driven by headless Chromium (playwright-core). Runs every cell, including the
 * remote ones (the embedded agent, process backend), then checks what a user would see: every
 * cell ran, the plotly figure is drawn (as SVG, by plotly.js that the figure's own HTML brought),
 * the progress bar stands at 100%, and no error anywhere. Leaves a full-page screenshot in
 * test-output/browser/quickstart.png (on failure: quickstart-failure.png).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Browser } from "playwright-core";
import { installFarlab } from "./helpers/kernelspec";
import { ClassicNotebookPage, launchChromium, startNotebookServer, type RunningNotebookServer } from "./helpers/notebook-server";
import { SYSTEM_PYTHON } from "./helpers/processes";
import { REPO_ROOT } from "./helpers/repo";
import { waitFor } from "./helpers/wait";

const NOTEBOOK = "quickstart.ipynb";
const SCREENSHOT_DIR = path.join(REPO_ROOT, "test-output", "browser");
const SCREENSHOT = path.join(SCREENSHOT_DIR, "quickstart.png");
const FAILURE_SCREENSHOT = path.join(SCREENSHOT_DIR, "quickstart-failure.png");

/** Processes whose command line mentions `dir` (the kernel's connection file, the agent's data dir). */
function processesMentioning(dir: string): Array<{ pid: number; command: string }> {
  const found: Array<{ pid: number; command: string }> = [];
  for (const entry of fs.readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const command = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
      if (command.includes(dir)) found.push({ pid, command });
    } catch {
      // exited while we looked
    }
  }
  return found;
}

/** Waits (bounded) for processes that mention `dir` to exit; kills and returns those that did not. */
async function reapProcessesMentioning(dir: string): Promise<string[]> {
  try {
    await waitFor(() => processesMentioning(dir).length === 0, { what: `processes under ${dir} to exit`, timeoutMs: 20_000, intervalMs: 200 });
    return [];
  } catch {
    const left = processesMentioning(dir);
    for (const { pid } of left) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    return left.map(({ pid, command }) => `${pid} ${command}`);
  }
}

test("the quickstart runs in the classic notebook in Chromium: plotly drawn, progress at 100%, no errors", { timeout: 300_000 }, async () => {
  const spec = await installFarlab("browser");
  const notebookDir = path.join(spec.prefix, "notebooks");
  fs.mkdirSync(notebookDir, { recursive: true });
  fs.copyFileSync(path.join(REPO_ROOT, "notebooks", NOTEBOOK), path.join(notebookDir, NOTEBOOK));
  for (const stale of [SCREENSHOT, FAILURE_SCREENSHOT]) fs.rmSync(stale, { force: true });

  let server: RunningNotebookServer | undefined;
  let browser: Browser | undefined;
  let notebook: ClassicNotebookPage | undefined;
  let failed = false;
  try {
    server = await startNotebookServer({
      env: {
        ...spec.env,
        FARLAB_AGENT_BACKEND: "process",
        FARLAB_EMBEDDED_AGENT_DIR: path.join(spec.prefix, "agent"),
        // No agents.json here: %%remote uses the embedded agent, never the user's agents.
        FARLAB_CONFIG_DIR: path.join(spec.prefix, "farlab-config"),
        // The remote python cells' interpreter: Debian's (the pyenv python on PATH lacks packages).
        FARLAB_PYTHON: SYSTEM_PYTHON,
      },
      notebookDir,
      stateDir: path.join(spec.prefix, "jupyter-state"),
    });
    browser = await launchChromium();
    notebook = await ClassicNotebookPage.open(browser, server.pageUrl(`notebooks/${NOTEBOOK}`), { timeoutMs: 90_000 });
    assert.equal(await notebook.kernelLanguage(), "typescript", "the notebook's kernel is farlab's");

    // Generous: the first remote cell starts the embedded agent and its sessions on a busy machine.
    const cells = await notebook.runAllCells({ timeoutMs: 240_000 });
    const page = notebook.page;
    // plotly.js draws after the output's script runs (and after it found window.Plotly).
    await page
      .locator(".js-plotly-plot svg.main-svg")
      .first()
      .waitFor({ timeout: 60_000 })
      .catch((error: Error) => assert.fail(`the plotly figure was never drawn (no .js-plotly-plot svg.main-svg): ${error.message.split("\n")[0]}`));
    await notebook.screenshot(SCREENSHOT);

    assert.deepEqual(
      cells.map((cell) => cell.prompt),
      cells.map((_, i) => i + 1),
      "every code cell ran once, in order, on a fresh kernel",
    );

    const errors = cells.flatMap((cell) => cell.outputs.filter((o) => o.output_type === "error").map((o) => `cell ${cell.index}: ${o.ename}: ${o.evalue}`));
    assert.deepEqual(errors, [], "no cell shows an error");
    assert.equal(await page.locator(".output_error").count(), 0, "no error output on the page");
    const tracebacks = cells.flatMap((cell) =>
      cell.outputs
        .filter((o) => o.output_type === "stream" && o.name === "stderr" && /Traceback|Error\b|^\s+at /m.test(o.text ?? ""))
        .map((o) => `cell ${cell.index}: ${o.text}`),
    );
    assert.deepEqual(tracebacks, [], "no error or traceback on stderr");

    // The counts below are the quickstart's: 5 trials in the figure, a progress bar over 20 seeds.
    const plot = page.locator(".js-plotly-plot");
    assert.equal(await plot.count(), 1, "one plotly figure on the page");
    assert.equal(await plot.locator(".barlayer .point").count(), 5, "the figure draws its 5 bars");
    assert.equal((await plot.locator(".gtitle").textContent())?.trim(), "π estimates", "the figure's title is drawn");

    const progress = page.locator(".farlab-progress");
    assert.equal(await progress.count(), 1, "one progress bar on the page (updated in place)");
    const bar = await progress.locator("progress").evaluate((element) => ({ value: (element as HTMLProgressElement).value, max: (element as HTMLProgressElement).max }));
    assert.deepEqual(bar, { value: 20, max: 20 }, "the <progress> element is full");
    assert.match((await progress.textContent()) ?? "", /\b20\/20\b.*\b100%/, "the bar's text reads 20/20 ... 100%");

    assert.match(await page.locator(".output_area").allInnerTexts().then((texts) => texts.join("\n")), /computed on the agent: \[ 1, 4, 9, 16 \]/, "the remote cell's output streamed to the page");
  } catch (error) {
    // Every failure (an assertion, a wait that timed out) says what the page and the server show.
    failed = true;
    let context = "";
    if (notebook) {
      context += `\n--- the page ---\n${await notebook.describe()}`;
      try {
        await notebook.screenshot(FAILURE_SCREENSHOT);
        context += `\n(screenshot: ${FAILURE_SCREENSHOT})`;
      } catch (shotError) {
        context += `\n(no screenshot: ${(shotError as Error).message})`;
      }
    }
    if (server) context += `\n--- notebook server log (tail) ---\n${server.logTail()}`;
    if (error instanceof Error) error.message += context;
    throw error;
  } finally {
    await browser?.close().catch(() => undefined);
    await server?.stop();
    const leftovers = await reapProcessesMentioning(spec.prefix);
    spec.remove();
    // Stopping the server shuts its kernel down, and the embedded agent goes with the kernel.
    if (!failed) assert.deepEqual(leftovers, [], "no kernel or agent process outlives the notebook server");
  }
});
