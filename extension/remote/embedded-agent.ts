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

export async function spawnEmbeddedAgent(dataDir = embeddedDataDir()): Promise<Transport> {
  if (!fs.existsSync(AGENT_CLI)) {
    throw new Error(`the agent program ${AGENT_CLI} is missing (is farlab built? run npm run build)`);
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const child = spawn(process.execPath, [AGENT_CLI, "serve", "--stdio", "--data-dir", dataDir], {
    detached: true,
    // The agent's own log goes to the kernel's stderr (the Jupyter server's log), never to a cell.
    stdio: ["pipe", "pipe", "inherit"],
    env: process.env,
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  const transport = new StreamTransport(child.stdout!, child.stdin!);
  return {
    send: (header, payload) => transport.send(header, payload),
    frames: transport.frames,
    close: () => {
      transport.close();
      // The agent exits on its own once its stdin is closed (after letting running jobs end);
      // waiting for that must not keep the kernel's process alive.
      child.unref();
    },
  };
}
