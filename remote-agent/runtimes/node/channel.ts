/**
 * The runner's end of the runner protocol (remote-agent/protocol/runner.ts): newline-delimited
 * JSON over the Unix socket named by FARLAB_CHANNEL. Every message except `stream` first flushes
 * the coalesced stdout/stderr text (see streams.ts), so output keeps its order.
 */
import * as net from "node:net";
import type { FromRunner, ToRunner } from "../../protocol/runner";

/** A message as the runtime code writes it: the channel adds the running job's id. */
export type Outgoing = FromRunner extends infer M ? (M extends { id: string } ? Omit<M, "id"> : M) : never;

export class RunnerChannel {
  private readonly socket: net.Socket;
  private jobId = "";
  private readonly beforeSend: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
  }

  static connect(path: string): Promise<RunnerChannel> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      socket.once("connect", () => resolve(new RunnerChannel(socket)));
      socket.once("error", reject);
    });
  }

  /** Hooks run before each non-stream message (the stream buffers flush there). */
  onBeforeSend(hook: () => void): void {
    this.beforeSend.push(hook);
  }

  setJob(id: string): void {
    this.jobId = id;
  }

  send(message: Outgoing): void {
    if (message.type !== "stream") for (const hook of this.beforeSend) hook();
    const full = message.type === "ready" ? message : { ...message, id: this.jobId };
    // net.Socket writes synchronously when the kernel buffer has room, so messages leave even
    // while user code blocks the event loop.
    this.socket.write(JSON.stringify(full) + "\n");
  }

  /** Calls onMessage for each line from the agent; onEnd when the agent closes the socket. */
  listen(onMessage: (message: ToRunner) => void, onEnd: () => void): void {
    let buffer = "";
    this.socket.setEncoding("utf8");
    this.socket.on("data", (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) onMessage(JSON.parse(line) as ToRunner);
      }
    });
    this.socket.on("end", onEnd);
    this.socket.on("error", onEnd);
  }

  /** Flush what is queued, close, and call done. */
  close(done: () => void): void {
    for (const hook of this.beforeSend) hook();
    this.socket.end(done);
  }
}
