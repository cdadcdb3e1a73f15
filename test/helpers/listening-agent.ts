/**
 * A real `farlab-agent serve --listen tcp://127.0.0.1:0` for ZeroMQ transport tests and
 * benchmarks: its own data dir, the port it really bound (read from its log line), its public
 * key (from `farlab-agent keys`), and `authorize` through the real command.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT } from "./repo";

export const AGENT_CLI = path.join(REPO_ROOT, "dist", "remote-agent", "cli.js");

export class ListeningAgent {
  private constructor(
    readonly child: ChildProcessWithoutNullStreams,
    readonly dataDir: string,
    /** tcp://127.0.0.1:PORT */
    readonly url: string,
    readonly serverKey: string,
    readonly log: () => string,
  ) {}

  /** The port of `url`. */
  get port(): number {
    return Number(/:(\d+)$/.exec(this.url)![1]);
  }

  /** `listen`: a fixed tcp://127.0.0.1:PORT (an agent restarted on the same port); default port 0. */
  static async start(options: { dataDir?: string; args?: string[]; listen?: string } = {}): Promise<ListeningAgent> {
    const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "farlab-zmq-agent-"));
    const serverKey = agentCommand(dataDir, ["keys"]).trim();
    const child = spawn(process.execPath, [AGENT_CLI, "serve", "--listen", options.listen ?? "tcp://127.0.0.1:0", "--data-dir", dataDir, ...(options.args ?? [])], {
      env: { FARLAB_AGENT_BACKEND: "process", ...process.env }, // with dockerd up, auto = docker
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stderr = "";
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk;
        const match = /listening on (tcp:\/\/[\d.]+:\d+)/.exec(stderr);
        if (match) resolve(match[1]);
      });
      child.once("exit", (code) => reject(new Error(`farlab-agent serve --listen exited (${code}) before listening:\n${stderr}`)));
    });
    return new ListeningAgent(child, dataDir, url, serverKey, () => stderr);
  }

  /** `farlab-agent authorize KEY [--name NAME]` against this agent's data dir; returns its output. */
  authorize(key: string, name?: string): string {
    return agentCommand(this.dataDir, ["authorize", key, ...(name ? ["--name", name] : [])]);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    await exited;
  }
}

export function agentCommand(dataDir: string, args: string[]): string {
  return execFileSync(process.execPath, [AGENT_CLI, ...args, "--data-dir", dataDir], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"], // a failure's stderr goes into the thrown error's message
  });
}
