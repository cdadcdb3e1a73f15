/**
 * Jupyter's own servers on a loopback port, started the same way: a random token, a free port,
 * private config, readiness = the REST API answering (polled with a deadline), SIGTERM to stop
 * (the servers shut their kernels down first).
 *
 *  - startJupyterServer: Debian's jupyter-server (1.23), for driving the kernel the way
 *    JupyterLab does (REST + WebSocket).
 *  - test/helpers/notebook-server.ts starts the classic notebook through launchJupyterApp.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { freePort } from "./ports";
import { killGroup } from "./processes";
import { waitFor } from "./wait";

export interface RunningJupyterApp {
  port: number;
  baseUrl: string;
  token: string;
  /** Everything the server printed so far, for failure messages. */
  log(): string;
  /** GET an API path (e.g. "api/kernels") with the token; parsed JSON. */
  get(apiPath: string): Promise<unknown>;
  /** SIGTERM (the server shuts its kernels down first) and wait for it to exit. */
  stop(): Promise<void>;
}

export interface JupyterAppLaunch {
  /** For messages: "jupyter-server", "the notebook server". */
  name: string;
  command: string;
  /** Arguments that pick the app, before the common ones (["-m", "notebook"] for python3). */
  appArgs?: string[];
  /** Arguments after the common ones (--allow-root, --no-browser, --ip, --port, --port-retries=0). */
  args(token: string): string[];
  env: NodeJS.ProcessEnv;
}

export async function launchJupyterApp(launch: JupyterAppLaunch): Promise<RunningJupyterApp> {
  const port = await freePort();
  const token = randomBytes(24).toString("hex");
  const child: ChildProcess = spawn(
    launch.command,
    // --allow-root: CI and this machine run tests as root.
    [...(launch.appArgs ?? []), "--allow-root", "--no-browser", "--ip", "127.0.0.1", "--port", String(port), "--port-retries=0", ...launch.args(token)],
    { env: launch.env, stdio: ["ignore", "pipe", "pipe"], detached: true },
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
        if (child.exitCode !== null) throw new Error(`${launch.name} exited with ${child.exitCode}`);
        return (await get("api/status")) !== undefined;
      },
      { what: `${launch.name}'s REST API`, timeoutMs: 60_000, intervalMs: 200 },
    );
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n--- ${launch.name} output ---\n${output}`);
  }
  return { port, baseUrl, token, log: () => output, get, stop };
}

export interface RunningJupyterServer extends RunningJupyterApp {
  wsUrl: string;
}

export async function startJupyterServer(env: NodeJS.ProcessEnv, rootDir: string): Promise<RunningJupyterServer> {
  const configDir = path.join(rootDir, ".jupyter-config");
  fs.mkdirSync(configDir, { recursive: true });
  const app = await launchJupyterApp({
    name: "jupyter-server",
    command: "/usr/bin/jupyter-server",
    args: (token) => [`--ServerApp.token=${token}`, `--ServerApp.root_dir=${rootDir}`],
    env: { ...env, JUPYTER_CONFIG_DIR: configDir },
  });
  return { ...app, wsUrl: `ws://127.0.0.1:${app.port}/` };
}
