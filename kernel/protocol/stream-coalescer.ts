/**
 * Coalesces stream output (stdout/stderr) so that a chatty cell sends a few messages a second
 * instead of one per write, without reordering anything:
 * - stream text is buffered for one window (default 50 ms, so at most ~20 flushes a second);
 *   consecutive chunks of the same stream become one message, a switch of stream starts a new one;
 * - any other output flushes the buffered text first, so streams and displays keep their order;
 * - text is passed through untouched: a "\r" progress line is rendered by the frontend.
 * Local cells and remote output use this same path.
 */
import type { IopubOutput } from "../interpreter";

type StreamName = "stdout" | "stderr";

export class StreamCoalescer {
  private pending: { name: StreamName; text: string }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: (output: IopubOutput) => void,
    private readonly windowMs = 50,
  ) {}

  publish(output: IopubOutput): void {
    if (output.msgType !== "stream") {
      this.flush();
      this.emit(output);
      return;
    }
    const { name, text } = output.content;
    if (text === "") return;
    const last = this.pending[this.pending.length - 1];
    if (last && last.name === name) last.text += text;
    else this.pending.push({ name, text });
    this.timer ??= setTimeout(() => this.flush(), this.windowMs);
  }

  /** Publish buffered text now (before a reply or any non-stream output). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const pending = this.pending;
    this.pending = [];
    for (const { name, text } of pending) this.emit({ msgType: "stream", content: { name, text } });
  }
}
