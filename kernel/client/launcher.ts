/**
 * Starts a farlab kernel process the way a Jupyter kernel manager does: free ports, a random
 * HMAC key in a private connection file, then `node dist/kernel/main.js CONNECTION_FILE`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConnectionInfo } from "../protocol/connection-file";

export interface LaunchOptions {
  /** Working directory of the kernel (a notebook runs in its own folder). */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** The kernel entry; default dist/kernel/main.js of this installation. */
  kernelMain?: string;
}

export interface LaunchedKernel {
  connection: ConnectionInfo;
  connectionFile: string;
  process: ChildProcess;
  /** Resolves when the kernel process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last few KiB the kernel wrote to stderr (its log), for error messages. */
  stderrTail(): string;
  /** Kill the process (SIGKILL) if still running, and remove the connection file. */
  dispose(): Promise<void>;
}

/** Ports the OS reports free right now (the kernel binds them a moment later, as with jupyter_client). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve(server));
      }),
    ),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export async function launchKernel(options: LaunchOptions = {}): Promise<LaunchedKernel> {
  const [shell_port, iopub_port, stdin_port, control_port, hb_port] = await freePorts(5);
  const connection: ConnectionInfo = {
    transport: "tcp",
    ip: "127.0.0.1",
    shell_port,
    iopub_port,
    stdin_port,
    control_port,
    hb_port,
    key: randomBytes(32).toString("hex"),
    signature_scheme: "hmac-sha256",
    kernel_name: "farlab",
  };
  const dir = await mkdtemp(join(tmpdir(), "farlab-kernel-"));
  const connectionFile = join(dir, "kernel.json");
  await writeFile(connectionFile, JSON.stringify(connection, null, 2), { mode: 0o600 });

  const kernelMain = options.kernelMain ?? join(__dirname, "..", "main.js");
  const child = spawn(process.execPath, [kernelMain, connectionFile], {
    cwd: options.cwd,
    // As jupyter_client does: the kernel shuts itself down if this process goes away.
    env: { ...(options.env ?? process.env), JPY_PARENT_PID: String(process.pid) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  // If we exit first (an error, Ctrl-C), the kernel goes with us.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  let tail = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => {
    tail = (tail + text).slice(-8000);
    if (process.env.FARLAB_LOG) process.stderr.write(text);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      process.removeListener("exit", killOnExit);
      resolve({ code, signal });
    });
    child.once("error", () => resolve({ code: null, signal: null }));
  });

  return {
    connection,
    connectionFile,
    process: child,
    exited,
    stderrTail: () => tail,
    dispose: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
