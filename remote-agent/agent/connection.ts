/**
 * One client connection: who it is (from `hello`), the jobs it follows, and the one way out to
 * its transport. A connection that went away just stops receiving; its jobs keep running.
 */
import type { Transport } from "../protocol/framing";
import type { ErrorCode, FromAgent, ReplyBody } from "../protocol/messages";
import type { FlowControl, Follower } from "./job";
import { ownerOfClient } from "./ownership";

/**
 * Back-pressure: once this much sent output is still queued in the transport, the connection is
 * congested and the jobs it follows stop reading their runtimes' output (the runtimes then block
 * on write) until the queue is down to LOW_WATER_BYTES. Memory per slow client stays bounded
 * instead of growing with everything a cell prints.
 */
export const HIGH_WATER_BYTES = 1024 * 1024;
export const LOW_WATER_BYTES = 256 * 1024;

export class Connection {
  /** Set by `hello`; requests before it count as this anonymous client. */
  clientId = "anonymous";
  /**
   * The user this connection acts for (./ownership.ts). Until `hello` it is the anonymous client's
   * shared by clients that never say who they are.
   */
  owner = ownerOfClient({ id: "anonymous" });
  private closed = false;
  private readonly follows = new Map<string, () => void>(); // jobId -> unfollow
  /** Bytes (estimated) of sends the transport has not yet accepted. */
  private queuedBytes = 0;
  private congested = false;
  private drainWaiters: Array<() => void> = [];
  /** What jobs followed by this connection consult before reading more of their runtime's output. */
  readonly flow: FlowControl = {
    congested: () => this.congested,
    whenDrained: () => (this.congested ? new Promise<void>((resolve) => this.drainWaiters.push(resolve)) : Promise.resolve()),
  };

  constructor(private readonly transport: Transport) {}

  /** The user a `hello` may act for on this transport (./ownership.ts). */
  ownerFor(client: { id: string; user?: string; proof?: string }): string {
    const check = this.transport.checkUser?.bind(this.transport);
    if (client.user && check && !check(client.user, client.proof)) return `client:${client.id}`;
    return ownerOfClient(client);
  }

  send(message: FromAgent, payload?: Uint8Array): void {
    if (this.closed) return;
    const bytes = estimateBytes(message) + (payload?.length ?? 0);
    this.queuedBytes += bytes;
    if (this.queuedBytes > HIGH_WATER_BYTES) this.congested = true;
    this.transport.send(message, payload).then(
      () => this.accepted(bytes),
      () => this.close(),
    );
  }

  private accepted(bytes: number): void {
    this.queuedBytes -= bytes;
    if (this.congested && this.queuedBytes <= LOW_WATER_BYTES) this.release();
  }

  private release(): void {
    this.congested = false;
    for (const wake of this.drainWaiters.splice(0)) wake();
  }

  reply(re: string, body: ReplyBody, payload?: Uint8Array): void {
    this.send({ type: "reply", re, body }, payload);
  }

  error(re: string | null, code: ErrorCode, message: string): void {
    this.send({ type: "error", re, code, message });
  }

  /**
   * Starts sending a job's events through `subscribe` (which replays, then follows, and returns
   * the unfollow); replaces an earlier follow of the same job.
   */
  follow(jobId: string, subscribe: (deliver: Follower, flow: FlowControl) => () => void): void {
    this.follows.get(jobId)?.();
    this.follows.set(jobId, subscribe((event) => this.send(event), this.flow));
  }

  close(): void {
    this.closed = true;
    for (const unfollow of this.follows.values()) unfollow();
    this.follows.clear();
    this.release(); // nothing more will be queued here: no job waits for it
  }
}

/** A send's size for the water marks: stream text counted as is, other messages measured. */
function estimateBytes(message: FromAgent): number {
  if (message.type === "event" && message.event.kind === "stream") return message.event.text.length + 128;
  return JSON.stringify(message).length;
}
