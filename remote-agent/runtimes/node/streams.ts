/**
 * Language-level stdout/stderr (console.*, process.stdout.write) sent as `stream` messages.
 *
 * Coalesced: a write that ends a line goes at once unless something went in the last 50 ms;
 * otherwise a timer sends it (timers cannot fire while code blocks the event loop, so the
 * newline rule and a 64 KiB cap keep output flowing even then). The real fd 1/2 stay pipes that
 * the agent reads, for native code and child processes.
 */
import type { RunnerChannel } from "./channel";

const FLUSH_INTERVAL_MS = 50;
const MAX_BUFFER = 64 * 1024;

type StreamName = "stdout" | "stderr";

class CoalescedStream {
  private parts: string[] = [];
  private size = 0;
  private lastSent = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly channel: RunnerChannel,
    private readonly name: StreamName,
  ) {}

  write(text: string): void {
    if (!text) return;
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= MAX_BUFFER || (text.includes("\n") && Date.now() - this.lastSent >= FLUSH_INTERVAL_MS)) {
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_INTERVAL_MS);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.parts.length === 0) return;
    const text = this.parts.join("");
    this.parts = [];
    this.size = 0;
    this.lastSent = Date.now();
    this.channel.send({ type: "stream", name: this.name, text });
  }
}

function toText(chunk: unknown, encoding?: unknown): string {
  if (typeof chunk === "string") return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk).toString(typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
  return String(chunk);
}

/** Route process.stdout/stderr.write (and so the global console) through the channel. */
export function installStreams(channel: RunnerChannel): void {
  const streams = { stdout: new CoalescedStream(channel, "stdout"), stderr: new CoalescedStream(channel, "stderr") };
  channel.onBeforeSend(() => {
    streams.stdout.flush();
    streams.stderr.flush();
  });
  for (const name of ["stdout", "stderr"] as const) {
    const target = process[name];
    const patched = (chunk: unknown, encodingOrCb?: unknown, cb?: unknown): boolean => {
      streams[name].write(toText(chunk, encodingOrCb));
      const callback = typeof encodingOrCb === "function" ? encodingOrCb : cb;
      if (typeof callback === "function") process.nextTick(callback as () => void);
      return true;
    };
    target.write = patched as typeof target.write;
  }
}
