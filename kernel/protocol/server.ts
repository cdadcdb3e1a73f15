/**
 * The Jupyter protocol server (messaging protocol 5.3 over ZeroMQ).
 *
 * It knows nothing of the language: every request that needs one goes to an Interpreter
 * (kernel/interpreter.ts). Like ipykernel's kernelbase, each msg_type maps to one handler method
 * in a table, and `dispatch` wraps every shell and control request in status busy/idle, so no
 * handler can forget it.
 *
 * Shell requests run one at a time, in arrival order; control requests have their own queue and
 * are answered while a cell runs (interrupt, shutdown, kernel_info).
 */
import * as zmq from "zeromq";
import type { ErrorContent, ExecuteOutcome, ExecutionIO, Interpreter, IopubOutput } from "../interpreter";
import { channelUrl, type ConnectionInfo } from "./connection-file";
import { StdinNotAllowedError } from "./errors";
import type { HistoryQuery, HistoryStore } from "./history";
import { createLogger } from "./log";
import { SendQueue } from "./send-queue";
import { StreamCoalescer } from "./stream-coalescer";
import { MessageSigner, WireSession, type Envelope, type JupyterMessage } from "./wire";

const log = createLogger("server");

/** kernel_info_reply content minus status/protocol_version, supplied by the language side. */
export interface KernelInfo {
  implementation: string;
  implementation_version: string;
  language_info: Record<string, unknown>;
  banner: string;
  help_links: { text: string; url: string }[];
}

export interface KernelServerOptions {
  connection: ConnectionInfo;
  interpreter: Interpreter;
  history: HistoryStore;
  kernelInfo: KernelInfo;
  /** Called once a shutdown_request was answered and the sockets are closed. */
  onShutdown?: (restart: boolean) => void;
}

type ChannelName = "shell" | "control";

/** One request being handled: its message, and how to answer it. */
interface Request {
  channel: ChannelName;
  envelope: Envelope;
  message: JupyterMessage;
  /** Arrival number on its channel (stop_on_error aborts execute requests up to a barrier). */
  seq: number;
  replied: boolean;
}

type Handler = (request: Request) => Promise<void> | void;

/** A FIFO worked through one request at a time. */
class RequestQueue {
  private readonly items: Request[] = [];
  private running = false;

  constructor(private readonly work: (request: Request) => Promise<void>) {}

  push(request: Request): void {
    this.items.push(request);
    if (!this.running) void this.pump();
  }

  private async pump(): Promise<void> {
    this.running = true;
    for (let next = this.items.shift(); next; next = this.items.shift()) await this.work(next);
    this.running = false;
  }
}

export class KernelServer {
  private readonly wire: WireSession;
  private readonly shell = new zmq.Router({ linger: 1000 });
  private readonly control = new zmq.Router({ linger: 1000 });
  private readonly stdin = new zmq.Router({ linger: 1000 });
  private readonly iopub = new zmq.Publisher({ linger: 1000 });
  private readonly hb = new zmq.Reply({ linger: 0 });
  private readonly out: Record<"shell" | "control" | "stdin" | "iopub", SendQueue>;
  private readonly queues: Record<ChannelName, RequestQueue>;
  private arrivals = 0;
  /** execute_requests with seq <= this arrived before a failing cell with stop_on_error: abort them. */
  private abortThrough = 0;
  private executionCount = 0;
  private pendingInput: { resolve: (value: string) => void; reject: (error: Error) => void } | undefined;
  private shuttingDown = false;
  private closed = false;

  private readonly shellHandlers: Record<string, Handler> = {
    kernel_info_request: this.kernelInfo,
    execute_request: this.execute,
    complete_request: this.complete,
    inspect_request: this.inspect,
    is_complete_request: this.isComplete,
    history_request: this.historyRequest,
    comm_info_request: this.commInfo,
    comm_open: this.commOpen,
    comm_msg: () => {}, // no comms are ever open: nothing to deliver to
    comm_close: () => {},
    connect_request: this.connect,
    shutdown_request: this.shutdown,
  };

  private readonly controlHandlers: Record<string, Handler> = {
    kernel_info_request: this.kernelInfo,
    interrupt_request: this.interrupt,
    shutdown_request: this.shutdown,
  };

  constructor(private readonly options: KernelServerOptions) {
    const { key, signature_scheme } = options.connection;
    this.wire = new WireSession(new MessageSigner(key, signature_scheme), "kernel");
    this.out = {
      shell: new SendQueue(this.shell, "shell"),
      control: new SendQueue(this.control, "control"),
      stdin: new SendQueue(this.stdin, "stdin"),
      iopub: new SendQueue(this.iopub, "iopub"),
    };
    this.queues = {
      shell: new RequestQueue((request) => this.dispatch(request, this.shellHandlers)),
      control: new RequestQueue((request) => this.dispatch(request, this.controlHandlers)),
    };
  }

  async start(): Promise<void> {
    const { connection } = this.options;
    await Promise.all([
      this.shell.bind(channelUrl(connection, "shell")),
      this.control.bind(channelUrl(connection, "control")),
      this.stdin.bind(channelUrl(connection, "stdin")),
      this.iopub.bind(channelUrl(connection, "iopub")),
      this.hb.bind(channelUrl(connection, "hb")),
    ]);
    void this.receive(this.shell, "shell", (envelope) => this.enqueue("shell", envelope));
    void this.receive(this.control, "control", (envelope) => this.enqueue("control", envelope));
    void this.receive(this.stdin, "stdin", (envelope) => this.onStdin(envelope));
    void this.heartbeat();
    this.publish("status", { execution_state: "starting" });
    log.info(`listening (${connection.transport}://${connection.ip}, shell port ${connection.shell_port})`);
  }

  /** Flush what is queued and close every socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.options.history.flush();
    await Promise.all(Object.values(this.out).map((queue) => queue.drain()));
    for (const socket of [this.shell, this.control, this.stdin, this.iopub, this.hb]) socket.close();
  }

  // ---- sockets -------------------------------------------------------------------------------

  private async receive(socket: zmq.Router, name: string, onEnvelope: (envelope: Envelope) => void): Promise<void> {
    try {
      for await (const frames of socket) {
        let envelope: Envelope;
        try {
          envelope = this.wire.decode(frames);
        } catch (error) {
          log.warn(`dropped a message on ${name}: ${(error as Error).message}`);
          continue;
        }
        onEnvelope(envelope);
      }
    } catch (error) {
      if (!socket.closed) log.error(`${name} socket failed: ${(error as Error).message}`);
    }
  }

  private async heartbeat(): Promise<void> {
    try {
      for await (const frames of this.hb) await this.hb.send(frames);
    } catch (error) {
      if (!this.hb.closed) log.error(`heartbeat failed: ${(error as Error).message}`);
    }
  }

  private enqueue(channel: ChannelName, envelope: Envelope): void {
    log.debug(`${channel}: ${envelope.message.header.msg_type} ${envelope.message.header.msg_id}`);
    this.queues[channel].push({ channel, envelope, message: envelope.message, seq: ++this.arrivals, replied: false });
  }

  // ---- dispatch ------------------------------------------------------------------------------

  private async dispatch(request: Request, handlers: Record<string, Handler>): Promise<void> {
    const msgType = request.message.header.msg_type;
    this.publish("status", { execution_state: "busy" }, request.message);
    try {
      if (msgType === "execute_request" && request.seq <= this.abortThrough) {
        // Queued before a cell failed with stop_on_error: ipykernel's "aborted" reply.
        await this.reply(request, { status: "aborted" }, { status: "aborted" });
        return;
      }
      const handler = handlers[msgType];
      if (!handler) {
        log.warn(`ignoring ${msgType} on ${request.channel}: no handler for this message type`);
        return;
      }
      await handler.call(this, request);
    } catch (error) {
      log.error(`${msgType} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      if (!request.replied && msgType.endsWith("_request")) {
        const err = error instanceof Error ? error : new Error(String(error));
        await this.reply(request, { status: "error", ename: err.name, evalue: err.message, traceback: [] });
      }
    } finally {
      this.publish("status", { execution_state: "idle" }, request.message);
    }
  }

  private reply(request: Request, content: object, metadata: Record<string, unknown> = {}): Promise<void> {
    request.replied = true;
    const msgType = request.message.header.msg_type.replace(/_request$/, "_reply");
    const message = this.wire.createMessage(msgType, content, request.message, metadata);
    return this.out[request.channel].send(this.wire.encode(message, request.envelope.identities));
  }

  private publish(msgType: string, content: object, parent?: JupyterMessage): void {
    if (this.closed) return;
    const message = this.wire.createMessage(msgType, content, parent);
    void this.out.iopub.send(this.wire.encode(message, [Buffer.from(`kernel.${this.wire.session}.${msgType}`)]));
  }

  // ---- handlers ------------------------------------------------------------------------------

  private async kernelInfo(request: Request): Promise<void> {
    await this.reply(request, { status: "ok", protocol_version: "5.3", debugger: false, ...this.options.kernelInfo });
  }

  private async execute(request: Request): Promise<void> {
    const content = request.message.content as {
      code?: string;
      silent?: boolean;
      store_history?: boolean;
      user_expressions?: Record<string, string>;
      allow_stdin?: boolean;
      stop_on_error?: boolean;
    };
    const code = String(content.code ?? "");
    const silent = content.silent === true;
    const storeHistory = !silent && content.store_history !== false;
    const stopOnError = content.stop_on_error !== false;
    if (storeHistory) this.executionCount += 1;
    const executionCount = this.executionCount;
    if (!silent) this.publish("execute_input", { code, execution_count: executionCount }, request.message);
    if (storeHistory) this.options.history.record(executionCount, code);

    let publishedError: ErrorContent | undefined;
    const coalescer = new StreamCoalescer((output) => {
      const outputContent = output.msgType === "execute_result" ? { ...output.content, execution_count: executionCount } : output.content;
      if (output.msgType === "error") publishedError = output.content;
      if (output.msgType === "execute_result" && storeHistory && typeof output.content.data["text/plain"] === "string") {
        this.options.history.recordOutput(executionCount, output.content.data["text/plain"]);
      }
      this.publish(output.msgType, outputContent, request.message);
    });
    const io: ExecutionIO = {
      // Outputs that arrive after the reply (a timer in user code) still belong to this cell.
      publish: (output: IopubOutput) => {
        if (!silent) coalescer.publish(output);
      },
      input: (prompt, password) => {
        if (content.allow_stdin !== true) return Promise.reject(new StdinNotAllowedError());
        coalescer.flush();
        return this.requestInput(request, prompt, password);
      },
    };

    const started = new Date().toISOString();
    let outcome: ExecuteOutcome;
    try {
      outcome = await this.options.interpreter.execute(
        { code, silent, storeHistory, allowStdin: content.allow_stdin === true, executionCount, userExpressions: content.user_expressions ?? {} },
        io,
      );
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      outcome = { status: "error", ename: err.name, evalue: err.message, traceback: [`${err.name}: ${err.message}`] };
    } finally {
      this.cancelInput("the cell finished before its input was answered");
      coalescer.flush();
    }

    const metadata = { started, status: outcome.status };
    if (outcome.status === "error") {
      const error: ErrorContent = { ename: outcome.ename, evalue: outcome.evalue, traceback: outcome.traceback };
      // The interpreter may already have published this error itself; show it once.
      const alreadyShown = publishedError?.ename === error.ename && publishedError?.evalue === error.evalue;
      if (!silent && !alreadyShown) this.publish("error", error, request.message);
      if (!silent && stopOnError) this.abortThrough = this.arrivals;
      await this.reply(request, { status: "error", execution_count: executionCount, ...error }, metadata);
    } else if (outcome.status === "aborted") {
      await this.reply(request, { status: "aborted", execution_count: executionCount }, metadata);
    } else {
      await this.reply(
        request,
        { status: "ok", execution_count: executionCount, payload: [], user_expressions: outcome.userExpressions ?? {} },
        metadata,
      );
    }
  }

  private async complete(request: Request): Promise<void> {
    const { code, cursor_pos } = request.message.content as { code?: string; cursor_pos?: number };
    const text = String(code ?? "");
    const result = await this.options.interpreter.complete(text, cursor_pos ?? [...text].length);
    await this.reply(request, {
      status: "ok",
      matches: result.matches,
      cursor_start: result.cursorStart,
      cursor_end: result.cursorEnd,
      metadata: result.metadata,
    });
  }

  private async inspect(request: Request): Promise<void> {
    const { code, cursor_pos, detail_level } = request.message.content as { code?: string; cursor_pos?: number; detail_level?: number };
    const text = String(code ?? "");
    const result = await this.options.interpreter.inspect(text, cursor_pos ?? [...text].length, detail_level ?? 0);
    await this.reply(request, { status: "ok", found: result.found, data: result.data, metadata: result.metadata });
  }

  private async isComplete(request: Request): Promise<void> {
    const { code } = request.message.content as { code?: string };
    await this.reply(request, await this.options.interpreter.isComplete(String(code ?? "")));
  }

  private async historyRequest(request: Request): Promise<void> {
    const c = request.message.content as {
      output?: boolean;
      hist_access_type?: string;
      session?: number;
      start?: number;
      stop?: number | null;
      n?: number | null;
      pattern?: string;
      unique?: boolean;
    };
    let query: HistoryQuery;
    switch (c.hist_access_type) {
      case "tail":
        query = { kind: "tail", n: c.n ?? 10 };
        break;
      case "range":
        query = { kind: "range", session: c.session ?? 0, start: c.start ?? 1, stop: c.stop ?? null };
        break;
      case "search":
        query = { kind: "search", pattern: c.pattern ?? "*", n: c.n ?? null, unique: c.unique === true };
        break;
      default:
        throw new TypeError(`hist_access_type must be 'tail', 'range' or 'search', not '${c.hist_access_type}'`);
    }
    await this.reply(request, { status: "ok", history: this.options.history.query(query, c.output === true) });
  }

  private async commInfo(request: Request): Promise<void> {
    await this.reply(request, { status: "ok", comms: {} });
  }

  /** No comm targets are registered: close what a frontend opens, as ipykernel does. */
  private commOpen(request: Request): void {
    const { comm_id, target_name } = request.message.content as { comm_id?: string; target_name?: string };
    log.warn(`no comm target '${target_name}'; closing comm ${comm_id}`);
    this.publish("comm_close", { comm_id, data: {} }, request.message);
  }

  private async connect(request: Request): Promise<void> {
    const { shell_port, iopub_port, stdin_port, control_port, hb_port } = this.options.connection;
    await this.reply(request, { status: "ok", shell_port, iopub_port, stdin_port, control_port, hb_port });
  }

  private async interrupt(request: Request): Promise<void> {
    this.options.interpreter.interrupt();
    await this.reply(request, { status: "ok" });
  }

  private async shutdown(request: Request): Promise<void> {
    const restart = (request.message.content as { restart?: boolean }).restart === true;
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    await this.reply(request, { status: "ok", restart });
    this.publish("shutdown_reply", { status: "ok", restart }, request.message);
    // The process exits either way; on restart the frontend's manager starts a new kernel.
    await this.options.interpreter.shutdown(false).catch((error: Error) => log.warn(`interpreter shutdown: ${error.message}`));
    this.publish("status", { execution_state: "idle" }, request.message);
    await this.close(); // after this, dispatch's own "idle" is not sent again
    this.options.onShutdown?.(restart);
  }

  // ---- stdin ---------------------------------------------------------------------------------

  private requestInput(request: Request, prompt: string, password: boolean): Promise<string> {
    this.cancelInput("a new input request replaced it");
    return new Promise((resolve, reject) => {
      this.pendingInput = { resolve, reject };
      // The stdin DEALER of the requesting client has the same routing id as its shell socket.
      const message = this.wire.createMessage("input_request", { prompt, password }, request.message);
      void this.out.stdin.send(this.wire.encode(message, request.envelope.identities));
    });
  }

  private onStdin(envelope: Envelope): void {
    const { message } = envelope;
    if (message.header.msg_type !== "input_reply") {
      log.warn(`ignoring ${message.header.msg_type} on stdin`);
      return;
    }
    const pending = this.pendingInput;
    this.pendingInput = undefined;
    if (!pending) log.warn("input_reply without a pending input_request; ignored");
    else pending.resolve(String((message.content as { value?: unknown }).value ?? ""));
  }

  private cancelInput(reason: string): void {
    const pending = this.pendingInput;
    this.pendingInput = undefined;
    pending?.reject(new Error(reason));
  }
}
