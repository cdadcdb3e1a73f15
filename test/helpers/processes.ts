/**
 * Running real programs (python, jupyter, the farlab CLI) from tests: collect their output, feed
 * stdin, bound their run time, and kill the whole process group on timeout so no kernel is left
 * behind.
 */
import { spawn, type ChildProcess } from "node:child_process";

/** Debian's python with jupyter_client, jupyter_kernel_test, nbclient (not the pyenv one on PATH). */
export const SYSTEM_PYTHON = "/usr/bin/python3";

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export function runProgram(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true, // own process group: a timeout kills kernels it started too
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, "SIGKILL");
    }, options.timeoutMs ?? 120_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.on("error", () => undefined); // the program may exit before reading all input
    child.stdin.end(options.input ?? "");
  });
}

/** Signal a child started with `detached: true` and everything it spawned. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Output of a finished program, for assertion messages. */
export function describeRun(label: string, result: RunResult): string {
  const status = result.timedOut ? "timed out" : `exit ${result.code ?? result.signal}`;
  return `${label}: ${status}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}
