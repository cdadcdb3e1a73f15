/**
 * A Jupyter client in TypeScript (what jupyter_client's BlockingKernelClient does), on the same
 * wire code as the kernel: DEALER shell/control/stdin, SUB iopub. Used by `farlab run` and tests.
 */
import * as zmq from "zeromq";
import { channelUrl, type ConnectionInfo } from "../protocol/connection-file";
import { SendQueue } from "../protocol/send-queue";
import { MessageSigner, WireSession, type JupyterMessage } from "../protocol/wire";
import { createLogger } from "../protocol/log";

const log = createLogger("client");

export type RequestChannel = "shell" | "control";

export interface ExecuteOptions {
  silent?: boolean;
  storeHistory?: boolean;
  allowStdin?: boolean;
  stopOnError?: boolean;
  userExpressions?: Record<string, string>;
  /** Every iopub message of this request (status and execute_input included), in order. */
  onIopub?: (message: JupyterMessage) => void;
  /** Answers input_request on stdin (needs allowStdin). */
  onInput?: (prompt: string, password: boolean) => Promise<string> | string;
}

export interface ExecuteResult {
  reply: JupyterMessage;
  /** The iopub messages of the request, from busy to idle. */
  iopub: JupyterMessage[];
}

export class KernelClientClosedError extends Error {
  override name = "KernelClientClosedError";
}

interface Waiter {
  resolve: (message: JupyterMessage) => void;
  reject: (error: Error) => void;
}

export class KernelClient {
  readonly wire: WireSession;
  private readonly shell: zmq.Dealer;
  private readonly control = new zmq.Dealer({ linger: 0 });
  private readonly stdin: zmq.Dealer;
  private readonly iopub = new zmq.Subscriber({ linger: 0 });
  private readonly out: Record<RequestChannel | "stdin", SendQueue>;
  private readonly replyWaiters = new Map<string, Waiter>();
  private readonly iopubListeners = new Map<string, (message: JupyterMessage) => void>();
  private readonly anyIopubListeners = new Set<(message: JupyterMessage) => void>();
  private readonly inputHandlers = new Map<string, NonNullable<ExecuteOptions["onInput"]>>();
  private closed = false;

  constructor(private readonly connection: ConnectionInfo) {
    this.wire = new WireSession(new MessageSigner(connection.key, connection.signature_scheme), "farlab-client");
    // The kernel routes input_request to the shell socket's routing id: stdin must share it.
    this.shell = new zmq.Dealer({ linger: 0, routingId: this.wire.session });
    this.stdin = new zmq.Dealer({ linger: 0, routingId: this.wire.session });
    this.out = {
      shell: new SendQueue(this.shell, "shell"),
      control: new SendQueue(this.control, "control"),
      stdin: new SendQueue(this.stdin, "stdin"),
    };
  }

  connect(): void {
    this.shell.connect(channelUrl(this.connection, "shell"));
    this.control.connect(channelUrl(this.connection, "control"));
    this.stdin.connect(channelUrl(this.connection, "stdin"));
    this.iopub.connect(channelUrl(this.connection, "iopub"));
    this.iopub.subscribe();
    void this.receive(this.shell, (m) => this.onReply(m));
    void this.receive(this.control, (m) => this.onReply(m));
    void this.receive(this.stdin, (m) => this.onStdin(m));
    void this.receive(this.iopub, (m) => this.onIopub(m));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const socket of [this.shell, this.control, this.stdin, this.iopub]) socket.close();
    const error = new KernelClientClosedError("the client was closed before the kernel replied");
    for (const waiter of this.replyWaiters.values()) waiter.reject(error);
    this.replyWaiters.clear();
  }

  /** Rejects every pending request (for example because the kernel process died). */
  failPending(error: Error): void {
    for (const waiter of this.replyWaiters.values()) waiter.reject(error);
    this.replyWaiters.clear();
  }

  /** Send a request; resolves with its reply. */
  request(channel: RequestChannel, msgType: string, content: object): Promise<JupyterMessage> {
    return this.send(channel, this.wire.createMessage(msgType, content)).reply;
  }

  /** Listen to every iopub message (returns an unsubscribe function). */
  onAnyIopub(listener: (message: JupyterMessage) => void): () => void {
    this.anyIopubListeners.add(listener);
    return () => this.anyIopubListeners.delete(listener);
  }

  /**
   * Wait until the kernel answers kernel_info on shell AND its iopub reaches us: a SUB socket
   * misses what is published before its subscription arrives, so (as jupyter_client does) ask
   * again until the status of one of our requests is seen.
   */
  async waitForReady(timeoutMs = 30_000): Promise<JupyterMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.wire.createMessage("kernel_info_request", {});
      let sawIopub!: () => void;
      const iopubSeen = new Promise<void>((resolve) => (sawIopub = resolve));
      this.iopubListeners.set(message.header.msg_id, sawIopub);
      const { reply } = this.send("shell", message);
      const remaining = deadline - Date.now();
      const got = await Promise.race([
        reply.then(() => iopubSeen).then(() => true),
        delay(Math.min(500, Math.max(remaining, 0))).then(() => false),
      ]);
      this.iopubListeners.delete(message.header.msg_id);
      if (got) return reply;
      if (Date.now() >= deadline) throw new Error(`the kernel did not answer kernel_info within ${timeoutMs / 1000} s`);
    }
  }

  /** Run code; resolves once both the execute_reply and the request's status idle arrived. */
  async execute(code: string, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    const message = this.wire.createMessage("execute_request", {
      code,
      silent: options.silent ?? false,
      store_history: options.storeHistory ?? true,
      user_expressions: options.userExpressions ?? {},
      allow_stdin: options.allowStdin ?? false,
      stop_on_error: options.stopOnError ?? true,
    });
    const msgId = message.header.msg_id;
    const iopub: JupyterMessage[] = [];
    const idle = new Promise<void>((resolve) => {
      this.iopubListeners.set(msgId, (m) => {
        iopub.push(m);
        options.onIopub?.(m);
        if (m.header.msg_type === "status" && m.content.execution_state === "idle") resolve();
      });
    });
    if (options.onInput) this.inputHandlers.set(msgId, options.onInput);
    try {
      const { reply } = this.send("shell", message);
      const [replyMessage] = await Promise.all([reply, idle]);
      return { reply: replyMessage, iopub };
    } finally {
      this.iopubListeners.delete(msgId);
      this.inputHandlers.delete(msgId);
    }
  }

  private send(channel: RequestChannel, message: JupyterMessage): { reply: Promise<JupyterMessage> } {
    if (this.closed) return { reply: Promise.reject(new KernelClientClosedError("the client is closed")) };
    const reply = new Promise<JupyterMessage>((resolve, reject) => {
      this.replyWaiters.set(message.header.msg_id, { resolve, reject });
    });
    void this.out[channel].send(this.wire.encode(message));
    return { reply };
  }

  private async receive(socket: zmq.Dealer | zmq.Subscriber, onMessage: (message: JupyterMessage) => void): Promise<void> {
    try {
      for await (const frames of socket) {
        try {
          onMessage(this.wire.decode(frames).message);
        } catch (error) {
          log.warn(`dropped a message from the kernel: ${(error as Error).message}`);
        }
      }
    } catch (error) {
      if (!this.closed) log.error(`socket failed: ${(error as Error).message}`);
    }
  }

  private onReply(message: JupyterMessage): void {
    const parentId = (message.parent_header as { msg_id?: string }).msg_id ?? "";
    const waiter = this.replyWaiters.get(parentId);
    if (!waiter) return;
    this.replyWaiters.delete(parentId);
    waiter.resolve(message);
  }

  private onIopub(message: JupyterMessage): void {
    const parentId = (message.parent_header as { msg_id?: string }).msg_id ?? "";
    this.iopubListeners.get(parentId)?.(message);
    for (const listener of this.anyIopubListeners) listener(message);
  }

  private onStdin(message: JupyterMessage): void {
    if (message.header.msg_type !== "input_request") return;
    const parentId = (message.parent_header as { msg_id?: string }).msg_id ?? "";
    const handler = this.inputHandlers.get(parentId);
    const { prompt, password } = message.content as { prompt?: string; password?: boolean };
    void Promise.resolve(handler ? handler(String(prompt ?? ""), password === true) : "")
      .catch(() => "")
      .then((value) => {
        const reply = this.wire.createMessage("input_reply", { value }, message);
        return this.out.stdin.send(this.wire.encode(reply));
      });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
