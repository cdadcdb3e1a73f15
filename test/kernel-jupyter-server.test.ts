/**
 * The kernel through JupyterLab's own client library (@jupyterlab/services) and a real
 * jupyter-server (Debian's 1.23), over REST and WebSockets (the `ws` package): start, execute,
 * interrupt, restart, shut down.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { KernelManager, ServerConnection, type Kernel, type KernelMessage } from "@jupyterlab/services";
import WebSocket from "ws";
import { installFarlab, type KernelspecPrefix } from "./helpers/kernelspec";
import { startJupyterServer } from "./helpers/jupyter-server";

let spec: KernelspecPrefix;

before(async () => {
  spec = await installFarlab("server");
});

after(() => spec?.remove());

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

    const first = await executeCollecting(
      kernel,
      'const kept = 41; (globalThis as any).markedBeforeRestart = true; console.log("from lab"); kept + 1',
    );
    assert.equal(first.reply.content.status, "ok", JSON.stringify(first.reply.content));
    assert.equal(resultText(first.iopub), "42");
    const streams = first.iopub.filter((m) => m.header.msg_type === "stream") as KernelMessage.IStreamMsg[];
    assert.equal(streams.map((m) => m.content.text).join(""), "from lab\n");

    const spinning = kernel.requestExecute({ code: 'console.log("spinning"); while (true) {}' });
    await nextIopub(spinning, (m) => m.header.msg_type === "stream");
    await kernel.interrupt();
    const interrupted = await spinning.done;
    assert.equal(interrupted.content.status, "error", JSON.stringify(interrupted.content));
    const afterInterrupt = await executeCollecting(kernel, "kept + 1");
    assert.equal(resultText(afterInterrupt.iopub), "42", "state survives the interrupt");

    await kernel.restart();
    const afterRestart = await executeCollecting(kernel, "typeof (globalThis as any).markedBeforeRestart");
    assert.equal(afterRestart.reply.content.status, "ok", JSON.stringify(afterRestart.reply.content));
    assert.equal(resultText(afterRestart.iopub), "'undefined'", "a restart starts from fresh state");
    assert.equal(afterRestart.reply.content.execution_count, 1, "a restarted kernel counts from 1");
  } finally {
    await kernel.shutdown();
  }
  const running = (await server.get("api/kernels")) as unknown[];
  assert.deepEqual(running, [], server.log());
});
