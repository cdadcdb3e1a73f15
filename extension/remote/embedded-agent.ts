/**
 * The embedded agent: with no agent configured, %%remote runs cells on a farlab-agent that the
 * executor starts as its own child, `farlab-agent serve --stdio`, talking frames over stdin/stdout.
 *
 * - detached (its own process group), so the SIGINT of a kernel interrupt, which goes to the
 *   executor's group, does not reach it: the client turns an interrupt into an `interrupt`
 *   request for the running job instead.
 * - it exits when its stdin closes, so it never outlives the executor (and with it the kernel).
 * - started lazily by the first request (AgentClient connects on first use), shared by all magics.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { StreamTransport, type Transport } from "../../remote-agent/protocol/framing";

/** The built agent CLI, next to this module in dist/ (dist/extension/remote -> dist/remote-agent). */
export const AGENT_CLI = path.resolve(__dirname, "..", "..", "remote-agent", "cli.js");

/**
 * Where the embedded agent keeps its journal, volumes and secrets. FARLAB_EMBEDDED_AGENT_DIR
 * overrides it (tests use a temporary folder); the default is stable per user, so volumes and
 * secrets made through the embedded agent are still there in the next kernel.
 */
export function embeddedDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.FARLAB_EMBEDDED_AGENT_DIR;
  if (override) return path.resolve(override);
  const dataHome = env.XDG_DATA_HOME || path.join(os.homedir(), ".local", "share");
  return path.join(dataHome, "farlab-agent", "embedded-local");
}

/**
 * The embedded agent is this machine, used first: sessions run as plain processes, so nothing is
 * pulled or built before the first cell (and it works offline). Containers come from an agent
 * served with `farlab-agent serve` (Docker when its socket answers), or from
 * FARLAB_AGENT_BACKEND=auto|docker in the kernel's environment.
 */
function embeddedBackend(env: NodeJS.ProcessEnv = process.env): string {
  return env.FARLAB_AGENT_BACKEND || "process";
}

export async function spawnEmbeddedAgent(dataDir = embeddedDataDir()): Promise<Transport> {
  if (!fs.existsSync(AGENT_CLI)) {
    throw new Error(`the agent program ${AGENT_CLI} is missing (is farlab built? run npm run build)`);
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const child = spawn(process.execPath, [AGENT_CLI, "serve", "--stdio", "--data-dir", dataDir, "--backend", embeddedBackend()], {
    detached: true,
    // Not inherited: the executor's fd 2 is cell output. The agent also logs to DATA/agent.log;
    // the tail kept here explains an agent that dies.
    stdio: ["pipe", "pipe", "pipe"],
    env: process.env,
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  let stderrTail = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => {
    stderrTail = (stderrTail + text).slice(-2000);
  });
  // Reading the log must not keep the executor alive (a runtime the agent left behind may hold it open).
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  const exited = new Promise<string>((resolve) =>
    child.once("exit", (code, signal) => resolve(signal ? `signal ${signal}` : `exit status ${code}`)),
  );
  const transport = new StreamTransport(child.stdout!, child.stdin!);
  let closing = false;
  async function* frames() {
    yield* transport.frames;
    if (closing) return;
    // The agent went away by itself: say how, with its last log lines.
    const how = await exited;
    const lastLines = stderrTail.trim().split("\n").slice(-5).join("\n");
    throw new Error(`the embedded agent exited (${how})${lastLines ? `; its log ended with:\n${lastLines}` : ""}\n(full log: ${path.join(dataDir, "agent.log")})`);
  }
  return {
    send: (header, payload) => transport.send(header, payload),
    frames: frames(),
    close: () => {
      closing = true;
      transport.close();
      // The agent exits on its own once its stdin is closed (after letting running jobs end);
      // waiting for that must not keep the kernel's process alive.
      child.unref();
      child.stderr?.destroy();
    },
  };
}
