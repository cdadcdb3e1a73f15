/**
 * A container runtime's stdout/stderr FIFOs, read by polling (every POLL_MS, and at once again
 * after a read that filled the buffer), never ahead of the journal: each read is delivered in the
 * same synchronous step in which the session journals it (RuntimeHandle.journalOutputAtOnce),
 * so an agent killed mid-cell has lost nothing it read, and what it had not read waits in the
 * FIFO (held open inside the container) for the agent that adopts the runtime. Reading through
 * libuv instead would buffer output in the agent's memory, and coalescing it for 20 ms there
 * would lose up to 20 ms of it to a kill. The poll interval is the coalescing window.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { HeldOutput, type OutputSource } from "./output-source";
import type { OutputListener } from "./types";

const POLL_MS = 20;

export class FifoPoller extends HeldOutput implements OutputSource {
  private readonly fds: Array<["stdout" | "stderr", number]>;
  private timer?: NodeJS.Timeout;
  private paused = false;
  private closed = false;

  /**
   * Opens `dir`/stdout and `dir`/stderr read-write and non-blocking (so no end-of-file while no
   * writer is attached, and an empty FIFO reads EAGAIN). `tap` sees every chunk (a stderr tail
   * for start errors).
   */
  constructor(
    dir: string,
    private readonly tap: OutputListener = () => undefined,
  ) {
    super();
    const open = (name: string) => fs.openSync(path.join(dir, name), fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    this.fds = [
      ["stdout", open("stdout")],
      ["stderr", open("stderr")],
    ];
    this.schedule(false);
  }

  drain(): boolean {
    this.readAll();
    return true;
  }

  pause(): void {
    this.paused = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  resume(): void {
    this.paused = false;
    this.schedule(false);
  }

  /** Reads what is left, then closes the FIFOs. */
  close(): void {
    if (this.closed) return;
    this.readAll();
    this.closed = true;
    clearTimeout(this.timer);
    for (const [, fd] of this.fds) fs.closeSync(fd);
  }

  private schedule(soon: boolean): void {
    if (this.closed || this.paused || this.timer) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.closed || this.paused) return;
        this.schedule(this.readAll());
      },
      soon ? 0 : POLL_MS,
    );
  }

  /** Delivers everything the FIFOs hold; true if a read filled the buffer (a writer may be waiting). */
  private readAll(): boolean {
    if (this.closed) return false;
    let filled = false;
    for (const [name, fd] of this.fds) filled = this.deliverAvailable(name, fd) || filled;
    return filled;
  }

  protected override deliver(name: "stdout" | "stderr", chunk: Buffer): void {
    this.tap(name, chunk);
    super.deliver(name, chunk);
  }
}
