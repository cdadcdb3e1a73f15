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
import { RECONNECT_INTERVAL_MS, type FromRunner, type ToRunner } from "../../protocol/runner";

/** A message as the runtime code writes it: the channel adds the running job's id. */
export type Outgoing = FromRunner extends infer M ? (M extends { id: string } ? Omit<M, "id"> : M) : never;

type ToWorker =
  | { kind: "send"; messages: FromRunner[] }
  | { kind: "stream"; id: string; name: "stdout" | "stderr"; text: string }
  | { kind: "job"; id: string }
  | { kind: "close" };
type FromWorker = { kind: "connected" } | { kind: "error"; message: string } | { kind: "message"; message: ToRunner } | { kind: "end" } | { kind: "closed" };

/**
 * The worker's code. It runs from source text (`eval: true`), so it must not use anything from
 * the bundle's scope: everything it needs comes from require() and workerData.
 *
 * Resumable channels (workerData.resumable; ../../protocol/runner.ts): messages after `ready`
 * are numbered and kept until the agent's `ack`; when the socket closes the worker connects
 * again every reconnectMs until resumeForMs have passed, says `ready` with `resume`, and on the
 * agent's `resume` sends again the messages after the one it names. While the channel is down
 * messages are only kept (resume sends them), so each goes out once per connection.
 */
function channelWorker(): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const net = require("node:net") as typeof import("node:net");
  const { parentPort, workerData } = require("node:worker_threads") as typeof import("node:worker_threads");
  const FLUSH_INTERVAL_MS = 50;
  const MAX_BUFFER = 64 * 1024;
  const port = parentPort!;
  const socketPath = workerData.path as string;
  const resumable = Boolean(workerData.resumable);
  type Buffered = { id: string; parts: string[]; size: number; timer?: NodeJS.Timeout };
  const streams: Record<string, Buffered | undefined> = {};
  const lastSent: Record<string, number> = {};
  let socket: import("node:net").Socket;
  /** Connected, and (after a reconnect) resumed: messages may go out. */
  let up = false;
  let closing = false;
  let seq = 0;
  let jobId: string | undefined;
  let jobFirstSeq = 1;
  let ready: Record<string, unknown> | undefined;
  const unacked: Array<[number, string]> = [];

  /** One socket write for all of `messages` (a cell's result and done: one wake-up of the agent). */
  const write = (...messages: Array<Record<string, unknown>>) => {
    let text = "";
    for (const message of messages) {
      if (!resumable) {
        text += JSON.stringify(message) + "\n";
        continue;
      }
      seq++;
      const line = JSON.stringify({ seq, ...message }) + "\n";
      unacked.push([seq, line]);
      text += line;
    }
    if (!resumable || up) socket.write(text);
  };
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

  const onControl = (message: { type: string; seq?: number; after?: number }): boolean => {
    if (!resumable) return false;
    if (message.type === "ack") {
      while (unacked.length > 0 && unacked[0][0] <= (message.seq ?? 0)) unacked.shift();
      return true;
    }
    if (message.type === "resume") {
      for (const [n, line] of unacked) if (n > (message.after ?? 0)) socket.write(line);
      up = true;
      return true;
    }
    return false;
  };

  const reconnect = () => {
    const deadline = Date.now() + Number(workerData.resumeForMs);
    const attempt = () => {
      if (Date.now() > deadline) return port.postMessage({ kind: "end" });
      const fresh = net.createConnection(socketPath);
      fresh.once("error", () => setTimeout(attempt, Number(workerData.reconnectMs)));
      fresh.once("connect", () => {
        fresh.removeAllListeners("error");
        use(fresh);
        const resume = { ...(jobId ? { job: jobId } : {}), jobFirstSeq, lastSeq: seq };
        fresh.write(JSON.stringify({ ...ready, resume }) + "\n");
      });
    };
    setTimeout(attempt, Number(workerData.reconnectMs));
  };

  const use = (fresh: import("node:net").Socket) => {
    socket = fresh;
    let pending = "";
    fresh.setEncoding("utf8");
    fresh.on("error", (error) => {
      if (!resumable) port.postMessage({ kind: "error", message: error.message });
    });
    fresh.on("end", () => {
      if (!resumable) port.postMessage({ kind: "end" });
    });
    fresh.on("close", () => {
      if (!resumable || closing || socket !== fresh || ready === undefined) return; // never up: connect() failed
      up = false;
      reconnect();
    });
    fresh.on("data", (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (!line) continue;
        const message = JSON.parse(line);
        if (!onControl(message)) port.postMessage({ kind: "message", message });
      }
    });
  };

  const first = net.createConnection(socketPath);
  first.once("connect", () => {
    up = true;
    port.postMessage({ kind: "connected" });
  });
  first.once("error", (error) => {
    if (!up) port.postMessage({ kind: "error", message: error.message });
  });
  use(first);

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
    } else if (message.kind === "job") {
      flushAll(); // the previous job's text goes before the new job's first message
      jobId = message.id;
      jobFirstSeq = seq + 1;
    } else if (message.kind === "send") {
      flushAll();
      const [first] = message.messages;
      if (first.type === "ready") {
        ready = first; // unnumbered; said again (with resume) after a reconnect
        socket.write(JSON.stringify(ready) + "\n");
      } else write(...message.messages);
    } else {
      flushAll();
      closing = true;
      socket.end(() => port.postMessage({ kind: "closed" }));
    }
  });
}

export class RunnerChannel {
  private jobId = "";
  private onMessage: (message: ToRunner) => void = () => undefined;
  private onEnd: () => void = () => undefined;
  private onClosed: (() => void) | undefined;
  /** A message that goes out with the next one (sendWithNext). */
  private held: FromRunner | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (event: FromWorker) => {
      if (event.kind === "message") this.onMessage(event.message);
      else if (event.kind === "end" || event.kind === "error") this.onEnd();
      else if (event.kind === "closed") this.onClosed?.();
    });
  }

  static connect(path: string): Promise<RunnerChannel> {
    const workerData = {
      path,
      resumable: process.env.FARLAB_CHANNEL_RESUME === "1",
      reconnectMs: RECONNECT_INTERVAL_MS,
      resumeForMs: Number(process.env.FARLAB_CHANNEL_RESUME_S ?? "600") * 1000,
    };
    const worker = new Worker(`(${channelWorker.toString()})()`, { eval: true, workerData });
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
    this.sendHeld();
    this.jobId = id;
    this.worker.postMessage({ kind: "job", id } satisfies ToWorker);
  }

  send(message: Outgoing): void {
    const full = this.withId(message);
    const messages = this.held ? [this.held, full] : [full];
    this.held = undefined;
    this.worker.postMessage({ kind: "send", messages } satisfies ToWorker);
  }

  /**
   * Sends `message` together with the next message (a cell's result goes with the `done` that
   * follows it at once): one hand-over to the worker and one socket write instead of two, so the
   * agent wakes once. Anything sent or streamed before that next message sends it first, so
   * order is kept.
   */
  sendWithNext(message: Outgoing): void {
    this.sendHeld();
    this.held = this.withId(message);
  }

  private withId(message: Outgoing): FromRunner {
    return (message.type === "ready" ? message : { ...message, id: this.jobId }) as FromRunner;
  }

  private sendHeld(): void {
    if (!this.held) return;
    const messages = [this.held];
    this.held = undefined;
    this.worker.postMessage({ kind: "send", messages } satisfies ToWorker);
  }

  /** Language-level output; coalesced by the worker (see above). */
  stream(name: "stdout" | "stderr", text: string): void {
    if (!text) return;
    this.sendHeld();
    this.worker.postMessage({ kind: "stream", id: this.jobId, name, text } satisfies ToWorker);
  }

  /** Calls onMessage for each message from the agent; onEnd when the agent closes the socket. */
  listen(onMessage: (message: ToRunner) => void, onEnd: () => void): void {
    this.onMessage = onMessage;
    this.onEnd = onEnd;
  }

  /** Flush what is queued, close, and call done. */
  close(done: () => void): void {
    this.sendHeld();
    this.onClosed = done;
    this.worker.postMessage({ kind: "close" } satisfies ToWorker);
  }
}
