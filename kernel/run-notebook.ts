/**
 * `farlab run NOTEBOOK.ipynb`: execute a notebook headless through a farlab kernel, with no
 * Python involved, and write the executed copy. Behaves like nbclient: code cells run in order,
 * outputs are rebuilt from iopub, the first error stops the run (cells tagged
 * "raises-exception" may fail), and the notebook is written even then.
 */
import { readFile, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import { z } from "zod";
import { KernelClient } from "./client/kernel-client";
import { launchKernel } from "./client/launcher";
import { CellOutputCollector, DisplayRegistry, type NotebookOutput } from "./client/notebook-outputs";
import { DISPLAY_NAME, KERNEL_NAME } from "./install";

const notebookSchema = z.looseObject({
  nbformat: z.literal(4),
  nbformat_minor: z.number(),
  metadata: z.record(z.string(), z.unknown()).default({}),
  cells: z.array(
    z.looseObject({
      cell_type: z.string(),
      source: z.union([z.string(), z.array(z.string())]),
      metadata: z.record(z.string(), z.unknown()).default({}),
    }),
  ),
});

type Notebook = z.infer<typeof notebookSchema>;
type Cell = Notebook["cells"][number] & { outputs?: NotebookOutput[]; execution_count?: number | null };

export interface RunNotebookOptions {
  /** Where to write the executed notebook; default NAME.executed.ipynb beside the input. */
  output?: string;
  /** Per-cell limit in seconds; a cell over it is interrupted and the run fails. */
  timeoutSeconds?: number;
  env?: NodeJS.ProcessEnv;
  /** Progress lines ("cell 3/7"), for a terminal. */
  log?: (line: string) => void;
}

export interface CellFailure {
  /** Index among all cells of the notebook (0-based). */
  cellIndex: number;
  ename: string;
  evalue: string;
  traceback: string[];
}

export interface RunNotebookResult {
  outputPath: string;
  failure?: CellFailure;
}

export class NotebookFormatError extends Error {
  override name = "NotebookFormatError";
}

export class CellTimeoutError extends Error {
  override name = "CellTimeoutError";
}

export function defaultOutputPath(input: string): string {
  const absolute = resolve(input);
  return join(dirname(absolute), `${basename(absolute, extname(absolute))}.executed.ipynb`);
}

export async function readNotebook(path: string): Promise<Notebook> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new NotebookFormatError(`${path} is not a JSON notebook: ${(error as Error).message}`);
  }
  const parsed = notebookSchema.safeParse(raw);
  if (!parsed.success) throw new NotebookFormatError(`${path} is not an nbformat 4 notebook: ${parsed.error.issues[0]?.message ?? ""}`);
  return parsed.data;
}

export async function runNotebook(inputPath: string, options: RunNotebookOptions = {}): Promise<RunNotebookResult> {
  const input = resolve(inputPath);
  const outputPath = resolve(options.output ?? defaultOutputPath(input));
  const notebook = await readNotebook(input);
  const log = options.log ?? (() => {});

  const kernel = await launchKernel({ cwd: dirname(input), env: options.env });
  const client = new KernelClient(kernel.connection);
  let failure: CellFailure | undefined;
  let kernelExit: string | undefined;
  void kernel.exited.then(({ code, signal }) => {
    kernelExit = signal ? `signal ${signal}` : `exit code ${code}`;
    client.failPending(new Error(`the kernel process ended (${kernelExit})`));
  });
  try {
    client.connect();
    const info = await Promise.race([client.waitForReady(), kernel.exited.then(() => Promise.reject(kernelDied(kernel.stderrTail())))]);
    await waitForExecutor(client);
    notebook.metadata.kernelspec = { name: KERNEL_NAME, display_name: DISPLAY_NAME, language: "typescript" };
    notebook.metadata.language_info = (info.content as { language_info?: unknown }).language_info ?? {};

    const displays = new DisplayRegistry();
    const codeCells = notebook.cells.map((cell, index) => ({ cell: cell as Cell, index })).filter(({ cell }) => cell.cell_type === "code");
    for (const { cell, index } of codeCells) {
      const source = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
      log(`cell ${index + 1}/${notebook.cells.length}`);
      failure = await runCell(client, cell, index, source, displays, options.timeoutSeconds);
      if (failure && !hasTag(cell, "raises-exception")) break;
      failure = undefined;
    }
  } catch (error) {
    const err = error as Error;
    failure = { cellIndex: -1, ename: err.name, evalue: kernelExit ? `${err.message}\n${kernel.stderrTail().trim()}` : err.message, traceback: [] };
  } finally {
    await shutdown(client, kernel);
  }
  await writeFile(outputPath, stringifyNotebook(notebook));
  return { outputPath, failure };
}

async function runCell(
  client: KernelClient,
  cell: Cell,
  cellIndex: number,
  source: string,
  displays: DisplayRegistry,
  timeoutSeconds: number | undefined,
): Promise<CellFailure | undefined> {
  let executionCount: number | null = null;
  const collector = new CellOutputCollector(displays, () => executionCount);
  cell.outputs = collector.outputs;
  cell.execution_count = null;
  const execution = client.execute(source, { onIopub: (message) => collector.handle(message) });

  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  if (timeoutSeconds && timeoutSeconds > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      void client.request("control", "interrupt_request", {}).catch(() => {});
    }, timeoutSeconds * 1000);
  }
  try {
    const { reply } = await execution;
    const content = reply.content as { status?: string; execution_count?: number; ename?: string; evalue?: string; traceback?: string[] };
    executionCount = content.execution_count ?? null;
    cell.execution_count = executionCount;
    if (timedOut) {
      const error = new CellTimeoutError(`the cell did not finish within ${timeoutSeconds} s and was interrupted`);
      return { cellIndex, ename: error.name, evalue: error.message, traceback: [] };
    }
    if (content.status === "error") return { cellIndex, ename: content.ename ?? "Error", evalue: content.evalue ?? "", traceback: content.traceback ?? [] };
    if (content.status === "aborted") return { cellIndex, ename: "Aborted", evalue: "the kernel aborted this cell", traceback: [] };
    return undefined;
  } catch (error) {
    return { cellIndex, ename: "KernelDied", evalue: (error as Error).message, traceback: [] };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The kernel answers kernel_info before its executor has loaded the compiler; an empty silent
 * cell returns once it has, so that start-up does not count against the first cell's --timeout.
 */
async function waitForExecutor(client: KernelClient): Promise<void> {
  const { reply } = await client.execute("", { silent: true, storeHistory: false });
  const content = reply.content as { status?: string; ename?: string; evalue?: string };
  if (content.status === "error") {
    const error = new Error(`the kernel could not start its executor: ${content.evalue ?? ""}`);
    error.name = content.ename ?? "KernelDied";
    throw error;
  }
}

/** Ask the kernel to shut down (as a kernel manager does), kill it if it does not, clean up. */
async function shutdown(client: KernelClient, kernel: Awaited<ReturnType<typeof launchKernel>>): Promise<void> {
  if (kernel.process.exitCode === null && kernel.process.signalCode === null) {
    await Promise.race([client.request("control", "shutdown_request", { restart: false }).catch(() => {}), kernel.exited, delay(5000)]);
    await Promise.race([kernel.exited, delay(5000)]);
  }
  client.close();
  await kernel.dispose();
}

function kernelDied(stderr: string): Error {
  const error = new Error(`the kernel exited during start-up${stderr.trim() ? `:\n${stderr.trim()}` : ""}`);
  error.name = "KernelDied";
  return error;
}

function hasTag(cell: Cell, tag: string): boolean {
  const tags = (cell.metadata as { tags?: unknown }).tags;
  return Array.isArray(tags) && tags.includes(tag);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** nbformat's on-disk style: multi-line strings as lists of lines, sorted keys, indent 1. */
export function stringifyNotebook(notebook: Notebook): string {
  for (const cell of notebook.cells as Cell[]) {
    if (typeof cell.source === "string") cell.source = splitLines(cell.source);
    for (const output of cell.outputs ?? []) {
      if (output.output_type === "stream") (output as { text: unknown }).text = splitLines(output.text);
      if ("data" in output) splitMimeBundle(output.data);
    }
  }
  return JSON.stringify(sortKeys(notebook), null, 1) + "\n";
}

const SPLIT_MIMES = new Set(["application/javascript", "image/svg+xml"]);

function splitMimeBundle(data: Record<string, unknown>): void {
  for (const [mime, value] of Object.entries(data)) {
    if (typeof value === "string" && (mime.startsWith("text/") || SPLIT_MIMES.has(mime))) data[mime] = splitLines(value);
  }
}

/** Python's str.splitlines(keepends=True) for the usual line ends. */
function splitLines(text: string): string[] {
  return text.match(/[^\r\n]*(\r\n|\r|\n)|[^\r\n]+$/g) ?? [];
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}
