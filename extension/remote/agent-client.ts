/**
 * AgentClient: the kernel's side of the agent protocol, over any Transport.
 *
 * - request/reply: every request gets an id; the one `reply` or `error` with `re: id` settles it.
 * - job events: routed by jobId into one JobStream per job, an async iterator the renderer reads.
 *   Events may arrive before the `run` reply (the agent starts the job first), so streams are
 *   created on the first event and claimed by `run`.
 * - acks: the stream acknowledges what its reader has rendered, every `ackEvery` events and on
 *   `done`, so the agent can trim its journal.
 * - reconnects: when the connection drops while jobs are unfinished, the client connects again
 *   and `attach`es each job from its last seen seq; duplicates (seq <= last) are dropped, so every
 *   event is rendered exactly once and in order.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import {
  FromAgent,
  PROTOCOL_VERSION,
  Request,
  type JobEvent,
  type ReplyBody,
  type RequestType,
} from "../../remote-agent/protocol/messages";
import type { Transport } from "../../remote-agent/protocol/framing";
import { AgentAuthError, HostKeyError } from "../transports/errors";
import { AgentConnectionError, AgentRequestError, CellError } from "./errors";

/**
 * Makes a new connection to one agent (remote-agent/protocol/framing.ts's Transport seam: stdio
 * of the embedded agent today; an SSH channel or a ZeroMQ socket later). Called lazily on first
 * use and again after a drop.
 */
export type Connector = () => Promise<Transport>;

/** A request as the caller writes it: no id/version, defaults optional. */
type RequestInput = z.input<typeof Request>;
export type RequestBody = RequestInput extends infer R ? (R extends unknown ? Omit<R, "id" | "v"> : never) : never;
export type RequestOf<T extends RequestType> = Extract<RequestBody, { type: T }>;
export type ReplyOf<T extends RequestType> = Extract<ReplyBody, { of: T }>;

export interface AgentClientOptions {
  /** Name of the agent, for messages ("local", "gpu1"). */
  name: string;
  /** Acknowledge rendered events every N events (and always on done). */
  ackEvery?: number;
  /** Connection attempts after a drop while jobs are unfinished. 0 = no reconnect. */
  reconnectAttempts?: number;
  /** Wait before reconnect attempt n: `reconnectBaseMs * 2^(n-1)`, at most `reconnectMaxMs`. */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /**
   * Who this client is across kernels (sent in `hello` as `client.user`): the agent shows a user
   * only their own jobs and named sessions, and lets them attach to their jobs from a new kernel.
   * A ZeroMQ agent uses the authenticated CURVE key instead of this claim.
   */
  user?: string;
  /** ZeroMQ: proof that this client holds the key of `user` (remote-agent/keys/user-proof.ts). */
  userProof?: string;
  /** Where protocol warnings go (a malformed message is dropped, not fatal). */
  warn?: (message: string) => void;
}

interface Pending {
  type: RequestType;
  resolve(body: ReplyBody, payload?: Buffer): void;
  reject(error: Error): void;
}

export class AgentClient {
  readonly name: string;
  readonly clientId = randomUUID();
  private readonly ackEvery: number;
  private readonly reconnectAttempts: number;
  private readonly reconnectBaseMs: number;
  private readonly reconnectMaxMs: number;
  private readonly user: string | undefined;
  private readonly userProof: string | undefined;
  private readonly warn: (message: string) => void;
  /** The connection being made or in use (what requests wait for). */
  private transport: Promise<Transport> | undefined;
  /** The connection whose frames are being read, set as soon as it exists. */
  private live: Transport | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly jobs = new Map<string, JobStream>();
  private nextId = 1;
  private closed = false;
  /** What the agent said about itself in its hello reply. */
  agentInfo: ReplyOf<"hello"> | undefined;

  constructor(
    private readonly connector: Connector,
    options: AgentClientOptions,
  ) {
    this.name = options.name;
    this.ackEvery = options.ackEvery ?? 64;
    this.reconnectAttempts = options.reconnectAttempts ?? 3;
    this.reconnectBaseMs = options.reconnectBaseMs ?? 250;
    this.reconnectMaxMs = options.reconnectMaxMs ?? 10_000;
    this.user = options.user;
    this.userProof = options.userProof;
    this.warn = options.warn ?? ((m) => process.stderr.write(`farlab: ${m}\n`));
  }

  /** Send a request and wait for its reply body; an `error` reply rejects with AgentRequestError. */
  async request<T extends RequestType>(body: RequestOf<T>): Promise<ReplyOf<T>> {
    const transport = await this.connection();
    return this.requestOn(transport, body);
  }

  /**
   * A request that carries a binary payload and/or gets one back with its reply (volume
   * transfers: the chunk goes with `transfer_chunk`, comes back with `transfer_read`'s reply).
   */
  async requestWithPayload<T extends RequestType>(body: RequestOf<T>, payload?: Uint8Array): Promise<{ body: ReplyOf<T>; payload?: Buffer }> {
    const transport = await this.connection();
    let replyPayload: Buffer | undefined;
    const reply = await this.requestOn(transport, body, payload, (p) => (replyPayload = p));
    return { body: reply, payload: replyPayload };
  }

  /** Start a job; its events (from seq 1) come from the returned stream. */
  async run(body: Omit<Extract<RequestBody, { type: "run" }>, "type">): Promise<JobStream> {
    const reply = await this.request({ ...body, type: "run" });
    const stream = this.streamFor(reply.jobId);
    stream.streamCapChars = body.streamCapChars; // a resume asks for the same cut
    return stream;
  }

  /**
   * The event stream of a job this client started with a request other than `run` (e.g. `map`),
   * whose events the agent sends without an `attach`.
   */
  jobStream(jobId: string): JobStream {
    return this.streamFor(jobId);
  }

  /** Follow an existing job from `fromSeq` (replay, then live). */
  async attach(jobId: string, fromSeq = 0): Promise<JobStream> {
    const stream = this.streamFor(jobId);
    try {
      await this.request({ type: "attach", jobId, fromSeq });
    } catch (error) {
      if (this.jobs.get(jobId) === stream && stream.lastSeq === 0) this.jobs.delete(jobId);
      throw error;
    }
    return stream;
  }

  /** Ask the agent to interrupt a job (SIGINT to its runtime); events continue until done. */
  async interrupt(jobId: string): Promise<void> {
    await this.request({ type: "interrupt", jobId });
  }

  close(): void {
    this.closed = true;
    const transport = this.transport;
    this.transport = undefined;
    this.live = undefined;
    void transport?.then((t) => t.close(), () => undefined);
    this.failAll(new AgentConnectionError(`the connection to agent '${this.name}' was closed`));
  }

  private streamFor(jobId: string): JobStream {
    let stream = this.jobs.get(jobId);
    if (!stream) {
      stream = new JobStream(jobId, this.ackEvery, {
        ack: (seq) => this.ack(jobId, seq),
        release: () => this.jobs.get(jobId) === stream && this.jobs.delete(jobId),
      });
      this.jobs.set(jobId, stream);
    }
    return stream;
  }

  private ack(jobId: string, seq: number): void {
    // Fire and forget: a lost ack only means the agent keeps a little more journal.
    this.request({ type: "ack", jobId, seq }).catch(() => undefined);
  }

  /** The current connection, made on first use (and after a drop). */
  private connection(): Promise<Transport> {
    if (this.closed) return Promise.reject(new AgentConnectionError(`agent '${this.name}' is closed`));
    if (!this.transport) {
      const made = this.connect();
      this.transport = made;
      made.catch(() => {
        if (this.transport === made) this.transport = undefined;
      });
    }
    return this.transport;
  }

  private async connect(): Promise<Transport> {
    let transport: Transport;
    try {
      transport = await this.connector();
    } catch (error) {
      // The transports' own errors (AgentAuthError, HostKeyError, SshError, TransportError) say
      // what to do about them: the cell shows them as they are.
      if (error instanceof CellError) throw error;
      throw new AgentConnectionError(`cannot connect to agent '${this.name}': ${messageOf(error)}`);
    }
    this.live = transport;
    void this.readLoop(transport);
    try {
      this.agentInfo = await this.requestOn(transport, {
        type: "hello",
        client: {
          id: this.clientId,
          name: "farlab-kernel",
          ...(this.user ? { user: this.user } : {}),
          ...(this.userProof ? { proof: this.userProof } : {}),
        },
      });
    } catch (error) {
      transport.close();
      throw error instanceof AgentRequestError || error instanceof AgentConnectionError
        ? error
        : new AgentConnectionError(`agent '${this.name}' did not answer hello: ${messageOf(error)}`);
    }
    return transport;
  }

  private requestOn<T extends RequestType>(
    transport: Transport,
    body: RequestOf<T>,
    payload?: Uint8Array,
    onPayload?: (payload: Buffer) => void,
  ): Promise<ReplyOf<T>> {
    const id = String(this.nextId++);
    return new Promise<ReplyOf<T>>((resolve, reject) => {
      const settle = (reply: ReplyBody, replyPayload?: Buffer) => {
        if (replyPayload && onPayload) onPayload(replyPayload);
        resolve(reply as ReplyOf<T>);
      };
      this.pending.set(id, { type: body.type, resolve: settle, reject });
      transport.send({ ...body, v: PROTOCOL_VERSION, id }, payload).catch((error) => {
        this.pending.delete(id);
        reject(new AgentConnectionError(`cannot send to agent '${this.name}': ${messageOf(error)}`));
      });
    });
  }

  private async readLoop(transport: Transport): Promise<void> {
    let failure: unknown;
    try {
      for await (const incoming of transport.frames) {
        if (incoming.kind === "frame") this.dispatch(incoming.header, incoming.payload);
        else this.warn(`agent '${this.name}' sent an undecodable frame: ${incoming.message}`);
      }
    } catch (error) {
      failure = error;
    }
    await this.onDisconnect(transport, failure);
  }

  private dispatch(header: unknown, payload?: Buffer): void {
    const parsed = FromAgent.safeParse(header);
    if (!parsed.success) {
      const re = (header as { re?: unknown } | null)?.re;
      const pending = typeof re === "string" ? this.pending.get(re) : undefined;
      const problem = `agent '${this.name}' sent a malformed message: ${z.prettifyError(parsed.error)}`;
      if (pending && typeof re === "string") {
        this.pending.delete(re);
        pending.reject(new AgentConnectionError(problem));
      } else {
        this.warn(problem);
      }
      return;
    }
    const message = parsed.data;
    if (message.type === "event") {
      this.streamFor(message.jobId).push(message);
      return;
    }
    const re = message.re;
    const pending = re === null ? undefined : this.pending.get(re);
    if (!pending) {
      if (message.type === "error") this.warn(`agent '${this.name}': ${message.code}: ${message.message}`);
      return;
    }
    this.pending.delete(re as string);
    if (message.type === "error") {
      pending.reject(new AgentRequestError(message.code, message.message));
    } else if (message.body.of !== pending.type) {
      pending.reject(new AgentConnectionError(`agent '${this.name}' answered a ${pending.type} request with '${message.body.of}'`));
    } else {
      pending.resolve(message.body, payload);
    }
  }

  private async onDisconnect(transport: Transport, failure: unknown): Promise<void> {
    if (this.live !== transport) return; // an older connection, already replaced or closed
    this.live = undefined;
    this.transport = undefined;
    const why = failure ? `: ${messageOf(failure)}` : "";
    const lost = new AgentConnectionError(`the connection to agent '${this.name}' was lost${why}`);
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(lost);
    }
    const unfinished = [...this.jobs.values()].filter((s) => !s.finished);
    if (this.closed || unfinished.length === 0) return;
    await this.resume(unfinished, lost);
  }

  /**
   * Reconnects with exponential backoff and attaches each unfinished job from the last seq it
   * received, so the agent replays exactly what is missing. The job's readers see the attempts
   * (JobStream.onLink) so the cell can say that it is reconnecting. A refused key or host key
   * ends the attempts at once: trying again cannot fix it.
   */
  private async resume(unfinished: JobStream[], lost: AgentConnectionError): Promise<void> {
    let lastError: Error = lost;
    for (let attempt = 1; attempt <= this.reconnectAttempts; attempt++) {
      for (const s of unfinished) s.link({ state: "reconnecting", agent: this.name, attempt, of: this.reconnectAttempts });
      const delay = Math.min(this.reconnectMaxMs, this.reconnectBaseMs * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, delay));
      if (this.closed) return;
      try {
        await this.connection();
        await Promise.all(unfinished.filter((s) => !s.finished).map((s) => this.request({ type: "attach", jobId: s.jobId, fromSeq: s.lastSeq, streamCapChars: s.streamCapChars })));
        for (const s of unfinished) s.link({ state: "reconnected", agent: this.name, attempt, of: this.reconnectAttempts });
        return;
      } catch (error) {
        if (error instanceof AgentRequestError) {
          // The agent no longer knows the job (e.g. a restarted embedded agent): nothing to resume.
          for (const s of unfinished) s.fail(new AgentConnectionError(`agent '${this.name}' lost job ${s.jobId}: ${error.message}`));
          return;
        }
        if (error instanceof AgentAuthError || error instanceof HostKeyError) {
          for (const s of unfinished) s.fail(error);
          return;
        }
        lastError = error as Error;
      }
    }
    const gaveUp = new AgentConnectionError(
      `the connection to agent '${this.name}' was lost and ${this.reconnectAttempts} reconnect attempts failed ` +
        `(last: ${messageOf(lastError)}); the job may still be running there: \`%remote attach JOB agent=${this.name}\` follows it`,
    );
    for (const s of unfinished) s.fail(gaveUp);
  }

  private failAll(error: Error): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(error);
    }
    for (const stream of this.jobs.values()) stream.fail(error);
    this.jobs.clear();
  }
}

/**
 * The events of one job, in seq order, each once. Reading the next event marks the previous one
 * rendered; acks go out every `ackEvery` rendered events and after `done`.
 */
/** What happens to the link under a job: shown in the cell as a status line. */
export type LinkStatus = { state: "reconnecting" | "reconnected"; agent: string; attempt: number; of: number };

export class JobStream implements AsyncIterable<JobEvent> {
  /** Highest seq received (what to attach from after a reconnect). */
  lastSeq = 0;
  /** The stream cap the job was run with (sent again when resuming, so the cut stays the same). */
  streamCapChars: number | undefined;
  private readonly linkListeners = new Set<(status: LinkStatus) => void>();
  private readonly queue: JobEvent[] = [];
  private waiter: { resolve(): void } | undefined;
  private failure: Error | undefined;
  private sawDone = false;
  private renderedSeq = 0;
  private sinceAck = 0;
  private acked = 0;
  private iterating = false;

  constructor(
    readonly jobId: string,
    private readonly ackEvery: number,
    private readonly owner: { ack(seq: number): void; release(): void },
  ) {}

  /** True once `done` has arrived (or the stream failed): no more events will come. */
  get finished(): boolean {
    return this.sawDone || this.failure !== undefined;
  }

  push(event: JobEvent): void {
    if (event.seq <= this.lastSeq || this.finished) return; // a replayed duplicate
    this.lastSeq = event.seq;
    this.queue.push(event);
    if (event.event.kind === "done") this.sawDone = true;
    this.wake();
  }

  /** Called with each reconnect attempt and its success; returns the unsubscribe. */
  onLink(listener: (status: LinkStatus) => void): () => void {
    this.linkListeners.add(listener);
    return () => this.linkListeners.delete(listener);
  }

  link(status: LinkStatus): void {
    for (const listener of this.linkListeners) listener(status);
  }

  fail(error: Error): void {
    if (this.finished) return;
    this.failure = error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve();
  }

  private markRendered(seq: number, isDone: boolean): void {
    this.renderedSeq = seq;
    this.sinceAck++;
    if (isDone || this.sinceAck >= this.ackEvery) this.flushAck();
  }

  private flushAck(): void {
    if (this.renderedSeq > this.acked) {
      this.acked = this.renderedSeq;
      this.sinceAck = 0;
      const seq = this.renderedSeq;
      // After `done`, one turn of the event loop later: the cell's end (execute reply, idle) is
      // on its way first, instead of sharing the CPU with the agent woken by the ack.
      if (this.sawDone) setImmediate(() => this.owner.ack(seq));
      else this.owner.ack(seq);
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<JobEvent> {
    if (this.iterating) throw new Error(`job ${this.jobId} is already being read`);
    this.iterating = true;
    let lastYielded = 0;
    try {
      for (;;) {
        const event = this.queue.shift();
        if (event) {
          lastYielded = event.seq;
          yield event;
          // The reader came back for more: `event` has been rendered.
          const isDone = event.event.kind === "done";
          this.markRendered(event.seq, isDone);
          if (isDone) return;
          continue;
        }
        if (this.failure) throw this.failure;
        await new Promise<void>((resolve) => (this.waiter = { resolve }));
      }
    } finally {
      // A reader that stops early (break, throw) has still rendered what it read.
      this.renderedSeq = Math.max(this.renderedSeq, lastYielded);
      this.flushAck();
      if (this.finished) this.owner.release();
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
