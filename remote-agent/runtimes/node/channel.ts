/**
 * The runner's end of the runner protocol (remote-agent/protocol/runner.ts): newline-delimited
 * JSON over the Unix socket named by FARLAB_CHANNEL.
 *
 * The socket lives in a worker thread, not on the main thread where cells run. Two reasons:
 * - an interrupt stops synchronous cell code with V8's TerminateExecution, which can land inside
 *   any JavaScript the cell called, including a net.Socket's write path, and leave that stream
 *   stuck forever; the main thread only calls postMessage (native), so nothing of the channel
 *   can be left half-done;
 * - output keeps flowing while a cell blocks the main thread (`while (true) { print }`), and the
 *   50 ms coalescing timer of stdout/stderr runs there too.
 * The worker flushes coalesced stream text before every other message, so order is kept.
 */
import { Worker } from "node:worker_threads";
import type { FromRunner, ToRunner } from "../../protocol/runner";

/** A message as the runtime code writes it: the channel adds the running job's id. */
export type Outgoing = FromRunner extends infer M ? (M extends { id: string } ? Omit<M, "id"> : M) : never;

type ToWorker = { kind: "send"; message: FromRunner } | { kind: "stream"; id: string; name: "stdout" | "stderr"; text: string } | { kind: "close" };
type FromWorker = { kind: "connected" } | { kind: "error"; message: string } | { kind: "message"; message: ToRunner } | { kind: "end" } | { kind: "closed" };

/**
 * The worker's code. It runs from source text (`eval: true`), so it must not use anything from
 * the bundle's scope: everything it needs comes from require().
 */
function channelWorker(): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const net = require("node:net") as typeof import("node:net");
  const { parentPort, workerData } = require("node:worker_threads") as typeof import("node:worker_threads");
  const FLUSH_INTERVAL_MS = 50;
  const MAX_BUFFER = 64 * 1024;
  const port = parentPort!;
  const socket = net.createConnection(workerData.path as string);
  type Buffered = { id: string; parts: string[]; size: number; timer?: NodeJS.Timeout };
  const streams: Record<string, Buffered | undefined> = {};
  const lastSent: Record<string, number> = {};

  const write = (message: unknown) => socket.write(JSON.stringify(message) + "\n");
  const flush = (name: string) => {
    const buffered = streams[name];
    if (!buffered) return;
    clearTimeout(buffered.timer);
    streams[name] = undefined;
    write({ type: "stream", id: buffered.id, name, text: buffered.parts.join("") });
    lastSent[name] = Date.now();
  };
  const flushAll = () => {
    flush("stdout");
    flush("stderr");
  };

  socket.once("connect", () => port.postMessage({ kind: "connected" }));
  socket.on("error", (error) => port.postMessage({ kind: "error", message: error.message }));
  socket.on("end", () => port.postMessage({ kind: "end" }));
  let pending = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) port.postMessage({ kind: "message", message: JSON.parse(line) });
    }
  });
  port.on("message", (message: ToWorker) => {
    if (message.kind === "stream") {
      let buffered = streams[message.name];
      if (buffered && buffered.id !== message.id) {
        flush(message.name); // text of another job is not merged
        buffered = undefined;
      }
      if (!buffered) buffered = streams[message.name] = { id: message.id, parts: [], size: 0 };
      buffered.parts.push(message.text);
      buffered.size += message.text.length;
      const quiet = Date.now() - (lastSent[message.name] ?? 0) >= FLUSH_INTERVAL_MS;
      if (buffered.size >= MAX_BUFFER || (quiet && message.text.includes("\n"))) flush(message.name);
      else if (!buffered.timer) buffered.timer = setTimeout(() => flush(message.name), FLUSH_INTERVAL_MS);
    } else if (message.kind === "send") {
      flushAll();
      write(message.message);
    } else {
      flushAll();
      socket.end(() => port.postMessage({ kind: "closed" }));
    }
  });
}

export class RunnerChannel {
  private jobId = "";
  private onMessage: (message: ToRunner) => void = () => undefined;
  private onEnd: () => void = () => undefined;
  private onClosed: (() => void) | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (event: FromWorker) => {
      if (event.kind === "message") this.onMessage(event.message);
      else if (event.kind === "end" || event.kind === "error") this.onEnd();
      else if (event.kind === "closed") this.onClosed?.();
    });
  }

  static connect(path: string): Promise<RunnerChannel> {
    const worker = new Worker(`(${channelWorker.toString()})()`, { eval: true, workerData: { path } });
    return new Promise((resolve, reject) => {
      const onFirst = (event: FromWorker) => {
        worker.off("message", onFirst);
        if (event.kind === "connected") resolve(new RunnerChannel(worker));
        else reject(new Error(`cannot connect to ${path}: ${event.kind === "error" ? event.message : event.kind}`));
      };
      worker.on("message", onFirst);
      worker.once("error", reject);
    });
  }

  setJob(id: string): void {
    this.jobId = id;
  }

  send(message: Outgoing): void {
    const full = (message.type === "ready" ? message : { ...message, id: this.jobId }) as FromRunner;
    this.worker.postMessage({ kind: "send", message: full } satisfies ToWorker);
  }

  /** Language-level output; coalesced by the worker (see above). */
  stream(name: "stdout" | "stderr", text: string): void {
    if (text) this.worker.postMessage({ kind: "stream", id: this.jobId, name, text } satisfies ToWorker);
  }

  /** Calls onMessage for each message from the agent; onEnd when the agent closes the socket. */
  listen(onMessage: (message: ToRunner) => void, onEnd: () => void): void {
    this.onMessage = onMessage;
    this.onEnd = onEnd;
  }

  /** Flush what is queued, close, and call done. */
  close(done: () => void): void {
    this.onClosed = done;
    this.worker.postMessage({ kind: "close" } satisfies ToWorker);
  }
}
