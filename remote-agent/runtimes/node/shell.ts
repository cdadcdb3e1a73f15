/**
 * `lang=sh` cells: the body runs in a fresh `bash -c` in the session's working directory, with
 * fd 1/2 inherited, so the agent captures its output at the fd level like any child process.
 * No state carries over between cells except the file system. `-i` inputs become environment
 * variables (strings as they are, other values as JSON).
 */
import { spawn } from "node:child_process";
import type { ToRunner } from "../../protocol/runner";
import type { RunnerChannel } from "./channel";

type Execute = Extract<ToRunner, { type: "execute" }>;
type Status = "ok" | "error" | "interrupted";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function inputsAsEnv(inputs: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(inputs)) {
    if (!ENV_NAME.test(name)) throw new Error(`input ${JSON.stringify(name)} is not a valid environment variable name`);
    env[name] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return env;
}

export class ShellSession {
  private interrupted = false;
  private child: ReturnType<typeof spawn> | undefined;

  constructor(private readonly channel: RunnerChannel) {
    // The agent signals the whole process group; bash gets it too. Forward it in case only the
    // runner was signalled, and never let SIGINT end the runner.
    // A SIGINT handled after bash has exited (the group's signal ended bash first, and Node runs
    // signal handlers asynchronously) is ignored: it must not mark the next cell interrupted.
    process.on("SIGINT", () => {
      if (!this.child) return;
      this.interrupted = true;
      this.child.kill("SIGINT");
    });
  }

  private fail(evalue: string, status: Status = "error"): Status {
    this.channel.send({ type: "error", ename: status === "interrupted" ? "Interrupted" : "ShellError", evalue, traceback: [evalue] });
    return status;
  }

  async execute(message: Execute): Promise<Status> {
    this.interrupted = false;
    let env: Record<string, string>;
    try {
      env = inputsAsEnv(message.inputs ?? {});
    } catch (e) {
      return this.fail((e as Error).message);
    }
    const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null } | Error>((resolve) => {
      const child = spawn("bash", ["-c", message.code, "farlab-cell"], {
        cwd: process.cwd(),
        stdio: ["ignore", "inherit", "inherit"],
        env: { ...process.env, ...env },
      });
      this.child = child;
      child.once("error", resolve);
      child.once("exit", (code, signal) => resolve({ code, signal }));
    });
    this.child = undefined;
    if (outcome instanceof Error) return this.fail(`could not start bash: ${outcome.message}`);
    if (this.interrupted || outcome.signal === "SIGINT") return this.fail("the shell cell was interrupted", "interrupted");
    if (outcome.signal) return this.fail(`killed by signal ${outcome.signal}`);
    if (outcome.code !== 0) return this.fail(`exit status ${outcome.code}`);
    if (message.wantValue) {
      this.channel.send({ type: "result", data: {}, metadata: {}, valueError: "a sh cell has no value: -o works with lang=ts or lang=python" });
    }
    return "ok";
  }
}
