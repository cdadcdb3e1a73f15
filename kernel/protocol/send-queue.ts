/**
 * zeromq v6 allows one pending send per socket; a second concurrent send throws. Everything that
 * writes to a socket goes through its SendQueue, which also keeps the writers' order.
 */
import { createLogger } from "./log";

const log = createLogger("send");

export class SendQueue {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: { send(frames: Buffer[]): Promise<void> },
    private readonly name: string,
  ) {}

  /** Resolves when these frames were handed to ZeroMQ; failures are logged, not thrown. */
  send(frames: Buffer[]): Promise<void> {
    this.tail = this.tail.then(
      () => this.socket.send(frames),
    ).catch((error: unknown) => {
      log.warn(`send on ${this.name} failed: ${error instanceof Error ? error.message : String(error)}`);
    });
    return this.tail;
  }

  /** Resolves when everything queued so far has been sent. */
  drain(): Promise<void> {
    return this.tail;
  }
}
