/**
 * One client connection: who it is (from `hello`), the jobs it follows, and the one way out to
 * its transport. A connection that went away just stops receiving; its jobs keep running.
 */
import type { Transport } from "../protocol/framing";
import type { ErrorCode, FromAgent, ReplyBody } from "../protocol/messages";
import type { Follower } from "./job";
import { ownerOfClient } from "./ownership";

export class Connection {
  /** Set by `hello`; requests before it count as this anonymous client. */
  clientId = "anonymous";
  /**
   * The user this connection acts for (./ownership.ts). Until `hello` it is the anonymous client's
   * (what SessionManager.ownerOf("anonymous") gives), shared by clients that never say who they are.
   */
  owner = ownerOfClient({ id: "anonymous" });
  private closed = false;
  private readonly follows = new Map<string, () => void>(); // jobId -> unfollow

  constructor(private readonly transport: Transport) {}

  /** The user a `hello` may act for on this transport (./ownership.ts). */
  ownerFor(client: { id: string; user?: string; proof?: string }): string {
    const check = this.transport.checkUser?.bind(this.transport);
    if (client.user && check && !check(client.user, client.proof)) return `client:${client.id}`;
    return ownerOfClient(client);
  }

  send(message: FromAgent, payload?: Uint8Array): void {
    if (this.closed) return;
    this.transport.send(message, payload).catch(() => this.close());
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
  follow(jobId: string, subscribe: (deliver: Follower) => () => void): void {
    this.follows.get(jobId)?.();
    this.follows.set(jobId, subscribe((event) => this.send(event)));
  }

  close(): void {
    this.closed = true;
    for (const unfollow of this.follows.values()) unfollow();
    this.follows.clear();
  }
}
