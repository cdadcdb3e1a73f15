/**
 * What the backends' readers of a runtime's fd 1/2 output share: PipeReader (process.ts, the
 * process's pipes) and FifoPoller (fifo-poller.ts, a container's FIFOs).
 */
import * as fs from "node:fs";
import type { OutputListener } from "./types";

/** Where a runtime's fd 1/2 output comes from. */
export interface OutputSource {
  listen(listener: OutputListener): void;
  /** Synchronously delivers what the pipes hold now; false where it cannot. */
  drain(): boolean;
  pause(): void;
  resume(): void;
}

/** Delivery to one listener; chunks that come before it is set are held and handed over first. */
export abstract class HeldOutput {
  private listener?: OutputListener;
  private held: Array<[name: "stdout" | "stderr", chunk: Buffer]> = [];
  protected readonly readBuffer = Buffer.alloc(64 * 1024);

  listen(listener: OutputListener): void {
    this.listener = listener;
    for (const [name, chunk] of this.held.splice(0)) listener(name, chunk);
  }

  protected deliver(name: "stdout" | "stderr", chunk: Buffer): void {
    if (this.listener) this.listener(name, chunk);
    else this.held.push([name, chunk]);
  }

  /**
   * Delivers what the non-blocking `fd` holds now, reading until it is empty (EAGAIN) or ends;
   * true if a read filled the buffer (a writer may have been waiting for room).
   */
  protected deliverAvailable(name: "stdout" | "stderr", fd: number): boolean {
    let filled = false;
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, this.readBuffer, 0, this.readBuffer.length, null);
      } catch {
        return filled; // EAGAIN: empty for now (or closed: the owner of the fd reports the end)
      }
      if (n <= 0) return filled;
      if (n === this.readBuffer.length) filled = true;
      this.deliver(name, Buffer.from(this.readBuffer.subarray(0, n)));
    }
  }
}
