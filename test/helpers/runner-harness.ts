/**
 * Drives a real runtime process (python or node runner) the way the agent does: the test listens
 * on a Unix socket ($FARLAB_CHANNEL), the runtime connects, the test sends `execute` messages and
 * reads what comes back; fd 1/2 of the runtime are pipes the harness reads (fd-level output).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { after, before } from "node:test";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { FromRunner, ToRunner } from "../../remote-agent/protocol/runner";
import { runtimeCommand, type RuntimeCommandOptions, type RuntimeLang } from "../../remote-agent/runtimes";

const WAIT_MS = 30_000;

export type JobMessage = Exclude<FromRunner, { type: "ready" }>;

export interface JobOutcome {
  id: string;
  messages: JobMessage[];
  status: "ok" | "error" | "interrupted";
  /** Concatenated `stream` text of one stream. */
  text(name: "stdout" | "stderr"): string;
  of<T extends JobMessage["type"]>(type: T): Extract<JobMessage, { type: T }>[];
  result: Extract<JobMessage, { type: "result" }> | undefined;
  error: Extract<JobMessage, { type: "error" }> | undefined;
}

export interface RunningJob {
  id: string;
  messages: JobMessage[];
  /** Resolves when a message of this job matches (already received ones count). */
  waitFor(predicate: (message: JobMessage) => boolean, what: string): Promise<JobMessage>;
  done: Promise<JobOutcome>;
}

function outcome(id: string, messages: JobMessage[]): JobOutcome {
  const of = <T extends JobMessage["type"]>(type: T) => messages.filter((m): m is Extract<JobMessage, { type: T }> => m.type === type);
  const done = of("done")[0];
  return {
    id,
    messages,
    status: done.status,
    text: (name) => of("stream").filter((m) => m.name === name).map((m) => m.text).join(""),
    of,
    result: of("result")[0],
    error: of("error")[0],
  };
}

function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`runner harness: no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class RunnerHarness {
  stdout = "";
  stderr = "";
  private readonly events = new EventEmitter();
  private readonly jobs = new Map<string, JobMessage[]>();
  private buffer = "";
  private jobCounter = 0;
  private exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    private readonly socket: net.Socket,
    private readonly server: net.Server,
    readonly dir: string,
    readonly ready: Extract<FromRunner, { type: "ready" }>,
    pending: string,
  ) {
    this.events.setMaxListeners(100);
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stdout += chunk;
      this.events.emit("pipe");
    });
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
      this.events.emit("pipe");
    });
    socket.on("data", (chunk: string) => this.receive(chunk));
    this.receive(pending);
  }

  /** Start a runtime in a fresh temporary working directory (or `cwd`). */
  static async start(lang: RuntimeLang, options: RuntimeCommandOptions & { cwd?: string } = {}): Promise<RunnerHarness> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `farlab-runner-${lang}-`));
    const socketPath = path.join(dir, "channel.sock");
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const { command, args, env } = runtimeCommand(lang, options);
    const child = spawn(command, args, {
      cwd: options.cwd ?? dir,
      env: { ...process.env, ...env, FARLAB_CHANNEL: socketPath },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // own process group: interrupt() signals it as the agent does
    });
    let early = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (early += chunk));
    const exitedEarly = new Promise<never>((_, reject) =>
      child.once("exit", (code) => reject(new Error(`runtime exited (${code}) before connecting: ${early}`))),
    );
    const socket = await withTimeout(
      Promise.race([new Promise<net.Socket>((resolve) => server.once("connection", resolve)), exitedEarly]),
      "connection from the runtime",
    );
    socket.setEncoding("utf8");
    // The first line is `ready`; anything after it in the same chunk is kept for the parser.
    let received = "";
    const firstLine = await withTimeout(
      new Promise<string>((resolve) => {
        const onData = (chunk: string) => {
          received += chunk;
          if (received.includes("\n")) {
            socket.off("data", onData);
            resolve(received);
          }
        };
        socket.on("data", onData);
      }),
      "ready message",
    );
    const newline = firstLine.indexOf("\n");
    const ready = JSON.parse(firstLine.slice(0, newline)) as Extract<FromRunner, { type: "ready" }>;
    child.stderr!.removeAllListeners("data");
    const harness = new RunnerHarness(child, socket, server, dir, ready, firstLine.slice(newline + 1));
    harness.stderr = early;
    return harness;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (!line.trim()) continue;
      const message = JSON.parse(line) as FromRunner;
      if (message.type === "ready") continue;
      this.jobs.get(message.id)?.push(message);
      this.events.emit("message", message);
    }
  }

  private send(message: ToRunner): void {
    this.socket.write(JSON.stringify(message) + "\n");
  }

  /** Send a cell; returns at once with a handle to watch it. */
  start(code: string, options: { inputs?: Record<string, unknown>; wantValue?: boolean } = {}): RunningJob {
    this.jobCounter += 1;
    const id = `job-${this.jobCounter}`;
    const messages: JobMessage[] = [];
    this.jobs.set(id, messages);
    const waitFor = (predicate: (message: JobMessage) => boolean, what: string) =>
      withTimeout(
        new Promise<JobMessage>((resolve) => {
          const found = messages.find(predicate);
          if (found) return resolve(found);
          const listener = (message: JobMessage) => {
            if (message.id === id && predicate(message)) {
              this.events.off("message", listener);
              resolve(message);
            }
          };
          this.events.on("message", listener);
        }),
        `${what} (job ${id})`,
      );
    this.send({ type: "execute", id, code, inputs: options.inputs ?? {}, wantValue: options.wantValue ?? false });
    const done = waitFor((m) => m.type === "done", "done message").then(() => outcome(id, messages));
    return { id, messages, waitFor, done };
  }

  /** Run a cell to its end. */
  run(code: string, options: { inputs?: Record<string, unknown>; wantValue?: boolean } = {}): Promise<JobOutcome> {
    return this.start(code, options).done;
  }

  /** Run a cell, SIGINT the runtime once the cell has printed `marker` (it is running), await its end. */
  async interruptAfter(code: string, marker: string): Promise<JobOutcome> {
    const job = this.start(code);
    await job.waitFor((m) => m.type === "stream" && m.text.includes(marker), `${JSON.stringify(marker)} printed by the cell`);
    this.interrupt();
    return job.done;
  }

  /** Wait until the runtime's fd 1 (or fd 2) pipe has printed `text`. */
  waitForPipe(name: "stdout" | "stderr", text: string): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve) => {
        const check = () => {
          if (this[name].includes(text)) {
            this.events.off("pipe", check);
            resolve();
          }
        };
        this.events.on("pipe", check);
        check();
      }),
      `${JSON.stringify(text)} on the runtime's ${name} pipe`,
    );
  }

  /** SIGINT to the runtime's process group, as the agent interrupts. */
  interrupt(): void {
    process.kill(-this.child.pid!, "SIGINT");
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.send({ type: "shutdown" });
      await withTimeout(this.exited, "exit after shutdown", 10_000).catch(() => {
        try {
          process.kill(-this.child.pid!, "SIGKILL");
        } catch {
          // already gone
        }
      });
    }
    this.socket.destroy();
    this.server.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One runtime for the tests of a file (or a describe block): started before them, shut down after.
 * Returns an accessor, since the runtime exists only once `before` has run.
 */
export function useRuntime(lang: RuntimeLang, options: RuntimeCommandOptions & { cwd?: string } = {}): () => RunnerHarness {
  let harness: RunnerHarness | undefined;
  before(async () => {
    harness = await RunnerHarness.start(lang, options);
  });
  after(async () => {
    await harness?.close();
  });
  return () => {
    if (!harness) throw new Error(`the ${lang} runtime did not start`);
    return harness;
  };
}
