/**
 * The process backend: each session is a runtime process on the agent's host,
 * - in its own process group (spawned detached), so an interrupt reaches the runtime and every
 *   subprocess it started, and never the agent;
 * - in its own working directory, DATA/sessions/<id>/work (removed when the runtime exits);
 * - talking the runner protocol over a Unix socket the agent listens on (FARLAB_CHANNEL), while
 *   its fd 1 / fd 2 are pipes the agent reads (fd-level capture);
 * - seeing only its allocated GPUs (CUDA_VISIBLE_DEVICES, in nvidia-smi's PCI bus order).
 * The command that starts a runtime comes from remote-agent/runtimes (runtimeCommand(lang)).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import type { Readable } from "node:stream";
import type { FromRunner, ToRunner } from "../protocol/runner";
import { runtimeCommand } from "../runtimes";
import { HeldOutput, type OutputSource } from "./output-source";
import { withVolumeMounts } from "../volumes/mount-namespace";
import {
  RuntimeStartError,
  describeExit,
  type Backend,
  type OutputListener,
  type RuntimeExit,
  type RuntimeHandle,
  type SessionSpec,
} from "./types";

export interface ProcessBackendOptions {
  dataDir: string;
  /** How long a runtime may take to connect and say `ready`. */
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Unix socket paths are limited to 107 bytes; past that, the socket lives in the temp folder. */
const MAX_SOCKET_PATH = 100;
const STDERR_TAIL_BYTES = 4000;

export class ProcessBackend implements Backend {
  readonly name = "process";
  private readonly startTimeoutMs: number;
  private readonly log: (line: string) => void;

  constructor(private readonly options: ProcessBackendOptions) {
    this.startTimeoutMs = options.startTimeoutMs ?? 60_000;
    this.log = options.log ?? (() => undefined);
  }

  async startSession(spec: SessionSpec): Promise<RuntimeHandle> {
    const sessionDir = path.join(this.options.dataDir, "sessions", spec.id);
    const workDir = path.join(sessionDir, "work");
    fs.mkdirSync(workDir, { recursive: true });
    const socketPath = channelPath(sessionDir, spec.id);
    fs.rmSync(socketPath, { force: true });

    const server = net.createServer();
    server.listen(socketPath);
    await once(server, "listening");
    const connection = once(server, "connection") as Promise<[net.Socket]>;

    const runtime = runtimeCommand(spec.lang);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...runtime.env,
      FARLAB_CHANNEL: socketPath,
      FARLAB_SESSION: spec.name,
      ...gpuEnvironment(spec),
      ...spec.env,
    };
    // Volumes: a private mount namespace with each volume bind-mounted at its path.
    const launch = withVolumeMounts(runtime.command, runtime.args, spec.mounts ?? []);
    const child = spawn(launch.command, launch.args, {
      cwd: workDir,
      env,
      detached: true, // own process group: signals go to -pid
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output = new PipeReader(child.stdout, child.stderr);
    let stderrTail = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL_BYTES);
    });
    const exited = new Promise<RuntimeExit>((resolve) => {
      child.on("exit", (code, signal) => resolve({ code, signal }));
      child.on("error", () => resolve({ code: null, signal: null })); // e.g. ENOENT
    });
    const spawnError = new Promise<Error>((resolve) => child.on("error", resolve));
    void exited.then(() => {
      server.close();
      fs.rmSync(sessionDir, { recursive: true, force: true });
    });

    const signalGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // ESRCH: already gone
      }
    };

    const fail = (why: string): never => {
      signalGroup("SIGKILL");
      server.close();
      const tail = stderrTail.trim();
      throw new RuntimeStartError(`the ${spec.lang} runtime did not start: ${why}${tail ? `\n${tail}` : ""}`);
    };

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.startTimeoutMs);
    });
    try {
      const first = await Promise.race([
        connection.then(([socket]) => ({ kind: "connected" as const, socket })),
        exited.then((exit) => ({ kind: "exited" as const, exit })),
        spawnError.then((error) => ({ kind: "error" as const, error })),
        timeout.then(() => ({ kind: "timeout" as const })),
      ]);
      if (first.kind === "timeout") return fail(`it did not connect to its channel within ${this.startTimeoutMs} ms`);
      if (first.kind === "error") return fail(`${runtime.command}: ${first.error.message}`);
      if (first.kind === "exited") return fail(`it exited (${describeExit(first.exit)}) before connecting`);
      const socket = first.socket;
      server.close(); // one runtime, one connection
      const messages = runnerMessages(socket, this.log);
      const ready = await Promise.race([
        messages.next().then((next) => ({ kind: "message" as const, message: next.done ? undefined : next.value })),
        exited.then((exit) => ({ kind: "exited" as const, exit })),
        timeout.then(() => ({ kind: "timeout" as const })),
      ]);
      if (ready.kind === "timeout") return fail(`it did not say ready within ${this.startTimeoutMs} ms`);
      if (ready.kind === "exited") return fail(`it exited (${describeExit(ready.exit)}) before saying ready`);
      if (ready.message?.type !== "ready") return fail("its channel closed or it sent something other than `ready` first");
      this.log(`session ${spec.name}: ${spec.lang} runtime ready, pid ${child.pid}, work dir ${workDir}`);
      return runtimeHandle({ where: `process ${child.pid} on ${os.hostname()}`, pid: child.pid, output, messages, exited, socket, signal: signalGroup });
    } finally {
      clearTimeout(timer);
    }
  }
}

function channelPath(sessionDir: string, id: string): string {
  const inSession = path.join(sessionDir, "channel.sock");
  return Buffer.byteLength(inSession) <= MAX_SOCKET_PATH ? inSession : path.join(os.tmpdir(), `farlab-${id}.sock`);
}

/**
 * CUDA_VISIBLE_DEVICES from the allocation, by nvidia-smi index; CUDA_DEVICE_ORDER=PCI_BUS_ID
 * makes CUDA number devices the way nvidia-smi does. A session without GPUs on an agent with
 * GPUs sees none (they belong to other sessions).
 */
function gpuEnvironment(spec: SessionSpec): Record<string, string> {
  if (spec.gpus.length === 0 && !spec.agentHasGpus) return {};
  return {
    CUDA_DEVICE_ORDER: "PCI_BUS_ID",
    CUDA_VISIBLE_DEVICES: spec.gpus.map((gpu) => String(gpu.index)).join(","),
  };
}

/** Newline-delimited JSON from the runtime; lines that are not JSON objects are logged and skipped. */
/**
 * The RuntimeHandle every backend returns once its runtime said `ready`: output from the
 * runtime's pipes, runner messages and sends over its channel socket, signals by the backend's
 * own means (a process group, a container).
 */
export function runtimeHandle(parts: {
  where: string;
  pid: number | undefined;
  output: OutputSource;
  /** See RuntimeHandle.journalOutputAtOnce. */
  journalOutputAtOnce?: boolean;
  messages: AsyncIterable<FromRunner>;
  exited: Promise<RuntimeExit>;
  socket: net.Socket;
  signal: (signal: NodeJS.Signals) => void;
}): RuntimeHandle {
  const { output, socket, signal } = parts;
  return {
    where: parts.where,
    pid: parts.pid,
    journalOutputAtOnce: parts.journalOutputAtOnce,
    onOutput: (listener) => output.listen(listener),
    drainOutput: () => output.drain(),
    pauseOutput: () => output.pause(),
    resumeOutput: () => output.resume(),
    messages: parts.messages,
    exited: parts.exited,
    send: (message: ToRunner) => {
      if (!socket.destroyed) socket.write(JSON.stringify(message) + "\n");
    },
    interrupt: () => signal("SIGINT"),
    terminate: () => signal("SIGTERM"),
    kill: () => signal("SIGKILL"),
  };
}

export async function* runnerMessages(socket: net.Socket, log: (line: string) => void): AsyncGenerator<FromRunner> {
  const lines = readline.createInterface({ input: socket, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === "") continue;
    try {
      const message = JSON.parse(line) as FromRunner;
      if (message && typeof message === "object" && typeof message.type === "string") {
        yield message;
        continue;
      }
    } catch {
      // fall through
    }
    log(`runner sent a line that is not a message: ${line.slice(0, 200)}`);
  }
}

/**
 * The runtime's stdout/stderr pipes: chunks go to one listener (held until it is set), from
 * libuv's reads as they come, or from a synchronous read of what is already in the pipe (drain).
 * Reading the pipe's descriptor directly is safe beside libuv: it is non-blocking, and libuv
 * just finds it empty (EAGAIN) afterwards.
 */
export class PipeReader extends HeldOutput implements OutputSource {
  constructor(
    private readonly stdout: Readable,
    private readonly stderr: Readable,
  ) {
    super();
    stdout.on("data", (chunk: Buffer) => this.deliver("stdout", chunk));
    stderr.on("data", (chunk: Buffer) => this.deliver("stderr", chunk));
  }

  pause(): void {
    this.stdout.pause();
    this.stderr.pause();
  }

  resume(): void {
    this.stdout.resume();
    this.stderr.resume();
  }

  drain(): boolean {
    let supported = true;
    for (const [name, stream] of [["stdout", this.stdout], ["stderr", this.stderr]] as const) {
      const fd = (stream as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
      if (typeof fd !== "number" || fd < 0) {
        supported = false;
        continue;
      }
      // What libuv already read (held in the stream while it is paused) is older than what sits
      // in the pipe: deliver it first (read() emits it as 'data').
      while (stream.readableLength > 0 && stream.read() !== null);
      this.deliverAvailable(name, fd);
    }
    return supported;
  }
}
