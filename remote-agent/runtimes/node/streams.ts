/**
 * Language-level stdout/stderr of TypeScript cells (console.*, process.stdout.write) sent as
 * `stream` messages over the channel, which coalesces them (see channel.ts). The real fd 1/2
 * stay pipes that the agent reads, for native code and child processes.
 */
import { Console } from "node:console";
import { EventEmitter } from "node:events";
import type { RunnerChannel } from "./channel";

type StreamName = "stdout" | "stderr";

function toText(chunk: unknown, encoding?: unknown): string {
  if (typeof chunk === "string") return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk).toString(typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
  return String(chunk);
}

/** A write() that goes to the channel, with Node's (chunk, encoding?, callback?) signature. */
function channelWrite(channel: RunnerChannel, name: StreamName) {
  return (chunk: unknown, encodingOrCb?: unknown, cb?: unknown): boolean => {
    channel.stream(name, toText(chunk, encodingOrCb));
    const callback = typeof encodingOrCb === "function" ? encodingOrCb : cb;
    if (typeof callback === "function") process.nextTick(callback as (error: Error | null) => void, null); // null: no error
    return true;
  };
}

/**
 * What the cells' console writes to: only write(), once() and removeListener() are used. Its
 * own object (not process.stdout) so that an interrupted console.log, which may skip the
 * console's cleanup of its one-off 'error' listener, cannot pile listeners onto process.stdout.
 */
class ConsoleTarget extends EventEmitter {
  readonly write: ReturnType<typeof channelWrite>;
  constructor(channel: RunnerChannel, name: StreamName) {
    super();
    this.setMaxListeners(0);
    this.write = channelWrite(channel, name);
  }
}

/** Route console.* and process.stdout/stderr.write through the channel. */
export function installStreams(channel: RunnerChannel): void {
  process.stdout.write = channelWrite(channel, "stdout") as typeof process.stdout.write;
  process.stderr.write = channelWrite(channel, "stderr") as typeof process.stderr.write;
  globalThis.console = new Console({
    stdout: new ConsoleTarget(channel, "stdout") as unknown as NodeJS.WritableStream,
    stderr: new ConsoleTarget(channel, "stderr") as unknown as NodeJS.WritableStream,
    colorMode: false,
  });
}
