/**
 * The kernel through the clients people use: nbclient (`jupyter execute`, `python3 -m nbconvert
 * --execute`), `jupyter console`, and JupyterLab's own client library (@jupyterlab/services)
 * through a real jupyter-server, over WebSockets.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { KernelManager, ServerConnection, type Kernel, type KernelMessage } from "@jupyterlab/services";
import WebSocket from "ws";
import { installFarlab, type KernelspecPrefix } from "./helpers/kernelspec";
import { startJupyterServer } from "./helpers/jupyter-server";
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

test("nbclient writes the outputs of a farlab notebook", { timeout: 120_000 }, async () => {
  const input = path.join(spec.prefix, "outputs.ipynb");
  writeNotebook(input, [
    "const greeting: string = 'farlab'",
    "console.log(`hello from ${greeting}`)",
    "[1, 2, 3].map((x) => x * 2)",
    'display.html("<i>rich</i>")',
  ]);
  // Debian ships nbconvert as a module only (no jupyter-nbconvert script); it executes through nbclient.
  const result = await runProgram(
    SYSTEM_PYTHON,
    ["-m", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.kernel_name=farlab", "--output", "executed.ipynb", input],
    { env: spec.env, timeoutMs: 90_000 },
  );
  assert.equal(result.code, 0, describeRun("jupyter nbconvert --execute", result));
  const executed = JSON.parse(fs.readFileSync(path.join(spec.prefix, "executed.ipynb"), "utf8")) as { cells: NotebookCell[] };
  const [declare, print, array, html] = executed.cells;
  assert.deepEqual(declare.outputs, []);
  assert.deepEqual(
    print.outputs.map((o) => [o.output_type, o.name, o.text]),
    [["stream", "stdout", "hello from farlab\n"]],
  );
  assert.equal(array.outputs.length, 1);
  assert.equal(array.outputs[0].output_type, "execute_result");
  assert.equal(array.outputs[0].data["text/plain"], "[ 2, 4, 6 ]");
  assert.equal(array.outputs[0].execution_count, array.execution_count);
  assert.equal(html.outputs[0].output_type, "display_data");
  assert.equal(html.outputs[0].data["text/html"], "<i>rich</i>");
  assert.equal(typeof html.outputs[0].data["text/plain"], "string");
  assert.deepEqual(
    executed.cells.map((c) => c.execution_count),
    [1, 2, 3, 4],
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

/** Resolves with the first iopub message of `future` that matches; rejects if the future ends first. */
function nextIopub(
  future: Kernel.IShellFuture<KernelMessage.IExecuteRequestMsg, KernelMessage.IExecuteReplyMsg>,
  matches: (msg: KernelMessage.IIOPubMessage) => boolean,
): Promise<KernelMessage.IIOPubMessage> {
  return new Promise((resolve, reject) => {
    future.onIOPub = (msg) => {
      if (matches(msg)) resolve(msg);
    };
    future.done.then(() => reject(new Error("the request finished before the awaited message")), reject);
  });
}

async function executeCollecting(kernel: Kernel.IKernelConnection, code: string) {
  const future = kernel.requestExecute({ code });
  const iopub: KernelMessage.IIOPubMessage[] = [];
  future.onIOPub = (msg) => {
    iopub.push(msg);
  };
  const reply = await future.done;
  return { reply, iopub };
}

function resultText(iopub: KernelMessage.IIOPubMessage[]): string | undefined {
  const result = iopub.find((m) => m.header.msg_type === "execute_result") as KernelMessage.IExecuteResultMsg | undefined;
  return result?.content.data["text/plain"] as string | undefined;
}

test("@jupyterlab/services drives farlab through jupyter-server", { timeout: 180_000 }, async (t) => {
  const server = await startJupyterServer(spec.env, spec.prefix);
  t.after(() => server.stop());
  const serverSettings = ServerConnection.makeSettings({
    baseUrl: server.baseUrl,
    wsUrl: server.wsUrl,
    token: server.token,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    fetch: globalThis.fetch,
  });
  const manager = new KernelManager({ serverSettings });
  t.after(() => manager.dispose());

  const kernel = await manager.startNew({ name: "farlab" });
  try {
    const info = await kernel.info; // resolves once the WebSocket is up and kernel_info answered
    assert.equal(info.language_info.name, "typescript");

    const first = await executeCollecting(kernel, 'const kept = 41; console.log("from lab"); kept + 1');
    assert.equal(first.reply.content.status, "ok");
    assert.equal(resultText(first.iopub), "42");
    const streams = first.iopub.filter((m) => m.header.msg_type === "stream") as KernelMessage.IStreamMsg[];
    assert.equal(streams.map((m) => m.content.text).join(""), "from lab\n");

    const spinning = kernel.requestExecute({ code: 'console.log("spinning"); while (true) {}' });
    await nextIopub(spinning, (m) => m.header.msg_type === "stream");
    await kernel.interrupt();
    const interrupted = await spinning.done;
    assert.equal(interrupted.content.status, "error");
    const afterInterrupt = await executeCollecting(kernel, "kept + 1");
    assert.equal(resultText(afterInterrupt.iopub), "42", "state survives the interrupt");

    await kernel.restart();
    const afterRestart = await executeCollecting(kernel, "typeof kept");
    assert.equal(afterRestart.reply.content.status, "ok");
    assert.equal(resultText(afterRestart.iopub), "'undefined'", "a restart starts from fresh state");
  } finally {
    await kernel.shutdown();
  }
  const running = (await server.get("api/kernels")) as unknown[];
  assert.deepEqual(running, [], server.log());
});
