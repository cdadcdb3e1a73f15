/**
 * The classic Jupyter Notebook (Debian's 6.4) on a loopback port, driven by Debian's headless
 * Chromium through playwright-core: the way a user sees farlab's output in a browser.
 *
 *  - startNotebookServer: `python3 -m notebook` with a random token, serving one folder; ready
 *    when its REST API answers. stop() sends SIGTERM, on which the server shuts its kernels down.
 *  - launchChromium: /usr/bin/chromium, headless, with nothing that reaches the network.
 *  - ClassicNotebookPage: opens a notebook and waits on the page's own state (Jupyter.notebook:
 *    kernel connected and idle, cells' execution counts), never on fixed delays.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { launchJupyterApp, type RunningJupyterApp } from "./jupyter-server";
import { SYSTEM_PYTHON } from "./processes";

export const CHROMIUM = "/usr/bin/chromium";

export interface RunningNotebookServer extends RunningJupyterApp {
  /** A page of the server (e.g. "notebooks/x.ipynb"), with the token in the query. */
  pageUrl(pagePath: string): string;
  /** The last `lines` lines the server printed, for failure messages. */
  logTail(lines?: number): string;
}

export interface NotebookServerOptions {
  /** The server's environment (JUPYTER_PATH for kernelspecs, what the kernels should see). */
  env: NodeJS.ProcessEnv;
  /** The folder the server serves (its notebook_dir, also the kernels' working directory). */
  notebookDir: string;
  /**
   * A private folder for the server's Jupyter config and data (notebook_secret, the trust
   * database), so the user's are neither read nor written.
   */
  stateDir: string;
}

export async function startNotebookServer(options: NotebookServerOptions): Promise<RunningNotebookServer> {
  const configDir = path.join(options.stateDir, "config");
  const dataDir = path.join(options.stateDir, "data");
  for (const dir of [configDir, dataDir]) fs.mkdirSync(dir, { recursive: true });
  const app = await launchJupyterApp({
    name: "the notebook server",
    command: SYSTEM_PYTHON,
    appArgs: ["-m", "notebook"],
    args: (token) => [`--NotebookApp.token=${token}`, `--NotebookApp.notebook_dir=${options.notebookDir}`],
    env: { ...options.env, JUPYTER_CONFIG_DIR: configDir, JUPYTER_DATA_DIR: dataDir },
  });
  return {
    ...app,
    pageUrl: (pagePath) => `${app.baseUrl}${pagePath}?token=${app.token}`,
    logTail: (lines = 40) => app.log().trimEnd().split("\n").slice(-lines).join("\n"),
  };
}

/** Debian's Chromium, headless; no sandbox (tests run as root), nothing that phones home. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/** One code cell as the page's notebook model sees it. */
export interface CodeCellState {
  index: number;
  /** null before a run, "*" while queued or running, the execution count after. */
  prompt: number | string | null;
  source: string;
  outputs: Array<{ output_type: string; name?: string; text?: string; ename?: string; evalue?: string; data?: Record<string, unknown> }>;
}

/* The page's globals (require.js modules of the classic notebook), as far as these helpers use them. */
interface ClassicCell {
  cell_type: string;
  input_prompt_number: number | string | null;
  get_text(): string;
  output_area: { outputs: CodeCellState["outputs"] };
}
interface ClassicNotebook {
  kernel: { is_connected(): boolean; info_reply: { language_info?: { name?: string } } } | null;
  kernel_busy: boolean;
  get_cells(): ClassicCell[];
  clear_all_output(): void;
  execute_all_cells(): void;
}
declare const Jupyter: { notebook?: ClassicNotebook } | undefined;

/** A notebook opened in the classic notebook UI. */
export class ClassicNotebookPage {
  /** Uncaught exceptions in the page (e.g. an output's script failing), for failure messages. */
  readonly pageErrors: string[] = [];

  private constructor(readonly page: Page) {
    page.on("pageerror", (error) => this.pageErrors.push(error.message));
  }

  /** Opens `url` and waits until the notebook's kernel is connected, answered kernel_info and is idle. */
  static async open(browser: Browser, url: string, options: { timeoutMs: number }): Promise<ClassicNotebookPage> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const notebook = new ClassicNotebookPage(page);
    await page.goto(url);
    await page.waitForFunction(
      () => {
        const nb = typeof Jupyter === "undefined" ? undefined : Jupyter.notebook;
        const kernel = nb?.kernel;
        return !!kernel && kernel.is_connected() && kernel.info_reply.language_info !== undefined && !nb!.kernel_busy;
      },
      undefined,
      { timeout: options.timeoutMs, polling: 250 },
    );
    return notebook;
  }

  kernelLanguage(): Promise<string | undefined> {
    return this.page.evaluate(() => Jupyter!.notebook!.kernel!.info_reply.language_info?.name);
  }

  /**
   * Clears old outputs, runs every cell (Cell > Run All) and waits until none is queued or running
   * and the kernel is idle. A cell that fails makes the kernel abort the queued ones, whose
   * prompts go blank: the wait ends then too, and the caller sees them without a count.
   */
  async runAllCells(options: { timeoutMs: number }): Promise<CodeCellState[]> {
    await this.page.evaluate(() => {
      const nb = Jupyter!.notebook!;
      nb.clear_all_output();
      nb.execute_all_cells(); // marks every code cell "*" before it returns
    });
    await this.page.waitForFunction(
      () => {
        const nb = Jupyter!.notebook!;
        return !nb.kernel_busy && nb.get_cells().every((cell) => cell.cell_type !== "code" || cell.input_prompt_number !== "*");
      },
      undefined,
      { timeout: options.timeoutMs, polling: 250 },
    );
    return this.codeCells();
  }

  codeCells(): Promise<CodeCellState[]> {
    return this.page.evaluate(() =>
      Jupyter!
        .notebook!.get_cells()
        .map((cell, index) => ({ cell, index }))
        .filter(({ cell }) => cell.cell_type === "code")
        .map(({ cell, index }) => ({
          index,
          prompt: cell.input_prompt_number ?? null,
          source: cell.get_text(),
          // JSON copies: the model's objects hold references into the page
          outputs: JSON.parse(JSON.stringify(cell.output_area.outputs)),
        })),
    );
  }

  /**
   * The whole notebook in one image. The classic UI scrolls inside #site, not the document, so
   * a plain full-page screenshot would show one screen: let #site grow to its content first.
   */
  async screenshot(file: string): Promise<void> {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await this.page.addStyleTag({
      content: "body { position: static !important; } #site { height: auto !important; overflow: visible !important; }",
    });
    await this.page.screenshot({ path: file, fullPage: true });
  }

  /** What the page shows, in a few lines per cell, for failure messages. */
  async describe(): Promise<string> {
    try {
      const cells = await this.codeCells();
      const lines = cells.map((cell) => {
        const outputs = cell.outputs.map((o) =>
          o.output_type === "error"
            ? `error ${o.ename}: ${o.evalue}`
            : o.output_type === "stream"
              ? `${o.name}: ${(o.text ?? "").slice(0, 200).trimEnd()}`
              : `${o.output_type} [${Object.keys(o.data ?? {}).join(", ")}]`,
        );
        return `cell ${cell.index} [${cell.prompt ?? " "}] ${cell.source.split("\n")[0]}\n    ${outputs.join("\n    ") || "(no output)"}`;
      });
      const errors = this.pageErrors.length ? `\npage errors:\n  ${this.pageErrors.join("\n  ")}` : "";
      return lines.join("\n") + errors;
    } catch (error) {
      return `(the page could not be read: ${(error as Error).message})`;
    }
  }
}
