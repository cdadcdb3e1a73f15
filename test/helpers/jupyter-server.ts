/**
 * A real Debian jupyter-server (1.23) on a loopback port, for driving the kernel the way
 * JupyterLab does (REST + WebSocket). Readiness is the REST API answering, polled with a deadline.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { freePort } from "./ports";
import { killGroup } from "./processes";
import { waitFor } from "./wait";

export interface RunningJupyterServer {
  baseUrl: string;
  wsUrl: string;
  token: string;
  /** Everything the server printed so far, for failure messages. */
  log(): string;
  /** GET an API path (e.g. "api/kernels") with the token; parsed JSON. */
  get(apiPath: string): Promise<unknown>;
  stop(): Promise<void>;
}

export async function startJupyterServer(env: NodeJS.ProcessEnv, rootDir: string): Promise<RunningJupyterServer> {
  const port = await freePort();
  const token = randomBytes(24).toString("hex");
  const configDir = path.join(rootDir, ".jupyter-config");
  fs.mkdirSync(configDir, { recursive: true });
  const child: ChildProcess = spawn(
    "/usr/bin/jupyter-server",
    [
      "--allow-root",
      "--no-browser",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--port-retries=0",
      `--ServerApp.token=${token}`,
      `--ServerApp.root_dir=${rootDir}`,
    ],
    { env: { ...env, JUPYTER_CONFIG_DIR: configDir }, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));

  const baseUrl = `http://127.0.0.1:${port}/`;
  const get = async (apiPath: string): Promise<unknown> => {
    const response = await fetch(`${baseUrl}${apiPath}`, { headers: { Authorization: `token ${token}` } });
    if (!response.ok) throw new Error(`GET ${apiPath}: HTTP ${response.status}`);
    return response.json();
  };
  const stop = async (): Promise<void> => {
    killGroup(child, "SIGTERM");
    await exited;
  };

  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`jupyter-server exited with ${child.exitCode}`);
        return (await get("api/status")) !== undefined;
      },
      { what: "jupyter-server's REST API", timeoutMs: 60_000, intervalMs: 200 },
    );
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n--- jupyter-server output ---\n${output}`);
  }
  return { baseUrl, wsUrl: `ws://127.0.0.1:${port}/`, token, log: () => output, get, stop };
}
